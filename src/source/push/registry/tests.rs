use super::*;
use crate::http::api::parse_json;
use std::time::UNIX_EPOCH;

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_764_612_000 + secs)
}

fn settings(name: &str, token: Option<&str>) -> PushSettings {
    PushSettings {
        application: name.into(),
        token: token.map(Secret::new),
        ttl: Duration::from_secs(30),
        max_instances: 2,
        max_pools: 2,
        max_applications: 0,
    }
}

fn body(app: &str, instance: &str, pools: &[&str]) -> PushBody {
    let pools: Vec<String> = pools
        .iter()
        .map(|n| {
            format!(r#"{{"name": "{n}", "capacity": 10, "in_use": 3, "idle": 2, "waiting": 1}}"#)
        })
        .collect();
    let final_ = if pools.is_empty() {
        r#", "final": true"#
    } else {
        ""
    };
    let text = format!(
        r#"{{"application": "{app}", "instance": "{instance}", "pools": [{}]{final_}}}"#,
        pools.join(", ")
    );
    parse_json(text.as_bytes()).expect("body")
}

fn registry(targets: &[PushSettings]) -> (Registry, prometheus::Registry) {
    let prom = prometheus::Registry::new();
    let r = Registry::new(&prom).expect("metrics");
    r.configure(targets, &BTreeSet::new(), t(0));
    (r, prom)
}

/// `(in_use, waiting)` of every pool of `target` at `now`, or the error class.
fn seen(r: &Registry, target: &str, now: u64) -> Result<Vec<(String, u64, u64)>, String> {
    r.report(target, t(now))
        .map(|d| {
            d.pools
                .iter()
                .map(|p| (p.id.name.clone(), p.in_use, p.waiting))
                .collect()
        })
        .map_err(|e| e.class.to_string())
}

fn counter(prom: &prometheus::Registry, family: &str, label: &str) -> f64 {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&prom.gather())
        .expect("encode");
    text.lines()
        .find(|l| l.starts_with(family) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(-1.0)
}

#[test]
fn the_bearer_token_is_checked() {
    let token = Secret::new("s3cret");
    // (expected token, Authorization header, authorized)
    type Case<'a> = (Option<&'a Secret>, Option<&'a [u8]>, bool);
    let cases: [Case; 9] = [
        (None, None, true),
        (None, Some(b"Bearer whatever"), true),
        (Some(&token), None, false),
        (Some(&token), Some(b"Bearer s3cret"), true),
        (Some(&token), Some(b"bearer   s3cret "), true),
        (Some(&token), Some(b"Bearer s3cre"), false),
        (Some(&token), Some(b"Bearer s3cret2"), false),
        (Some(&token), Some(b"Basic s3cret"), false),
        (Some(&token), Some(b"Bearer "), false),
    ];
    for (expected, header, want) in cases {
        assert_eq!(authorized(expected, header), want, "{header:?}");
    }
}

#[test]
fn pushes_are_refused_for_a_reason_and_then_nothing_is_stored() {
    let (r, prom) = registry(&[settings("app", Some("Zq9xK")), settings("open", None)]);
    let good = Some(b"Bearer Zq9xK".as_slice());
    // (body, Authorization, refusal)
    let cases = [
        (body("nope", "i", &["a"]), good, Refusal::UnknownApplication),
        (body("app", "i", &["a"]), None, Refusal::Unauthorized),
        (
            body("app", "i", &["a"]),
            Some(b"Bearer Zq9xK2".as_slice()),
            Refusal::Unauthorized,
        ),
        (
            body("app", "i", &["a", "b", "c"]),
            good,
            Refusal::Invalid("pools: at most 2 pools per push (got 3)".into()),
        ),
    ];
    for (b, auth, want) in cases {
        assert_eq!(r.accept(b, auth, t(1)), Err(want.clone()));
        assert_eq!(want.status() / 100, 4);
        assert!(!want.message().contains("Zq9xK"), "{}", want.message());
    }
    assert_eq!(seen(&r, "app", 1), Ok(vec![]));
    assert_eq!(
        counter(&prom, "poolwatch_push_refused_total", "unauthorized"),
        2.0
    );
    assert_eq!(
        counter(&prom, "poolwatch_push_refused_total", "unknown_application"),
        1.0
    );
    assert_eq!(
        counter(&prom, "poolwatch_push_refused_total", "invalid"),
        1.0
    );
    assert_eq!(counter(&prom, "poolwatch_push_accepted_total", "app"), 0.0);
    assert_eq!(
        r.accept(body("open", "i", &["a"]), None, t(1)),
        Ok(Accepted {
            pools: 1,
            instances: 1
        })
    );
    assert_eq!(counter(&prom, "poolwatch_push_accepted_total", "open"), 1.0);
}

#[test]
fn instances_are_bounded_and_a_stale_one_makes_room() {
    let (r, _) = registry(&[settings("app", None)]);
    let ok = |pools, instances| Ok(Accepted { pools, instances });
    assert_eq!(r.accept(body("app", "a", &["p"]), None, t(0)), ok(1, 1));
    assert_eq!(r.accept(body("app", "b", &["p"]), None, t(10)), ok(1, 2));
    assert_eq!(
        r.accept(body("app", "c", &["p"]), None, t(20)),
        Err(Refusal::TooManyInstances(2))
    );
    // Known instances push again at the limit.
    assert_eq!(r.accept(body("app", "b", &["p"]), None, t(20)), ok(1, 2));
    // At 31, a is stale: c takes its place.
    assert_eq!(r.accept(body("app", "c", &["p"]), None, t(31)), ok(1, 2));
    assert_eq!(seen(&r, "app", 31), Ok(vec![("p".into(), 6, 2)]));
}

#[test]
fn pool_names_are_bounded_across_fresh_instances() {
    let (r, _) = registry(&[settings("app", None)]);
    assert!(r.accept(body("app", "a", &["p", "q"]), None, t(0)).is_ok());
    assert_eq!(
        r.accept(body("app", "b", &["r"]), None, t(1)),
        Err(Refusal::TooManyPools(2))
    );
    // The same instance may rename its pools; a stale instance's names do not count.
    assert!(r.accept(body("app", "a", &["r"]), None, t(2)).is_ok());
    assert!(r.accept(body("app", "b", &["s"]), None, t(3)).is_ok());
    assert_eq!(
        seen(&r, "app", 3),
        Ok(vec![("r".into(), 3, 1), ("s".into(), 3, 1)])
    );
}

#[test]
fn an_instance_that_stops_leaves_at_once_and_old_stats_never_replace_newer() {
    let (r, _) = registry(&[settings("app", None)]);
    assert!(r.accept(body("app", "a", &["p"]), None, t(10)).is_ok());
    assert!(r.accept(body("app", "b", &["p"]), None, t(10)).is_ok());
    assert_eq!(seen(&r, "app", 10), Ok(vec![("p".into(), 6, 2)]));
    let mut late = body("app", "a", &["p"]);
    late.measured_at = t(5)
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64());
    assert_eq!(r.accept(late, None, t(11)), Err(Refusal::OutOfOrder));
    assert_eq!(
        r.accept(body("app", "a", &[]), None, t(12)),
        Ok(Accepted {
            pools: 0,
            instances: 1
        })
    );
    assert_eq!(seen(&r, "app", 12), Ok(vec![("p".into(), 3, 1)]));
    assert_eq!(
        r.accept(body("app", "b", &[]), None, t(12))
            .map(|a| a.instances),
        Ok(0)
    );
    // No instance left, the target is new no more: stale.
    assert_eq!(seen(&r, "app", 31), Err("stale".into()));
}

