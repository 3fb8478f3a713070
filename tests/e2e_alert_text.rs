//! End-to-end: what notices say around a reload and a recovery, through the binary and a real
//! receiver.
//!
//! * A label-only reload (a target's `labels`, then a rule's) while an alert fires: the alert
//!   stays firing in `/api/v1/alerts` with its `activeAt` throughout; the receiver gets the new
//!   label set's firing notice with the original `startsAt`, then the retirement of the old one
//!   (status resolved, `reason` `replaced`, `replaced_by` the new fingerprint), and no page
//!   after `for`.
//! * A resolved `TargetDown` says what recovered and how long it lasted.

mod common;

use common::scenario::{expect_metric, header, monitored_cluster, receiver, target, WAIT};
use common::{Poolwatch, Receiver, RecordedRequest};
use serde_json::Value;
use std::time::Duration;

/// The one alert of a recorded Alertmanager payload.
fn alert(r: &RecordedRequest) -> Value {
    let json = r.json.as_ref().expect("JSON payload");
    json["alerts"][0].clone()
}

/// `(state, activeAt)` of every `alertname` alert in `/api/v1/alerts`.
async fn api_states(pw: &Poolwatch, alertname: &str) -> Vec<(String, String)> {
    let (status, body) = pw.get("/api/v1/alerts").await;
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).expect("alerts JSON");
    json["data"]["alerts"]
        .as_array()
        .expect("alerts array")
        .iter()
        .filter(|a| a["labels"]["alertname"] == alertname)
        .map(|a| (a["state"].to_string(), a["activeAt"].to_string()))
        .collect()
}

/// Waits until the receiver has `n` requests, all accepted; returns them.
async fn wait_requests(hook: &Receiver, n: usize) -> Vec<RecordedRequest> {
    let arrived = hook.wait_for(|r| r.len() >= n, WAIT).await;
    let requests = hook.requests();
    assert!(arrived, "want {n} notices, got {}", requests.len());
    assert!(requests.iter().all(|r| r.answered == 200));
    requests
}

/// `IdleTx`: warning while a session is idle in transaction, after `for = "2s"`; `labels` are
/// the rule's extra labels (TOML inline table body).
fn idle_tx_rule(labels: &str) -> String {
    format!(
        "[[rules]]\nname = \"IdleTx\"\nmetric = \"idle_in_transaction\"\nwarning = 1\n\
         for = \"2s\"\nmatchers = ['kind=\"server\"']\nlabels = {{ {labels} }}\n\n"
    )
}

