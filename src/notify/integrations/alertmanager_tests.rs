use super::*;
use crate::dispatch::fixtures::{firing, resolved};
use crate::rules::fixtures::t;
use serde_json::{json, Value};

const MIN: Duration = Duration::from_secs(60);

fn policy(resend_secs: u64, eval_secs: u64) -> PushPolicy {
    PushPolicy {
        resend_interval: Duration::from_secs(resend_secs),
        evaluation_interval: Duration::from_secs(eval_secs),
    }
}

fn pending(mut a: Alert) -> Alert {
    a.state = AlertState::Pending;
    a
}

#[test]
fn the_horizon_is_four_times_the_longer_interval() {
    let cases = [
        // (resend, evaluation) -> horizon, seconds
        ((60, 1), 240),
        ((60, 120), 480),
        ((10, 10), 40),
        ((0, 0), 0),
        ((u64::MAX / 2, 0), u64::MAX),
    ];
    for ((resend, eval), want) in cases {
        let got = policy(resend, eval).horizon();
        let want = if want == u64::MAX {
            Duration::MAX
        } else {
            Duration::from_secs(want)
        };
        assert_eq!(got, want, "resend {resend} s, evaluation {eval} s");
    }
}

#[test]
fn ends_follow_the_prometheus_policy() {
    let p = policy(60, 5);
    let now = t(1000);
    let cases: [(&str, Alert, Option<SystemTime>); 6] = [
        (
            "firing: now + 4 min",
            firing("A", &[], 10),
            Some(t(1000) + 4 * MIN),
        ),
        (
            "resolved before now: its real end",
            resolved(firing("A", &[], 10), 900),
            Some(t(900)),
        ),
        (
            "resolved exactly now",
            resolved(firing("A", &[], 10), 1000),
            Some(t(1000)),
        ),
        (
            "resolved 'in the future' (clock step): not after now",
            resolved(firing("A", &[], 10), 2000),
            Some(t(1000)),
        ),
        (
            "resolved before it started (clock step): not before its start",
            resolved(firing("A", &[], 950), 900),
            Some(t(950)),
        ),
        ("pending: not pushed", pending(firing("A", &[], 10)), None),
    ];
    for (what, alert, want) in cases {
        assert_eq!(p.ends_at(&alert, now), want, "{what}");
    }
    // A resolved alert without an end (never made by the engine) ends now.
    let mut odd = resolved(firing("A", &[], 10), 900);
    odd.ends_at = None;
    assert_eq!(p.ends_at(&odd, now), Some(now));
    // A firing alert re-sent later ends later: each re-send pushes the end out.
    let a = firing("A", &[], 10);
    assert!(p.ends_at(&a, t(1060)) > p.ends_at(&a, t(1000)));
}

#[test]
fn the_body_is_the_v2_postable_alerts_array() {
    let p = policy(60, 1);
    let alerts = [
        firing("PoolNearFull", &[("target", "db"), ("pool", "p1")], 0),
        pending(firing(
            "PoolNearFull",
            &[("target", "db"), ("pool", "p2")],
            0,
        )),
        resolved(firing("Saturated", &[("target", "db")], 0), 30),
    ];
    let body = render(&alerts, "http://pw.example:9187/", &p, t(60)).unwrap();
    let got: Value = serde_json::from_slice(&body).unwrap();
    let want = json!([
        {
            "labels": {"alertname": "PoolNearFull", "pool": "p1", "target": "db"},
            "annotations": {"summary": "PoolNearFull fires"},
            "startsAt": "2023-11-14T22:13:20Z",
            "endsAt": "2023-11-14T22:18:20Z",
            "generatorURL": "http://pw.example:9187/api/v1/alerts"
        },
        {
            "labels": {"alertname": "Saturated", "target": "db"},
            "annotations": {"summary": "Saturated fires"},
            "startsAt": "2023-11-14T22:13:20Z",
            "endsAt": "2023-11-14T22:13:50Z",
            "generatorURL": "http://pw.example:9187/api/v1/alerts"
        }
    ]);
    assert_eq!(got, want);
    assert_eq!(render(&[], "http://x", &p, t(0)).unwrap(), b"[]");
}

#[test]
fn two_replicas_push_the_same_labels() {
    // The same alert seen by two daemons: started a poll apart, with other numbers in its
    // summary. The Alertmanager keys alerts by their labels alone.
    let one = firing("PoolNearFull", &[("target", "db"), ("pool", "p1")], 0);
    let mut two = firing("PoolNearFull", &[("target", "db"), ("pool", "p1")], 1);
    two.annotations
        .insert("summary".into(), "db: 19/20 in use".into());
    let p = policy(60, 1);
    let labels_of = |alert: &Alert, url: &str| -> Value {
        let body = render(std::slice::from_ref(alert), url, &p, t(10)).unwrap();
        serde_json::from_slice::<Value>(&body).unwrap()[0]["labels"].clone()
    };
    assert_eq!(
        labels_of(&one, "http://replica-a:9187"),
        labels_of(&two, "http://replica-b:9187")
    );
    assert_eq!(labels_of(&one, "http://a").as_object().unwrap().len(), 3);
}
