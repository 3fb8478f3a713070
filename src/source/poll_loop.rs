//! The one loop every polling source runs in.
//!
//! * **A report on every tick.** Each tick's report is sent within 90 % of an interval: when the
//!   poll (or a connection attempt) has not finished by then, the report says so and the work
//!   goes on in the background; its result is used when it arrives. So `TargetDown` with
//!   `for = "3s"` fires 3 s after going pending, even while every attempt to reach a hung server
//!   takes `connect_timeout`.
//! * **Report times on the tick schedule.** A report carries the time its tick was due, not the
//!   time its poll happened to start or end, so the time between two reports is exactly one
//!   interval and a condition that has held for `for` by the poll cadence fires on that poll
//!   (not, by microseconds of jitter, one interval later).
//! * **Spread ticks.** After an immediate first poll, a target's ticks are offset by a fixed
//!   fraction of its interval derived from its name, so many targets do not poll at the same
//!   instant and queue behind each other.
//! * **Reconnects** wait a capped exponential backoff with jitter ([`Backoff`]); a session the
//!   source says is still usable after a failed poll is kept.
//! * **Shutdown** at any point: a connection attempt or poll in flight is dropped.
//! * **Events** are counted and logged from one place ([`EventLog`]).

use super::backoff::Backoff;
use super::{Cadence, EventLog, PollFailure, PollingSource, Session, SourceMetrics};
use crate::model::{ErrorClass, PollData, PollError, TargetReport};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Shortest poll interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Who a loop polls, for reports, logs and metrics.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Target name.
    pub name: String,
    /// Where the target is, without secrets (`user@host:port/db`), for logs.
    pub endpoint: String,
}

/// Where the loop sends reports and learns that it must stop.
pub struct Channels {
    /// Every report goes here.
    pub reports: mpsc::Sender<TargetReport>,
    /// Turns true (or is dropped) when the loop must stop.
    pub shutdown: watch::Receiver<bool>,
}

/// Runs `source` until shutdown: one report per tick. See the module documentation.
pub async fn run<S: PollingSource>(
    id: Identity,
    source: S,
    cadence: Cadence,
    metrics: SourceMetrics,
    channels: Channels,
) {
    run_on(SystemTime::now, id, source, cadence, metrics, channels).await
}

/// [`run`], reading the wall clock with `now` (tests drive time by hand).
async fn run_on<S: PollingSource>(
    now: fn() -> SystemTime,
    id: Identity,
    source: S,
    cadence: Cadence,
    metrics: SourceMetrics,
    channels: Channels,
) {
    let Channels {
        reports,
        mut shutdown,
    } = channels;
    let mut state = LoopState::new(id, Arc::new(source), cadence, metrics);
    let mut clock = WallClock::new(Instant::now(), now(), now);
    let start = Instant::now();
    let mut due = start;
    loop {
        // Until the tick is due, settle work that finished late.
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => return,
                done = in_flight(&mut state.op), if state.op.is_some() => {
                    state.op = None;
                    state.settle(done);
                }
                _ = tokio::time::sleep_until(due) => break,
            }
        }
        if *shutdown.borrow() {
            return;
        }
        let at = clock.wall(due, Instant::now());
        let (outcome, duration) = tokio::select! {
            o = state.tick(due) => o,
            _ = shutdown.changed() => return,
        };
        let report = TargetReport {
            target: state.id.name.clone(),
            at,
            duration,
            outcome: outcome.map(Arc::new),
        };
        if reports.send(report).await.is_err() {
            return;
        }
        state.metrics.reported(&state.id.name);
        // After the first tick, the target's own phase within the interval.
        due = if due == start {
            first_phased_tick(
                start,
                phase(&state.id.name, cadence.interval),
                Instant::now(),
                cadence.interval,
            )
        } else {
            next_tick(due, Instant::now(), cadence.interval)
        };
    }
}

/// Waits for the operation in flight; pending for ever when there is none.
async fn in_flight<C>(op: &mut Option<InFlight<C>>) -> Finished<C> {
    match op {
        Some(op) => (&mut op.fut).await,
        None => std::future::pending().await,
    }
}

/// A connection attempt or poll, with the session it owns while it runs.
type OpFuture<C> = Pin<Box<dyn Future<Output = Finished<C>> + Send>>;

/// What an operation produced, and how long it took.
struct Finished<C> {
    done: Done<C>,
    took: Duration,
}