/// Rewrites the config, sends SIGHUP and, until the reload is logged and a little after,
/// checks that `IdleTx` stays firing with the same `activeAt` in `/api/v1/alerts`.
async fn reload_without_gap(pw: &Poolwatch, config: &str, reloads_before: usize) {
    let before = api_states(pw, "IdleTx").await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].0, "\"firing\"");
    pw.config().write(config);
    pw.sighup();
    let reloaded = || pw.logs().matches("configuration reloaded").count() > reloads_before;
    let mut after_reload = 0;
    let deadline = std::time::Instant::now() + WAIT;
    while after_reload < 10 {
        assert!(std::time::Instant::now() < deadline, "{}", pw.logs());
        if reloaded() {
            after_reload += 1;
        }
        assert_eq!(
            api_states(pw, "IdleTx").await,
            before,
            "a gap in /api/v1/alerts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks that `replaced` retires `old`'s label set for `new`'s, which kept the start time.
fn assert_replaced(old: &Value, new: &Value, replaced: &Value) {
    assert_eq!(new["status"], "firing", "{new}");
    assert_eq!(new["startsAt"], old["startsAt"], "{new}");
    assert_ne!(new["fingerprint"], old["fingerprint"]);
    // The same text, but for ages, which grow between the two notices.
    let ages = regex::Regex::new(r"\d+(\.\d+)?(ms|s|m|h)\b").expect("regex");
    let text = |v: &Value| {
        ages.replace_all(v.as_str().unwrap_or_default(), "<age>")
            .to_string()
    };
    assert_eq!(
        text(&new["annotations"]["summary"]),
        text(&old["annotations"]["summary"])
    );
    assert_eq!(replaced["status"], "resolved", "{replaced}");
    assert_eq!(replaced["fingerprint"], old["fingerprint"]);
    assert_eq!(replaced["labels"], old["labels"]);
    assert_eq!(replaced["startsAt"], old["startsAt"]);
    let a = &replaced["annotations"];
    assert_eq!(a["reason"], "replaced", "{replaced}");
    assert_eq!(a["replaced_by"], new["fingerprint"], "{replaced}");
    let summary = a["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("db: IdleTx replaced by a configuration change: labels now")
            && summary.ends_with("it did not clear"),
        "{summary}"
    );
}

#[tokio::test]
async fn a_label_only_reload_while_firing_neither_resolves_nor_pages_again() {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let config = |target_labels: &str, rule_labels: &str| {
        [
            header(""),
            target(
                "db",
                pg.port(),
                &format!("labels = {{ {target_labels} }}\n"),
            ),
            idle_tx_rule(rule_labels),
            receiver("oncall", &hook.url("/hook"), ""),
        ]
        .concat()
    };
    let pw = Poolwatch::start(&config("team = \"orders\"", "")).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "db")], 1.0).await;
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    let first = alert(&wait_requests(&hook, 1).await[0]);
    assert_eq!(first["status"], "firing");
    assert_eq!(first["labels"]["team"], "orders");

    // A target label added.
    let with_env = config("team = \"orders\", env = \"prod\"", "");
    reload_without_gap(&pw, &with_env, 0).await;
    let sent = wait_requests(&hook, 3).await;
    let (moved, retired) = (alert(&sent[1]), alert(&sent[2]));
    assert_eq!(moved["labels"]["env"], "prod");
    assert_replaced(&first, &moved, &retired);

    // A rule label added.
    let with_page = config("team = \"orders\", env = \"prod\"", "page = \"yes\"");
    reload_without_gap(&pw, &with_page, 1).await;
    let sent = wait_requests(&hook, 5).await;
    let (paged, retired) = (alert(&sent[3]), alert(&sent[4]));
    assert_eq!(paged["labels"]["page"], "yes");
    assert_replaced(&moved, &paged, &retired);

    // Past `for` (2s) under the new labels: no new page, nothing resolved.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.requests().len(), 5);

    // The condition clears: one resolved notice, for the current label set, saying so.
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    let sent = wait_requests(&hook, 6).await;
    let cleared = alert(&sent[5]);
    assert_eq!(cleared["status"], "resolved");
    assert_eq!(cleared["fingerprint"], paged["fingerprint"]);
    assert_eq!(cleared["startsAt"], first["startsAt"]);
    let summary = cleared["annotations"]["summary"]
        .as_str()
        .unwrap_or_default();
    let want = regex::Regex::new(
        r"^db: IdleTx cleared after [0-9.hms ]+; 0 sessions idle in transaction now$",
    )
    .expect("regex");
    assert!(want.is_match(summary), "{summary}");
    assert!(cleared["annotations"].get("reason").is_none(), "{cleared}");
    tx.close().await;
}

#[tokio::test]
async fn a_resolved_target_down_says_what_recovered_and_how_long_it_lasted() {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let config = [
        header(""),
        target("db", pg.port(), ""),
        "[[rules]]\nname = \"TargetDown\"\nfor = \"300ms\"\n\n".into(),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat();
    let pw = Poolwatch::start(&config).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "db")], 1.0).await;
    pg.stop().await;
    let fired = alert(&wait_requests(&hook, 1).await[0]);
    assert_eq!(
        fired["annotations"]["summary"],
        "db cannot be polled (network)"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.start_again().await;
    let resolved = alert(&wait_requests(&hook, 2).await[1]);
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["fingerprint"], fired["fingerprint"]);
    let summary = resolved["annotations"]["summary"]
        .as_str()
        .unwrap_or_default();
    // Stopping the server may first refuse with 57P03 (shutting down), then not answer at all;
    // on a loaded machine the last attempt before recovery may also time out while it starts.
    let want = regex::Regex::new(
        r"^db is up after [0-9.hms ]+ down \((network|cannot_connect_now|timeout)\)$",
    )
    .expect("regex");
    assert!(want.is_match(summary), "{summary}");
    let description = resolved["annotations"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.starts_with("The last error was: ")
            && description.contains("Last seen: ")
            && !description.contains(" - "),
        "{description}"
    );
}
