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

/// `[[receivers]]` named `r` with one `alertmanager` integration of `keys`: its integrations,
/// or its problems as `key: message` (none quoting the secret `s3cr3t`).
fn configured(keys: &str) -> Result<Vec<super::super::IntegrationSettings>, Vec<String>> {
    let text = format!("name = \"r\"\n[[integrations]]\ntype = \"alertmanager\"\n{keys}\n");
    let cfg: crate::notify::ReceiverConfig = toml::from_str(&text).expect("test TOML");
    let mut problems = crate::config::values::Problems::new("poolwatch.toml");
    let mut receivers = crate::notify::settings_from_config(&[cfg], &mut problems);
    let lines: Vec<String> = problems
        .into_vec()
        .iter()
        .map(|p| format!("{}: {}", p.key.as_deref().unwrap_or("?"), p.message))
        .collect();
    assert!(lines.iter().all(|l| !l.contains("s3cr3t")), "{lines:?}");
    match receivers.pop() {
        Some(r) if lines.is_empty() => Ok(r.integrations),
        _ => Err(lines),
    }
}

#[test]
fn every_url_is_an_integration_of_its_own() {
    let got = configured(
        "urls = [\"http://am-1:9093\", \"http://am-2:9093/\"]\nresend_interval = \"30s\"\n\
         basic_auth = { username = \"pw\", password = \"s3cr3t\" }",
    )
    .unwrap();
    let names: Vec<&str> = got.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["alertmanager/1", "alertmanager/2"]);
    let urls: Vec<&str> = got.iter().map(|i| i.url.expose()).collect();
    assert_eq!(
        urls,
        [
            "http://am-1:9093/api/v2/alerts",
            "http://am-2:9093/api/v2/alerts"
        ]
    );
    for i in &got {
        assert_eq!(i.kind.resend_interval(), Some(Duration::from_secs(30)));
        let auth: Vec<&str> = i.headers.iter().map(|(_, v)| v.expose()).collect();
        // base64("pw:s3cr3t")
        assert_eq!(auth, ["Basic cHc6czNjcjN0"]);
    }
    let one = configured("urls = [\"https://am:9093\"]").unwrap();
    assert_eq!(one[0].name, "alertmanager");
    assert_eq!(one[0].kind.resend_interval(), Some(DEFAULT_RESEND_INTERVAL));
}

#[test]
fn alertmanager_keys_are_checked() {
    let i0 = "receivers[0].integrations[0]";
    let cases = [
        ("", "urls: required"),
        (
            "urls = [\"http://am:9093\"]\nurl = \"http://am:9093\"",
            "url: an alertmanager",
        ),
        (
            "urls = [\"ftp://am/s3cr3t\"]",
            "urls[0]: not a valid http(s) URL",
        ),
        (
            "urls = [\"http://am\"]\nresend_interval = \"0s\"",
            "resend_interval: must be",
        ),
        (
            "urls = [\"http://am\"]\nresend_interval = \"2h\"",
            "resend_interval: must be",
        ),
        (
            "urls = [\"http://am\"]\nbasic_auth = { username = \"u\" }",
            "basic_auth.password: required",
        ),
        (
            "urls = [\"http://am\"]\nbasic_auth = { username = \"u\", password = \"s3cr3t\" }\n\
             headers = { Authorization = \"Bearer s3cr3t\" }",
            "basic_auth: set either",
        ),
    ];
    for (keys, want) in cases {
        let lines = configured(keys).expect_err(keys);
        assert_eq!(lines.len(), 1, "{keys}: {lines:?}");
        assert!(
            lines[0].starts_with(&format!("{i0}.{want}")),
            "{keys}: {lines:?}"
        );
    }
    // And the other way round: a webhook takes none of its keys.
    let text = "name = \"r\"\n[[integrations]]\ntype = \"webhook\"\nurl = \"http://h\"\n\
                urls = [\"http://am\"]\nresend_interval = \"1m\"";
    let cfg: crate::notify::ReceiverConfig = toml::from_str(text).unwrap();
    let mut problems = crate::config::values::Problems::new("poolwatch.toml");
    crate::notify::settings_from_config(&[cfg], &mut problems);
    let keys: Vec<String> = problems
        .into_vec()
        .into_iter()
        .filter_map(|p| p.key)
        .collect();
    assert_eq!(
        keys,
        [format!("{i0}.urls"), format!("{i0}.resend_interval")]
    );
}
