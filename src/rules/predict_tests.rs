//! Table tests of [`predict`] on generated series: every poll of a series is recorded into a
//! pool's [`PoolHistory`] as the store records it and evaluated at that poll's time, like the
//! engine does, so each case checks the whole timeline, not one moment.

use super::*;
use crate::alert::state::{step, State, Transition};
use crate::store::history::Sample;
use std::time::UNIX_EPOCH;

/// The store's default sample window.
const STORE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Poll interval of the generated series (the default `interval`).
const POLL: f64 = 1.0;

/// A poll at `secs`: `Some((in_use, capacity))`, or `None` while the target is down.
type Poll = Option<(u32, u32)>;

/// A generated series: what each poll sees.
type Series<'a> = Box<dyn Fn(f64) -> Poll + 'a>;

/// Time of `secs` seconds into a series.
fn at(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_secs_f64(secs)
}

/// What the rule said at each successful poll of a series: (seconds, verdict).
fn run(until: f64, p: &Predict, f: impl Fn(f64) -> Poll) -> Vec<(f64, Result<Prediction, Quiet>)> {
    let mut history = PoolHistory::default();
    let mut out = Vec::new();
    let mut secs = 0.0;
    while secs <= until {
        if let Some((in_use, capacity)) = f(secs) {
            let now = at(secs);
            let sample = Sample::new(now, in_use.into(), capacity.into());
            history.record(sample, STORE_WINDOW.max(p.window));
            out.push((secs, predict(&history, now, p)));
        }
        secs += POLL;
    }
    out
}

/// How many alerts a timeline raises through the alert state machine, with the built-in's
/// `for` (0s) and `keep_firing_for`.
fn episodes(timeline: &[(f64, Result<Prediction, Quiet>)]) -> usize {
    let keep = crate::rules::builtin::PREDICTED_KEEP_FIRING_FOR.0;
    let mut state = State::Inactive;
    let mut fired = 0;
    for (secs, v) in timeline {
        let (next, transition) = step(&state, at(*secs), v.is_ok(), Duration::ZERO, keep);
        fired += usize::from(transition == Some(Transition::Fired));
        state = next;
    }
    fired
}

/// When the first prediction came, in seconds.
fn first_warning(timeline: &[(f64, Result<Prediction, Quiet>)]) -> Option<f64> {
    timeline.iter().find(|(_, v)| v.is_ok()).map(|(t, _)| *t)
}

/// Deterministic noise: xorshift64, uniform in -1..1.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// `n` noise values, one per poll, from a fixed seed.
fn noise(seed: u64, n: usize) -> Vec<f64> {
    let mut g = Noise(seed);
    (0..n).map(|_| g.next()).collect()
}

fn clamp(v: f64, capacity: u32) -> u32 {
    v.round().clamp(0.0, f64::from(capacity)) as u32
}

/// In use on a line from `from` at `start` to 100 at `full` (seconds), capacity 100; flat at
/// `from` before `start`, full after `full`.
fn ramp(secs: f64, from: f64, start: f64, full: f64) -> f64 {
    if secs <= start {
        from
    } else {
        (from + (100.0 - from) * (secs - start) / (full - start)).min(100.0)
    }
}

