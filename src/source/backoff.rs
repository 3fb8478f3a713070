//! Reconnect backoff: capped exponential with "equal jitter" (a random point in the upper half
//! of the current step), so that many poolwatch instances do not reconnect in lockstep to a
//! server that has just come back.

use std::time::Duration;

/// Backoff state. Pure apart from the random number passed to [`Backoff::next`].
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Starts at `initial`, never exceeds `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial: initial.min(max),
            max,
            attempt: 0,
        }
    }

    /// The delay before the next attempt; `unit` is a random number in `[0, 1)`.
    pub fn next(&mut self, unit: f64) -> Duration {
        let step = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        step / 2 + step.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }

    /// Back to the first step, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_jitters_within_the_upper_half() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        let lows: Vec<_> = (0..6).map(|_| b.next(0.0)).collect();
        assert_eq!(
            lows,
            vec![ms(50), ms(100), ms(200), ms(400), ms(500), ms(500)]
        );
        let mut b = Backoff::new(ms(100), ms(1000));
        let highs: Vec<_> = (0..6).map(|_| b.next(0.999_999)).collect();
        assert!(highs.iter().all(|d| *d <= ms(1000)));
        assert!(highs[5] > ms(999));
        b.reset();
        assert_eq!(b.next(0.0), ms(50));
    }

    #[test]
    fn initial_above_max_is_capped_and_many_attempts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(10));
        for _ in 0..100 {
            assert!(b.next(0.5) <= Duration::from_secs(10));
        }
    }
}
