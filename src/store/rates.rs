//! Counter rates: a pool's cumulative counters (waits, wait seconds, timeouts) as per-second
//! rates over the time since its previous sample. Pure, with time passed in; the store calls
//! it where the previous sample is ([`super::Store::fill_rates`]).
//!
//! * First sample (no previous one, or the counter was not reported before): no rate.
//! * No time passed, or the clock went back: no rate.
//! * A counter that went down was reset (the application restarted): what it counts now was
//!   counted since the reset, within the interval, so the rate is `now / elapsed` — never
//!   negative.
//! * A gap (polls failed in between) averages over the whole gap, as Prometheus' `increase`
//!   does across missed scrapes.

use crate::model::{Counters, Rates};
use std::time::SystemTime;

/// The per-second rate of a counter that read `before` at `then` and reads `now` at `at`.
pub fn rate(
    before: Option<f64>,
    then: SystemTime,
    now: Option<f64>,
    at: SystemTime,
) -> Option<f64> {
    let (before, now) = (before?, now?);
    let elapsed = at.duration_since(then).ok()?.as_secs_f64();
    if elapsed <= 0.0 || !before.is_finite() || !now.is_finite() {
        return None;
    }
    let increase = if now < before { now } else { now - before };
    Some(increase / elapsed)
}

/// The rates of `now` (at `at`) against `before` (at `then`), when there was a previous sample.
pub fn rates(before: Option<(&Counters, SystemTime)>, now: &Counters, at: SystemTime) -> Rates {
    let Some((b, then)) = before else {
        return Rates::default();
    };
    let count = |c: Option<u64>| c.map(|n| n as f64);
    Rates {
        waits: rate(count(b.waits), then, count(now.waits), at),
        wait_seconds: rate(b.wait_seconds, then, now.wait_seconds, at),
        timeouts: rate(count(b.timeouts), then, count(now.timeouts), at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
    }

    #[test]
    fn rates_over_the_interval() {
        // (before, then ms, now, at ms, want)
        let cases = [
            (Some(10.0), 0, Some(15.0), 1000, Some(5.0)),   // steady
            (Some(10.0), 0, Some(10.0), 1000, Some(0.0)),   // nothing new
            (Some(10.0), 0, Some(13.0), 500, Some(6.0)),    // a short interval
            (Some(10.0), 0, Some(70.0), 60_000, Some(1.0)), // a gap: averaged over it
            (Some(100.0), 0, Some(4.0), 2000, Some(2.0)),   // reset: counts from 0
            (Some(100.0), 0, Some(0.0), 2000, Some(0.0)),   // reset to 0
            (None, 0, Some(4.0), 1000, None),               // first sample
            (Some(4.0), 0, None, 1000, None),               // no longer reported
            (Some(1.0), 1000, Some(2.0), 1000, None),       // no time passed
            (Some(1.0), 2000, Some(2.0), 1000, None),       // the clock went back
            (Some(1.0), 0, Some(f64::NAN), 1000, None),     // not a number
            (Some(0.25), 0, Some(0.75), 250, Some(2.0)),    // seconds counters
        ];
        for (before, then, now, when, want) in cases {
            assert_eq!(
                rate(before, at(then), now, at(when)),
                want,
                "{before:?}→{now:?}"
            );
        }
    }

    #[test]
    fn every_counter_gets_its_rate() {
        let before = Counters {
            waits: Some(10),
            wait_seconds: Some(1.0),
            timeouts: None,
        };
        let now = Counters {
            waits: Some(30),
            wait_seconds: Some(5.0),
            timeouts: Some(3),
        };
        let r = rates(Some((&before, at(0))), &now, at(2000));
        assert_eq!(
            (r.waits, r.wait_seconds, r.timeouts),
            (Some(10.0), Some(2.0), None)
        );
        assert_eq!(rates(None, &now, at(2000)), Rates::default());
    }
}