#[test]
fn quiet_on_load_that_does_not_trend_to_full() {
    let p = Predict::default();
    let jitter = noise(7, 7300);
    let j = |secs: f64| jitter[secs as usize];
    // (case, seconds, in use and capacity at each second)
    let cases: Vec<(&str, f64, Series)> = vec![
        ("flat at 70%", 1800.0, Box::new(|_| Some((70, 100)))),
        (
            "noise around 70% (±10)",
            3600.0,
            Box::new(move |s| Some((clamp(70.0 + 10.0 * j(s), 100), 100))),
        ),
        (
            "sawtooth 40→80% every 2 minutes",
            3600.0,
            Box::new(|s| Some((40 + ((s % 120.0) / 3.0) as u32, 100))),
        ),
        (
            "sawtooth 30→90% every 4 minutes",
            3600.0,
            Box::new(|s| Some((30 + ((s % 240.0) / 4.0) as u32, 100))),
        ),
        (
            "step 30→70% at 10 minutes",
            1800.0,
            Box::new(|s| Some((if s < 600.0 { 30 } else { 70 }, 100))),
        ),
        (
            "step 30→70% with noise",
            1800.0,
            Box::new(move |s| {
                let base = if s < 600.0 { 30.0 } else { 70.0 };
                Some((clamp(base + 3.0 * j(s), 100), 100))
            }),
        ),
        (
            "reset: 60 in use, the pooler restarts (0) and clients reconnect within 30s",
            1800.0,
            Box::new(|s| {
                let v = match s {
                    s if s < 600.0 => 60.0,
                    s if s < 610.0 => 0.0,
                    s if s < 640.0 => 2.0 * (s - 610.0),
                    _ => 60.0,
                };
                Some((v as u32, 100))
            }),
        ),
        (
            "target down 3 minutes, back at a higher flat level",
            1800.0,
            Box::new(|s| match s {
                s if s < 600.0 => Some((30, 100)),
                s if s < 780.0 => None,
                _ => Some((75, 100)),
            }),
        ),
        (
            "target down while load rose, flat around it",
            1800.0,
            Box::new(move |s| match s {
                s if s < 600.0 => Some((clamp(20.0 + 2.0 * j(s), 100), 100)),
                s if s < 900.0 => None,
                _ => Some((clamp(80.0 + 2.0 * j(s), 100), 100)),
            }),
        ),
        (
            "capacity cut from 100 to 60 under flat load",
            1800.0,
            Box::new(|s| Some((50, if s < 600.0 { 100 } else { 60 }))),
        ),
        (
            "falling 90→40%",
            1800.0,
            Box::new(|s| Some(((90.0 - s / 36.0) as u32, 100))),
        ),
        (
            "slow ramp 50→100% over 3 hours (full in more than the horizon)",
            3600.0,
            Box::new(|s| Some((ramp(s, 50.0, 0.0, 10_800.0) as u32, 100))),
        ),
        ("an empty pool", 1800.0, Box::new(|_| Some((0, 0)))),
    ];
    for (name, until, f) in cases {
        let timeline = run(until, &p, f);
        let warned: Vec<f64> = timeline
            .iter()
            .filter(|(_, v)| v.is_ok())
            .map(|(t, _)| *t)
            .collect();
        assert!(
            warned.is_empty(),
            "{name}: predicted at {} polls, first at {:?}s",
            warned.len(),
            warned.first()
        );
    }
}

#[test]
fn each_guard_gives_its_reason() {
    let p = Predict::default();
    // (case, seconds, the verdict at the last poll)
    let last = |until: f64, f: &dyn Fn(f64) -> Poll| {
        run(until, &p, f).last().map(|(_, v)| *v).expect("polls")
    };
    let cases: [(&str, Result<(), Quiet>); 8] = [
        ("4 minutes of history", Err(Quiet::TooLittleHistory)),
        ("back 2 minutes after a gap", Err(Quiet::TooLittleHistory)),
        ("full", Err(Quiet::Full)),
        ("flat", Err(Quiet::NotRising)),
        ("sawtooth", Err(Quiet::PoorFit)),
        ("ramp that stopped", Err(Quiet::Stalled)),
        ("slow ramp", Err(Quiet::BeyondHorizon)),
        ("fast ramp", Ok(())),
    ];
    for (name, want) in cases {
        let got = match name {
            "4 minutes of history" => {
                last(240.0, &|s| Some((ramp(s, 50.0, 0.0, 600.0) as u32, 100)))
            }
            "back 2 minutes after a gap" => last(1200.0, &|s| {
                (!(900.0..1080.0).contains(&s)).then_some((ramp(s, 50.0, 0.0, 2400.0) as u32, 100))
            }),
            "full" => last(900.0, &|s| Some((ramp(s, 50.0, 0.0, 600.0) as u32, 100))),
            "flat" => last(900.0, &|_| Some((70, 100))),
            "sawtooth" => last(950.0, &|s| Some((40 + ((s % 120.0) / 3.0) as u32, 100))),
            "ramp that stopped" => last(660.0, &|s| {
                Some((ramp(s, 50.0, 0.0, 600.0).min(85.0) as u32, 100))
            }),
            "slow ramp" => last(900.0, &|s| Some((ramp(s, 50.0, 0.0, 10_800.0) as u32, 100))),
            _ => last(420.0, &|s| Some((ramp(s, 50.0, 0.0, 600.0) as u32, 100))),
        };
        assert_eq!(got.map(|_| ()), want, "{name}: {got:?}");
    }
}

