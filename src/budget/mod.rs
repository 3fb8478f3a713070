//! The pool budget: for every server ceiling that linked pools draw on — a PostgreSQL server's
//! usable slots (`max_connections` minus reserved ones), a role's or database's connection
//! limit, a PgBouncer's `max_client_conn` — how many connections the pools drawing on it may
//! open (their configured sizes, × instances), against the ceiling. A pool that fits the traffic
//! but not the server is an incident waiting for its peak; a deployment that grows or shrinks a
//! pool can be checked before it ships (`poolwatch budget --propose`).
//!
//! * [`annotate`] — the budget put on the ceiling pools of each report (the daemon, `snapshot`),
//!   for the built-in `PoolBudgetExceeded`, `/metrics` and alert text.
//! * [`mod@compute`] — the pure budget over the latest pools, the links and the proposals.
//! * [`text`] — the human text of a budget.
//! * [`command`] — `poolwatch budget`: poll once, compute, print, exit non-zero when over.
//!
//! What counts (see README "Pool budget"):
//! * an application drawing on a server directly: each pool's size × its instances, against
//!   the server, and against its role's and database's limits when the link names them;
//! * an application drawing through PgBouncer: the same, against PgBouncer's `max_client_conn`
//!   (its connections are PgBouncer's clients; they queue on PgBouncer's pools, by design);
//! * a PgBouncer drawing on a server: each pool's `pool_size` against the server and against
//!   its user's (role) and database's limits; where a database's `max_db_connections` is below
//!   the sum of its pools' sizes, the limit is what it can open. Reserve pools are not counted.

pub mod annotate;
pub mod command;
pub mod compute;
pub mod text;

pub use compute::compute;

use serde::Serialize;

/// What one pool (or a PgBouncer database) may open against a ceiling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contributor {
    /// How people name it: `checkout HikariPool-1`, `bouncer pgbouncer_pool orders/app`.
    pub name: String,
    /// The kind of the pool counted (`app`, `pgbouncer_pool`, `pgbouncer_database`).
    pub kind: &'static str,
    /// Connections per instance: the pool's configured size.
    pub size: u64,
    /// Instances (replicas) each holding a pool of `size`; 1 for a PgBouncer pool.
    pub instances: u64,
    /// `size × instances`.
    pub demand: u64,
    /// True when the size comes from a `--propose`, not from what is running.
    pub proposed: bool,
    /// Where the size comes from, e.g. `pool_size 20`, `max_db_connections 40 caps ...`.
    pub note: String,
}

impl Contributor {
    /// A contributor of `instances` pools of `size` each.
    pub fn new(name: String, kind: &'static str, size: u64, instances: u64) -> Contributor {
        Contributor {
            name,
            kind,
            size,
            instances,
            demand: size.saturating_mul(instances),
            proposed: false,
            note: String::new(),
        }
    }
}

/// One ceiling and what draws on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// The ceiling's target.
    pub target: String,
    /// The ceiling pool's kind (`server`, `role`, `database`, `pgbouncer_clients`).
    pub kind: &'static str,
    /// The ceiling pool's name (`server`, the role or database name, `clients`).
    pub pool: String,
    /// How people name the ceiling: `orders-db`, `orders-db role app`.
    pub subject: String,
    /// Connections the ceiling allows (the pool's configured capacity).
    pub ceiling: u64,
    /// How the ceiling is derived, e.g. `max_connections 100, 3 reserved for superusers`.
    pub ceiling_note: String,
    /// Sum of the contributors' demand.
    pub demand: u64,
    /// `ceiling − demand`; negative when over-committed.
    pub headroom: i64,
    /// `demand > ceiling`.
    pub over: bool,
    /// What draws on it, largest first.
    pub contributors: Vec<Contributor>,
}

impl Line {
    fn new(ceiling: &crate::model::PoolSnapshot, mut contributors: Vec<Contributor>) -> Line {
        contributors.sort_by(|a, b| b.demand.cmp(&a.demand).then(a.name.cmp(&b.name)));
        let demand = contributors.iter().map(|c| c.demand).sum::<u64>();
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Line {
            target: ceiling.id.target.clone(),
            kind: ceiling.id.kind.as_str(),
            pool: ceiling.id.name.clone(),
            subject: ceiling.id.subject(),
            ceiling: ceiling.configured_capacity,
            ceiling_note: ceiling.capacity_note.clone(),
            demand,
            headroom: signed(ceiling.configured_capacity) - signed(demand),
            over: demand > ceiling.configured_capacity,
            contributors,
        }
    }
}

/// The budget: one line per ceiling drawn on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// True when any line is over its ceiling.
    pub over_committed: bool,
    /// One per ceiling, servers first, in target order.
    pub lines: Vec<Line>,
    /// What could not be counted: a linked target not seen, an application with no pool seen
    /// and no proposal.
    pub unknown: Vec<String>,
}

impl Budget {
    /// The line of the ceiling pool `(target, kind, pool)`, if something draws on it.
    pub fn line(&self, target: &str, kind: &str, pool: &str) -> Option<&Line> {
        self.lines
            .iter()
            .find(|l| l.target == target && l.kind == kind && l.pool == pool)
    }
}

/// `--propose APP=SIZExREPLICAS`: the application's pools, as a deployment would make them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The link's `from` (an application).
    pub app: String,
    /// Only the link of this pool of the application; every link of `app` when `None`.
    pub pool: Option<String>,
    /// Pool size per instance.
    pub size: u64,
    /// Instances.
    pub replicas: u64,
}

impl std::str::FromStr for Proposal {
    type Err = String;

    /// `checkout=20x6`, `checkout/HikariPool-1=20x6`, `checkout=20` (one replica).
    fn from_str(s: &str) -> Result<Proposal, String> {
        let bad = || format!("\"{s}\": expected APP=SIZExREPLICAS, e.g. checkout=20x6");
        let (who, sizes) = s.split_once('=').ok_or_else(bad)?;
        let (app, pool) = match who.split_once('/') {
            Some((a, p)) => (a, Some(p.to_string())),
            None => (who, None),
        };
        if app.is_empty() || pool.as_deref() == Some("") {
            return Err(bad());
        }
        let (size, replicas) = match sizes.split_once(['x', 'X', '×']) {
            Some((a, b)) => (a, b),
            None => (sizes, "1"),
        };
        let num = |t: &str| t.trim().parse::<u64>().map_err(|_| bad());
        let (size, replicas) = (num(size)?, num(replicas)?);
        if replicas == 0 {
            return Err(format!("\"{s}\": replicas must be at least 1"));
        }
        Ok(Proposal {
            app: app.to_string(),
            pool,
            size,
            replicas,
        })
    }
}

#[cfg(test)]
mod tests;
