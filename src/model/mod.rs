//! The uniform pool model every source reports in, and every consumer (rules, exporter, alert
//! text, `snapshot`) reads. Nothing downstream of this module knows which source produced a pool.

pub mod metric;

pub use metric::PoolMetric;

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What kind of pool a snapshot describes, as its source names it: the `kind` label of every
/// series and alert of the pool. Sources define their kinds as constants (`server`, `role`,
/// `database` for PostgreSQL; `pgbouncer_pool`, ... for PgBouncer), so the label stays bounded
/// while a new source needs no change here.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PoolKind {
    /// The label value.
    #[serde(rename = "kind")]
    pub name: &'static str,
    /// Whether a pool of this kind stands for its target as a whole (PostgreSQL's server pool):
    /// its alerts are named after the target alone, and target-level alerts (down, saturated)
    /// quote its last numbers.
    #[serde(skip)]
    pub whole_target: bool,
    /// What happens to a new client when the pool is full; rule matchers see it as the label
    /// `when_full` (`refuses` or `queues`), so that a rule can mean "no free slot: clients are
    /// refused now" for every source that refuses.
    #[serde(skip)]
    pub when_full: WhenFull,
}

/// What a full pool does with a new client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Refuses it (PostgreSQL's 53300, PgBouncer's `max_client_conn`): a full pool is the
    /// incident itself.
    Refuses,
    /// Queues it until a connection frees up (PgBouncer's and application pools): a full pool is
    /// normal under load; clients waiting is the sign.
    Queues,
}

impl WhenFull {
    /// The `when_full` value matchers see.
    pub fn as_str(self) -> &'static str {
        match self {
            WhenFull::Refuses => "refuses",
            WhenFull::Queues => "queues",
        }
    }
}

impl PoolKind {
    /// The label value used in metrics, alert labels and matchers.
    pub fn as_str(self) -> &'static str {
        self.name
    }
}

impl PartialEq for PoolKind {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for PoolKind {}

impl PartialOrd for PoolKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PoolKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(other.name)
    }
}

impl std::hash::Hash for PoolKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl fmt::Display for PoolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Identity of a pool: which target, what kind, and its name within the target. These three
/// are the only labels of pool series (`target`, `kind`, `pool`); target `labels` from the
/// configuration go on alerts only, so that series stay bounded and dashboards stable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PoolId {
    /// The configured target name (`[[targets]] name`).
    pub target: String,
    /// The kind of pool.
    pub kind: PoolKind,
    /// Name within the target, unique per kind: `server` for PostgreSQL's server pool, the role
    /// or database name, `database/user` for a PgBouncer pool.
    pub name: String,
}

impl PoolId {
    /// How people name the pool in alert text: the target alone for a pool that stands for the
    /// whole target, `target kind name` otherwise.
    pub fn subject(&self) -> String {
        if self.kind.whole_target {
            self.target.clone()
        } else {
            format!("{} {} {}", self.target, self.kind, self.name)
        }
    }
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subject())
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
/// * `in_use` counts what is taken out of `capacity`. For PostgreSQL's pools that is every
///   client backend whatever its state, because an idle backend still holds a slot; for a
///   pooler or an application pool, the connections checked out by clients.
/// * `idle` counts open connections doing no work: for PostgreSQL a subset of `in_use` (a hint
///   that a client pool is oversized), for a pooler or application pool the connections ready
///   to be handed out.
/// * `waiting` counts clients queued for a connection. PostgreSQL itself never queues (it
///   refuses, reported as the target being saturated), so it is 0 for PostgreSQL's pools.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolSnapshot {
    /// Which pool.
    pub id: PoolId,
    /// Usable ceiling now.
    pub capacity: u64,
    /// The ceiling as configured (`max_connections` minus reserved slots, a role's connection
    /// limit, PgBouncer's `pool_size`): what a deployment changes. `capacity` is what is usable
    /// now — this, minus slots held by monitoring sessions, plus a reserve pool while in use —
    /// and moves without anyone changing a setting, so capacity history and `capacity_dropped`
    /// compare this instead.
    pub configured_capacity: u64,
    /// Taken out of `capacity`.
    pub in_use: u64,
    /// Open but doing no work.
    pub idle: u64,
    /// Clients queued for a connection.
    pub waiting: u64,
    /// Of those, the clients no free slot can serve, when the source knows better than
    /// `waiting − free` ([`PoolSnapshot::queued`]): a pool summed over application instances,
    /// where one instance's free slot cannot serve another instance's queue. `None` otherwise.
    pub queued: Option<u64>,
    /// How long the longest-waiting queued client has waited (zero when none waits); `None`
    /// when the source cannot tell (PostgreSQL never queues).
    pub longest_wait: Option<Duration>,
    /// Cumulative counters, when the source has them.
    pub counters: Counters,
    /// The counters as per-second rates since the pool's previous sample, filled in by the
    /// store when a report arrives ([`crate::store::Store::fill_rates`]); sources leave them
    /// empty.
    pub rates: Rates,
    /// A short human note on how `capacity` was derived, e.g. `max_connections 100, 3 reserved`.
    pub capacity_note: String,
    /// The pool of the same target whose capacity bounds this one when it has no limit of its
    /// own (a PostgreSQL role or database is bounded by the server): a first limit on a pool in
    /// use is a drop from the parent's capacity.
    pub parent: Option<(PoolKind, String)>,
    /// PostgreSQL's own view of the pool's sessions; `None` for other sources.
    pub postgres: Option<PgSessions>,
    /// For a ceiling that linked pools draw on (a server, a role or database limit,
    /// PgBouncer's `max_client_conn`): what they may open ([`crate::budget`]); `None` when
    /// nothing linked draws on it. Set by the daemon from every target's latest pools.
    pub budget: Option<BudgetFigure>,
    /// For an application pool linked to the server side it draws on ([`crate::link`]): what
    /// that side shows of it, e.g. `server orders-db: 60 connections from
    /// application_name=checkout (7 idle in transaction), 96/96 usable in use`; set with the
    /// budget. `None` for a pool no link covers.
    pub server_side: Option<String>,
}

