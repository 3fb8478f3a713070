//! The budget over the latest pools of every target, the links and the proposals: a pure
//! function of its inputs. It reads pool kinds by their sources' constants, as the alert
//! rules' Prometheus forms do: which pool is a server's ceiling, a PgBouncer's pool or an
//! application's pool is what a budget is about.

use super::{Budget, Contributor, Line, Proposal};
use crate::link::{Drawer, Link};
use crate::model::{PoolKind, PoolSnapshot};
use crate::source::app::APP;
use crate::source::pgbouncer::pools as bouncer;
use crate::source::postgres::pools as pg;
use std::collections::BTreeMap;

/// A contributor with the role and database it draws as, for the per-role and per-database
/// ceilings.
struct Draw {
    c: Contributor,
    role: Option<String>,
    database: Option<String>,
}

/// The latest pools, looked up by target and kind.
struct Pools<'a> {
    all: &'a [&'a PoolSnapshot],
}

impl<'a> Pools<'a> {
    fn of(&self, target: &'a str, kind: PoolKind) -> impl Iterator<Item = &'a PoolSnapshot> + 'a {
        self.all
            .iter()
            .copied()
            .filter(move |p| p.id.target == target && p.id.kind == kind)
    }

    fn one(&self, target: &'a str, kind: PoolKind) -> Option<&'a PoolSnapshot> {
        self.of(target, kind).next()
    }
}

/// How many instances an observed application pool stands for: its capacity over its
/// configured (per-instance) size, at least 1. A pool that aggregates instances (pushed stats)
/// reports the sum as its capacity and one instance's size as its configured capacity; a scraped
/// pool is one instance, both equal.
pub fn observed_instances(pool: &PoolSnapshot) -> u64 {
    match pool.configured_capacity {
        0 => 1,
        size => ((pool.capacity + size / 2) / size).max(1),
    }
}

/// Computes the budget. `pools` are the latest pools of every target (a target not polled has
/// none); a proposal replaces the observed pools of the links it names.
pub fn compute(pools: &[&PoolSnapshot], links: &[Link], proposals: &[Proposal]) -> Budget {
    let pools = Pools { all: pools };
    let mut budget = Budget::default();
    let mut servers: BTreeMap<&str, Vec<Draw>> = BTreeMap::new();
    let mut bouncers: BTreeMap<&str, Vec<Contributor>> = BTreeMap::new();
    for link in links {
        match (link.drawer, &link.pgbouncer, &link.server) {
            (Drawer::App, Some(b), _) => {
                let draws = app_draws(&pools, link, proposals, &mut budget.unknown);
                let list = bouncers.entry(b.target.as_str()).or_default();
                list.extend(draws.into_iter().map(|d| d.c));
            }
            (Drawer::App, None, Some(s)) => {
                let draws = app_draws(&pools, link, proposals, &mut budget.unknown);
                servers.entry(s.target.as_str()).or_default().extend(draws);
            }
            (Drawer::Pgbouncer, _, Some(s)) => {
                let draws = bouncer_draws(&pools, &link.from);
                servers.entry(s.target.as_str()).or_default().extend(draws);
            }
            _ => {}
        }
    }
    for (target, draws) in servers {
        let Some(server) = pools.one(target, pg::SERVER) else {
            budget
                .unknown
                .push(format!("{target}: not polled, its ceiling is unknown"));
            continue;
        };
        let contributors = draws.iter().map(|d| d.c.clone()).collect();
        budget.lines.push(Line::new(server, contributors));
        type Of = fn(&Draw) -> Option<&str>;
        let limits: [(PoolKind, Of); 2] = [
            (pg::ROLE, |d| d.role.as_deref()),
            (pg::DATABASE, |d| d.database.as_deref()),
        ];
        for (kind, of) in limits {
            for limit in pools.of(target, kind) {
                let mine: Vec<Contributor> = draws
                    .iter()
                    .filter(|d| of(d) == Some(limit.id.name.as_str()))
                    .map(|d| d.c.clone())
                    .collect();
                if !mine.is_empty() {
                    budget.lines.push(Line::new(limit, mine));
                }
            }
        }
    }
    for (target, contributors) in bouncers {
        match pools.one(target, bouncer::CLIENTS) {
            Some(clients) => budget.lines.push(Line::new(clients, contributors)),
            None => budget
                .unknown
                .push(format!("{target}: not polled, its ceiling is unknown")),
        }
    }
    budget.over_committed = budget.lines.iter().any(|l| l.over);
    budget
}

/// An application link's contributors: the proposal that names it, else its observed pools.
fn app_draws(
    pools: &Pools<'_>,
    link: &Link,
    proposals: &[Proposal],
    unknown: &mut Vec<String>,
) -> Vec<Draw> {
    let server = link.server.as_ref();
    let draw = |c| Draw {
        c,
        role: server.and_then(|s| s.role.clone()),
        database: server.and_then(|s| s.database.clone()),
    };
    let proposal = proposals
        .iter()
        .find(|p| p.app == link.from && (p.pool.is_none() || p.pool == link.pool));
    if let Some(p) = proposal {
        let name = match &link.pool {
            Some(pool) => format!("{} {pool}", link.from),
            None => link.from.clone(),
        };
        let mut c = Contributor::new(name, APP.name, p.size, p.replicas);
        c.proposed = true;
        c.note = "proposed".into();
        return vec![draw(c)];
    }
    let seen: Vec<Draw> = pools
        .of(&link.from, APP)
        .filter(|p| link.covers_app_pool(&p.id.target, &p.id.name))
        .map(|p| {
            let mut c = Contributor::new(
                format!("{} {}", link.from, p.id.name),
                APP.name,
                p.configured_capacity,
                observed_instances(p),
            );
            c.note = "observed".into();
            draw(c)
        })
        .collect();
    if seen.is_empty() {
        unknown.push(format!(
            "{}: no application pool seen (give its size with --propose {}=SIZExREPLICAS)",
            link.from, link.from
        ));
    }
    seen
}

/// A PgBouncer's contributors: each pool's `pool_size`, or a database's `max_db_connections`
/// where that is lower than the sum of its pools' sizes.
fn bouncer_draws(pools: &Pools<'_>, target: &str) -> Vec<Draw> {
    let mut by_db: BTreeMap<&str, Vec<(&str, &PoolSnapshot)>> = BTreeMap::new();
    for p in pools.of(target, bouncer::POOL) {
        if let Some((db, user)) = p.id.name.split_once('/') {
            by_db.entry(db).or_default().push((user, p));
        }
    }
    let mut out = Vec::new();
    for (db, members) in by_db {
        let sum: u64 = members.iter().map(|(_, p)| p.configured_capacity).sum();
        let cap = pools
            .of(target, bouncer::DATABASE)
            .find(|d| d.id.name == db)
            .map(|d| d.configured_capacity);
        match cap {
            Some(cap) if cap < sum => {
                let mut c = Contributor::new(
                    format!("{target} pgbouncer_database {db}"),
                    bouncer::DATABASE.name,
                    cap,
                    1,
                );
                let sizes: Vec<String> = members
                    .iter()
                    .map(|(_, p)| format!("{} ({})", p.id.name, p.configured_capacity))
                    .collect();
                c.note = format!("max_db_connections {cap} caps {}", sizes.join(", "));
                let users: Vec<&str> = members.iter().map(|(u, _)| *u).collect();
                let role = (users.len() == 1).then(|| users[0].to_string());
                out.push(Draw {
                    c,
                    role,
                    database: Some(db.to_string()),
                });
            }
            _ => out.extend(members.into_iter().map(|(user, p)| {
                let mut c = Contributor::new(
                    format!("{target} pgbouncer_pool {}", p.id.name),
                    bouncer::POOL.name,
                    p.configured_capacity,
                    1,
                );
                c.note = p.capacity_note.clone();
                Draw {
                    c,
                    role: Some(user.to_string()),
                    database: Some(db.to_string()),
                }
            })),
        }
    }
    out
}
