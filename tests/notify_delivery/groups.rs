//! Group notifications through the notifier: one per group per receiver (a newer state
//! supersedes a waiting one), a stable id across retries, truncation.

use super::*;

#[tokio::test]
async fn a_receiver_that_comes_back_gets_each_group_s_current_state_once() {
    let fx = Fixture::new();
    let port = closed_port();
    let notifier = fx.start(vec![fast("ops", format!("http://127.0.0.1:{port}/"))]);
    let names = ["N1", "N2", "N3", "N4", "N5"];
    for name in names {
        notifier.notify(&firing(name));
    }
    // Down for a while: several attempts fail with connection refused.
    let retryable = [("receiver", "ops"), ("class", "retryable")];
    eventually("3 failed attempts", || {
        fx.value(FAILURES, &retryable) >= Some(3.0)
    })
    .await;
    // N1 resolves meanwhile: its newer state supersedes the firing one.
    let n1_resolved = group("ops", vec![alert("N1", AlertState::Resolved)]);
    notifier.notify(&n1_resolved);
    fx.wait_value(DROPPED, &[("reason", "superseded")], 1.0)
        .await;
    assert_eq!(fx.value(QUEUE, &[("receiver", "ops")]), Some(5.0));
    let hook = Hook::start(port, vec![]).await;
    hook.wait_for_requests(5).await;
    let mut accepted = hook.accepted();
    accepted.sort();
    assert_eq!(accepted, names);
    let n1: Vec<Received> = hook
        .received()
        .into_iter()
        .filter(|r| r.alertname() == "N1")
        .collect();
    assert_eq!(n1.len(), 1);
    assert_eq!(n1[0].json["status"], "resolved");
    assert_eq!(n1[0].headers["idempotency-key"], n1_resolved.id.as_str());
    fx.wait_value(DELIVERED, &[("receiver", "ops")], 5.0).await;
    assert_eq!(fx.value(QUEUE, &[("receiver", "ops")]), Some(0.0));
    notifier.shutdown(Duration::from_secs(5)).await;
    assert_eq!(hook.received().len(), 5);
    let delivered = fx.outcomes().into_iter().filter(|(_, ok)| *ok).count();
    assert_eq!(delivered, 5);
}

#[tokio::test]
async fn a_group_notification_keeps_its_id_across_retries_and_is_truncated_if_asked() {
    let fx = Fixture::new();
    let hook = Hook::start(0, vec![Reply::status(503)]).await;
    let mut settings = fast("ops", hook.url("/"));
    settings.max_alerts = 2;
    let notifier = fx.start(vec![settings]);
    let n = group(
        "ops",
        vec![
            alert("A", AlertState::Resolved),
            alert("B", AlertState::Firing),
            alert("C", AlertState::Firing),
        ],
    );
    notifier.notify(&n);
    let got = hook.wait_for_requests(2).await;
    for r in &got {
        assert_eq!(r.headers["idempotency-key"], n.id.as_str());
    }
    let body = &got[1].json;
    assert_eq!(body["status"], "firing");
    assert_eq!(body["alerts"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["truncatedAlerts"], 1);
    assert_eq!(body["alerts"][0]["status"], "resolved");
    assert_eq!(body["alerts"][0]["endsAt"], "2023-11-14T22:14:20Z");
    assert_eq!(body["commonLabels"]["target"], "orders-db");
    assert!(body["commonLabels"].get("alertname").is_none(), "{body}");
    assert_eq!(body["groupKey"], n.group_key.as_str());
    fx.wait_value(DELIVERED, &[("receiver", "ops")], 1.0).await;
    notifier.shutdown(Duration::from_secs(5)).await;
}
