//! A pool's recent past, over a window (`[history] window`, default 15 minutes), for rules that
//! need a trend and for people who want to see one. Nothing is kept per poll: each poll is
//! folded into its [`SLOTS_PER_WINDOW`]th of the window ([`super::trend`]), which keeps the
//! least-squares sums of the in-use counts (a trend is fitted from two reads), the highest and
//! last in-use count and the capacity. A pool's history is so about 9 KB whatever the poll
//! interval (a poll a second kept one 24-byte sample each, 21 KB, before the slots alone).

use super::trend::Slots;
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Trend slots per window (10 s each for the default 15 minutes).
pub const SLOTS_PER_WINDOW: u64 = 90;

/// Slots kept per pool at most: a capacity that changes at every poll starts a slot each time.
pub const MAX_SLOTS: usize = 10 * SLOTS_PER_WINDOW as usize;

/// A spacing between polls longer than the window divided by this (1 minute for the default
/// 15) and than three times the shortest one is a gap, after which trends start anew.
pub const GAP_FLOOR_PER_WINDOW: u64 = 15;

/// One pool at one poll, as it is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Connections in use.
    pub in_use: u32,
    /// Usable capacity.
    pub capacity: u32,
}

impl Sample {
    /// A sample at `at`; counts beyond `u32::MAX` are clamped.
    pub fn new(at: SystemTime, in_use: u64, capacity: u64) -> Sample {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Sample {
            at_ms: millis(at),
            in_use: clamp(in_use),
            capacity: clamp(capacity),
        }
    }
}

/// `t` in milliseconds since the Unix epoch (0 before it).
pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The history of one pool: its slots, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolHistory {
    slots: Slots,
}

impl PoolHistory {
    /// Folds `s` into its slot and forgets slots that ended more than `window` before it. A
    /// sample older than the newest is ignored (the clock went back: order is kept).
    pub fn record(&mut self, s: Sample, window: Duration) {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        if self.last_ms().is_some_and(|last| s.at_ms < last) {
            return;
        }
        let slot_ms = (window_ms / SLOTS_PER_WINDOW).max(1);
        let gap_floor_ms = window_ms / GAP_FLOOR_PER_WINDOW;
        self.slots
            .record(s.at_ms, s.in_use, s.capacity, slot_ms, gap_floor_ms);
        self.slots
            .forget(s.at_ms.saturating_sub(window_ms), MAX_SLOTS);
    }

    /// The slots, for fitting a line through the in-use counts or drawing them.
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// When the newest sample was taken, in milliseconds since the Unix epoch.
    fn last_ms(&self) -> Option<u64> {
        let slots = &self.slots;
        slots.get(slots.len().checked_sub(1)?).map(|s| s.last_ms)
    }

    /// When the newest sample was taken.
    pub fn last_at(&self) -> Option<SystemTime> {
        self.last_ms()
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
    }

    #[test]
    fn keeps_the_window_in_slots_bounded_at_any_poll_rate() {
        let window = Duration::from_secs(900);
        // (poll interval in ms, polls, want slots kept at most, want samples in them)
        let cases = [
            (1_000, 100, 11, 100.0),
            (1_000, 2_000, 91, 900.0),
            (5_000, 1_000, 91, 180.0),
            (100, 20_000, 91, 9_000.0),
            (250, 100, 3, 100.0),
            (30_000, 100, 31, 30.0),
        ];
        for (interval, polls, max_slots, want) in cases {
            let mut h = PoolHistory::default();
            for i in 0..polls {
                h.record(Sample::new(at(i * interval), i, 1_000_000), window);
            }
            let slots = h.slots();
            assert!(
                slots.len() <= max_slots,
                "every {interval} ms: {} slots",
                slots.len()
            );
            let last = slots.len() - 1;
            let n = slots.range(0, last, millis(at(0))).n;
            assert!(
                (n - want).abs() <= interval_slack(interval),
                "every {interval} ms: {n}"
            );
            let first = slots.get(0).map_or(0, |s| s.first_ms);
            let newest = h.last_at().map(millis).unwrap_or(0);
            assert!(newest - first <= 900_000, "{interval}: {first}..{newest}");
        }
    }

    /// Samples of the oldest slot that may be partly forgotten.
    fn interval_slack(interval: u64) -> f64 {
        (10_000 / interval) as f64
    }

    #[test]
    fn a_capacity_changing_at_every_poll_stays_bounded() {
        let mut h = PoolHistory::default();
        for i in 0..5_000 {
            h.record(
                Sample::new(at(i * 100), 1, 10 + i % 2),
                Duration::from_secs(900),
            );
        }
        assert_eq!(h.slots().len(), MAX_SLOTS);
    }

    #[test]
    fn a_clock_that_goes_back_does_not_disorder_samples() {
        let mut h = PoolHistory::default();
        let w = Duration::from_secs(60);
        h.record(Sample::new(at(5_000), 1, 10), w);
        h.record(Sample::new(at(1_000), 2, 10), w);
        h.record(Sample::new(at(6_000), 3, 10), w);
        let slots = h.slots();
        assert_eq!(slots.range(0, slots.len() - 1, millis(at(0))).y, 4.0);
        assert_eq!(h.last_at(), Some(at(6_000)));
        assert_eq!(Sample::new(at(0), u64::MAX, 1).in_use, u32::MAX);
    }
}
