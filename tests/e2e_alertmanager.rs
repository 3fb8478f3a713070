//! End-to-end: poolwatch pushing to a real Alertmanager (`type = "alertmanager"`), and two
//! replicas of it run highly available. Two daemons watch the same real PostgreSQL cluster and
//! push to the same Alertmanager, which routes to one webhook receiver: a pool filling up pages
//! once, freeing it resolves once, and a replica killed with `kill -9` while the alert fires
//! neither resolves it nor pages again. Once both are gone, the Alertmanager resolves the alert
//! by itself when the `endsAt` of the last push passes.

mod common;

use common::scenario::{header, idle_in_transaction_rule, monitored_cluster, target, WAIT};
use common::{Alertmanager, AlertmanagerOptions, PgCluster, Poolwatch, Receiver, RecordedRequest};
use std::time::Duration;

/// Re-sent every second: the Alertmanager holds a firing alert 4 s past the last push.
const RESEND: &str = "1s";

/// `"firing IdleTx"`: each page's status and alert names, in order.
fn pages(requests: &[RecordedRequest]) -> Vec<String> {
    requests
        .iter()
        .filter_map(|r| r.json.as_ref())
        .map(|j| {
            let names: Vec<&str> = j["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["labels"]["alertname"].as_str())
                .collect();
            format!(
                "{} {}",
                j["status"].as_str().unwrap_or("?"),
                names.join(",")
            )
        })
        .collect()
}

/// Waits until the pages are exactly `want`; panics with what came instead.
async fn expect_pages(hook: &Receiver, am: &Alertmanager, want: &[&str]) {
    let ok = hook.wait_for(|r| pages(r) == want, WAIT).await;
    assert!(
        ok,
        "expected {want:?}, got {:?}\n{}",
        pages(&hook.requests()),
        am.log()
    );
}

/// Waits `quiet` and checks the pages are still exactly `want`.
async fn still_pages(hook: &Receiver, am: &Alertmanager, want: &[&str], quiet: Duration) {
    tokio::time::sleep(quiet).await;
    assert_eq!(pages(&hook.requests()), want, "{}", am.log());
}

/// The configuration both replicas run: one target, the `IdleTx` rule, one receiver whose only
/// integration pushes to `am`.
fn replica_config(pg: &PgCluster, am: &Alertmanager) -> String {
    [
        header("builtin_rules = false"),
        target("db", pg.port(), ""),
        idle_in_transaction_rule("IdleTx", 1),
        format!(
            "[[receivers]]\nname = \"alertmanager\"\ninitial_backoff = \"50ms\"\n\
             max_backoff = \"500ms\"\n[[receivers.integrations]]\ntype = \"alertmanager\"\n\
             urls = [\"{}\"]\nresend_interval = \"{RESEND}\"\n",
            am.url("")
        ),
    ]
    .concat()
}

/// Everything of a test: the cluster, the page receiver, the Alertmanager paging it (grouping
/// by alert name and target), the two replicas pushing to it, and the session whose open
/// transaction makes `IdleTx` fire.
struct Setup {
    _pg: PgCluster,
    hook: Receiver,
    am: Alertmanager,
    one: Poolwatch,
    two: Poolwatch,
    tx: common::pg::Conn,
}

/// [`Setup`] with `IdleTx` firing and paged once.
async fn firing_behind_two_replicas() -> Setup {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let mut options = AlertmanagerOptions::new(&hook.url("/page"));
    options.group_by = vec!["alertname".into(), "target".into()];
    let am = Alertmanager::start_with(options).await;
    let config = replica_config(&pg, &am);
    let one = Poolwatch::start(&config).await;
    let two = Poolwatch::start(&config).await;
    for pw in [&one, &two] {
        common::scenario::expect_metric(pw, "poolwatch_target_up", &[("target", "db")], 1.0).await;
    }
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_pages(&hook, &am, &["firing IdleTx"]).await;
    Setup {
        _pg: pg,
        hook,
        am,
        one,
        two,
        tx,
    }
}

/// Waits until `pw` has pushed to the Alertmanager at least `n` times.
async fn pushed_at_least(pw: &Poolwatch, n: f64) {
    pw.wait_for_metric(
        "poolwatch_notifications_delivered_total",
        &[
            ("receiver", "alertmanager"),
            ("integration", "alertmanager"),
        ],
        |v| v >= n,
        WAIT,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", pw.logs()));
}

#[tokio::test]
async fn two_replicas_page_once_and_resolve_once() {
    let s = firing_behind_two_replicas().await;
    // Both replicas push, again and again; the Alertmanager holds one alert and pages once.
    for pw in [&s.one, &s.two] {
        pushed_at_least(pw, 3.0).await;
    }
    let held = s.am.alerts().await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["labels"]["alertname"], "IdleTx");
    assert_eq!(held[0]["status"]["state"], "active");
    still_pages(&s.hook, &s.am, &["firing IdleTx"], Duration::from_secs(2)).await;

    s.tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    expect_pages(&s.hook, &s.am, &["firing IdleTx", "resolved IdleTx"]).await;
    still_pages(
        &s.hook,
        &s.am,
        &["firing IdleTx", "resolved IdleTx"],
        Duration::from_secs(3),
    )
    .await;
    s.tx.close().await;
}

#[tokio::test]
async fn a_replica_killed_while_firing_neither_resolves_nor_pages_again() {
    let s = firing_behind_two_replicas().await;
    pushed_at_least(&s.one, 2.0).await;

    // kill -9: its last push ends the alert 4 s from then, but the other replica keeps pushing.
    drop(s.one);
    still_pages(&s.hook, &s.am, &["firing IdleTx"], Duration::from_secs(7)).await;
    assert_eq!(s.am.alerts().await.len(), 1);

    // With both gone, the Alertmanager resolves the alert once the last push's end passes.
    drop(s.two);
    expect_pages(&s.hook, &s.am, &["firing IdleTx", "resolved IdleTx"]).await;
    s.tx.close().await;
}
