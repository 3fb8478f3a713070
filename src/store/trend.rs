//! Least-squares sums of a pool's in-use count, kept per time slot as samples arrive, so that a
//! trend over minutes is fitted from a few dozen slot sums instead of hundreds of samples.
//!
//! A [`Slot`] covers the samples of one `slot` length of time that share one capacity (a
//! capacity change starts a new slot). Each keeps its count, first and last time, the spacing
//! from the sample before it, its shortest inner spacing, and the sums Σx, Σy, Σx², Σxy, Σy²
//! with `x` in minutes since its own first sample — small numbers, so that the sums stay exact.
//! [`Sums::shifted`] moves sums to another origin, which is how slots are combined.

use std::collections::VecDeque;

/// Sums of points `(x, y)` from which a least-squares line is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    /// Number of points.
    pub n: f64,
    /// Σx.
    pub x: f64,
    /// Σy.
    pub y: f64,
    /// Σx².
    pub xx: f64,
    /// Σxy.
    pub xy: f64,
    /// Σy².
    pub yy: f64,
}

/// A least-squares line `y = intercept + slope * x`, with its R² (1 when `y` is constant).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// The value at `x = 0`.
    pub intercept: f64,
    /// Change of `y` per unit of `x`.
    pub slope: f64,
    /// Coefficient of determination.
    pub r2: f64,
}

impl Sums {
    /// The sums of `points`.
    pub fn of(points: impl Iterator<Item = (f64, f64)>) -> Sums {
        let mut s = Sums::default();
        points.for_each(|(x, y)| s.add(x, y));
        s
    }

    /// Adds one point.
    pub fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.x += x;
        self.y += y;
        self.xx += x * x;
        self.xy += x * y;
        self.yy += y * y;
    }

    /// Adds the points of `other`.
    pub fn merge(&mut self, other: &Sums) {
        self.n += other.n;
        self.x += other.x;
        self.y += other.y;
        self.xx += other.xx;
        self.xy += other.xy;
        self.yy += other.yy;
    }

    /// The same points with `d` added to every `x`.
    pub fn shifted(&self, d: f64) -> Sums {
        Sums {
            x: self.x + self.n * d,
            xx: self.xx + 2.0 * d * self.x + self.n * d * d,
            xy: self.xy + d * self.y,
            ..*self
        }
    }

    /// The least-squares line through the points; `None` for fewer than two distinct `x`.
    pub fn fit(&self) -> Option<Fit> {
        if self.n < 2.0 {
            return None;
        }
        let (mx, my) = (self.x / self.n, self.y / self.n);
        let sxx = self.xx - self.n * mx * mx;
        let sxy = self.xy - self.n * mx * my;
        let syy = self.yy - self.n * my * my;
        // Deviations computed from raw sums lose the digits the raw sums carry beyond them.
        if sxx <= 1e-12 * self.xx.max(1.0) {
            return None;
        }
        let slope = sxy / sxx;
        let r2 = if syy <= 1e-12 * self.yy.max(1.0) {
            1.0
        } else {
            ((sxy * sxy) / (sxx * syy)).min(1.0)
        };
        Some(Fit {
            intercept: my - slope * mx,
            slope,
            r2,
        })
    }
}

/// The samples of one slot of time with one capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// The slot's index: its start in milliseconds divided by the slot length.
    pub index: u64,
    /// The capacity of every sample in it.
    pub capacity: u32,
    /// When its first sample was taken (ms since the Unix epoch).
    pub first_ms: u64,
    /// When its last sample was taken.
    pub last_ms: u64,
    /// Time from the sample before its first one; `u64::MAX` when there was none.
    pub gap_before_ms: u64,
    /// Shortest spacing between two of its samples; `u64::MAX` with one sample.
    pub shortest_ms: u64,
    /// The in-use count of its last sample.
    pub last_in_use: u32,
    /// Sums of (minutes since `first_ms`, in use).
    pub sums: Sums,
}

/// Minutes from `to_ms` to `from_ms` (negative when `from_ms` is earlier).
pub fn minutes_between(from_ms: u64, to_ms: u64) -> f64 {
    (from_ms as f64 - to_ms as f64) / 60_000.0
}

/// The slots of one pool, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slots {
    slots: VecDeque<Slot>,
}

