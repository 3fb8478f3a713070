//! Least-squares sums of a pool's in-use count, kept as samples arrive, so that a trend over
//! minutes is fitted from two or three reads instead of hundreds of samples.
//!
//! Samples fall into *segments*: a segment ends at a gap (a spacing over [`GAP_FACTOR`] times
//! the shortest one of the segment and over the gap floor: polls were missed, the target was
//! down) or a capacity change (a restart, a reconfiguration), because a line through both sides
//! would lie. Within a segment, samples are grouped per [`Slot`] of time; each slot keeps the
//! running sums Σx, Σy, Σx², Σxy, Σy² of its segment *through* it (x in minutes since the
//! origin of the [`Slots`]), so the sums of any run of slots of one segment are one subtraction
//! ([`Slots::range`]). The origin moves forward once a day, and the sums with it, so that they
//! stay small enough to be exact.

use std::collections::VecDeque;

/// A spacing longer than this many times the shortest one of its segment (and than the gap
/// floor) ends the segment: polls were missed.
pub const GAP_FACTOR: f64 = 3.0;

/// The origin of x moves forward when the newest sample is this far past it.
const REBASE_AFTER_MS: u64 = 24 * 3600 * 1000;

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

    /// The sums of the points of `self` that are not in `other` (which must be a part of them).
    pub fn minus(&self, other: &Sums) -> Sums {
        Sums {
            n: self.n - other.n,
            x: self.x - other.x,
            y: self.y - other.y,
            xx: self.xx - other.xx,
            xy: self.xy - other.xy,
            yy: self.yy - other.yy,
        }
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

/// The samples of one slot of time within one segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slot {
    /// When its first sample was taken (ms since the Unix epoch).
    pub first_ms: u64,
    /// When its last sample was taken.
    pub last_ms: u64,
    /// When its segment's first sample was taken.
    pub segment_ms: u64,
    /// The capacity of every sample in it.
    pub capacity: u32,
    /// The in-use count of its last sample.
    pub last_in_use: u32,
    /// The highest in-use count of its samples (a spike between two fits is still seen).
    pub peak_in_use: u32,
    /// The sums of its segment's samples through its last one.
    through: Sums,
}

/// Minutes from `to_ms` to `from_ms` (negative when `from_ms` is earlier).
pub fn minutes_between(from_ms: u64, to_ms: u64) -> f64 {
    (from_ms as f64 - to_ms as f64) / 60_000.0
}

/// The slots of one pool, oldest first, with the state that cuts segments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slots {
    slots: VecDeque<Slot>,
    /// Where x is 0.
    origin_ms: u64,
    /// The running sums through the last forgotten slot, when the oldest kept slot continues
    /// its segment.
    base: Sums,
    /// The shortest spacing between two samples since the last gap.
    shortest_ms: u64,
    /// The length of a slot, as last recorded.
    slot_ms: u64,
}

impl Slots {
    /// Adds a sample taken at `at_ms` (not before the last one) to its slot of `slot_ms`; a
    /// spacing over `gap_floor_ms` (and [`GAP_FACTOR`] times the shortest) or a new capacity
    /// starts a segment.
    pub fn record(
        &mut self,
        at_ms: u64,
        in_use: u32,
        capacity: u32,
        slot_ms: u64,
        gap_floor_ms: u64,
    ) {
        if self.slots.is_empty() {
            self.origin_ms = at_ms;
        } else if at_ms - self.origin_ms > REBASE_AFTER_MS {
            self.rebase(at_ms);
        }
        self.slot_ms = slot_ms.max(1);
        let point = (minutes_between(at_ms, self.origin_ms), f64::from(in_use));
        // A gap makes the spacing unknown again; a capacity change does not.
        let (mut continues, mut gap) = (None, true);
        if let Some(last) = self.slots.back() {
            let spacing = at_ms - last.last_ms;
            let floor = (GAP_FACTOR * self.shortest_ms as f64).max(gap_floor_ms as f64);
            gap = spacing as f64 > floor;
            continues = (!gap && last.capacity == capacity).then_some(last);
        }
        self.shortest_ms = match (gap, self.slots.back()) {
            (false, Some(last)) => self.shortest_ms.min(at_ms - last.last_ms),
            _ => u64::MAX,
        };
        let (segment_ms, mut through, same_slot) = match continues {
            Some(last) => (
                last.segment_ms,
                last.through,
                last.first_ms / self.slot_ms == at_ms / self.slot_ms,
            ),
            None => (at_ms, Sums::default(), false),
        };
        through.add(point.0, point.1);
        if let (true, Some(last)) = (same_slot, self.slots.back_mut()) {
            last.last_ms = at_ms;
            last.last_in_use = in_use;
            last.peak_in_use = last.peak_in_use.max(in_use);
            last.through = through;
            return;
        }
        if self.slots.len() == self.slots.capacity() {
            // Grown by an eighth, not doubled: kept at about the window's slots, whereas
            // doubling would hold 128 places for 91 slots in every pool.
            self.slots.reserve_exact((self.slots.len() / 8).max(4));
        }
        self.slots.push_back(Slot {
            first_ms: at_ms,
            last_ms: at_ms,
            segment_ms,
            capacity,
            last_in_use: in_use,
            peak_in_use: in_use,
            through,
        });
    }

