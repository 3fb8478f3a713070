//! End-to-end: routes, groups and the durable notification log through the binary, against a
//! real PostgreSQL cluster and a real HTTP receiver. A group's alerts arrive in one payload;
//! after a restart — SIGTERM or `kill -9` — nothing acknowledged is sent again and nothing
//! unacknowledged is forgotten, with the same notification id.

mod common;

use common::poolwatch::run_cli;
use common::scenario::{
    expect_metric, header, idle_in_transaction_rule, monitored_cluster, receiver, target, WAIT,
};
use common::{Poolwatch, Receiver};
use serde_json::Value;
use std::path::Path;

/// The accepted requests' bodies.
fn accepted_bodies(hook: &Receiver) -> Vec<Value> {
    hook.requests()
        .into_iter()
        .filter(|r| (200..300).contains(&r.answered))
        .filter_map(|r| r.json)
        .collect()
}

/// `"firing A,B"`: a payload's status and its alerts' names, for comparing sequences.
fn brief(body: &Value) -> String {
    let names: Vec<&str> = body["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["labels"]["alertname"].as_str())
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{} {}",
        body["status"].as_str().unwrap_or("?"),
        names.join(",")
    )
}

/// Waits until the receiver accepted exactly `want` (as [`brief`]s, in order).
async fn expect_accepted_groups(hook: &Receiver, want: &[&str]) {
    let ok = hook
        .wait_for(
            |requests| {
                let got: Vec<String> = requests
                    .iter()
                    .filter(|r| (200..300).contains(&r.answered))
                    .filter_map(|r| r.json.as_ref().map(brief))
                    .collect();
                got == want
            },
            WAIT,
        )
        .await;
    let got: Vec<String> = accepted_bodies(hook).iter().map(brief).collect();
    assert!(ok, "expected {want:?}, accepted {got:?}");
}

/// Waits until the daemon has checked a group against the log and found it up to date `n`
/// times more than `from`: after that, anything it was going to send has been handed over.
async fn wait_up_to_date(pw: &Poolwatch, at_least: f64) {
    pw.wait_for_metric(
        "poolwatch_notification_decisions_total",
        &[("receiver", "oncall"), ("reason", "up_to_date")],
        |v| v >= at_least,
        WAIT,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// The state file as JSON (empty when unreadable).
fn state(file: &Path) -> Value {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_default()
}

/// Waits until `ok` holds for the state file.
async fn wait_state(file: &Path, what: &str, ok: impl Fn(&Value) -> bool) {
    let saved = common::poll_until(WAIT, || async { ok(&state(file)).then_some(()) }).await;
    assert!(saved.is_some(), "{what}: {}", state(file));
}

/// Poolwatch watching `pg` with rules `IdleTxA` and `IdleTxB` (both fire on one idle
/// transaction), receiver `oncall` at `hook`, and `extra` config; returns once the target is up.
async fn two_rules(pg: &common::PgCluster, hook: &Receiver, extra: &str) -> Poolwatch {
    let config = [
        header("builtin_rules = false"),
        target("db", pg.port(), ""),
        idle_in_transaction_rule("IdleTxA", 1),
        idle_in_transaction_rule("IdleTxB", 1),
        receiver("oncall", &hook.url("/hook"), ""),
        extra.to_string(),
    ]
    .concat();
    let pw = Poolwatch::start(&config).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "db")], 1.0).await;
    pw
}

