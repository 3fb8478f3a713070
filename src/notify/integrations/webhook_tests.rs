use super::*;
use crate::dispatch::Alert as Al;
use crate::notice::fingerprint;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn at(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

fn alert(pool: &str, state: AlertState) -> Al {
    let labels = map(&[
        ("alertname", "PoolNearFull"),
        ("pool", pool),
        ("severity", "critical"),
        ("target", "orders-db"),
    ]);
    Al {
        fingerprint: fingerprint(&labels),
        labels,
        annotations: map(&[
            ("description", "in_use > 95% & waiting <3>"),
            ("summary", "orders-db: 97/97 in use"),
        ]),
        state,
        starts_at: at(1_700_000_000_120),
        ends_at: (state == AlertState::Resolved).then(|| at(1_700_000_300_000)),
    }
}

/// A group of one alert under a route grouping by every label.
fn notice(state: AlertState) -> Notification {
    let a = alert("server", state);
    let key = format!("{{}}:{}", crate::dispatch::gofmt::label_set(&a.labels));
    Notification {
        group_labels: a.labels.clone(),
        ..crate::dispatch::fixtures::notification("ops", "webhook", &key, vec![a])
    }
}

fn render_str(n: &Notification, receiver: &str) -> String {
    let bytes = render(n, receiver, "http://poolwatch.example:9671/", 0).expect("render");
    String::from_utf8(bytes).expect("utf-8")
}

/// Golden: exactly the bytes Alertmanager's webhook notifier would post for this alert.
#[test]
fn firing_payload_golden() {
    let want = concat!(
        r#"{"receiver":"ops\\.pager","status":"firing","alerts":[{"status":"firing","#,
        r#""labels":{"alertname":"PoolNearFull","pool":"server","severity":"critical","target":"orders-db"},"#,
        r#""annotations":{"description":"in_use \u003e 95% \u0026 waiting \u003c3\u003e","summary":"orders-db: 97/97 in use"},"#,
        r#""startsAt":"2023-11-14T22:13:20.12Z","endsAt":"0001-01-01T00:00:00Z","#,
        r#""generatorURL":"http://poolwatch.example:9671/api/v1/alerts","fingerprint":"#,
        r#""FP"}],"#,
        r#""groupLabels":{"alertname":"PoolNearFull","pool":"server","severity":"critical","target":"orders-db"},"#,
        r#""commonLabels":{"alertname":"PoolNearFull","pool":"server","severity":"critical","target":"orders-db"},"#,
        r#""commonAnnotations":{"description":"in_use \u003e 95% \u0026 waiting \u003c3\u003e","summary":"orders-db: 97/97 in use"},"#,
        r#""externalURL":"http://poolwatch.example:9671/","version":"4","#,
        r#""groupKey":"{}:{alertname=\"PoolNearFull\", pool=\"server\", severity=\"critical\", target=\"orders-db\"}","#,
        r#""truncatedAlerts":0}"#,
        "\n"
    );
    let n = notice(AlertState::Firing);
    assert_eq!(
        render_str(&n, "ops.pager"),
        want.replace("FP", &n.alerts[0].fingerprint)
    );
}

#[test]
fn resolved_payload_has_end_time_and_parses_back() {
    let n = notice(AlertState::Resolved);
    let v: serde_json::Value = serde_json::from_str(&render_str(&n, "ops")).expect("json");
    assert_eq!(v["status"], "resolved");
    assert_eq!(v["receiver"], "ops");
    assert_eq!(v["alerts"][0]["status"], "resolved");
    assert_eq!(v["alerts"][0]["endsAt"], "2023-11-14T22:18:20Z");
    assert_eq!(
        v["alerts"][0]["annotations"]["description"],
        "in_use > 95% & waiting <3>"
    );
    assert_eq!(v["alerts"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_group_carries_its_alerts_common_labels_and_truncation() {
    let mut n = notice(AlertState::Firing);
    n.group_labels = map(&[("target", "orders-db")]);
    n.group_key = r#"{}:{target="orders-db"}"#.into();
    n.alerts = vec![
        alert("app", AlertState::Resolved),
        alert("server", AlertState::Firing),
        alert("web", AlertState::Firing),
    ];
    n.alerts[2]
        .annotations
        .insert("summary".into(), "orders-db web".into());
    let v: serde_json::Value = serde_json::from_str(&render_str(&n, "ops")).expect("json");
    assert_eq!(v["status"], "firing");
    assert_eq!(v["groupKey"], r#"{}:{target="orders-db"}"#);
    assert_eq!(v["groupLabels"], serde_json::json!({"target": "orders-db"}));
    assert_eq!(
        v["commonLabels"],
        serde_json::json!({"alertname": "PoolNearFull", "severity": "critical", "target": "orders-db"})
    );
    assert_eq!(
        v["commonAnnotations"],
        serde_json::json!({"description": "in_use > 95% & waiting <3>"})
    );
    let states: Vec<&str> = v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["resolved", "firing", "firing"]);
    assert_eq!(v["truncatedAlerts"], 0);
    let cut = render(&n, "ops", "http://x", 2).expect("render");
    let v: serde_json::Value = serde_json::from_slice(&cut).expect("json");
    assert_eq!(v["alerts"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["truncatedAlerts"], 1);
    // Every alert resolved: the group is resolved.
    n.alerts = vec![alert("app", AlertState::Resolved)];
    let v: serde_json::Value = serde_json::from_str(&render_str(&n, "ops")).expect("json");
    assert_eq!(v["status"], "resolved");
}

#[test]
fn receiver_name_is_regexp_quoted_like_alertmanager() {
    assert_eq!(quote_meta("team-a"), "team-a");
    assert_eq!(
        quote_meta("a.b+c*(d)|[e]{f}^$?\\"),
        r"a\.b\+c\*\(d\)\|\[e\]\{f\}\^\$\?\\"
    );
}

#[test]
fn go_time_format() {
    assert_eq!(go_time(at(1_700_000_000_000)), "2023-11-14T22:13:20Z");
    assert_eq!(go_time(at(1_700_000_000_500)), "2023-11-14T22:13:20.5Z");
    let nanos = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    assert_eq!(go_time(nanos), "2023-11-14T22:13:20.123456789Z");
    assert_eq!(
        go_time(UNIX_EPOCH - Duration::from_secs(1)),
        "1970-01-01T00:00:00Z"
    );
    let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
    assert_eq!(go_time(far), "9999-12-31T23:59:59.999999999Z");
}