enum Done<C> {
    Connected(Result<Session<C>, PollError>),
    Polled {
        conn: C,
        result: Result<PollData, PollFailure>,
    },
}

/// The operation in flight.
struct InFlight<C> {
    fut: OpFuture<C>,
    started: Instant,
    connecting: bool,
}

/// Everything the loop remembers between ticks.
struct LoopState<S: PollingSource> {
    id: Identity,
    source: Arc<S>,
    cadence: Cadence,
    metrics: SourceMetrics,
    events: EventLog,
    backoff: Backoff,
    /// The open session, when connected and not polling.
    conn: Option<S::Conn>,
    /// The connection attempt or poll running now.
    op: Option<InFlight<S::Conn>>,
    /// No connection attempt before this.
    next_attempt: Instant,
    /// Why the target could not be polled last, until a poll succeeds.
    last_error: Option<PollError>,
    /// Whether a connection attempt or poll has concluded (success or failure) yet.
    concluded: bool,
}

impl<S: PollingSource> LoopState<S> {
    fn new(id: Identity, source: Arc<S>, cadence: Cadence, metrics: SourceMetrics) -> Self {
        LoopState {
            id,
            source,
            cadence,
            metrics,
            events: EventLog::default(),
            backoff: Backoff::new(
                cadence.interval.min(Duration::from_secs(1)),
                cadence.max_backoff,
            ),
            conn: None,
            op: None,
            next_attempt: Instant::now(),
            last_error: None,
            concluded: false,
        }
    }

    /// One tick: polls (connecting first if needed and due), waiting at most until the report
    /// is due; returns the outcome to report and how long the work took. The very first
    /// connection attempt is waited for (the source bounds it by its connect timeout): until
    /// it concludes, nothing is known of the target, which stays `unknown` rather than being
    /// reported down because the attempt is slower than one interval.
    async fn tick(&mut self, due: Instant) -> (Result<PollData, PollError>, Duration) {
        let deadline = if self.concluded {
            due + self.cadence.interval.mul_f64(0.9)
        } else {
            due + Duration::from_secs(365 * 24 * 3600)
        };
        loop {
            if self.op.is_none() && !self.start_op() {
                return (Err(self.not_connected()), Duration::ZERO);
            }
            let Some(op) = self.op.as_mut() else {
                return (Err(self.not_connected()), Duration::ZERO);
            };
            let Ok(finished) = tokio::time::timeout_at(deadline, &mut op.fut).await else {
                let (started, connecting) = (op.started, op.connecting);
                return (
                    Err(self.still_running(connecting, started.elapsed())),
                    started.elapsed(),
                );
            };
            self.op = None;
            let took = finished.took;
            if let Some(outcome) = self.settle(finished) {
                self.concluded = true;
                return (outcome, took);
            }
            // Connected: poll in the same tick.
        }
    }

    /// Starts a poll when connected, or a connection attempt when one is due; false when
    /// there is nothing to do until the backoff has passed.
    fn start_op(&mut self) -> bool {
        let source = Arc::clone(&self.source);
        let started = Instant::now();
        let (fut, connecting): (OpFuture<S::Conn>, bool) = match self.conn.take() {
            Some(mut conn) => (
                Box::pin(async move {
                    let result = source.poll(&mut conn).await;
                    Finished {
                        done: Done::Polled { conn, result },
                        took: started.elapsed(),
                    }
                }),
                false,
            ),
            None if started >= self.next_attempt => (
                Box::pin(async move {
                    let result = source.connect().await;
                    Finished {
                        done: Done::Connected(result),
                        took: started.elapsed(),
                    }
                }),
                true,
            ),
            None => return false,
        };
        self.op = Some(InFlight {
            fut,
            started,
            connecting,
        });
        true
    }

