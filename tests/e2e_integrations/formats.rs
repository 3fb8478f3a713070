//! Slack and PagerDuty bodies through the binary, against real local HTTP receivers; each
//! integration of a receiver delivered on its own: a Slack endpoint failing with 500 holds up
//! neither PagerDuty's trigger nor its resolve, and gets the group's current state once back.

use super::{cluster, receiver_with, watch};
use crate::common::scenario::WAIT;
use crate::common::Receiver;
use serde_json::Value;

const ROUTING_KEY: &str = "R0UTING-KEY-e2e-4711";

/// The JSON bodies `hook` accepted (2xx).
fn accepted(hook: &Receiver) -> Vec<Value> {
    hook.requests()
        .into_iter()
        .filter(|r| (200..300).contains(&r.answered))
        .filter_map(|r| r.json)
        .collect()
}

/// Waits until `hook` accepted a body for which `ok` holds; returns it.
async fn wait_accepted(hook: &Receiver, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let arrived = hook
        .wait_for(
            |rs| {
                rs.iter()
                    .filter(|r| (200..300).contains(&r.answered))
                    .any(|r| r.json.as_ref().is_some_and(&ok))
            },
            WAIT,
        )
        .await;
    assert!(arrived, "{what}: accepted {:?}", accepted(hook));
    accepted(hook)
        .into_iter()
        .rfind(|b| ok(b))
        .unwrap_or_default()
}

#[tokio::test]
async fn slack_and_pagerduty_bodies_and_independent_delivery() {
    let pg = cluster().await;
    let slack = Receiver::start().await;
    let pager = Receiver::start().await;
    pager.set_status(202);
    slack.set_status(500);
    let integrations = [
        format!(
            "type = \"slack\"\nurl = \"{}\"",
            slack.url("/services/T0/B0/XYZ")
        ),
        format!(
            "type = \"pagerduty\"\nurl = \"{}\"\nrouting_key = \"{ROUTING_KEY}\"",
            pager.url("/v2/enqueue")
        ),
    ];
    let pw = watch(&pg, &receiver_with("oncall", &integrations)).await;
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");

    // PagerDuty triggers while Slack keeps failing.
    let trigger = wait_accepted(&pager, "trigger", |b| b["event_action"] == "trigger").await;
    assert_eq!(trigger["routing_key"], ROUTING_KEY);
    assert_eq!(trigger["payload"]["severity"], "warning");
    assert_eq!(trigger["payload"]["source"], "db");
    assert_eq!(trigger["payload"]["class"], "IdleTx");
    let summary = trigger["payload"]["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("idle in transaction"), "{summary}");
    let details = &trigger["payload"]["custom_details"];
    assert_eq!(details["firing"], 1, "{details}");
    assert_eq!(details["alerts"][0]["summary"], summary);
    let dedup = trigger["dedup_key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(dedup.starts_with("poolwatch-"), "{dedup}");
    assert!(slack.requests().iter().all(|r| r.answered == 500));

    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    let resolve = wait_accepted(&pager, "resolve", |b| b["event_action"] == "resolve").await;
    assert_eq!(resolve["dedup_key"], dedup.as_str(), "the same incident");

    // Slack comes back and gets the group's current state: resolved.
    assert!(!slack.requests().is_empty(), "Slack was tried");
    slack.set_status(200);
    let body = wait_accepted(&slack, "slack", |b| b["text"].is_string()).await;
    let text = body["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("[RESOLVED] IdleTx on db"), "{text}");
    assert!(text.contains("idle in transaction"), "{text}");
    assert_eq!(body["attachments"][0]["color"], "good");

    let logs = pw.logs();
    assert!(!logs.contains(ROUTING_KEY), "routing key logged:\n{logs}");
    assert!(
        !logs.contains("/services/T0/B0/XYZ"),
        "Slack URL logged:\n{logs}"
    );
    let metrics = pw.metrics().await.expect("metrics");
    for s in metrics
        .iter()
        .filter(|s| s.name.starts_with("poolwatch_notification"))
    {
        assert!(!format!("{:?}", s.labels).contains(ROUTING_KEY));
    }
}