#[test]
fn warns_ahead_of_linear_ramps_and_stays_warned_until_full() {
    let p = Predict::default();
    let jitter = noise(11, 7300);
    // (ramp from 50% over minutes, noise amplitude, least lead in seconds)
    let cases = [
        (10.0, 0.0, 240.0),
        (10.0, 3.0, 240.0),
        (20.0, 0.0, 540.0),
        (40.0, 2.0, 1_000.0),
        (60.0, 0.0, 1_000.0),
    ];
    for (minutes, amplitude, least_lead) in cases {
        // Ten flat minutes at 50% before the ramp, as in a real pool.
        let (start, full) = (600.0, 600.0 + minutes * 60.0);
        let timeline = run(full + 120.0, &p, |s| {
            let v = ramp(s, 50.0, start, full) + amplitude * jitter[s as usize];
            Some((clamp(v, 99).max(if s >= full { 100 } else { 0 }), 100))
        });
        let first = first_warning(&timeline).expect("a warning");
        let lead = full - first;
        assert!(
            lead >= least_lead && lead < full - start,
            "ramp over {minutes}m (noise {amplitude}): warned {lead}s ahead, want at least {least_lead}s"
        );
        assert_eq!(episodes(&timeline), 1, "ramp over {minutes}m flapped");
        // Never alarmist: the first estimate is not sooner than the truth (a fit across the
        // bend from flat lags, as predict_linear does).
        let estimate_at = |secs: f64| {
            timeline
                .iter()
                .find(|(t, _)| *t >= secs)
                .and_then(|(_, v)| v.ok())
                .expect("prediction")
        };
        let estimate = estimate_at(first);
        assert!(
            estimate.exhausted_in.as_secs_f64() >= lead * 0.9,
            "ramp over {minutes}m: predicted {:?}, truth {lead}s",
            estimate.exhausted_in
        );
        // Once the whole window is on the ramp, the estimate and the slope are close.
        let settled =
            (start + p.window.as_secs_f64() + 60.0).max(full - p.horizon.as_secs_f64() + 120.0);
        if settled < full - 60.0 {
            let estimate = estimate_at(settled);
            let truth = full - settled;
            let error = (estimate.exhausted_in.as_secs_f64() - truth).abs();
            assert!(
                error <= truth * 0.1 + 20.0,
                "{minutes}m: {estimate:?}, truth {truth}s"
            );
            let slope = 50.0 / minutes;
            assert!(
                (estimate.slope_per_minute - slope).abs() <= slope * 0.1,
                "{minutes}m: slope {} want {slope}",
                estimate.slope_per_minute
            );
        }
        // Quiet once full: PoolExhausted and PoolNearFull take over.
        let (_, at_end) = timeline.last().expect("polls");
        assert_eq!(*at_end, Err(Quiet::Full), "ramp over {minutes}m, once full");
    }
}

#[test]
fn a_ramp_that_stops_below_full_clears_and_stays_clear() {
    let p = Predict::default();
    // 50% → 85% at 5%/min, then flat for 20 minutes.
    let timeline = run(2_400.0, &p, |s| {
        Some((ramp(s, 50.0, 0.0, 600.0).min(85.0) as u32, 100))
    });
    assert_eq!(episodes(&timeline), 1, "one warning while it rose");
    let last_warning = timeline
        .iter()
        .rev()
        .find(|(_, v)| v.is_ok())
        .map(|(t, _)| *t)
        .expect("warned while rising");
    // The ramp stopped at 420s; the warning clears once the recent half of the window is flat.
    assert!(
        last_warning < 420.0 + 180.0,
        "still predicted {last_warning}s in"
    );
}

