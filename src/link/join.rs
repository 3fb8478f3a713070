//! Both ends of an application pool: what the server side it draws on (a PostgreSQL server, a
//! PgBouncer pool) shows of it, from the latest pools of every target. Pure.
//!
//! `server orders-db: 60 connections from application_name=checkout (7 idle in transaction),
//! 96/96 usable in use`.

use super::{BouncerEnd, Link, ServerEnd};
use crate::model::{Holder, Holders, PoolSnapshot};
use crate::source::pgbouncer::pools as bouncer;
use crate::source::postgres::pools as pg;

/// The server side of `link` as one line; parts that are not seen say so.
pub fn server_side(link: &Link, pools: &[&PoolSnapshot]) -> String {
    let mut parts = Vec::new();
    if let Some(b) = &link.pgbouncer {
        parts.push(bouncer_side(b, pools));
    }
    if let Some(s) = &link.server {
        parts.push(postgres_side(s, pools));
    }
    parts.join("; ")
}

fn find<'a>(
    pools: &[&'a PoolSnapshot],
    target: &str,
    kind: &str,
    name: Option<&str>,
) -> Option<&'a PoolSnapshot> {
    pools.iter().copied().find(|p| {
        p.id.target == target && p.id.kind.as_str() == kind && name.is_none_or(|n| p.id.name == n)
    })
}

fn bouncer_side(b: &BouncerEnd, pools: &[&PoolSnapshot]) -> String {
    let t = &b.target;
    match &b.pool {
        Some(name) => match find(pools, t, bouncer::POOL.name, Some(name)) {
            Some(p) => format!(
                "pgbouncer {t} pool {name}: {}/{} in use, {} waiting",
                p.in_use, p.capacity, p.waiting
            ),
            None => format!("pgbouncer {t} pool {name}: not seen"),
        },
        None => match find(pools, t, bouncer::CLIENTS.name, None) {
            Some(p) => format!("pgbouncer {t}: {}/{} clients", p.in_use, p.capacity),
            None => format!("pgbouncer {t}: not seen"),
        },
    }
}

fn postgres_side(s: &ServerEnd, pools: &[&PoolSnapshot]) -> String {
    let t = &s.target;
    let Some(server) = find(pools, t, pg::SERVER.name, None) else {
        return format!("server {t}: not seen");
    };
    let holders = server.postgres.as_ref().map(|p| &p.holders);
    let mut bits = Vec::new();
    if let Some(app) = &s.application_name {
        let of = holders.map(|h| h.applications.as_slice()).unwrap_or(&[]);
        bits.push(held("application_name", app, of));
    }
    for (kind, name, of) in [
        (pg::ROLE, &s.role, holders.map(|h| h.roles.as_slice())),
        (
            pg::DATABASE,
            &s.database,
            holders.map(|h| h.databases.as_slice()),
        ),
    ] {
        let Some(name) = name else { continue };
        bits.push(match find(pools, t, kind.name, Some(name)) {
            Some(p) => format!("{kind} {name} {}/{} in use", p.in_use, p.capacity),
            None => held(kind.name, name, of.unwrap_or(&[])),
        });
    }
    bits.push(format!(
        "{}/{} usable in use",
        server.in_use, server.capacity
    ));
    format!("server {t}: {}", bits.join(", "))
}

