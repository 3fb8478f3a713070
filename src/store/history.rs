//! A pool's recent past: in use, capacity and waiting, sampled from its reports over a window
//! (`[history] window`, default 15 minutes), for rules that need a trend and for people who
//! want to see one. Bounded whatever the poll interval: at most [`MAX_SAMPLES`] per pool,
//! thinned to one per `window / MAX_SAMPLES` when polls come faster. Beside the samples, the
//! least-squares sums of their in-use counts, running per segment and kept per
//! [`SLOTS_PER_WINDOW`]th of the window ([`super::trend`]), from which a trend is fitted without
//! reading the samples.

use super::trend::Slots;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Samples kept per pool at most (about 21 KB).
pub const MAX_SAMPLES: usize = 900;

/// Trend slots per window (10 s each for the default 15 minutes; about 8 KB per pool).
pub const SLOTS_PER_WINDOW: u64 = 90;

/// A spacing between samples longer than the window divided by this (1 minute for the default
/// 15) and than three times the shortest one is a gap, after which trends start anew.
pub const GAP_FLOOR_PER_WINDOW: u64 = 15;

/// One pool at one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Connections in use.
    pub in_use: u32,
    /// Usable capacity.
    pub capacity: u32,
    /// Clients waiting.
    pub waiting: u32,
}

impl Sample {
    /// A sample at `at`; counts beyond `u32::MAX` are clamped.
    pub fn new(at: SystemTime, in_use: u64, capacity: u64, waiting: u64) -> Sample {
        let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Sample {
            at_ms: millis(at),
            in_use: clamp(in_use),
            capacity: clamp(capacity),
            waiting: clamp(waiting),
        }
    }

    /// When the sample was taken.
    pub fn at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.at_ms)
    }
}

/// `t` in milliseconds since the Unix epoch (0 before it).
pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The samples of one pool, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    samples: VecDeque<Sample>,
    /// The in-use sums per slot of the window.
    slots: Slots,
}

impl Samples {
    /// Adds `s` (unless a kept sample is closer than the window allows) and forgets samples
    /// older than `window` before it.
    pub fn record(&mut self, s: Sample, window: Duration) {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let spacing = window_ms / MAX_SAMPLES as u64;
        match self.samples.back() {
            Some(last) if s.at_ms < last.at_ms => return, // the clock went back: keep order
            Some(last) if s.at_ms - last.at_ms < spacing => return,
            _ => {}
        }
        self.samples.push_back(s);
        let slot_ms = (window_ms / SLOTS_PER_WINDOW).max(1);
        let gap_floor_ms = window_ms / GAP_FLOOR_PER_WINDOW;
        self.slots
            .record(s.at_ms, s.in_use, s.capacity, slot_ms, gap_floor_ms);
        let oldest = s.at_ms.saturating_sub(window_ms);
        while self.samples.front().is_some_and(|f| f.at_ms <= oldest) {
            self.samples.pop_front();
        }
        while self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.slots.forget(oldest, MAX_SAMPLES);
    }

    /// The trend slots, for fitting a line through the in-use counts.
    pub fn slots(&self) -> &Slots {
        &self.slots
    }

    /// The samples, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Sample> {
        self.samples.iter()
    }

    /// The `i`-th sample, oldest first.
    pub fn get(&self, i: usize) -> Option<&Sample> {
        self.samples.get(i)
    }

    /// How many samples are kept.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is kept.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// When the newest sample was taken.
    pub fn last_at(&self) -> Option<SystemTime> {
        self.samples.back().map(Sample::at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
    }

    #[test]
    fn keeps_the_window_and_stays_bounded_at_any_poll_rate() {
        let window = Duration::from_secs(900);
        // (poll interval in ms, polls, want samples kept)
        let cases = [
            (1_000, 100, 100),
            (1_000, 2_000, 900),
            (5_000, 1_000, 180),
            (100, 20_000, 900),
            (250, 100, 25),
        ];
        for (interval, polls, want) in cases {
            let mut s = Samples::default();
            for i in 0..polls {
                s.record(Sample::new(at(i * interval), i, 100, 0), window);
            }
            assert_eq!(s.len(), want, "every {interval} ms, {polls} polls");
            let first = s.iter().next().map(|x| x.at_ms).unwrap_or(0);
            let last = s.last_at().map(millis).unwrap_or(0);
            assert!(last - first <= 900_000, "{interval}: {first}..{last}");
        }
    }

    #[test]
    fn a_clock_that_goes_back_does_not_disorder_samples() {
        let mut s = Samples::default();
        let w = Duration::from_secs(60);
        s.record(Sample::new(at(5_000), 1, 10, 0), w);
        s.record(Sample::new(at(1_000), 2, 10, 0), w);
        s.record(Sample::new(at(6_000), 3, 10, 0), w);
        let in_use: Vec<u32> = s.iter().map(|x| x.in_use).collect();
        assert_eq!(in_use, [1, 3]);
        assert_eq!(Sample::new(at(0), u64::MAX, 1, 0).in_use, u32::MAX);
    }
}