#[test]
fn a_reload_keeps_the_pushes_of_targets_that_stay() {
    let (r, prom) = registry(&[settings("app", None), settings("gone", None)]);
    assert!(r.accept(body("app", "a", &["p"]), None, t(1)).is_ok());
    assert!(r.accept(body("gone", "a", &["p"]), None, t(1)).is_ok());
    // The token of `app` changes, `gone` goes, `new` comes.
    let none = BTreeSet::new();
    r.configure(
        &[settings("app", Some("t")), settings("new", None)],
        &none,
        t(20),
    );
    assert_eq!(seen(&r, "app", 25), Ok(vec![("p".into(), 3, 1)]));
    assert_eq!(seen(&r, "gone", 25), Err("stale".into()));
    assert_eq!(
        counter(&prom, "poolwatch_push_accepted_total", "gone"),
        -1.0
    );
    // `new` is watched from the reload on: waiting, not stale, for one ttl.
    assert_eq!(seen(&r, "new", 50), Ok(vec![]));
    assert_eq!(seen(&r, "new", 51), Err("stale".into()));
    assert_eq!(
        r.accept(body("app", "a", &["p"]), None, t(26)),
        Err(Refusal::Unauthorized)
    );
}

#[test]
fn instances_stale_for_ten_ttls_are_forgotten() {
    let (r, _) = registry(&[settings("app", None)]);
    assert!(r.accept(body("app", "a", &["p"]), None, t(0)).is_ok());
    let message = |now| r.report("app", t(now)).err().map(|e| e.message);
    assert!(message(300).is_some_and(|m| m.contains("from instance a")));
    assert_eq!(
        forget_after(Duration::from_secs(30)),
        Duration::from_secs(300)
    );
    assert!(message(301).is_some_and(|m| m.contains("no instance has pushed since")));
}

