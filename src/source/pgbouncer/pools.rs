//! PgBouncer's console answers as pools:
//!
//! * **`pgbouncer_pool`** — one per (database, user), named `database/user`: capacity is the
//!   effective pool size (the user's `pool_size` where PgBouncer has one, else the database's or
//!   `default_pool_size`, as `SHOW DATABASES` reports it), plus the reserve pool while it is in
//!   use (its configured capacity stays the pool size, so its release is no drop); in use
//!   `sv_active`; idle `sv_idle + sv_used`; waiting `cl_waiting`; longest wait
//!   `maxwait + maxwait_us` (with the microseconds: sub-second queueing is the early sign).
//! * **`pgbouncer_database`** — per database with `max_db_connections`: that limit against its
//!   `current_connections` (server connections of every user); waiting counts the clients of
//!   all its pools, so clients held back by this limit (while their own pool has room) are
//!   queued here.
//! * **`pgbouncer_clients`** — the whole PgBouncer: `max_client_conn` against every client
//!   connection (`SHOW LISTS` `used_clients`, which is what PgBouncer compares). Admin console
//!   sessions (poolwatch's own, another poolwatch's) are slots taken out of capacity, not load.
//!
//! The admin console's own pseudo-database `pgbouncer` is not a pool.

use super::columns::{Row, Table};
use crate::model::{
    ErrorClass, Fact, PollData, PollError, PoolId, PoolKind, PoolSnapshot, WhenFull,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// A (database, user) pool of server connections.
pub const POOL: PoolKind = PoolKind {
    name: "pgbouncer_pool",
    whole_target: false,
    when_full: WhenFull::Queues,
};
/// A database's `max_db_connections`.
pub const DATABASE: PoolKind = PoolKind {
    name: "pgbouncer_database",
    whole_target: false,
    when_full: WhenFull::Queues,
};
/// `max_client_conn`: every client of the PgBouncer; stands for the target as a whole.
pub const CLIENTS: PoolKind = PoolKind {
    name: "pgbouncer_clients",
    whole_target: true,
    when_full: WhenFull::Refuses,
};

/// The admin console's pseudo-database.
const CONSOLE_DB: &str = "pgbouncer";

/// Columns each command must have; the others are read when present.
pub const POOLS_COLUMNS: [&str; 8] = [
    "database",
    "user",
    "cl_active",
    "cl_waiting",
    "sv_active",
    "sv_idle",
    "sv_used",
    "maxwait",
];
/// Required `SHOW DATABASES` columns (`reserve_pool` / `reserve_pool_size` is read by either
/// name; `max_connections` and `current_connections` exist since 1.8).
pub const DATABASES_COLUMNS: [&str; 4] = [
    "name",
    "pool_size",
    "max_connections",
    "current_connections",
];
/// Required `SHOW CONFIG` columns (1.24 adds `default`; 1.18 has three columns).
pub const CONFIG_COLUMNS: [&str; 2] = ["key", "value"];
/// Required `SHOW LISTS` columns.
pub const LISTS_COLUMNS: [&str; 2] = ["list", "items"];

/// What one poll read from the console.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// `SHOW VERSION`'s text, e.g. `PgBouncer 1.24.1`.
    pub version: String,
    /// `SHOW POOLS`.
    pub pools: Table,
    /// `SHOW DATABASES`.
    pub databases: Table,
    /// `SHOW CONFIG`.
    pub config: Table,
    /// `SHOW LISTS`.
    pub lists: Table,
    /// `SHOW USERS` (per-user `pool_size` in newer versions).
    pub users: Table,
}

impl Answers {
    /// Checks the required columns of every answer.
    pub fn check(&self) -> Result<(), String> {
        self.pools.require(&POOLS_COLUMNS, &self.version)?;
        self.databases.require(&DATABASES_COLUMNS, &self.version)?;
        self.config.require(&CONFIG_COLUMNS, &self.version)?;
        self.lists.require(&LISTS_COLUMNS, &self.version)
    }

    fn setting(&self, key: &str) -> Option<u64> {
        self.config
            .rows()
            .find(|r| r.text("key") == Some(key))
            .and_then(|r| r.count("value"))
    }

    fn list(&self, name: &str) -> Option<u64> {
        self.lists
            .rows()
            .find(|r| r.text("list") == Some(name))
            .and_then(|r| r.count("items"))
    }
}