/// The numbers the README states: lead time on a linear ramp from 50% to 100% over 10 minutes,
/// and false alerts on an hour of noisy load. Polled every second, default settings.
#[test]
fn readme_numbers_lead_time_and_false_alerts() {
    let p = Predict::default();
    let (start, full) = (600.0, 1_200.0);
    let ramp_timeline = run(full, &p, |s| Some((ramp(s, 50.0, start, full) as u32, 100)));
    let lead = full - first_warning(&ramp_timeline).expect("warned");
    println!("lead time on 50% -> 100% over 10 minutes: {lead}s");
    assert!(lead >= 240.0, "lead {lead}s");

    // An hour around 70%: a mean-reverting wander (±15) plus per-poll jitter (±5), seed 42.
    let steps = noise(42, 3_700);
    let jitter = noise(4242, 3_700);
    let mut wander = vec![0.0; 3_700];
    for i in 1..wander.len() {
        wander[i] = 0.98 * wander[i - 1] + 1.5 * steps[i];
    }
    let noisy = run(3_600.0, &p, |s| {
        let i = s as usize;
        Some((
            clamp(70.0 + wander[i].clamp(-15.0, 15.0) + 5.0 * jitter[i], 100),
            100,
        ))
    });
    let false_alerts = episodes(&noisy);
    println!("false alerts on an hour of noisy load around 70%: {false_alerts}");
    assert_eq!(false_alerts, 0);
}

#[test]
fn least_squares_fit() {
    let line: Vec<(f64, f64)> = (0..10)
        .map(|x| (f64::from(x), 3.0 + 2.0 * f64::from(x)))
        .collect();
    let f = fit(line.iter().copied()).expect("fit");
    assert!((f.slope - 2.0).abs() < 1e-9 && (f.intercept - 3.0).abs() < 1e-9);
    assert!((f.r2 - 1.0).abs() < 1e-9);
    let flat = [(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)];
    assert_eq!(
        fit(flat.iter().copied()).map(|f| (f.slope, f.r2)),
        Some((0.0, 1.0))
    );
    assert_eq!(fit([(1.0, 1.0), (1.0, 2.0)].iter().copied()), None);
    assert_eq!(fit([(1.0, 1.0)].iter().copied()), None);
    // Alternating values have no trend.
    let zigzag: Vec<(f64, f64)> = (0..20).map(|x| (f64::from(x), f64::from(x % 2))).collect();
    assert!(fit(zigzag.iter().copied()).expect("fit").r2 < 0.1);
}

#[test]
fn texts_for_people() {
    // (duration in seconds, approx)
    for (secs, want) in [
        (0, "0s"),
        (45, "45s"),
        (60, "1 min"),
        (200, "3 min"),
        (5400, "90 min"),
        (7200, "2 h"),
    ] {
        assert_eq!(approx(Duration::from_secs(secs)), want);
    }
    for (slope, want) in [(4.1, "+4.1"), (0.04, "+0.0"), (12.345, "+12.3")] {
        assert_eq!(signed(slope), want);
    }
}

#[test]
fn refits_once_per_slot_of_the_window() {
    let p = Predict::default(); // 10m: slots of 20 s
                                // (observed at seconds, due)
    let cases = [
        (0.0, true),
        (1.0, false),
        (19.0, false),
        (20.0, true),
        (21.0, false),
        (45.0, true),
        (45.5, false),
        (59.9, false),
        (60.0, true),
        (135.0, true),
    ];
    let mut previous = None;
    for (secs, want) in cases {
        assert_eq!(due(previous, at(secs), &p), want, "at {secs}s");
        previous = Some(at(secs));
    }
    assert!(due(None, at(5.0), &p), "never observed: due");
}