    /// Takes in what an operation produced; returns the outcome it gives a report, or `None`
    /// when a session was opened (and the poll is still to come).
    fn settle(&mut self, finished: Finished<S::Conn>) -> Option<Result<PollData, PollError>> {
        let name = self.id.name.as_str();
        let seconds = finished.took.as_secs_f64();
        match finished.done {
            Done::Connected(Ok(session)) => {
                self.events
                    .connected(&self.metrics, name, &self.id.endpoint, &session.peer);
                self.backoff.reset();
                self.conn = Some(session.conn);
                None
            }
            Done::Connected(Err(e)) => {
                self.events.failed(&self.metrics, name, &e);
                self.next_attempt = Instant::now() + self.backoff.next(rand::random::<f64>());
                self.last_error = Some(e.clone());
                Some(Err(e))
            }
            Done::Polled {
                conn,
                result: Ok(data),
            } => {
                self.events.polled(&self.metrics, name, seconds);
                self.conn = Some(conn);
                self.last_error = None;
                Some(Ok(data))
            }
            Done::Polled {
                conn,
                result: Err(failure),
            } => {
                self.events.failed(&self.metrics, name, &failure.error);
                self.events.failed_duration(&self.metrics, name, seconds);
                if failure.keep_session {
                    self.conn = Some(conn);
                } else {
                    // Try again at once: a dropped connection is usually a restart.
                    self.next_attempt = Instant::now();
                }
                self.last_error = Some(failure.error.clone());
                Some(Err(failure.error))
            }
        }
    }

    /// The outcome of a tick that has no session and no attempt due yet.
    fn not_connected(&self) -> PollError {
        self.last_error.clone().unwrap_or_else(|| PollError {
            class: ErrorClass::Network,
            message: "not connected yet".into(),
        })
    }

    /// The outcome of a tick whose work has not finished when its report is due: while
    /// reconnecting, the error that made the loop reconnect (what is known about the target has
    /// not changed); while a poll is slow, a timeout.
    fn still_running(&self, connecting: bool, running: Duration) -> PollError {
        match (&self.last_error, connecting) {
            (Some(last), true) => last.clone(),
            _ => PollError {
                class: ErrorClass::Timeout,
                message: format!(
                    "the poll has not answered after {}",
                    crate::timefmt::human(running)
                ),
            },
        }
    }
}

/// The first tick after `prev` that is still ahead of `now`, on `prev`'s schedule: ticks that a
/// slow report made the loop miss are skipped, not bunched up, and the phase is kept.
pub fn next_tick(prev: Instant, now: Instant, interval: Duration) -> Instant {
    let next = prev + interval;
    if next > now || interval.is_zero() {
        return next;
    }
    let behind = now.duration_since(next).as_nanos() / interval.as_nanos() + 1;
    next + interval * u32::try_from(behind).unwrap_or(u32::MAX)
}

/// The tick after the immediate first poll at `start`: `start + phase` itself when it is still
/// ahead of `now` (no tick of the schedule is skipped), else the next one on that schedule.
pub fn first_phased_tick(
    start: Instant,
    phase: Duration,
    now: Instant,
    interval: Duration,
) -> Instant {
    let first = start + phase;
    if first > now {
        first
    } else {
        next_tick(first, now, interval)
    }
}

/// A fixed offset in `[0, interval)` derived from the target's name (FNV-1a, then the
/// SplitMix64 finaliser so that similar names land far apart), so that targets with the same
/// interval tick at different instants, and each at the same phase after a restart.
pub fn phase(name: &str, interval: Duration) -> Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    interval.mul_f64((h >> 11) as f64 / (1u64 << 53) as f64)
}

/// Maps tick instants to wall-clock time on one anchor, so that report times are exactly an
/// interval apart; it re-anchors when the wall clock was stepped (by more than a second) since.
pub struct WallClock {
    anchor: (Instant, SystemTime),
    now: fn() -> SystemTime,
}

/// A wall clock step beyond this is followed; smaller drift is ignored.
const MAX_DRIFT: Duration = Duration::from_secs(1);

impl WallClock {
    /// A clock anchored at (`inst`, `sys`), reading the wall clock with `now`.
    pub fn new(inst: Instant, sys: SystemTime, now: fn() -> SystemTime) -> Self {
        WallClock {
            anchor: (inst, sys),
            now,
        }
    }

    /// The wall-clock time of instant `t`; `now_inst` is the monotonic time now.
    pub fn wall(&mut self, t: Instant, now_inst: Instant) -> SystemTime {
        let now_sys = (self.now)();
        let mapped_now = self.map(now_inst);
        let drift = now_sys
            .duration_since(mapped_now)
            .or_else(|e| Ok::<_, ()>(e.duration()))
            .unwrap_or_default();
        if drift > MAX_DRIFT {
            self.anchor = (now_inst, now_sys);
        }
        self.map(t)
    }

    fn map(&self, t: Instant) -> SystemTime {
        let (inst, sys) = self.anchor;
        if t >= inst {
            sys + t.duration_since(inst)
        } else {
            sys.checked_sub(inst.duration_since(t)).unwrap_or(sys)
        }
    }
}

#[cfg(test)]
mod tests;