/// The pools and facts of one poll. Fails only when the answers lack required columns.
pub fn to_poll_data(target: &str, a: &Answers) -> Result<PollData, String> {
    a.check()?;
    let id = |kind, name: String| PoolId {
        target: target.to_string(),
        kind,
        name,
    };
    let databases: BTreeMap<&str, Row> = a
        .databases
        .rows()
        .filter_map(|r| Some((r.text("name")?, r)))
        .filter(|(name, _)| *name != CONSOLE_DB)
        .collect();
    let user_sizes: BTreeMap<&str, u64> = a
        .users
        .rows()
        .filter_map(|r| Some((r.text("name")?, r.count("pool_size")?)))
        .collect();
    let mut pools = Vec::new();
    let mut consoles = 0;
    let mut waiting_by_db: BTreeMap<&str, u64> = BTreeMap::new();
    for row in a.pools.rows() {
        let (Some(db), Some(user)) = (row.text("database"), row.text("user")) else {
            continue;
        };
        if db == CONSOLE_DB {
            consoles += row.count("cl_active").unwrap_or(0);
            continue;
        }
        *waiting_by_db.entry(db).or_default() += row.count("cl_waiting").unwrap_or(0);
        let database = databases.get(db);
        let name = format!("{db}/{user}");
        pools.push(pool(
            id(POOL, name),
            &row,
            database,
            user_sizes.get(user).copied(),
        ));
    }
    for (name, row) in &databases {
        let limit = row.count("max_connections").unwrap_or(0);
        if limit == 0 {
            continue; // max_db_connections unset: no limit of its own
        }
        let in_use = row.count("current_connections").unwrap_or(0);
        let mut p = PoolSnapshot::new(id(DATABASE, name.to_string()), limit, in_use);
        p.waiting = waiting_by_db.get(name).copied().unwrap_or(0);
        p.capacity_note = format!("max_db_connections {limit}");
        pools.push(p);
    }
    let max_client_conn = a.setting("max_client_conn").unwrap_or(0);
    let clients = a.list("used_clients").unwrap_or(0);
    let mut all = PoolSnapshot::new(
        id(CLIENTS, "clients".into()),
        max_client_conn.saturating_sub(consoles),
        clients.saturating_sub(consoles),
    );
    all.configured_capacity = max_client_conn;
    all.capacity_note = format!("max_client_conn {max_client_conn}");
    if consoles > 0 {
        all.capacity_note
            .push_str(&format!(", {consoles} held by admin console sessions"));
    }
    // PgBouncer's console lets poolwatch in whatever max_client_conn says, so a full PgBouncer
    // is seen from inside: every client slot taken means new clients are refused.
    let refusing = (max_client_conn > 0 && clients >= max_client_conn).then(|| PollError {
        class: ErrorClass::TooManyConnections,
        message: format!(
            "max_client_conn {max_client_conn} reached: PgBouncer refuses new clients with \"no more connections allowed (max_client_conn)\""
        ),
    });
    pools.insert(0, all);
    Ok(PollData {
        refusing,
        summary: format!(
            "{}, max_client_conn {max_client_conn}, {} databases, {} pools",
            a.version,
            databases.len(),
            pools.iter().filter(|p| p.id.kind == POOL).count()
        ),
        facts: vec![Fact {
            name: "poolwatch_pgbouncer_info",
            help: "PgBouncer version of the target; always 1.",
            labels: vec![("version", a.version.clone())],
            value: 1.0,
        }],
        pools,
    })
}

/// One (database, user) pool.
fn pool(id: PoolId, row: &Row, database: Option<&Row>, user_size: Option<u64>) -> PoolSnapshot {
    let n = |col: &str| row.count(col).unwrap_or(0);
    let db_size = database.and_then(|d| d.count("pool_size")).unwrap_or(0);
    let size = user_size.unwrap_or(db_size);
    let reserve = database
        .and_then(|d| d.count_any(&["reserve_pool_size", "reserve_pool"]))
        .unwrap_or(0);
    let servers = ["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"]
        .iter()
        .map(|c| n(c))
        .sum::<u64>();
    // PgBouncer opens reserve connections only once a client has waited reserve_pool_timeout.
    let reserve_in_use = if servers > size { reserve } else { 0 };
    let wait = Duration::from_secs(n("maxwait")) + Duration::from_micros(n("maxwait_us"));
    let mut note = match user_size {
        Some(s) => format!("pool_size {s} (user)"),
        None => format!("pool_size {size}"),
    };
    if reserve_in_use > 0 {
        note.push_str(&format!(", reserve_pool {reserve_in_use} in use"));
    } else if reserve > 0 {
        note.push_str(&format!(", reserve_pool {reserve} unused"));
    }
    PoolSnapshot {
        capacity: size + reserve_in_use,
        configured_capacity: size,
        in_use: n("sv_active"),
        idle: n("sv_idle") + n("sv_used"),
        waiting: n("cl_waiting"),
        longest_wait: Some(wait),
        capacity_note: note,
        ..PoolSnapshot::new(id, 0, 0)
    }
}

#[cfg(test)]
mod tests;
