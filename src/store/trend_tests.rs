//! Tests of the least-squares sums and the slots that keep them.

use super::*;

/// Minutes `m` after a fixed day, in milliseconds.
fn ms(secs: u64) -> u64 {
    1_700_000_000_000 + secs * 1_000
}

#[test]
fn sums_fit_a_line_and_shift_exactly() {
    let line = Sums::of((0..10).map(|i| (f64::from(i), 3.0 + 2.0 * f64::from(i))));
    let f = line.fit().expect("fit");
    assert!((f.slope - 2.0).abs() < 1e-9 && (f.intercept - 3.0).abs() < 1e-9);
    assert!((f.r2 - 1.0).abs() < 1e-9);
    // Shifting x by -10 moves the intercept to the value at x = 10.
    let g = line.shifted(-10.0).fit().expect("fit");
    assert!((g.slope - 2.0).abs() < 1e-9 && (g.intercept - 23.0).abs() < 1e-9);
    let head = Sums::of((0..4).map(|i| (f64::from(i), 3.0 + 2.0 * f64::from(i))));
    let tail = line.minus(&head).fit().expect("fit");
    assert!((tail.slope - 2.0).abs() < 1e-9 && (tail.intercept - 3.0).abs() < 1e-9);
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

/// Records `(secs, in_use, capacity)` into slots of 10 s with a gap floor of 60 s.
fn slots(samples: &[(u64, u32, u32)]) -> Slots {
    let mut s = Slots::default();
    for &(secs, in_use, capacity) in samples {
        s.record(ms(secs), in_use, capacity, 10_000, 60_000);
    }
    s
}

/// (first second, segment's first second, samples) of each slot, oldest first.
fn shape(s: &Slots) -> Vec<(u64, u64, f64)> {
    (0..s.len())
        .filter_map(|i| s.get(i))
        .map(|x| {
            (
                (x.first_ms - ms(0)) / 1000,
                (x.segment_ms - ms(0)) / 1000,
                0.0,
            )
        })
        .zip(0..)
        .map(|((a, b, _), i)| (a, b, s.range(i, i, ms(0)).n))
        .collect()
}

#[test]
fn slots_split_on_time_gaps_and_capacity() {
    // Every 5 s from 0 to 20; capacity change at 25; a 100 s gap; 130, 135.
    let s = slots(&[
        (0, 1, 10),
        (5, 2, 10),
        (10, 3, 10),
        (15, 4, 10),
        (20, 5, 10),
        (25, 6, 20),
        (125, 7, 20),
        (130, 8, 20),
    ]);
    assert_eq!(
        shape(&s),
        [
            (0, 0, 2.0),
            (10, 0, 2.0),
            (20, 0, 1.0),
            (25, 25, 1.0),
            (125, 125, 1.0),
            (130, 125, 1.0),
        ]
    );
    // A spacing under the floor is no gap, even when far over three times the shortest.
    let s = slots(&[(0, 1, 10), (1, 1, 10), (50, 1, 10)]);
    assert_eq!(shape(&s).iter().map(|x| x.1).collect::<Vec<_>>(), [0, 0]);
    // Over the floor but under three times the shortest spacing (polls every 100 s): no gap.
    let s = slots(&[(0, 1, 10), (100, 1, 10), (250, 1, 10), (350, 1, 10)]);
    assert_eq!(shape(&s).iter().map(|x| x.1).collect::<Vec<_>>(), [0; 4]);
}

#[test]
fn ranges_equal_the_sums_of_their_samples_after_forgetting_and_rebasing() {
    // Two days at one sample a minute, y = minute of day mod 97, then a gap and more.
    let mut s = Slots::default();
    let mut kept = Vec::new();
    let window_ms = 15 * 60 * 1000;
    for minute in 0..2 * 24 * 60u64 {
        let at = ms(minute * 60 + if minute > 2000 { 600 } else { 0 });
        let y = u32::try_from(minute % 97).unwrap_or(0);
        s.record(at, y, 50, 10_000, 60_000);
        s.forget(at - window_ms, 90);
        kept.push((at, y));
        kept.retain(|(t, _)| *t > at - window_ms);
        if minute % 331 != 0 {
            continue;
        }
        let newest = s.len() - 1;
        let segment = s.get(newest).map_or(0, |x| x.segment_ms);
        let from = s.first_from(segment, 0, newest);
        let got = s.range(from, newest, at);
        let first = s.get(from).map_or(0, |x| x.first_ms);
        let want = Sums::of(
            kept.iter()
                .filter(|(t, _)| *t >= first)
                .map(|&(t, y)| (minutes_between(t, at), f64::from(y))),
        );
        for (g, w) in [(got.n, want.n), (got.x, want.x), (got.y, want.y)] {
            assert!(
                (g - w).abs() < 1e-6 * w.abs().max(1.0),
                "minute {minute}: {g} vs {w}"
            );
        }
        for (g, w) in [(got.xx, want.xx), (got.xy, want.xy), (got.yy, want.yy)] {
            assert!(
                (g - w).abs() < 1e-6 * w.abs().max(1.0),
                "minute {minute}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn finds_slots_by_time() {
    let s = slots(&[
        (0, 1, 10),
        (10, 1, 10),
        (20, 1, 10),
        (25, 1, 20),
        (30, 1, 20),
        (100, 1, 20),
    ]);
    let firsts: Vec<u64> = (0..s.len())
        .filter_map(|i| s.get(i))
        .map(|x| (x.first_ms - ms(0)) / 1000)
        .collect();
    assert_eq!(firsts, [0, 10, 20, 25, 30, 100]);
    let last = s.len() - 1;
    for (secs, want) in [
        (0, 0),
        (1, 1),
        (10, 1),
        (21, 3),
        (25, 3),
        (26, 4),
        (31, 5),
        (100, 5),
        (101, 6),
    ] {
        assert_eq!(s.first_from(ms(secs), 0, last), want, "from {secs}s");
    }
    assert_eq!(s.first_from(ms(0), 2, last), 2);
    for (secs, want) in [
        (0, Some(0)),
        (9, Some(0)),
        (24, Some(2)),
        (99, Some(4)),
        (500, Some(5)),
    ] {
        assert_eq!(s.newest_at(ms(secs)), want, "at {secs}s");
    }
    assert_eq!(Slots::default().newest_at(ms(0)), None);
    let mut s = s;
    s.forget(ms(25), 10);
    assert_eq!(s.len(), 2);
    s.forget(0, 1);
    assert_eq!(s.len(), 1);
}
