//! A pool's recent connections in use as an inline SVG sparkline, with its current capacity as
//! a dashed line. At most [`BUCKETS`] points whatever the history holds (each the highest in use
//! of its slice of time, from the peaks its history keeps, so a short spike is not smoothed
//! away): the page stays small.

use crate::store::history::{millis, PoolHistory};
use crate::store::trend::Slot;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// Points per sparkline at most.
pub const BUCKETS: usize = 60;

/// The drawing's width and height in SVG units.
const W: f64 = 120.0;
const H: f64 = 30.0;

/// The sparkline of `history` over the `span` before `now` (or since its oldest slot, when the
/// history is shorter: the line fills the width); an empty string with fewer than two slots of
/// time in it.
pub fn sparkline(history: &PoolHistory, now: SystemTime, span: Duration) -> String {
    let now_ms = millis(now);
    let span_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX);
    let slots = history.slots();
    let shown: Vec<&Slot> = (0..slots.len())
        .filter_map(|i| slots.get(i))
        .filter(|s| s.first_ms >= now_ms.saturating_sub(span_ms) && s.first_ms <= now_ms)
        .collect();
    let Some(from) = shown.first().map(|s| s.first_ms) else {
        return String::new();
    };
    let span_ms = now_ms.saturating_sub(from).max(1);
    let mut buckets: [Option<u32>; BUCKETS] = [None; BUCKETS];
    let mut top = 1u32;
    let mut capacity = 0u32;
    let mut count = 0;
    for s in shown {
        let slot = ((s.first_ms - from) as f64 / span_ms as f64 * (BUCKETS - 1) as f64) as usize;
        let b = &mut buckets[slot.min(BUCKETS - 1)];
        *b = Some(b.map_or(s.peak_in_use, |v| v.max(s.peak_in_use)));
        top = top.max(s.peak_in_use).max(s.capacity);
        capacity = s.capacity;
        count += 1;
    }
    if count < 2 {
        return String::new();
    }
    let y = |v: u32| H - f64::from(v) / f64::from(top) * (H - 2.0) - 1.0;
    let mut points = String::new();
    for (i, v) in buckets.iter().enumerate() {
        if let Some(v) = v {
            let x = i as f64 / (BUCKETS - 1) as f64 * W;
            let _ = write!(points, "{x:.0},{:.1} ", y(*v));
        }
    }
    format!(
        "<svg viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"in use over the last {shown}\"><line x1=\"0\" x2=\"{W}\" y1=\"{cy:.1}\" \
         y2=\"{cy:.1}\"/><polyline points=\"{p}\"/></svg>",
        shown = crate::timefmt::human(Duration::from_millis(span_ms)),
        cy = y(capacity),
        p = points.trim_end()
    )
}