/// `60 connections from application_name=checkout (7 idle in transaction)`, from the server's
/// largest holders (only [`Holders::TOP`] are kept).
fn held(what: &str, name: &str, holders: &[Holder]) -> String {
    match holders.iter().find(|h| h.name == name) {
        Some(h) if h.idle_in_transaction > 0 => format!(
            "{} connections from {what}={name} ({} idle in transaction)",
            h.connections, h.idle_in_transaction
        ),
        Some(h) => format!("{} connections from {what}={name}", h.connections),
        None if holders.len() >= Holders::TOP => format!(
            "{what}={name} not among the {} largest holders",
            Holders::TOP
        ),
        None => format!("no connections from {what}={name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::Drawer;
    use crate::model::{PgSessions, PoolId, PoolKind};

    fn pool(target: &str, kind: PoolKind, name: &str, cap: u64, in_use: u64) -> PoolSnapshot {
        let id = PoolId {
            target: target.into(),
            kind,
            name: name.into(),
        };
        PoolSnapshot::new(id, cap, in_use)
    }

    fn holder(name: &str, connections: u64, iit: u64) -> Holder {
        Holder {
            name: name.into(),
            connections,
            idle_in_transaction: iit,
        }
    }

    fn server(apps: Vec<Holder>) -> PoolSnapshot {
        PoolSnapshot {
            postgres: Some(PgSessions {
                holders: Holders {
                    applications: apps,
                    ..Holders::default()
                },
                ..PgSessions::default()
            }),
            ..pool("orders-db", pg::SERVER, "server", 96, 96)
        }
    }

    fn link(server: Option<ServerEnd>, pgbouncer: Option<BouncerEnd>) -> Link {
        Link {
            from: "checkout".into(),
            drawer: Drawer::App,
            pool: None,
            server,
            pgbouncer,
        }
    }

    fn end(app: Option<&str>, role: Option<&str>) -> Option<ServerEnd> {
        Some(ServerEnd {
            target: "orders-db".into(),
            application_name: app.map(Into::into),
            role: role.map(Into::into),
            database: None,
        })
    }

    #[test]
    fn the_server_side_of_a_link() {
        let five: Vec<Holder> = (0..5).map(|i| holder(&format!("a{i}"), 10, 0)).collect();
        let role = pool("orders-db", pg::ROLE, "app", 80, 70);
        let bpool = PoolSnapshot {
            waiting: 5,
            ..pool("bouncer", bouncer::POOL, "orders/app", 20, 20)
        };
        let clients = pool("bouncer", bouncer::CLIENTS, "clients", 100, 42);
        // (pools, link, want)
        let cases = [
            (
                vec![server(vec![holder("checkout", 60, 7), holder("x", 36, 0)])],
                link(end(Some("checkout"), None), None),
                "server orders-db: 60 connections from application_name=checkout (7 idle in transaction), 96/96 usable in use",
            ),
            (
                vec![server(vec![holder("checkout", 60, 0)]), role.clone()],
                link(end(Some("checkout"), Some("app")), None),
                "server orders-db: 60 connections from application_name=checkout, role app 70/80 in use, 96/96 usable in use",
            ),
            (
                vec![server(vec![holder("x", 96, 0)])],
                link(end(Some("checkout"), Some("nolimit")), None),
                "server orders-db: no connections from application_name=checkout, no connections from role=nolimit, 96/96 usable in use",
            ),
            (
                vec![server(five)],
                link(end(Some("checkout"), None), None),
                "server orders-db: application_name=checkout not among the 5 largest holders, 96/96 usable in use",
            ),
            (vec![], link(end(None, None), None), "server orders-db: not seen"),
            (
                vec![bpool.clone(), server(vec![])],
                link(
                    end(None, None),
                    Some(BouncerEnd {
                        target: "bouncer".into(),
                        pool: Some("orders/app".into()),
                    }),
                ),
                "pgbouncer bouncer pool orders/app: 20/20 in use, 5 waiting; server orders-db: 96/96 usable in use",
            ),
            (
                vec![clients],
                link(
                    None,
                    Some(BouncerEnd {
                        target: "bouncer".into(),
                        pool: None,
                    }),
                ),
                "pgbouncer bouncer: 42/100 clients",
            ),
            (
                vec![],
                link(
                    None,
                    Some(BouncerEnd {
                        target: "bouncer".into(),
                        pool: Some("orders/app".into()),
                    }),
                ),
                "pgbouncer bouncer pool orders/app: not seen",
            ),
        ];
        for (pools, link, want) in cases {
            let refs: Vec<&PoolSnapshot> = pools.iter().collect();
            assert_eq!(server_side(&link, &refs), want);
        }
    }
}
