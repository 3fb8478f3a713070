//! The uniform pool model every source reports in, and every consumer (rules, exporter, alert
//! text, `snapshot`) reads. Nothing downstream of this module knows which source produced a pool.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

/// What kind of pool a snapshot describes. The set is closed so that metric labels stay bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    /// A PostgreSQL server's connection slots usable by ordinary roles.
    Server,
    /// A PostgreSQL role with a connection limit (`rolconnlimit >= 0`).
    Role,
    /// A PostgreSQL database with a connection limit (`datconnlimit >= 0`).
    Database,
}

impl PoolKind {
    /// The label value used in metrics, alert labels and matchers.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolKind::Server => "server",
            PoolKind::Role => "role",
            PoolKind::Database => "database",
        }
    }
}

impl fmt::Display for PoolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identity of a pool: which target, what kind, and its name within the target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PoolId {
    /// The configured target name (`[[targets]] name`).
    pub target: String,
    /// The kind of pool.
    pub kind: PoolKind,
    /// Name within the target: `server` for the server pool, the role or database name otherwise.
    pub name: String,
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PoolKind::Server => write!(f, "{}", self.target),
            _ => write!(f, "{} {} {}", self.target, self.kind, self.name),
        }
    }
}

/// Who holds connections of a pool, along one dimension, largest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Holder {
    /// Role, database or application name (empty application names are reported as `""`).
    pub name: String,
    /// Connections held.
    pub connections: u64,
    /// Of those, how many are idle in transaction (they hold locks and a slot while doing nothing).
    pub idle_in_transaction: u64,
}

/// The breakdown of a pool's connections by who holds them; each list is sorted by
/// `connections` descending and truncated to [`Holders::TOP`] entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Holders {
    /// By role (`usename`).
    pub roles: Vec<Holder>,
    /// By database (`datname`).
    pub databases: Vec<Holder>,
    /// By `application_name`.
    pub applications: Vec<Holder>,
}

impl Holders {
    /// How many holders per dimension are kept: enough to name the culprit, bounded for memory.
    pub const TOP: usize = 5;
}

/// One pool as seen by one poll.
///
/// Semantics shared by every source:
/// * `capacity` is the usable ceiling: the number of connections that can be taken before new
///   clients are refused or queued.
/// * `in_use` counts what is taken out of `capacity`. For server-side pools (server, role,
///   database) that is every client backend whatever its state, because an idle backend still
///   holds a slot.
/// * `idle` counts open connections doing no work. For server-side pools these are backends in
///   state `idle`: a subset of `in_use`, shown because they hint that a client pool is oversized.
/// * `waiting` counts clients queued for a connection. PostgreSQL itself never queues (it refuses
///   with SQLSTATE 53300, reported as the target being saturated), so it is 0 for server-side pools.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolSnapshot {
    /// Which pool.
    pub id: PoolId,
    /// Usable ceiling.
    pub capacity: u64,
    /// Taken out of `capacity`.
    pub in_use: u64,
    /// Open but doing no work.
    pub idle: u64,
    /// Clients queued for a connection.
    pub waiting: u64,
    /// Connections by state (`active`, `idle`, `idle in transaction`, ...), for the by-state gauges.
    pub by_state: BTreeMap<String, u64>,
    /// Connections idle in transaction (`idle in transaction` and `... (aborted)`).
    pub idle_in_transaction: u64,
    /// Age of the oldest idle-in-transaction session, if any.
    pub oldest_idle_in_transaction: Option<Duration>,
    /// Age of the oldest open transaction, if any.
    pub oldest_transaction: Option<Duration>,
    /// Sessions waiting on a heavyweight lock.
    pub lock_waiting: u64,
    /// Who holds the connections.
    pub holders: Holders,
    /// A short human note on how `capacity` was derived, e.g. `max_connections 100, 3 reserved`.
    pub capacity_note: String,
}

impl PoolSnapshot {
    /// `in_use / capacity`, 0–1 (above 1 when superusers use their reserved slots); a pool with
    /// capacity 0 is fully used as soon as anything is in use, and unused otherwise.
    pub fn utilization(&self) -> f64 {
        if self.capacity == 0 {
            return if self.in_use > 0 { 1.0 } else { 0.0 };
        }
        self.in_use as f64 / self.capacity as f64
    }