    /// Moves the origin to `at_ms` and drops from the running sums what precedes the kept
    /// slots, so that they stay the size of the kept history.
    fn rebase(&mut self, at_ms: u64) {
        let d = minutes_between(self.origin_ms, at_ms);
        let oldest_segment = self.slots.front().map(|s| s.segment_ms);
        for s in self.slots.iter_mut() {
            if Some(s.segment_ms) == oldest_segment {
                s.through = s.through.minus(&self.base);
            }
            s.through = s.through.shifted(d);
        }
        self.base = Sums::default();
        self.origin_ms = at_ms;
    }

    /// Forgets the slots whose last sample is at or before `oldest_ms`, and the oldest beyond
    /// `max` slots.
    pub fn forget(&mut self, oldest_ms: u64, max: usize) {
        while self
            .slots
            .front()
            .is_some_and(|s| s.last_ms <= oldest_ms || self.slots.len() > max)
        {
            if let Some(gone) = self.slots.pop_front() {
                let continued = self
                    .slots
                    .front()
                    .is_some_and(|s| s.segment_ms == gone.segment_ms);
                self.base = if continued {
                    gone.through
                } else {
                    Sums::default()
                };
            }
        }
    }

    /// How many slots are kept.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no slot is kept.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The `i`-th slot, oldest first.
    pub fn get(&self, i: usize) -> Option<&Slot> {
        self.slots.get(i)
    }

    /// The position of the newest slot whose first sample is at or before `at_ms`.
    pub fn newest_at(&self, at_ms: u64) -> Option<usize> {
        let last = self.slots.len().checked_sub(1)?;
        if self.slots[last].first_ms <= at_ms {
            return Some(last);
        }
        self.first_from(at_ms.saturating_add(1), 0, last)
            .checked_sub(1)
    }

    /// The position of the first slot in `lo..=hi` whose first sample is at or after `at_ms`
    /// (`hi + 1` when none is). Slots are spaced nearly evenly, so the search starts where
    /// their average spacing says and walks the few steps that gaps and capacity changes add.
    pub fn first_from(&self, at_ms: u64, lo: usize, hi: usize) -> usize {
        let (Some(first), Some(last)) = (self.slots.get(lo), self.slots.get(hi)) else {
            return hi + 1;
        };
        let spacing = match hi - lo {
            0 => self.slot_ms,
            n => (last.first_ms - first.first_ms) / n as u64,
        };
        let behind = last.first_ms.saturating_sub(at_ms) / spacing.max(1);
        let mut i = hi
            .saturating_sub(usize::try_from(behind).unwrap_or(usize::MAX))
            .max(lo);
        while i > lo && self.slots[i - 1].first_ms >= at_ms {
            i -= 1;
        }
        while i <= hi && self.slots[i].first_ms < at_ms {
            i += 1;
        }
        i
    }

    /// The sums of the samples of slots `from..=to` (which must be of one segment), with x in
    /// minutes since `to_ms`.
    pub fn range(&self, from: usize, to: usize, to_ms: u64) -> Sums {
        let starts_segment = |s: &Slot| s.first_ms == s.segment_ms;
        let before = match (from.checked_sub(1), self.slots.get(from)) {
            (_, Some(s)) if starts_segment(s) => Sums::default(),
            (Some(prev), _) => self.slots[prev].through,
            (None, _) => self.base,
        };
        let through = self.slots.get(to).map_or(Sums::default(), |s| s.through);
        through
            .minus(&before)
            .shifted(minutes_between(self.origin_ms, to_ms))
    }
}

#[cfg(test)]
#[path = "trend_tests.rs"]
mod tests;
