//! Time to exhaustion: a least-squares line through a pool's recent connections in use (like
//! PromQL `predict_linear`), and whether it reaches the capacity within a horizon.
//!
//! Pure: the samples and the evaluation time are arguments. The guards that keep it quiet
//! where a straight line would lie, each with its reason ([`Quiet`]):
//!
//! * only samples since the last gap (a target that was down, polls missed) and since the last
//!   capacity change (a restart or reconfiguration) are fitted; they must be at least
//!   [`MIN_SAMPLES`] and cover half the window — so a gap or a reset silences it until enough
//!   fresh history exists;
//! * a pool already full is left to the rules that page on full pools;
//! * the line must rise and explain the data (R² ≥ `min_r2`): noise and a sawtooth do not;
//! * the recent half of the window, fitted alone, must rise at least half as fast: a step
//!   change (flat after the jump; a pure step's R² never exceeds 0.75 either) and a ramp that
//!   has stopped do not.

use crate::store::history::{millis, Sample, Samples};
use std::time::{Duration, SystemTime};

/// Fewest points a fit is made from.
pub const MIN_SAMPLES: usize = 8;

/// A spacing between two samples longer than this many times the shortest one (and than a
/// tenth of the window) is a gap: polls were missed; only the samples after it are fitted.
pub const GAP_FACTOR: f64 = 3.0;

/// Most points a fit is made from; denser history is thinned evenly.
pub const MAX_POINTS: usize = 120;

/// The recent half of the window must rise at least this fraction of the whole window's
/// slope; below it the rise has stopped (a step, a ramp that levelled off).
pub const STALLED_BELOW: f64 = 0.5;

/// A pool is refitted once per `window / REFITS_PER_WINDOW` (10 s for the default window):
/// a trend over minutes does not change between two polls a second apart, and refitting every
/// pool on every poll would cost more than all other rules together.
pub const REFITS_PER_WINDOW: u32 = 60;

/// Default fitting window.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Default horizon.
pub const DEFAULT_HORIZON: Duration = Duration::from_secs(30 * 60);

/// Default least R² of the fit.
pub const DEFAULT_MIN_R2: f64 = 0.8;

/// The settings of an `exhaustion_predicted` rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Predict {
    /// How much history is fitted (PromQL's range, `in_use[10m]`).
    pub window: Duration,
    /// How far ahead exhaustion counts.
    pub horizon: Duration,
    /// The least coefficient of determination of the fit, 0..=1.
    pub min_r2: f64,
}

impl Default for Predict {
    fn default() -> Self {
        Predict {
            window: DEFAULT_WINDOW,
            horizon: DEFAULT_HORIZON,
            min_r2: DEFAULT_MIN_R2,
        }
    }
}

/// A pool predicted to be full within the horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// When the fitted line reaches the capacity, from now.
    pub exhausted_in: Duration,
    /// The fitted trend, in connections per minute (positive).
    pub slope_per_minute: f64,
    /// The fit's R².
    pub r2: f64,
}

/// Why no exhaustion is predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiet {
    /// Too few samples, or too short a span, since the last gap or capacity change.
    TooLittleHistory,
    /// The pool is already full (other rules cover it), or has no capacity.
    Full,
    /// The trend is flat or falling.
    NotRising,
    /// The line does not explain the data (R² below `min_r2`): noise, sawtooth.
    PoorFit,
    /// The recent half of the window rises less than half as fast as the whole: the rise
    /// stopped (a step change, a ramp that levelled off).
    Stalled,
    /// Rising, but the capacity is reached only after the horizon.
    BeyondHorizon,
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