impl Slots {
    /// Adds a sample taken at `at_ms` (not before the last one) to its slot of `slot_ms`.
    pub fn record(&mut self, at_ms: u64, in_use: u32, capacity: u32, slot_ms: u64) {
        let index = at_ms / slot_ms.max(1);
        let y = f64::from(in_use);
        match self.slots.back_mut() {
            Some(s) if s.index == index && s.capacity == capacity => {
                s.shortest_ms = s.shortest_ms.min(at_ms - s.last_ms);
                s.last_ms = at_ms;
                s.last_in_use = in_use;
                s.sums.add(minutes_between(at_ms, s.first_ms), y);
            }
            last => {
                let gap_before_ms = last.map_or(u64::MAX, |s| at_ms - s.last_ms);
                self.slots.push_back(Slot {
                    index,
                    capacity,
                    first_ms: at_ms,
                    last_ms: at_ms,
                    gap_before_ms,
                    shortest_ms: u64::MAX,
                    last_in_use: in_use,
                    sums: Sums::of(std::iter::once((0.0, y))),
                });
            }
        }
    }

    /// Forgets the slots whose last sample is at or before `oldest_ms`, and the oldest beyond
    /// `max` slots.
    pub fn forget(&mut self, oldest_ms: u64, max: usize) {
        while self.slots.front().is_some_and(|s| s.last_ms <= oldest_ms) {
            self.slots.pop_front();
        }
        while self.slots.len() > max {
            self.slots.pop_front();
        }
    }

    /// The slots, newest first.
    pub fn newest_first(&self) -> impl Iterator<Item = &Slot> + Clone {
        self.slots.iter().rev()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_fit_a_line_and_shift_exactly() {
        let line = Sums::of((0..10).map(|i| (f64::from(i), 3.0 + 2.0 * f64::from(i))));
        let f = line.fit().expect("fit");
        assert!((f.slope - 2.0).abs() < 1e-9 && (f.intercept - 3.0).abs() < 1e-9);
        assert!((f.r2 - 1.0).abs() < 1e-9);
        // Shifting x by -10 moves the intercept to the value at x = 10.
        let g = line.shifted(-10.0).fit().expect("fit");
        assert!((g.slope - 2.0).abs() < 1e-9 && (g.intercept - 23.0).abs() < 1e-9);
        let mut halves = Sums::of((0..5).map(|i| (f64::from(i), 3.0 + 2.0 * f64::from(i))));
        halves.merge(
            &Sums::of((0..5).map(|i| (f64::from(i), 13.0 + 2.0 * f64::from(i)))).shifted(5.0),
        );
        assert_eq!(halves.fit().map(|f| f.slope.round()), Some(2.0));
        assert_eq!(Sums::of([(1.0, 1.0), (1.0, 2.0)].into_iter()).fit(), None);
        assert_eq!(Sums::of([(1.0, 1.0)].into_iter()).fit(), None);
        let flat = Sums::of((0..10).map(|i| (f64::from(i), 7.0))).fit();
        assert_eq!(flat.map(|f| (f.slope, f.r2)), Some((0.0, 1.0)));
    }

    #[test]
    fn large_values_far_from_the_origin_stay_exact() {
        // Ten minutes of a pool of 50,000 rising 1 a minute, one sample a second.
        let s = Sums::of((0..600).map(|i| {
            let x = f64::from(i) / 60.0;
            (x, 40_000.0 + x)
        }));
        let f = s.shifted(-1e4).fit().expect("fit");
        assert!((f.slope - 1.0).abs() < 1e-6, "{f:?}");
        assert!(f.r2 > 0.999_999, "{f:?}");
    }

    #[test]
    fn slots_split_on_time_and_capacity_and_record_gaps() {
        let mut slots = Slots::default();
        // slot of 10 s: samples at 0, 1, 2 s; capacity change at 3 s; 30 s gap; next slot.
        for (at, in_use, cap) in [(0, 1, 10), (1_000, 2, 10), (2_000, 3, 10), (3_000, 4, 20)] {
            slots.record(at, in_use, cap, 10_000);
        }
        slots.record(33_000, 5, 20, 10_000);
        let got: Vec<(u64, u32, f64, u64, u64)> = slots
            .newest_first()
            .map(|s| {
                (
                    s.index,
                    s.capacity,
                    s.sums.n,
                    s.gap_before_ms,
                    s.shortest_ms,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (3, 20, 1.0, 30_000, u64::MAX),
                (0, 20, 1.0, 1_000, u64::MAX),
                (0, 10, 3.0, u64::MAX, 1_000),
            ]
        );
        slots.forget(3_000, 10);
        assert_eq!(slots.newest_first().count(), 1);
        slots.record(34_000, 5, 20, 10_000);
        slots.forget(0, 0);
        assert_eq!(slots.newest_first().count(), 0);
    }
}
