//! Sources produce [`TargetReport`]s. A polling source is one module that says how to open a
//! session with its peer, how to poll it once, and whether a session survives a failed poll; the
//! shared [`poll_loop`] does everything else (ticker, backoff, shutdown, steady cadence, events),
//! so every source reports on the same terms.
//!
//! # Layout
//!
//! * [`poll_loop`] — the one loop every polling source runs in: a report on every tick (even
//!   while the target is unreachable or a connection attempt is in flight), report times on the
//!   tick schedule, capped backoff with jitter, shutdown at any point.
//! * [`backoff`] — the reconnect backoff (pure).
//! * [`app`] — what the application-pool sources share.
//! * [`app_metrics`] — an application's Prometheus / OpenMetrics endpoint: a bounded parser,
//!   presets per pool library, HTTP(S) scrapes.
//! * [`events`] — [`SourceMetrics`] and [`EventLog`]: every event counted and logged from one
//!   place, once per change.
//! * `mutation` (tests only) — random mutations of real inputs, for the seeded robustness
//!   tests of the exposition parser and the push body.
//! * [`pgwire`] — what the PostgreSQL and PgBouncer sources share: sessions over the wire
//!   protocol, TLS, error classification.
//! * [`postgres`] — PostgreSQL: one long-lived connection, one prepared query per poll.
//! * [`target`] — `[[targets]]`: the keys every target has, the loop's, and each source's;
//!   [`target::TargetSettings`] starts a target's task or polls it once.
//! * [`pgbouncer`] — PgBouncer's admin console: one long-lived session, `SHOW` commands read
//!   by column name.
//! * [`push`] — pools applications post to `POST /api/v1/pools`, summed over their fresh
//!   instances; a poll reads the shared [`push::Registry`].

pub mod app;
pub mod app_metrics;
pub mod backoff;
pub mod events;
#[cfg(test)]
pub mod mutation;
pub mod pgbouncer;
pub mod pgwire;
pub mod poll_loop;
pub mod postgres;
pub mod push;
pub mod target;

pub use events::{EventLog, SourceMetrics};
pub use target::TargetSettings;

use crate::model::{PollData, PollError, TargetReport};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A session a source opened: the source's own connection state, and what answered, for the log.
pub struct Session<C> {
    /// The open connection (or console session, or HTTP client).
    pub conn: C,
    /// What answered, e.g. `PostgreSQL 16.4`; logged when the session opens.
    pub peer: String,
}

/// A failed poll, and the source's answer to "keep this session after that error?".
#[derive(Debug, Clone, PartialEq)]
pub struct PollFailure {
    /// What went wrong.
    pub error: PollError,
    /// Whether the session is still usable. A server that cancelled a slow poll itself keeps the
    /// session (giving up the slot of a full server may mean being refused on the way back); a
    /// closed connection or no answer at all drops it, and the loop reconnects.
    pub keep_session: bool,
}

/// What a polling source implements. Everything else — when to poll, when to reconnect, what to
/// report while a connection attempt is in flight, shutdown, logging and counting — is the
/// [`poll_loop`]'s. Implementations bound their own network waits (connect and poll timeouts).
pub trait PollingSource: Send + Sync + 'static {
    /// An open session.
    type Conn: Send + 'static;

    /// Opens a session.
    fn connect(&self) -> impl Future<Output = Result<Session<Self::Conn>, PollError>> + Send;

    /// Polls once on an open session.
    fn poll(
        &self,
        conn: &mut Self::Conn,
    ) -> impl Future<Output = Result<PollData, PollFailure>> + Send;
}

/// Connects, polls once and lets the session go: for `poolwatch snapshot`.
pub async fn poll_once<S: PollingSource>(target: &str, source: &S) -> TargetReport {
    let at = SystemTime::now();
    let started = Instant::now();
    let outcome = match source.connect().await {
        Ok(mut session) => source.poll(&mut session.conn).await.map_err(|f| f.error),
        Err(e) => Err(e),
    };
    TargetReport {
        target: target.to_string(),
        at,
        duration: started.elapsed(),
        outcome: outcome.map(Arc::new),
    }
}

/// The loop's own settings, the same for every polling source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// Time between two reports.
    pub interval: Duration,
    /// Upper bound of the reconnect backoff; its first step is `min(interval, 1s)`.
    pub max_backoff: Duration,
}