    /// Slots still free (`capacity - in_use`, never negative).
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.in_use)
    }
}

/// Why a target could not be polled. The class is a bounded label value; the message stays out
/// of metrics and is redacted of secrets before it is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// SQLSTATE 53300 `too_many_connections`: the server is full. This is the incident itself.
    TooManyConnections,
    /// SQLSTATE 57P03 `cannot_connect_now`: starting up, shutting down or in recovery.
    CannotConnectNow,
    /// Authentication or authorisation failed (28P01, 28000, 42501, 3D000): a configuration problem.
    Auth,
    /// TLS negotiation or certificate verification failed.
    Tls,
    /// Connection refused, reset or closed; DNS failure.
    Network,
    /// Connecting or querying took longer than the configured timeout.
    Timeout,
    /// The monitoring query failed for another reason.
    Query,
}

impl ErrorClass {
    /// Every class, for pre-initialised counters.
    pub const ALL: [ErrorClass; 7] = [
        ErrorClass::TooManyConnections,
        ErrorClass::CannotConnectNow,
        ErrorClass::Auth,
        ErrorClass::Tls,
        ErrorClass::Network,
        ErrorClass::Timeout,
        ErrorClass::Query,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::TooManyConnections => "too_many_connections",
            ErrorClass::CannotConnectNow => "cannot_connect_now",
            ErrorClass::Auth => "auth",
            ErrorClass::Tls => "tls",
            ErrorClass::Network => "network",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Query => "query",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed poll or connection attempt: its class and a secret-free message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PollError {
    /// Bounded classification, used for metrics, rules and log deduplication.
    pub class: ErrorClass,
    /// Human-readable detail (server message, OS error). Never contains a password.
    pub message: String,
}

impl fmt::Display for PollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

/// Health of a target as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Not polled yet.
    Unknown,
    /// The last poll succeeded.
    Up,
    /// The server refuses connections because it is full (53300). The pools are exhausted.
    Saturated,
    /// The target cannot be polled for another reason (see the error class).
    Down,
}

impl TargetState {
    /// Every state, for one-hot state gauges.
    pub const ALL: [TargetState; 4] = [
        TargetState::Unknown,
        TargetState::Up,
        TargetState::Saturated,
        TargetState::Down,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Unknown => "unknown",
            TargetState::Up => "up",
            TargetState::Saturated => "saturated",
            TargetState::Down => "down",
        }
    }

    /// The state a poll error puts a target in.
    pub fn from_error(class: ErrorClass) -> TargetState {
        match class {
            ErrorClass::TooManyConnections => TargetState::Saturated,
            _ => TargetState::Down,
        }
    }
}

impl fmt::Display for TargetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Server facts read along with the pools, shown in `snapshot` and used in alert text.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerInfo {
    /// `server_version_num`, e.g. 150004.
    pub version_num: i32,
    /// `max_connections`.
    pub max_connections: i64,
    /// `superuser_reserved_connections`.
    pub superuser_reserved_connections: i64,
    /// `reserved_connections` (PostgreSQL 16+; 0 before).
    pub reserved_connections: i64,
    /// Whether poolwatch's role can see other roles' sessions (`pg_monitor` /
    /// `pg_read_all_stats`). Without it their state is hidden and counted as `unknown`.
    pub sees_all_sessions: bool,
}

/// What one poll of one target produced: the result every consumer receives.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// Target name.
    pub target: String,
    /// Wall-clock time of the poll.
    #[serde(with = "crate::timefmt::rfc3339")]
    pub at: SystemTime,
    /// How long the poll (query round trip, or failed connection attempt) took.
    pub duration: Duration,
    /// The pools seen, or why none could be seen.
    pub outcome: Result<PollData, PollError>,
}

/// The successful part of a poll.
#[derive(Debug, Clone, Serialize)]
pub struct PollData {
    /// Server settings read in the same round trip.
    pub server: ServerInfo,
    /// Every pool of the target.
    pub pools: Vec<PoolSnapshot>,
}

/// Alert severity. Ordered: `Warning < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Someone should look during working hours; exhaustion is approaching.
    Warning,
    /// Page now: the pool is exhausted or about to be.
    Critical,
}

impl Severity {
    /// Both severities, lowest first.
    pub const ALL: [Severity; 2] = [Severity::Warning, Severity::Critical];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
