//! Capacity history for `capacity_dropped`: per pool, only the changes of its configured
//! capacity, with when they happened, pruned beyond the longest window. It is not touched while
//! a target cannot be polled, so that a drop that only shows after a restart (PostgreSQL needs
//! one to lower `max_connections`) is still compared with the capacity before it; and it is
//! saved with the alert state, so that a drop made while poolwatch restarted is seen too.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// Changes kept per pool at most, against a capacity that flaps on every poll; beyond it the
/// oldest change is forgotten.
const MAX_CHANGES: usize = 64;

/// A pool by its labels' values (what alert instances and saved state name it by).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PoolRef {
    /// Target name.
    pub target: String,
    /// The pool's kind label (`server`, `role`, `pgbouncer_pool`, ...).
    pub kind: String,
    /// Pool name within the target.
    pub pool: String,
}

impl PoolRef {
    /// The reference of pool `kind`/`pool` of `target`.
    pub fn new(target: &str, kind: &str, pool: &str) -> PoolRef {
        PoolRef {
            target: target.into(),
            kind: kind.into(),
            pool: pool.into(),
        }
    }

    /// The reference of a pool seen in a report.
    pub fn of(id: &crate::model::PoolId) -> PoolRef {
        PoolRef::new(&id.target, id.kind.as_str(), &id.name)
    }
}

/// One change of capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// When the new capacity was first seen.
    pub at: SystemTime,
    /// The capacity from then on.
    pub capacity: u64,
}

/// A pool's capacity changes, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    changes: Vec<Change>,
}

impl History {
    /// Records the capacity seen at `now` (only if it differs from the last one).
    pub fn record(&mut self, now: SystemTime, capacity: u64) {
        if self.changes.last().map(|c| c.capacity) == Some(capacity) {
            return;
        }
        self.changes.push(Change { at: now, capacity });
        if self.changes.len() > MAX_CHANGES {
            self.changes.remove(0);
        }
    }

    /// The highest capacity in effect at any time within `window` before `now`, including the
    /// one in effect when the window starts.
    pub fn highest_within(&self, now: SystemTime, window: Duration) -> Option<u64> {
        let start = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut in_effect_at_start = None;
        let mut highest_since = None;
        for c in &self.changes {
            if c.at <= start {
                in_effect_at_start = Some(c.capacity);
            } else {
                highest_since = highest_since.max(Some(c.capacity));
            }
        }
        highest_since.max(in_effect_at_start)
    }

    /// Forgets changes that no window up to `horizon` can see any more: everything before the
    /// change in effect at `now - horizon`.
    pub fn prune(&mut self, now: SystemTime, horizon: Duration) {
        let start = now.checked_sub(horizon).unwrap_or(SystemTime::UNIX_EPOCH);
        if let Some(i) = self.changes.iter().rposition(|c| c.at <= start) {
            self.changes.drain(..i);
        }
    }

    /// When the capacity last changed.
    pub fn last_change(&self) -> Option<SystemTime> {
        self.changes.last().map(|c| c.at)
    }

    /// The changes, oldest first.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Rebuilds a history from saved changes (oldest first), keeping the bound.
    pub fn from_changes(mut changes: Vec<Change>) -> History {
        let excess = changes.len().saturating_sub(MAX_CHANGES);
        changes.drain(..excess);
        History { changes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixtures::t;
    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn highest_within_window() {
        let mut h = History::default();
        h.record(t(0), 50);
        h.record(t(5), 50);
        h.record(t(100), 10);
        assert_eq!(h.changes().len(), 2);
        // (now, window, want)
        let cases = [
            (t(0), HOUR, Some(50)),
            (t(100), HOUR, Some(50)),
            (t(3699), HOUR, Some(50)),
            // Exactly a window after the drop, the drop is the value in effect at the start.
            (t(3700), HOUR, Some(10)),
            (t(9999), HOUR, Some(10)),
            // At 150s a 50s window starts at the drop; a 51s one sees the 50 before it.
            (t(150), Duration::from_secs(50), Some(10)),
            (t(150), Duration::from_secs(51), Some(50)),
            (t(150), Duration::from_secs(60), Some(50)),
        ];
        for (now, window, want) in cases {
            assert_eq!(h.highest_within(now, window), want, "{now:?} {window:?}");
        }
        assert_eq!(History::default().highest_within(t(0), HOUR), None);
    }

    #[test]
    fn prune_keeps_the_value_in_effect() {
        let mut h = History::default();
        h.record(t(0), 50);
        h.record(t(10), 40);
        h.record(t(20), 10);
        h.prune(t(15 + 3600), HOUR);
        assert_eq!(
            h.changes(),
            [
                Change {
                    at: t(10),
                    capacity: 40
                },
                Change {
                    at: t(20),
                    capacity: 10
                }
            ]
        );
        assert_eq!(h.highest_within(t(15 + 3600), HOUR), Some(40));
        h.prune(t(100_000), HOUR);
        assert_eq!(h.changes().len(), 1);
        assert_eq!(h.last_change(), Some(t(20)));
    }

    #[test]
    fn bounded_and_clock_safe() {
        let mut h = History::default();
        for i in 0..1000 {
            h.record(t(i), i % 2);
        }
        assert_eq!(h.changes().len(), MAX_CHANGES);
        // A clock far in the past or a window longer than the epoch must not panic.
        let _ = h.highest_within(SystemTime::UNIX_EPOCH, Duration::MAX);
        h.prune(SystemTime::UNIX_EPOCH, Duration::MAX);
        let rebuilt = History::from_changes(vec![
            Change {
                at: t(0),
                capacity: 1
            };
            100
        ]);
        assert_eq!(rebuilt.changes().len(), MAX_CHANGES);
    }
}
