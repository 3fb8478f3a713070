//! Links: which server side an application pool (or a PgBouncer) draws on, so that both ends of
//! a pool can be read together and its connections counted against the server's ceiling
//! ([`crate::budget`]).
//!
//! * [`config`] — `[[links]]` as written and its validation against the targets.
//! * [`join`] — the server side of a linked pool, from the latest pools of every target.
//!
//! A link is configuration, not discovery: the application's own pool cannot tell which server
//! it reaches (a host name in its DSN may be a PgBouncer, a proxy, a replica), and a guess that
//! is wrong would count connections against the wrong server.

pub mod config;
pub mod join;

pub use config::{resolve, LinkConfig};

/// Which PostgreSQL server a link draws on, and which of its sessions are the drawer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEnd {
    /// A `postgres` target.
    pub target: String,
    /// The `application_name` the drawer's sessions carry, if known.
    pub application_name: Option<String>,
    /// The role the drawer logs in as: its connections count against that role's limit.
    pub role: Option<String>,
    /// The database the drawer uses: its connections count against that database's limit.
    pub database: Option<String>,
}

/// Which PgBouncer an application draws on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BouncerEnd {
    /// A `pgbouncer` target.
    pub target: String,
    /// The PgBouncer pool (`database/user`) the application's clients queue on, if known.
    pub pool: Option<String>,
}

/// What draws on the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drawer {
    /// An application: its pools (kind `app`) are read from the target of its name, if one is
    /// configured; an application without a target is known by its link only (its size comes
    /// from `poolwatch budget --propose`).
    App,
    /// A `pgbouncer` target: its pools' server connections count against the server.
    Pgbouncer,
}

/// A validated link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Who draws: an application's name, or a PgBouncer target.
    pub from: String,
    /// What `from` is.
    pub drawer: Drawer,
    /// Only this pool of `from` (an application's pool name); every pool when `None`.
    pub pool: Option<String>,
    /// The PostgreSQL server drawn on (directly, or behind `pgbouncer`).
    pub server: Option<ServerEnd>,
    /// The PgBouncer an application draws through (applications only).
    pub pgbouncer: Option<BouncerEnd>,
}

impl Link {
    /// One line for `check-config`: `checkout → pgbouncer bouncer pool orders/app, server orders-db`.
    pub fn describe(&self) -> String {
        let from = match &self.pool {
            Some(p) => format!("{} pool {p}", self.from),
            None => self.from.clone(),
        };
        let mut to = Vec::new();
        if let Some(b) = &self.pgbouncer {
            to.push(match &b.pool {
                Some(p) => format!("pgbouncer {} pool {p}", b.target),
                None => format!("pgbouncer {}", b.target),
            });
        }
        if let Some(s) = &self.server {
            let mut what = format!("server {}", s.target);
            for (k, v) in [
                ("application_name", &s.application_name),
                ("role", &s.role),
                ("database", &s.database),
            ] {
                if let Some(v) = v {
                    what.push_str(&format!(" {k}={v}"));
                }
            }
            to.push(what);
        }
        format!("{from} → {}", to.join(", "))
    }

    /// Whether an application's pool `name` of target `target` is drawn through this link.
    pub fn covers_app_pool(&self, target: &str, name: &str) -> bool {
        self.drawer == Drawer::App
            && self.from == target
            && self.pool.as_deref().is_none_or(|p| p == name)
    }
}
