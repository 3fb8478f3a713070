//! Order statistics of a set of samples, printed in one line.

use std::fmt;
use std::time::Duration;

/// Sorted samples (in microseconds, or any unit the caller names).
#[derive(Debug, Clone)]
pub struct Summary {
    sorted: Vec<f64>,
}

impl Summary {
    /// Sorts `samples`; NaNs are not expected and sort last.
    pub fn new(mut samples: Vec<f64>) -> Summary {
        samples.sort_by(|a, b| a.total_cmp(b));
        Summary { sorted: samples }
    }

    /// Durations as milliseconds.
    pub fn of_durations_ms(samples: &[Duration]) -> Summary {
        Summary::new(samples.iter().map(|d| d.as_secs_f64() * 1e3).collect())
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The `p`-th percentile (0–100) by nearest rank; NaN when empty.
    pub fn pct(&self, p: f64) -> f64 {
        if self.sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    /// The median.
    pub fn median(&self) -> f64 {
        self.pct(50.0)
    }

    /// The smallest sample.
    pub fn min(&self) -> f64 {
        self.sorted.first().copied().unwrap_or(f64::NAN)
    }

    /// The largest sample.
    pub fn max(&self) -> f64 {
        self.sorted.last().copied().unwrap_or(f64::NAN)
    }

    /// The arithmetic mean.
    pub fn mean(&self) -> f64 {
        self.sorted.iter().sum::<f64>() / self.sorted.len() as f64
    }
}

impl fmt::Display for Summary {
    /// `n=500 min=… p50=… p95=… p99=… max=…`, three significant decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} min={:.3} p50={:.3} p95={:.3} p99={:.3} max={:.3}",
            self.len(),
            self.min(),
            self.median(),
            self.pct(95.0),
            self.pct(99.0),
            self.max()
        )
    }
}