/// What the pools linked to a ceiling may open against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetFigure {
    /// Connections the linked pools may open: their sizes × instances.
    pub demand: u64,
    /// Each contributor and its share, largest first: `checkout default 60, bouncer
    /// pgbouncer_pool orders/app 30`.
    pub contributors: String,
}

/// Cumulative counters of a pool since its source started counting; each is `None` when the
/// source does not count it. A counter that goes down was reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counters {
    /// Clients that had to wait for a connection.
    pub waits: Option<u64>,
    /// Total time clients spent waiting, in seconds.
    pub wait_seconds: Option<f64>,
    /// Clients that gave up waiting (acquire timeouts).
    pub timeouts: Option<u64>,
}

/// [`Counters`] as per-second rates over the time since the previous sample of the pool: what
/// rules compare ("acquire timeouts per second > 0"), since gauges sampled every few seconds
/// miss bursts and counters do not. `None` when the counter is not reported, or on the first
/// sample. A counter that went down was reset: its rate counts from zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Rates {
    /// Clients that had to wait, per second.
    pub waits: Option<f64>,
    /// Seconds spent waiting, per second (the average number of clients waiting).
    pub wait_seconds: Option<f64>,
    /// Clients that gave up waiting, per second.
    pub timeouts: Option<f64>,
}

/// What PostgreSQL shows of a pool's sessions: states, transactions, locks and holders.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PgSessions {
    /// Connections by state (`active`, `idle`, `idle in transaction`, ...).
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
}

impl PoolSnapshot {
    /// A pool with `capacity` (also its configured capacity) and `in_use`, nothing idle or
    /// waiting, and no other figure known: sources set what they have on top.
    pub fn new(id: PoolId, capacity: u64, in_use: u64) -> PoolSnapshot {
        PoolSnapshot {
            id,
            capacity,
            configured_capacity: capacity,
            in_use,
            idle: 0,
            waiting: 0,
            queued: None,
            longest_wait: None,
            counters: Counters::default(),
            rates: Rates::default(),
            capacity_note: String::new(),
            parent: None,
            postgres: None,
            budget: None,
            server_side: None,
        }
    }

    /// `in_use / capacity`, 0–1 (above 1 when superusers use their reserved slots); a pool with
    /// capacity 0 is fully used as soon as anything is in use, and unused otherwise.
    pub fn utilization(&self) -> f64 {
        if self.capacity == 0 {
            return if self.in_use > 0 { 1.0 } else { 0.0 };
        }
        self.in_use as f64 / self.capacity as f64
    }

    /// Clients waiting that no free slot can serve: what the source said, else
    /// `waiting − free` (at least 0).
    pub fn queued(&self) -> u64 {
        self.queued
            .unwrap_or_else(|| self.waiting.saturating_sub(self.free()))
    }

    /// Slots still free (`capacity - in_use`, never negative).
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.in_use)
    }
}

