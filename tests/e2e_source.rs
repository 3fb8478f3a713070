//! End-to-end: how the PostgreSQL source behaves on a slow poll, a monitoring role without
//! `pg_monitor`, a password it was not given, and a reload that changes only alert labels.
//! The binary against real servers; waits are bounded polls for expected events.

mod common;

use common::scenario::{
    create_monitor_role, expect_accepted, expect_accepted_unordered, expect_metric, header,
    idle_in_transaction_rule, metric, monitored_cluster, poolwatch_sessions, receiver, target,
    MONITOR_PASSWORD, MONITOR_ROLE, WAIT,
};
use common::{PgCluster, PgOptions, Poolwatch, Receiver};
use tokio_postgres::Client;

/// The backend pids of poolwatch's sessions, read from `pg_stat_get_activity` directly: the
/// `pg_stat_activity` view joins `pg_database`, which a test below locks.
async fn poolwatch_pids(c: &Client) -> Vec<i32> {
    let sql = "SELECT pid FROM pg_stat_get_activity(NULL) \
               WHERE application_name = 'poolwatch' ORDER BY pid";
    let rows = c.query(sql, &[]).await.expect("pg_stat_get_activity");
    rows.iter().map(|r| r.get(0)).collect()
}

/// What the backend `pid` waits for (`wait_event_type`), if anything.
async fn wait_event_type(c: &Client, pid: i32) -> Option<String> {
    let sql = "SELECT wait_event_type FROM pg_stat_get_activity($1)";
    let row = c
        .query_one(sql, &[&pid])
        .await
        .expect("pg_stat_get_activity");
    row.get(0)
}