/// Fits a line through `points` (`x`, `y`); `None` for fewer than two distinct `x`. Two
/// passes (means, then deviations from them), which keeps large `y` exact enough.
pub fn fit<I>(points: I) -> Option<Fit>
where
    I: Iterator<Item = (f64, f64)> + Clone,
{
    let (mut n, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (x, y) in points.clone() {
        n += 1.0;
        sx += x;
        sy += y;
    }
    if n < 2.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in points {
        let (dx, dy) = (x - mx, y - my);
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    if sxx <= f64::EPSILON {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy <= f64::EPSILON {
        1.0
    } else {
        (sxy * sxy) / (sxx * syy)
    };
    Some(Fit {
        intercept: my - slope * mx,
        slope,
        r2,
    })
}

/// The index of the first sample taken at or after `t_ms` (samples are in time order).
fn first_from(samples: &Samples, t_ms: u64) -> usize {
    let (mut lo, mut hi) = (0, samples.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if samples.get(mid).is_some_and(|s| s.at_ms < t_ms) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The samples a fit uses, newest first: at most [`MAX_POINTS`], evenly spaced back from the
/// newest taken by `now` to the oldest within `window`, and none from before the last gap or
/// capacity change between two of them. A gap is a spacing longer than [`GAP_FACTOR`] times the
/// shortest one and than a tenth of the window. The cost is that of the points, whatever the
/// poll rate: the history is only searched.
fn usable(samples: &Samples, now_ms: u64, window: Duration) -> Vec<Sample> {
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    let end = first_from(samples, now_ms.saturating_add(1));
    let start = first_from(samples, now_ms.saturating_sub(window_ms)).min(end);
    let stride = (end - start).div_ceil(MAX_POINTS).max(1);
    let mut picked: Vec<Sample> = (start..end)
        .rev()
        .step_by(stride)
        .filter_map(|i| samples.get(i).copied())
        .collect();
    let shortest = picked
        .windows(2)
        .map(|w| w[0].at_ms - w[1].at_ms)
        .min()
        .unwrap_or(0);
    let gap = (GAP_FACTOR * shortest as f64).max(window_ms as f64 / 10.0);
    if let Some(k) = picked
        .windows(2)
        .position(|w| (w[0].at_ms - w[1].at_ms) as f64 > gap || w[0].capacity != w[1].capacity)
    {
        picked.truncate(k + 1);
    }
    picked
}

/// Whether a pool whose recent samples are `samples` is due for a refit at `now`: when its
/// previous sample (the newest before `now`) lies in an earlier slot of
/// `window / REFITS_PER_WINDOW` than `now`, or there is none. Until then the last verdict holds.
pub fn due(samples: &Samples, now: SystemTime, p: &Predict) -> bool {
    let now_ms = millis(now);
    let slot = u64::try_from((p.window / REFITS_PER_WINDOW).as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let before = first_from(samples, now_ms)
        .checked_sub(1)
        .and_then(|i| samples.get(i));
    before.is_none_or(|s| s.at_ms / slot != now_ms / slot)
}

/// Minutes until `f` (fitted with `x` in minutes, now at 0) reaches `capacity`; infinite when
/// it does not rise.
fn minutes_to(f: &Fit, capacity: f64) -> f64 {
    if f.slope <= 0.0 {
        return f64::INFINITY;
    }
    ((capacity - f.intercept) / f.slope).max(0.0)
}

/// Whether the pool whose recent samples are `samples` (the newest is the current poll) is
/// predicted to be full within `p.horizon` of `now`.
pub fn predict(samples: &Samples, now: SystemTime, p: &Predict) -> Result<Prediction, Quiet> {
    let now_ms = millis(now);
    let used = usable(samples, now_ms, p.window);
    let (Some(last), Some(first)) = (used.first(), used.last()) else {
        return Err(Quiet::TooLittleHistory);
    };
    let span_ms = last.at_ms - first.at_ms;
    if used.len() < MIN_SAMPLES || u128::from(span_ms) * 2 < p.window.as_millis() {
        return Err(Quiet::TooLittleHistory);
    }
    if last.in_use >= last.capacity {
        return Err(Quiet::Full);
    }
    let capacity = f64::from(last.capacity);
    let points = used.iter().map(|s| {
        let ago = now_ms.saturating_sub(s.at_ms) as f64 / 60_000.0;
        (-ago, f64::from(s.in_use))
    });
    let whole = fit(points.clone()).ok_or(Quiet::TooLittleHistory)?;
    if whole.slope <= 0.0 {
        return Err(Quiet::NotRising);
    }
    if whole.r2 < p.min_r2 {
        return Err(Quiet::PoorFit);
    }
    let horizon = p.horizon.as_secs_f64() / 60.0;
    let minutes = minutes_to(&whole, capacity);
    if minutes > horizon {
        return Err(Quiet::BeyondHorizon);
    }
    let half = (now_ms.saturating_sub(last.at_ms) + span_ms / 2) as f64 / 60_000.0;
    let recent = fit(points.take_while(|(x, _)| *x >= -half));
    if recent.is_none_or(|f| f.slope < whole.slope * STALLED_BELOW) {
        return Err(Quiet::Stalled);
    }
    Ok(Prediction {
        exhausted_in: Duration::from_secs_f64(minutes * 60.0),
        slope_per_minute: whole.slope,
        r2: whole.r2,
    })
}

/// `~3 min`-style: whole minutes from a minute on, seconds below.
pub fn approx(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 2 * 3600 {
        format!("{} min", (secs + 30) / 60)
    } else {
        format!("{} h", (secs + 1800) / 3600)
    }
}

/// A slope for people: signed, one decimal (`+4.1`).
pub fn signed(per_minute: f64) -> String {
    format!("{per_minute:+.1}")
}

#[cfg(test)]
#[path = "predict_tests.rs"]
mod tests;
