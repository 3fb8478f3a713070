//! The retry policy: capped exponential backoff with jitter, honouring `Retry-After`. Pure
//! functions: the worker supplies the failure count and the random number, tests supply both.

use std::time::Duration;

/// How long to wait between attempts to a failing receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Largest delay, whatever the failure count or the receiver's `Retry-After`.
    pub max: Duration,
}

/// Jitter spreads retries over ±20% so that receivers recovering from an outage are not hit
/// by every poolwatch at once.
const JITTER: f64 = 0.2;

impl RetryPolicy {
    /// The delay before the next attempt after `failures` consecutive failures (1 for the
    /// first), given the receiver's `Retry-After` if it sent one and `jitter` uniform in [0, 1).
    ///
    /// The exponential delay is `initial * 2^(failures-1)`, scaled by a factor in [0.8, 1.2)
    /// taken from `jitter`; a `Retry-After` is honoured as a lower bound; the result never
    /// exceeds `max`.
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exponent = failures.saturating_sub(1).min(31);
        let base = self
            .initial
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max)
            .min(self.max);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let factor = 1.0 - JITTER + 2.0 * JITTER * jitter;
        // Whole nanoseconds; `as` saturates, so no input can panic here.
        let jittered = Duration::from_nanos((base.as_nanos() as f64 * factor).round() as u64);
        jittered.max(retry_after.unwrap_or_default()).min(self.max)
    }
}

/// Parses a `Retry-After` header given in seconds (`"120"`). The HTTP-date form is not used by
/// webhook receivers in practice and yields `None`, as does anything unparsable: the worker
/// then falls back to its own backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial: MS(100),
            max: MS(1000),
        }
    }

    #[test]
    fn doubles_per_failure_up_to_the_cap() {
        // jitter 0.5 is the midpoint: factor exactly 1.
        let got: Vec<Duration> = (1..=6).map(|n| policy().delay(n, None, 0.5)).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000].map(MS));
        // Absurd failure counts neither overflow nor exceed the cap.
        assert_eq!(policy().delay(u32::MAX, None, 0.5), MS(1000));
        assert_eq!(policy().delay(0, None, 0.5), MS(100));
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_under_the_cap() {
        assert_eq!(policy().delay(1, None, 0.0), MS(80));
        assert!(policy().delay(1, None, 0.999_999) < MS(120));
        assert!(policy().delay(1, None, 0.999_999) > MS(119));
        assert_eq!(policy().delay(10, None, 0.999), MS(1000));
        assert_eq!(policy().delay(10, None, 0.0), MS(800));
        // Out-of-range jitter is clamped rather than trusted.
        assert_eq!(policy().delay(1, None, -5.0), MS(80));
        assert_eq!(policy().delay(1, None, f64::NAN), MS(80));
    }

    #[test]
    fn retry_after_is_a_lower_bound_capped_at_max() {
        assert_eq!(policy().delay(1, Some(MS(500)), 0.5), MS(500));
        assert_eq!(
            policy().delay(1, Some(Duration::from_secs(3600)), 0.5),
            MS(1000)
        );
        // A short Retry-After does not shorten our own backoff.
        assert_eq!(policy().delay(4, Some(Duration::ZERO), 0.5), MS(800));
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after(""), None);
    }
}