/// Why a target could not be polled, in terms every source shares. The class is a bounded label
/// value; the message stays out of metrics and never carries a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// The target refuses new clients because it is full — PostgreSQL's SQLSTATE 53300, PgBouncer's
    /// `no more connections allowed (max_client_conn)`. This is the incident itself: the target
    /// is *saturated*, not down.
    TooManyConnections,
    /// The target is starting up, shutting down or in recovery (PostgreSQL 57P03).
    CannotConnectNow,
    /// Authentication or authorisation failed: a configuration problem.
    Auth,
    /// TLS negotiation or certificate verification failed.
    Tls,
    /// Connection refused, reset or closed; DNS failure.
    Network,
    /// Connecting or polling took longer than the configured timeout.
    Timeout,
    /// The poll itself failed: the query or request was refused, or its answer was unusable.
    Query,
    /// An HTTP endpoint answered with a status other than 2xx (a redirect included: they are
    /// refused).
    HttpStatus,
    /// An HTTP endpoint's answer is not a readable exposition: malformed, or over a limit
    /// (body size, series, label lengths).
    BadExposition,
    /// An HTTP endpoint's exposition has no pool its mapping can read: a wrong preset, or the
    /// pool metrics are not registered.
    NoPools,
    /// A target whose pools are pushed to poolwatch has no instance that pushed within its
    /// `ttl`: the application stopped, crashed or lost its way to poolwatch.
    Stale,
}

impl ErrorClass {
    /// Every class, for pre-initialised counters.
    pub const ALL: [ErrorClass; 11] = [
        ErrorClass::TooManyConnections,
        ErrorClass::CannotConnectNow,
        ErrorClass::Auth,
        ErrorClass::Tls,
        ErrorClass::Network,
        ErrorClass::Timeout,
        ErrorClass::Query,
        ErrorClass::HttpStatus,
        ErrorClass::BadExposition,
        ErrorClass::NoPools,
        ErrorClass::Stale,
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
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::BadExposition => "bad_exposition",
            ErrorClass::NoPools => "no_pools",
            ErrorClass::Stale => "stale",
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

    /// The state a successful poll puts a target in: saturated when it answered but refuses
    /// new clients because it is full ([`PollData::refusing`]), else up.
    pub fn polled(data: &PollData) -> TargetState {
        match data.refusing {
            Some(_) => TargetState::Saturated,
            None => TargetState::Up,
        }
    }
}

impl fmt::Display for TargetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A number about the target as a whole that its source reads along with the pools (PostgreSQL's
/// `max_connections`, PgBouncer's `max_client_conn`), exported as the gauge `name` with the
/// labels `target` plus `labels`. A source gives every fact of one name the same label names,
/// so that each name is one well-formed family.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    /// Family name, e.g. `poolwatch_server_max_connections`.
    pub name: &'static str,
    /// The family's HELP text.
    #[serde(skip)]
    pub help: &'static str,
    /// Labels beyond `target` (bounded by the source).
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

impl TargetReport {
    /// Why the target refuses new clients because it is full, if it does: refused with
    /// `too_many_connections`, or polled and found refusing.
    pub fn saturation(&self) -> Option<&PollError> {
        match &self.outcome {
            Ok(data) => data.refusing.as_ref(),
            Err(e) => (e.class == ErrorClass::TooManyConnections).then_some(e),
        }
    }

    /// Why the target cannot be polled, unless it is merely saturated.
    pub fn failure(&self) -> Option<&PollError> {
        self.outcome
            .as_ref()
            .err()
            .filter(|e| e.class != ErrorClass::TooManyConnections)
    }
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
    /// The pools seen, or why none could be seen. Shared: the store keeps the same data as
    /// the target's latest (a report's data is changed only before it is recorded, while this
    /// is its only owner: [`Arc::make_mut`] copies nothing then).
    pub outcome: Result<Arc<PollData>, PollError>,
}

/// The successful part of a poll.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PollData {
    /// One line about the target for people, e.g. `PostgreSQL 16.4, max_connections 100, 3
    /// reserved for superusers`.
    pub summary: String,
    /// Every pool of the target.
    pub pools: Vec<PoolSnapshot>,
    /// Target-level numbers, exported as their own families.
    pub facts: Vec<Fact>,
    /// Set when the target answered the poll but refuses new clients because it is full
    /// (PgBouncer at `max_client_conn`, whose admin console still lets poolwatch in): the target
    /// is *saturated*, with this as the reason (class `too_many_connections`), and its pools
    /// are still seen.
    pub refusing: Option<PollError>,
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
