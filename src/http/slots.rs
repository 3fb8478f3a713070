//! Connection slots: how many HTTP connections are open, what each one is doing, and which one
//! makes room when every slot is taken.
//!
//! The bookkeeping is a plain data structure ([`Ledger`]) with time passed in, tested with
//! table cases; [`Slots`] shares it between the accept loop and the connection tasks.
//!
//! Why a crowded server closes a waiting connection rather than refusing the new one: a slot
//! held by a connection that is not in the middle of a request is cheap to free (nothing is
//! lost but an idle socket), whereas refusing the newcomer would let whoever opens connections
//! first (a port scanner, a leaking client, a slowloris flood) keep Prometheus and the probes
//! out for as long as it keeps them open. A scraper's connection sends its request at once, so
//! it is busy, and safe, within a round trip. Connections that have never completed a request
//! make room first (oldest first), and only then those kept alive after serving one: a
//! scraper's keep-alive connection between two scrapes is a proven client, and closing it
//! under a flood would fail its next scrape. Only when every connection is in the middle of a
//! request is the newcomer refused.

use super::config::Limits;
use prometheus::IntGauge;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a connection is doing, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted; its first request head is not complete yet.
    Head {
        /// When it was accepted.
        since: Instant,
    },
    /// Between a complete request head and the hand-over of the whole response.
    Busy {
        /// When the request head was complete.
        since: Instant,
    },
    /// Kept alive after a response, waiting for the next request head.
    Idle {
        /// When the previous response was handed over.
        since: Instant,
    },
}

/// Why poolwatch closed an HTTP connection itself; the `reason` label of
/// `poolwatch_http_connections_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Every slot was taken; this one had waited longest without a request and made room.
    Evicted,
    /// Every slot was taken by a connection in the middle of a request: answered 503.
    Refused,
    /// No complete first request head within `header_timeout`.
    HeaderTimeout,
    /// Kept alive without a complete next request head for `idle_timeout`.
    IdleTimeout,
    /// A request not answered completely within `request_timeout`.
    RequestTimeout,
}

impl CloseReason {
    /// Every reason, for pre-initialised series.
    pub const ALL: [CloseReason; 5] = [
        CloseReason::Evicted,
        CloseReason::Refused,
        CloseReason::HeaderTimeout,
        CloseReason::IdleTimeout,
        CloseReason::RequestTimeout,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Evicted => "evicted",
            CloseReason::Refused => "refused",
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::RequestTimeout => "request_timeout",
        }
    }
}

/// When a connection in `phase` runs out of time, and what closing it then is called.
pub fn deadline(phase: Phase, limits: &Limits) -> (Instant, CloseReason) {
    match phase {
        Phase::Head { since } => (since + limits.header_timeout, CloseReason::HeaderTimeout),
        Phase::Busy { since } => (since + limits.request_timeout, CloseReason::RequestTimeout),
        Phase::Idle { since } => (since + limits.idle_timeout, CloseReason::IdleTimeout),
    }
}

/// What the accept loop does with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// It has a slot, under this id.
    Admitted(u64),
    /// Full, and this connection (the one waiting longest without a request) was just told to
    /// close: wait for its slot.
    Evict(u64),
    /// Full, but connections told to close earlier are still closing: wait for their slots.
    Wait,
    /// Full of connections in the middle of a request: refuse the new one.
    Refuse,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    phase: Phase,
    /// Told to close to make room; its slot is freed when its task ends.
    closing: bool,
}

/// The open connections and their phases. No clock, no I/O: time comes in as arguments.
#[derive(Debug)]
pub struct Ledger {
    limit: usize,
    next_id: u64,
    conns: HashMap<u64, Entry>,
    /// Every connection that is neither busy nor closing, in eviction order: those that never
    /// completed a request first, then those kept alive after one; oldest first in each.
    waiting: BTreeSet<Waiting>,
    closing: usize,
}

impl Ledger {
    /// No connections, at most `limit` (at least 1) at once.
    pub fn new(limit: usize) -> Ledger {
        Ledger {
            limit: limit.max(1),
            next_id: 0,
            conns: HashMap::new(),
            waiting: BTreeSet::new(),
            closing: 0,
        }
    }

    /// Changes the limit; connections above a lowered limit close on their own terms, and the
    /// next admissions make room.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// How many connections hold a slot (including those told to close).
    pub fn open(&self) -> usize {
        self.conns.len()
    }

    /// The phase of connection `id`, if it holds a slot.
    pub fn phase(&self, id: u64) -> Option<Phase> {
        self.conns.get(&id).map(|e| e.phase)
    }

    /// Decides about a connection accepted at `now`; see [`Admission`].
    pub fn admit(&mut self, now: Instant) -> Admission {
        if self.conns.len() < self.limit {
            let id = self.next_id;
            self.next_id += 1;
            let phase = Phase::Head { since: now };
            self.conns.insert(
                id,
                Entry {
                    phase,
                    closing: false,
                },
            );
            self.waiting.extend(waiting(phase, id));
            return Admission::Admitted(id);
        }
        if self.closing > 0 {
            return Admission::Wait;
        }
        let Some((_, _, victim)) = self.waiting.pop_first() else {
            return Admission::Refuse;
        };
        if let Some(e) = self.conns.get_mut(&victim) {
            e.closing = true;
            self.closing += 1;
        }
        Admission::Evict(victim)
    }

