//! Time to exhaustion: a least-squares line through a pool's recent connections in use (like
//! PromQL `predict_linear`), and whether it reaches the capacity within a horizon.
//!
//! Pure: the pool's history and the evaluation time are arguments. The guards that keep it quiet
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

use crate::store::history::{millis, PoolHistory};
pub use crate::store::trend::Fit;
use crate::store::trend::Sums;
use std::time::{Duration, SystemTime};

/// Fewest points a fit is made from.
pub const MIN_SAMPLES: usize = 8;

/// The recent half of the window must rise at least this fraction of the whole window's
/// slope; below it the rise has stopped (a step, a ramp that levelled off).
pub const STALLED_BELOW: f64 = 0.5;

/// A pool is refitted once per `window / REFITS_PER_WINDOW` (20 s for the default window):
/// a trend over minutes does not change between two polls a second apart, and refitting every
/// pool on every poll would cost more than all other rules together.
pub const REFITS_PER_WINDOW: u32 = 30;

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

/// Fits a line through `points` (`x`, `y`); `None` for fewer than two distinct `x`.
pub fn fit(points: impl Iterator<Item = (f64, f64)>) -> Option<Fit> {
    Sums::of(points).fit()
}

/// The slots a fit uses: positions `from..=to` of the slots of `history`, the newest at or
/// before `now` and the oldest starting within `window` of it and not before its segment (the
/// last gap or capacity change, see [`crate::store::trend`]).
fn usable(history: &PoolHistory, now_ms: u64, window: Duration) -> Option<(usize, usize)> {
    let slots = history.slots();
    let to = slots.newest_at(now_ms)?;
    let newest = slots.get(to)?;
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    let start = now_ms.saturating_sub(window_ms).max(newest.segment_ms);
    let from = slots.first_from(start, 0, to);
    (from <= to).then_some((from, to))
}

/// Whether a target observed at `now`, and before that at `previous`, is due for refits of its
/// pools' trends: when `previous` lies in an earlier slot of `window / REFITS_PER_WINDOW` than
/// `now`, or there is none. Until then the last verdicts hold. One decision per target and
/// report, so that a report between refits costs the rule nothing per pool.
pub fn due(previous: Option<SystemTime>, now: SystemTime, p: &Predict) -> bool {
    let slot = u64::try_from((p.window / REFITS_PER_WINDOW).as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    previous.is_none_or(|t| millis(t) / slot != millis(now) / slot)
}

/// Minutes until `f` (fitted with `x` in minutes, now at 0) reaches `capacity`; infinite when
/// it does not rise.
fn minutes_to(f: &Fit, capacity: f64) -> f64 {
    if f.slope <= 0.0 {
        return f64::INFINITY;
    }
    ((capacity - f.intercept) / f.slope).max(0.0)
}

/// Whether the pool whose recent past is `history` (the newest sample is the current poll) is
/// predicted to be full within `p.horizon` of `now`.
pub fn predict(history: &PoolHistory, now: SystemTime, p: &Predict) -> Result<Prediction, Quiet> {
    let now_ms = millis(now);
    let slots = history.slots();
    let (from, to) = usable(history, now_ms, p.window).ok_or(Quiet::TooLittleHistory)?;
    let (Some(first), Some(last)) = (slots.get(from), slots.get(to)) else {
        return Err(Quiet::TooLittleHistory);
    };
    let span_ms = last.last_ms - first.first_ms;
    let whole = slots.range(from, to, now_ms);
    if whole.n < MIN_SAMPLES as f64 || u128::from(span_ms) * 2 < p.window.as_millis() {
        return Err(Quiet::TooLittleHistory);
    }
    if last.last_in_use >= last.capacity {
        return Err(Quiet::Full);
    }
    let capacity = f64::from(last.capacity);
    let whole = whole.fit().ok_or(Quiet::TooLittleHistory)?;
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
    let half_from = now_ms.saturating_sub(now_ms - last.last_ms + span_ms / 2);
    let recent_from = slots.first_from(half_from, from, to);
    let recent = (recent_from <= to)
        .then(|| slots.range(recent_from, to, now_ms).fit())
        .flatten();
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
