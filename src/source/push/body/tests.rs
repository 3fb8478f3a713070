use super::*;
use crate::http::api::parse_json;

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

const NOW: u64 = 1_764_612_000;
const TTL: Duration = Duration::from_secs(30);

fn check(body: &str) -> Result<Push, String> {
    let body: PushBody = parse_json(body.as_bytes())?;
    validate(body, t(NOW), TTL, 3)
}

fn pool(extra: &str) -> String {
    format!(r#"{{"name": "default", "capacity": 10, "in_use": 4, "idle": 6, "waiting": 0{extra}}}"#)
}

fn push(pools: &str, extra: &str) -> String {
    format!(r#"{{"application": "checkout", "instance": "web-1", "pools": [{pools}]{extra}}}"#)
}

#[test]
fn every_problem_names_its_field() {
    // (body, the error starts with)
    let cases = [
        (push(&pool(""), r#", "x": 1"#), "x: unknown field `x`"),
        (
            push(&pool(r#", "capacity2": 1"#), ""),
            "pools[0].capacity2: unknown field",
        ),
        (
            push(
                r#"{"name": "a", "capacity": 1, "in_use": 0, "idle": 0}"#,
                "",
            ),
            "pools[0]: missing field `waiting`",
        ),
        (
            push(
                r#"{"name": "a", "capacity": -1, "in_use": 0, "idle": 0, "waiting": 0}"#,
                "",
            ),
            "pools[0].capacity: invalid value",
        ),
        (
            push(
                r#"{"name": "a", "capacity": 3, "in_use": 2, "idle": 2, "waiting": 0}"#,
                "",
            ),
            "pools[0].capacity: must be ≥ in_use + idle (2 + 2)",
        ),
        (
            push(&format!("{}, {}", pool(""), pool("")), ""),
            "pools[1].name: the same name as pools[0]",
        ),
        (
            push(
                r#"{"name": "", "capacity": 1, "in_use": 0, "idle": 0, "waiting": 0}"#,
                "",
            ),
            "pools[0].name: must not be empty",
        ),
        (
            push(
                r#"{"name": "a\u0007", "capacity": 1, "in_use": 0, "idle": 0, "waiting": 0}"#,
                "",
            ),
            "pools[0].name: must not contain control characters",
        ),
        (
            push(&pool(r#", "longest_wait_seconds": -1"#), ""),
            "pools[0].longest_wait_seconds: must be a number of seconds ≥ 0",
        ),
        (
            push(&pool(r#", "wait_seconds_total": 1e12"#), ""),
            "pools[0].wait_seconds_total: too large for seconds",
        ),
        (
            push(&pool(r#", "timeouts_total": 2000000000"#), ""),
            "pools[0].timeouts_total: at most 1000000000",
        ),
        (
            push(
                r#"{"name": "a", "capacity": 2000000000, "in_use": 0, "idle": 0, "waiting": 0}"#,
                "",
            ),
            "pools[0].capacity: at most",
        ),
        (push("", ""), "pools: must not be empty"),
        (
            push(
                &[
                    pool(""),
                    pool("").replace("default", "b"),
                    pool("").replace("default", "c"),
                    pool("").replace("default", "d"),
                ]
                .join(", "),
                "",
            ),
            "pools: at most 3 pools per push (got 4)",
        ),
        (
            push(&pool(""), r#", "measured_at": "yesterday""#),
            "measured_at: invalid type",
        ),
        (
            push(&pool(""), r#", "measured_at": -5"#),
            "measured_at: must be Unix seconds",
        ),
        (
            push(&pool(""), &format!(r#", "measured_at": {}"#, NOW + 61)),
            "measured_at: 1m 1s in the future",
        ),
        (
            push(&pool(""), &format!(r#", "measured_at": {}"#, NOW - 31)),
            "measured_at: 31s old, older than the target's ttl (30s)",
        ),
        (
            r#"{"application": "checkout", "instance": " ", "pools": []}"#.into(),
            "instance: must not be empty",
        ),
        (
            format!(
                r#"{{"application": "a", "instance": "{}", "pools": []}}"#,
                "i".repeat(129)
            ),
            "instance: at most 128 bytes",
        ),
        (
            r#"{"application": "checkout", "pools": []}"#.into(),
            "invalid body: missing field `instance`",
        ),
        ("[1, 2]".into(), "[0]: invalid type"),
        ("\"x\"".into(), "invalid body: invalid type"),
        ("{".into(), "invalid body: EOF"),
    ];
    for (body, want) in cases {
        match check(&body) {
            Err(e) => assert!(e.starts_with(want), "{body}\n got: {e}\nwant: {want}"),
            Ok(p) => panic!("{body}: accepted as {p:?}"),
        }
    }
}

#[test]
fn a_valid_push_keeps_every_figure_and_its_time() {
    let extra = r#", "longest_wait_seconds": 1.5, "waits_total": 7, "wait_seconds_total": 2.25, "timeouts_total": 1"#;
    // (measured_at, the push's time)
    let cases = [
        ("".to_string(), t(NOW)),
        (
            format!(r#", "measured_at": {}.5"#, NOW - 10),
            t(NOW - 10) + Duration::from_millis(500),
        ),
        (format!(r#", "measured_at": {}"#, NOW - 30), t(NOW - 30)),
        // Slightly ahead (clock skew): the time of receipt.
        (format!(r#", "measured_at": {}"#, NOW + 60), t(NOW)),
    ];
    for (measured, want) in cases {
        let p = check(&push(&pool(extra), &measured)).expect("valid");
        assert_eq!(p.at, want, "{measured}");
        assert_eq!(
            p.pools,
            [PushedPool {
                name: "default".into(),
                capacity: 10,
                in_use: 4,
                idle: 6,
                waiting: 0,
                longest_wait: Some(Duration::from_millis(1500)),
                waits: Some(7),
                wait_seconds: Some(2.25),
                timeouts: Some(1),
            }]
        );
        assert_eq!((p.instance.as_str(), p.final_), ("web-1", false));
    }
}

#[test]
fn a_final_push_may_have_no_pools_and_optional_figures_stay_unknown() {
    let p = check(&push("", r#", "final": true"#)).expect("valid");
    assert!(p.final_ && p.pools.is_empty());
    let p = check(&push(&pool(""), "")).expect("valid");
    let q = &p.pools[0];
    assert_eq!(
        (q.longest_wait, q.waits, q.wait_seconds, q.timeouts),
        (None, None, None, None)
    );
}