    /// Records what connection `id` does now. A connection told to close stays closing.
    pub fn set_phase(&mut self, id: u64, phase: Phase) {
        let Some(e) = self.conns.get_mut(&id) else {
            return;
        };
        if !e.closing {
            if let Some(w) = waiting(e.phase, id) {
                self.waiting.remove(&w);
            }
            self.waiting.extend(waiting(phase, id));
        }
        e.phase = phase;
    }

    /// Frees the slot of connection `id`.
    pub fn remove(&mut self, id: u64) {
        if let Some(e) = self.conns.remove(&id) {
            if e.closing {
                self.closing -= 1;
            } else if let Some(w) = waiting(e.phase, id) {
                self.waiting.remove(&w);
            }
        }
    }
}

/// An eviction candidate: `(0 = never completed a request | 1 = kept alive, since, id)`.
type Waiting = (u8, Instant, u64);

/// The eviction key of connection `id` in `phase`; `None` while busy.
fn waiting(phase: Phase, id: u64) -> Option<Waiting> {
    match phase {
        Phase::Head { since } => Some((0, since, id)),
        Phase::Idle { since } => Some((1, since, id)),
        Phase::Busy { .. } => None,
    }
}

struct Inner {
    ledger: Ledger,
    limits: Limits,
    /// Tells each connection's task to close (a stored permit if it is not listening yet).
    evict: HashMap<u64, Arc<Notify>>,
}

/// The [`Ledger`] shared by the accept loop and every connection task.
pub struct Slots {
    inner: Mutex<Inner>,
    /// Signalled whenever a slot is freed.
    released: Notify,
    /// `poolwatch_http_connections`.
    open: IntGauge,
}

impl Slots {
    /// Slots under `limits`; `open` follows the number of connections holding one.
    pub fn new(limits: Limits, open: IntGauge) -> Arc<Slots> {
        Arc::new(Slots {
            inner: Mutex::new(Inner {
                ledger: Ledger::new(limits.max_connections),
                limits,
                evict: HashMap::new(),
            }),
            released: Notify::new(),
            open,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data stays consistent even if a holder panicked: every update is one call.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.lock().limits
    }

    /// Replaces the limits (a reload); open connections keep their slots.
    pub fn set_limits(&self, limits: Limits) {
        let mut inner = self.lock();
        inner.ledger.set_limit(limits.max_connections);
        inner.limits = limits;
    }

    /// A slot for a connection just accepted: at once when one is free, otherwise after the
    /// connection waiting longest for a request has closed (at most `wait`); `None` when every
    /// connection is busy, or room did not come within `wait`.
    pub async fn admit(self: &Arc<Self>, wait: Duration) -> Option<Slot> {
        let give_up = Instant::now() + wait;
        loop {
            // Registered before deciding, so that a slot freed in between is not missed.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            match self.try_admit(Instant::now()) {
                Ok(slot) => return Some(slot),
                Err(Admission::Refuse) => return None,
                Err(_) => {}
            }
            if tokio::time::timeout_at(give_up, released).await.is_err() {
                return None;
            }
        }
    }

    fn try_admit(self: &Arc<Self>, now: Instant) -> Result<Slot, Admission> {
        let mut inner = self.lock();
        match inner.ledger.admit(now) {
            Admission::Admitted(id) => {
                let evict = Arc::new(Notify::new());
                inner.evict.insert(id, evict.clone());
                self.open.inc();
                Ok(Slot {
                    slots: self.clone(),
                    id,
                    evict,
                })
            }
            Admission::Evict(victim) => {
                if let Some(n) = inner.evict.get(&victim) {
                    n.notify_one();
                }
                Err(Admission::Evict(victim))
            }
            other => Err(other),
        }
    }

    fn set_phase(&self, id: u64, phase: Phase) {
        self.lock().ledger.set_phase(id, phase);
    }

    fn release(&self, id: u64) {
        {
            let mut inner = self.lock();
            inner.ledger.remove(id);
            inner.evict.remove(&id);
        }
        self.open.dec();
        self.released.notify_one();
    }
}

/// One connection's slot, freed when dropped.
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    evict: Arc<Notify>,
}

impl Slot {
    /// A handle for the request path to record the connection's phase.
    pub fn tracker(&self) -> Tracker {
        Tracker {
            slots: self.slots.clone(),
            id: self.id,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.slots.limits()
    }

    /// When this connection runs out of time in its current phase, and why it would close.
    pub fn deadline(&self) -> (Instant, CloseReason) {
        let inner = self.slots.lock();
        let phase = inner.ledger.phase(self.id).unwrap_or(Phase::Busy {
            since: Instant::now(),
        });
        deadline(phase, &inner.limits)
    }

    /// Completes when the accept loop chose this connection to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.release(self.id);
    }
}

/// Records the phase of one connection from inside its request handling.
#[derive(Clone)]
pub struct Tracker {
    slots: Arc<Slots>,
    id: u64,
}

impl Tracker {
    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.slots.limits()
    }

    /// A complete request head arrived.
    pub fn busy(&self) {
        self.slots.set_phase(
            self.id,
            Phase::Busy {
                since: Instant::now(),
            },
        );
    }

    /// The response was handed over; the connection waits for the next request.
    pub fn idle(&self) {
        self.slots.set_phase(
            self.id,
            Phase::Idle {
                since: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
#[path = "slots_tests.rs"]
mod tests;