/// One target on `pg`, the `IdleTx` rule, `hook` as receiver `oncall`, the state in `file`,
/// and `alerting` lines.
fn with_state_file(pg: &common::PgCluster, hook: &Receiver, file: &Path, alerting: &str) -> String {
    [
        header(&format!(
            "builtin_rules = false\nstate_file = \"{}\"\n{alerting}",
            file.display()
        )),
        target("db", pg.port(), ""),
        idle_in_transaction_rule("IdleTx", 1),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat()
}

/// Entries of the notification log in the state file (by receiver, integration, group key).
fn log_entries(st: &Value) -> usize {
    st["dispatch"]["log"]["entries"].as_object().map_or(0, |r| {
        r.values()
            .filter_map(Value::as_object)
            .flat_map(|i| i.values())
            .filter_map(Value::as_object)
            .map(|g| g.len())
            .sum()
    })
}

#[tokio::test]
async fn a_group_s_alerts_arrive_in_one_notification() {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let _pw = two_rules(
        &pg,
        &hook,
        "[route]\nreceiver = \"oncall\"\ngroup_by = [\"target\"]\ngroup_wait = \"1s\"\n\
         group_interval = \"1s\"\n",
    )
    .await;
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_accepted_groups(&hook, &["firing IdleTxA,IdleTxB"]).await;
    let body = &accepted_bodies(&hook)[0];
    assert_eq!(body["groupKey"], "{}:{target=\"db\"}", "{body}");
    assert_eq!(body["groupLabels"], serde_json::json!({"target": "db"}));
    assert_eq!(body["commonLabels"]["target"], "db");
    assert!(body["commonLabels"].get("alertname").is_none(), "{body}");
    assert_eq!(body["truncatedAlerts"], 0);
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    expect_accepted_groups(
        &hook,
        &["firing IdleTxA,IdleTxB", "resolved IdleTxA,IdleTxB"],
    )
    .await;
    let ids: Vec<String> = hook
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    tx.close().await;
}

#[tokio::test]
async fn restarts_neither_resend_what_was_acknowledged_nor_forget_what_was_not() {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.json");
    let config = with_state_file(&pg, &hook, &file, "shutdown_flush_timeout = \"200ms\"");
    let tx = pg.open("postgres", "postgres").await.expect("connect");

    // Fires while the receiver refuses; SIGTERM before any acknowledgement.
    hook.set_status(500);
    let mut first = Poolwatch::start(&config).await;
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    assert!(hook.wait_for(|r| r.len() >= 2, WAIT).await, "no attempts");
    first.sigterm();
    assert_eq!(first.wait_exit(WAIT).await.code(), Some(0));
    let refused_ids: Vec<String> = hook
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").unwrap_or_default().to_string())
        .collect();
    assert!(
        refused_ids.windows(2).all(|w| w[0] == w[1]),
        "{refused_ids:?}"
    );

    // The next process sends it (same id) once the receiver accepts.
    hook.set_status(200);
    let second = Poolwatch::start(&config).await;
    expect_accepted_groups(&hook, &["firing IdleTx"]).await;
    let last = hook.requests().last().cloned().expect("request");
    assert_eq!(
        last.header("idempotency-key"),
        Some(refused_ids[0].as_str())
    );
    wait_state(&file, "acknowledgement saved", |st| log_entries(st) == 1).await;
    wait_up_to_date(&second, 1.0).await;

    // kill -9 after the acknowledgement: the next process does not page again...
    drop(second);
    let third = Poolwatch::start(&config).await;
    expect_metric(
        &third,
        "poolwatch_alerts",
        &[("alertname", "IdleTx"), ("state", "firing")],
        1.0,
    )
    .await;
    wait_up_to_date(&third, 2.0).await;
    expect_accepted_groups(&hook, &["firing IdleTx"]).await;

    // ...and a resolution that was not acknowledged before kill -9 is sent by the next one.
    hook.set_status(500);
    let before = hook.requests().len();
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    assert!(
        hook.wait_for(|r| r.len() >= before + 2, WAIT).await,
        "no attempts"
    );
    wait_state(&file, "resolution held", |st| {
        st["dispatch"]["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["state"] == "resolved"))
    })
    .await;
    drop(third);
    hook.set_status(200);
    let fourth = Poolwatch::start(&config).await;
    expect_accepted_groups(&hook, &["firing IdleTx", "resolved IdleTx"]).await;
    wait_state(&file, "resolution acknowledged", |st| {
        st["dispatch"]["alerts"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
    // Nothing more: the resolution was acknowledged once.
    let first_poll = fourth
        .wait_for_metric(
            "poolwatch_poll_duration_seconds_count",
            &[("target", "db")],
            |v| v >= 20.0,
            WAIT,
        )
        .await;
    assert!(first_poll.is_ok());
    expect_accepted_groups(&hook, &["firing IdleTx", "resolved IdleTx"]).await;
    tx.close().await;
}

#[tokio::test]
async fn an_inhibited_alert_is_listed_but_not_sent() {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let pw = two_rules(
        &pg,
        &hook,
        "[[inhibit_rules]]\nsource_matchers = ['alertname=\"IdleTxA\"']\n\
         target_matchers = ['alertname=\"IdleTxB\"']\nequal = [\"target\"]\n",
    )
    .await;
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_accepted_groups(&hook, &["firing IdleTxA"]).await;
    let (_, body) = pw.get("/api/v1/alerts").await;
    let json: Value = serde_json::from_str(&body).expect("JSON");
    let alerts = json["data"]["alerts"].as_array().expect("alerts").clone();
    let by_name = |n: &str| {
        alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == n)
            .cloned()
    };
    let a = by_name("IdleTxA").expect("IdleTxA listed");
    let b = by_name("IdleTxB").expect("IdleTxB listed");
    assert_eq!(b["state"], "firing", "{body}");
    assert_eq!(
        b["inhibitedBy"],
        serde_json::json!([a["fingerprint"]]),
        "{body}"
    );
    assert!(a.get("inhibitedBy").is_none(), "{body}");
    wait_up_to_date(&pw, 2.0).await;
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    expect_accepted_groups(&hook, &["firing IdleTxA", "resolved IdleTxA"]).await;
    tx.close().await;
}

/// Runs `poolwatch silence ARGS --url` against `pw`; returns its standard output.
async fn silence(pw: &Poolwatch, args: &[&str]) -> String {
    let url = pw.url("");
    let mut all = vec!["silence"];
    all.extend_from_slice(args);
    all.extend(["--url", url.as_str()]);
    let out = run_cli(&all).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{all:?}: {stdout}{stderr}");
    stdout
}

#[tokio::test]
async fn a_silence_mutes_until_expired_and_survives_a_restart() {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.json");
    let config = with_state_file(&pg, &hook, &file, "");
    let mut first = Poolwatch::start(&config).await;
    let id = silence(
        &first,
        &[
            "add",
            "--matcher",
            "alertname=\"IdleTx\"",
            "--author",
            "ana",
            "--comment",
            "planned maintenance",
            "--duration",
            "1h",
        ],
    )
    .await
    .trim()
    .to_string();
    assert_eq!(id.len(), 16, "{id}");
    wait_state(&file, "silence saved", |st| {
        st["silences"]["list"]
            .as_object()
            .is_some_and(|l| l.contains_key(&id))
    })
    .await;
    first.sigterm();
    assert_eq!(first.wait_exit(WAIT).await.code(), Some(0));

    // Restored with the state file: it still mutes.
    let pw = Poolwatch::start(&config).await;
    let listed = silence(&pw, &["list"]).await;
    assert!(
        listed.starts_with(&id)
            && listed.contains("active")
            && listed.contains("planned maintenance"),
        "{listed}"
    );
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    pw.wait_for_metric(
        "poolwatch_notification_decisions_total",
        &[("receiver", "oncall"), ("reason", "empty")],
        |v| v >= 2.0,
        WAIT,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let (_, body) = pw.get("/api/v1/alerts").await;
    let json: Value = serde_json::from_str(&body).expect("JSON");
    let alert = &json["data"]["alerts"][0];
    assert_eq!(alert["state"], "firing", "{body}");
    assert_eq!(alert["silencedBy"], serde_json::json!([id]), "{body}");
    assert!(hook.requests().is_empty(), "sent while silenced");

    // Expired: the firing alert is sent.
    assert_eq!(
        silence(&pw, &["expire", &id]).await.trim(),
        format!("expired {id}")
    );
    expect_accepted_groups(&hook, &["firing IdleTx"]).await;
    assert!(silence(&pw, &["list"]).await.contains("expired"));
    let out = run_cli(&["silence", "expire", &id, "--url", &pw.url("")]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{out:?}"
    );
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    expect_accepted_groups(&hook, &["firing IdleTx", "resolved IdleTx"]).await;
    tx.close().await;
}