#[test]
fn unknown_applications_become_targets_of_their_own_when_a_target_accepts_them() {
    let catch_all = PushSettings {
        max_applications: 2,
        ..settings("apps", Some("Zq9xK"))
    };
    let (r, prom) = registry(std::slice::from_ref(&catch_all));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    r.set_adopter(tx);
    let good = Some(b"Bearer Zq9xK".as_slice());
    // (application, Authorization, outcome)
    let cases = [
        ("billing", None, Err("unauthorized")),
        ("billing", good, Ok(1)),
        ("billing", good, Ok(1)),
        ("bad name", good, Err("invalid")),
        ("search", good, Ok(1)),
        ("mail", good, Err("too_many_applications")),
    ];
    for (app, auth, want) in cases {
        let got = r.accept(body(app, "i", &["p"]), auth, t(1));
        match (got, want) {
            (Ok(a), Ok(pools)) => assert_eq!(a.pools, pools, "{app}"),
            (Err(e), Err(reason)) => assert_eq!(e.reason(), reason, "{app}: {e:?}"),
            (got, want) => panic!("{app}: got {got:?}, want {want:?}"),
        }
    }
    let mut adopted = Vec::new();
    while let Ok(name) = rx.try_recv() {
        adopted.push(name);
    }
    assert_eq!(adopted, ["billing", "search"]);
    assert_eq!(seen(&r, "billing", 2), Ok(vec![("p".into(), 3, 1)]));
    assert_eq!(
        counter(&prom, "poolwatch_push_accepted_total", "search"),
        1.0
    );
    // A last push of an application never seen creates nothing, not even a series.
    assert_eq!(
        r.accept(body("gone", "i", &[]), good, t(1)),
        Err(Refusal::UnknownApplication)
    );
    assert!(rx.try_recv().is_err());
    assert_eq!(
        counter(&prom, "poolwatch_push_accepted_total", "gone"),
        -1.0
    );

    // A reload keeps them while a target accepts them, unless another target takes the name.
    let taken: BTreeSet<String> = ["search".to_string()].into();
    let kept = r.configure(std::slice::from_ref(&catch_all), &taken, t(3));
    assert_eq!(kept, ["billing"]);
    assert_eq!(seen(&r, "billing", 3), Ok(vec![("p".into(), 3, 1)]));
    assert_eq!(seen(&r, "search", 3), Err("stale".into()));
    assert_eq!(
        counter(&prom, "poolwatch_push_accepted_total", "search"),
        -1.0
    );
    // Without a target that accepts them, they go, and new ones are refused as unknown.
    let kept = r.configure(&[settings("apps", None)], &BTreeSet::new(), t(4));
    assert!(kept.is_empty());
    assert_eq!(
        r.accept(body("billing", "i", &["p"]), None, t(5)),
        Err(Refusal::UnknownApplication)
    );
}

#[test]
fn pool_counters_stay_cumulative_when_an_instance_stops_or_restarts() {
    let (r, _) = registry(&[settings("app", None)]);
    let push = |instance: &str, timeouts: u64, at: u64| {
        let text = format!(
            r#"{{"application": "app", "instance": "{instance}", "pools": [{{"name": "p", "capacity": 10, "in_use": 3, "idle": 2, "waiting": 0, "timeouts_total": {timeouts}}}]}}"#
        );
        let body: PushBody = parse_json(text.as_bytes()).expect("body");
        assert!(r.accept(body, None, t(at)).is_ok());
    };
    let timeouts = |now: u64| {
        r.report("app", t(now)).expect("up").pools[0]
            .counters
            .timeouts
    };
    push("a", 4, 10);
    push("b", 6, 10);
    assert_eq!(timeouts(10), Some(10));
    // b stops: its 6 timeouts happened all the same (a drop would read as a reset, a burst).
    assert!(r.accept(body("app", "b", &[]), None, t(11)).is_ok());
    assert_eq!(timeouts(11), Some(10));
    // a restarts and counts from zero: its 4 are kept.
    push("a", 1, 12);
    assert_eq!(timeouts(12), Some(11));
}

#[test]
fn distinct_names_are_counted_up_to_the_limit() {
    // (names, max, more than max distinct)
    let cases: [(&[&str], usize, bool); 7] = [
        (&[], 0, false),
        (&["a"], 0, true),
        (&["a", "a", "a"], 1, false),
        (&["a", "b", "a", "b"], 2, false),
        (&["a", "b", "a", "c"], 2, true),
        (&["a", "b", "c"], 3, false),
        (&["a", "b", "c", "d", "a"], 3, true),
    ];
    for (names, max, want) in cases {
        assert_eq!(
            more_distinct_than(names.iter().copied(), max),
            want,
            "{names:?} {max}"
        );
    }
}