/// Waits until poolwatch has finished `n` more polls of `target` (successful ones: the
/// histogram counts no connection attempts).
async fn wait_polls(pw: &Poolwatch, target: &str, n: f64) {
    let name = "poolwatch_poll_duration_seconds_count";
    let labels = [("target", target)];
    let from = metric(pw, name, &labels).await;
    pw.wait_for_metric(name, &labels, |v| v >= from + n, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_statement_timeout_fails_the_poll_but_keeps_the_one_connection() {
    let pg = monitored_cluster().await;
    let config = [
        header(""),
        target("db", pg.port(), "statement_timeout = \"300ms\"\n"),
    ]
    .concat();
    let pw = Poolwatch::start(&config).await;
    let db = [("target", "db")];
    expect_metric(&pw, "poolwatch_target_up", &db, 1.0).await;
    // Both sessions are opened before the lock: while pg_database is locked, new connections
    // wait for it too (the backend reads it at start-up).
    let watcher = pg.open("postgres", "postgres").await.expect("connect");
    let locker = pg.open("postgres", "postgres").await.expect("connect");
    let pids = poolwatch_pids(&watcher.client).await;
    assert_eq!(
        pids.len(),
        1,
        "poolwatch sessions before the lock: {pids:?}"
    );

    // The poll query reads pg_database (names of databases, their limits): it now waits for
    // the lock until statement_timeout cancels it.
    locker
        .client
        .batch_execute("BEGIN; LOCK TABLE pg_database IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock pg_database");
    let blocked = common::poll_until(WAIT, || async {
        let waits = wait_event_type(&watcher.client, pids[0]).await;
        (waits.as_deref() == Some("Lock")).then_some(())
    })
    .await;
    assert!(blocked.is_some(), "the poll never waited for the lock");
    expect_metric(&pw, "poolwatch_target_up", &db, 0.0).await;
    let timeout = [("target", "db"), ("class", "timeout")];
    expect_metric(&pw, "poolwatch_target_error", &timeout, 1.0).await;
    // Several polls time out in a row, each on the same session: never a reconnect.
    let errors = "poolwatch_poll_errors_total";
    // The target shows the timeout as soon as a poll is late; the failed poll is counted when
    // the server has cancelled it.
    pw.wait_for_metric(errors, &timeout, |n| n >= 1.0, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first = metric(&pw, errors, &timeout).await;
    let more = common::poll_until(WAIT, || async {
        assert_eq!(metric(&pw, "poolwatch_connects_total", &db).await, 1.0);
        assert_eq!(poolwatch_pids(&watcher.client).await, pids);
        (metric(&pw, errors, &timeout).await >= first + 3.0).then_some(())
    })
    .await;
    assert!(more.is_some(), "timeouts stopped being counted");
    assert!(first >= 1.0);

    locker.client.batch_execute("COMMIT").await.expect("COMMIT");
    expect_metric(&pw, "poolwatch_target_up", &db, 1.0).await;
    wait_polls(&pw, "db", 5.0).await;
    assert_eq!(metric(&pw, "poolwatch_connects_total", &db).await, 1.0);
    assert_eq!(poolwatch_pids(&watcher.client).await, pids);
    locker.close().await;
    watcher.close().await;
}

#[tokio::test]
async fn without_pg_monitor_other_roles_sessions_count_as_unknown_and_it_warns_once() {
    let pg = PgCluster::start(PgOptions::default()).await;
    // A plain login role: it sees the state of its own sessions only.
    pg.create_role(MONITOR_ROLE, MONITOR_PASSWORD, None).await;
    pg.create_role("app", "app-pw", None).await;
    let app = pg
        .hold_connections("app", 5, "orders")
        .await
        .expect("app sessions");
    for i in 0..2 {
        app.client(i).batch_execute("BEGIN").await.expect("BEGIN");
    }
    // One more session of poolwatch's own role, whose state it does see.
    let own = pg
        .hold_connections(MONITOR_ROLE, 1, "batch")
        .await
        .expect("own-role session");

    let pw = Poolwatch::start(&[header(""), target("db", pg.port(), "")].concat()).await;
    let server = [("target", "db"), ("kind", "server")];
    expect_metric(&pw, "poolwatch_pool_in_use", &server, 6.0).await;
    let by_state = "poolwatch_server_connections";
    expect_metric(
        &pw,
        by_state,
        &[("target", "db"), ("state", "unknown")],
        5.0,
    )
    .await;
    assert_eq!(
        metric(&pw, by_state, &[("target", "db"), ("state", "idle")]).await,
        1.0
    );
    // Hidden states: the open transactions cannot be told from idle sessions.
    let iit = "poolwatch_pool_idle_in_transaction";
    assert_eq!(metric(&pw, iit, &server).await, 0.0);

    wait_polls(&pw, "db", 20.0).await;
    let warnings = pw.logs().matches("lacks pg_monitor").count();
    assert_eq!(warnings, 1, "{}", pw.logs());
    assert_eq!(metric(&pw, "poolwatch_pool_in_use", &server).await, 6.0);
    own.close_all().await;
    app.close_all().await;
}

#[tokio::test]
async fn a_missing_password_is_an_auth_error_logged_at_every_attempt() {
    let pg = monitored_cluster().await;
    let wrong = "wrong-pw-5f3a9c";
    let config = [
        header(""),
        target("nopw", pg.port(), "").replace(&format!("password = \"{MONITOR_PASSWORD}\"\n"), ""),
        target("wrongpw", pg.port(), &format!("password = \"{wrong}\"\n")),
    ]
    .concat();
    assert!(
        !config.contains(&format!("\"{MONITOR_PASSWORD}\"")),
        "{config}"
    );
    let pw = Poolwatch::start(&config).await;

    // The server asks for SCRAM; with no password, tokio-postgres gives up on the client side.
    let auth = [("target", "nopw"), ("class", "auth")];
    expect_metric(&pw, "poolwatch_target_error", &auth, 1.0).await;
    let samples = pw.metrics().await.expect("scrape");
    let classes: Vec<&str> = samples
        .iter()
        .filter(|s| s.name == "poolwatch_target_error" && s.labels["target"] == "nopw")
        .map(|s| s.labels["class"].as_str())
        .collect();
    assert_eq!(classes, ["auth"]);
    let errors = "poolwatch_poll_errors_total";
    let first = metric(&pw, errors, &auth).await;
    pw.wait_for_metric(errors, &auth, |n| n >= first + 3.0, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Error series exist only for classes that happened.
    let samples = pw.metrics().await.unwrap_or_else(|e| panic!("scrape: {e}"));
    assert!(
        !samples
            .iter()
            .any(|s| s.name == errors && s.labels.get("class").is_some_and(|c| c == "network")),
        "a network error was counted"
    );
    // A wrong password is refused by the server (28P01): auth as well.
    let refused = [("target", "wrongpw"), ("class", "auth")];
    expect_metric(&pw, "poolwatch_target_error", &refused, 1.0).await;

    // Every attempt is logged, not only the first: a configuration error needs fixing.
    let logged = |pw: &Poolwatch| {
        pw.logs()
            .lines()
            .filter(|l| l.contains("cannot log in to target") && l.contains("nopw"))
            .count()
    };
    let repeated = common::poll_until(WAIT, || async { (logged(&pw) >= 2).then_some(()) }).await;
    assert!(repeated.is_some(), "{}", pw.logs());
    assert!(pw.logs().contains("password missing"), "{}", pw.logs());
    assert_eq!(poolwatch_sessions(&pg).await, 0);
    let logs = pw.logs();
    for secret in [MONITOR_PASSWORD, wrong] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}

/// The accepted requests as `"firing IdleTx team=orders"`, oldest first.
fn with_team(hook: &Receiver) -> Vec<String> {
    let requests = hook.requests();
    let accepted = requests.iter().filter(|r| r.answered < 300);
    accepted
        .map(|r| {
            let json = r.json.as_ref().expect("JSON payload");
            let labels = &json["alerts"][0]["labels"];
            let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
            let (status, name) = (text(&json["status"]), text(&labels["alertname"]));
            format!("{status} {name} team={}", text(&labels["team"]))
        })
        .collect()
}

#[tokio::test]
async fn a_label_only_reload_keeps_the_connection_and_relabels_the_alerts() {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let config = |team: &str| {
        [
            header(""),
            target(
                "db",
                pg.port(),
                &format!("labels = {{ team = \"{team}\" }}\n"),
            ),
            idle_in_transaction_rule("IdleTx", 1),
            receiver("oncall", &hook.url("/hook"), ""),
        ]
        .concat()
    };
    let pw = Poolwatch::start(&config("orders")).await;
    let db = [("target", "db")];
    expect_metric(&pw, "poolwatch_target_up", &db, 1.0).await;
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_accepted(&hook, &["firing IdleTx db"]).await;
    assert_eq!(with_team(&hook), ["firing IdleTx team=orders"]);

    // Only the labels change, while the alert fires.
    pw.config().write(&config("payments"));
    pw.sighup();
    assert!(
        pw.wait_for_log("configuration reloaded", WAIT).await,
        "{}",
        pw.logs()
    );
    assert!(pw.logs().contains("restarted=0"), "{}", pw.logs());
    expect_metric(&pw, "poolwatch_config_last_reload_successful", &[], 1.0).await;
    // The alert under the old labels resolves; the same condition fires under the new ones.
    let want = ["resolved IdleTx db", "firing IdleTx db"];
    expect_accepted_unordered(&hook, 1, &want).await;
    let mut relabelled = with_team(&hook)[1..].to_vec();
    relabelled.sort();
    assert_eq!(
        relabelled,
        ["firing IdleTx team=payments", "resolved IdleTx team=orders"]
    );
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    let arrived = hook
        .wait_for(|r| common::scenario::accepted(r).len() == 4, WAIT)
        .await;
    assert!(arrived, "{:?}", with_team(&hook));
    assert_eq!(with_team(&hook)[3], "resolved IdleTx team=payments");

    assert_eq!(metric(&pw, "poolwatch_connects_total", &db).await, 1.0);
    assert_eq!(poolwatch_sessions(&pg).await, 1);
    tx.close().await;
}

#[tokio::test]
async fn the_monitoring_role_with_pg_monitor_does_not_warn() {
    let pg = PgCluster::start(PgOptions::default()).await;
    create_monitor_role(&pg).await;
    let pw = Poolwatch::start(&[header(""), target("db", pg.port(), "")].concat()).await;
    wait_polls(&pw, "db", 5.0).await;
    assert!(!pw.logs().contains("lacks pg_monitor"), "{}", pw.logs());
}
