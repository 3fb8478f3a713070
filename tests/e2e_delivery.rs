//! End-to-end: what poolwatch sends and shows, through the binary. Notifications survive a
//! receiver that fails or is down, each group's current state once; secrets never appear in logs, metrics, the alerts
//! API or `check-config`; `/metrics` passes `promtool check metrics` in every target state;
//! `/readyz` waits for the first poll of every target.

mod common;

use common::poolwatch::run_cli_with_env;
use common::scenario::{
    expect_accepted, expect_accepted_unordered, expect_metric, header, idle_in_transaction_rule,
    metric, monitored_cluster, notifications, receiver, target, SilentServer, MONITOR_ROLE, WAIT,
};
use common::{promtool_check_metrics, PgCluster, PgOptions, Poolwatch, PoolwatchOptions, Receiver};
use serde_json::Value;

/// The states of alert `alertname` in `/api/v1/alerts`, one per instance (sorted).
async fn alert_states(pw: &Poolwatch, alertname: &str) -> Vec<String> {
    let (status, body) = pw.get("/api/v1/alerts").await;
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).expect("alerts JSON");
    let mut states: Vec<String> = json["data"]["alerts"]
        .as_array()
        .expect("alerts array")
        .iter()
        .filter(|a| a["labels"]["alertname"] == alertname)
        .map(|a| a["state"].as_str().unwrap_or("?").to_owned())
        .collect();
    states.sort();
    states
}

/// Waits until the instances of `alertname` are in `want` states.
async fn expect_alert_states(pw: &Poolwatch, alertname: &str, want: &[&str]) {
    let reached = common::poll_until(WAIT, || async {
        (alert_states(pw, alertname).await == want).then_some(())
    })
    .await;
    assert!(
        reached.is_some(),
        "{alertname} states {:?}, want {want:?}",
        alert_states(pw, alertname).await
    );
}

/// Starts poolwatch on `pg` with the `IdleTx` rule and one receiver, and opens the session
/// whose `BEGIN`/`COMMIT` drive the rule.
async fn idle_tx_setup(pg: &PgCluster, hook: &Receiver) -> (Poolwatch, common::pg::Conn) {
    let config = [
        header(""),
        target("db", pg.port(), ""),
        idle_in_transaction_rule("IdleTx", 1),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat();
    let pw = Poolwatch::start(&config).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "db")], 1.0).await;
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    (pw, tx)
}

/// Makes `IdleTx` fire and resolve once, as poolwatch observes it.
async fn fire_and_resolve(pw: &Poolwatch, tx: &common::pg::Conn) {
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_alert_states(pw, "IdleTx", &["firing"]).await;
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    expect_alert_states(pw, "IdleTx", &[]).await;
}

#[tokio::test]
async fn a_failing_or_absent_receiver_gets_the_current_state_once_back() {
    let pg = monitored_cluster().await;
    let mut hook = Receiver::start().await;
    let (pw, tx) = idle_tx_setup(&pg, &hook).await;
    let oncall = [("receiver", "oncall")];
    let retryable = [("receiver", "oncall"), ("class", "retryable")];

    // Answering 500: the alert fires and resolves twice meanwhile; nothing is accepted.
    hook.set_status(500);
    fire_and_resolve(&pw, &tx).await;
    fire_and_resolve(&pw, &tx).await;
    assert!(hook.wait_for(|r| r.len() >= 3, WAIT).await, "no retries");
    hook.set_status(200);
    // The current state, once: each newer state superseded the one waiting.
    expect_accepted(&hook, &["resolved IdleTx db"]).await;
    // The receiver records a request before poolwatch reads the answer: wait for the count.
    expect_metric(&pw, "poolwatch_notifications_delivered_total", &oncall, 1.0).await;
    let requests = hook.requests();
    let refused = requests.iter().filter(|r| r.answered == 500).count() as f64;
    assert_eq!(
        metric(&pw, "poolwatch_notification_failures_total", &retryable).await,
        refused
    );
    let superseded = [("receiver", "oncall"), ("reason", "superseded")];
    assert!(metric(&pw, "poolwatch_notifications_dropped_total", &superseded).await >= 1.0);
    // Every attempt of one notification carries the same id; the delivered one differs from
    // the first attempted (a firing state, superseded).
    let ids: Vec<String> = requests
        .iter()
        .map(|r| r.header("idempotency-key").unwrap_or_default().to_string())
        .collect();
    assert!(ids.iter().all(|id| id.len() == 16), "{ids:?}");
    assert_ne!(ids.first(), ids.last());
    assert_eq!(notifications(&requests)[0].brief(), "firing IdleTx db");

    // Down (connection refused) while the alert fires: it gets the firing state once back,
    // then the resolution.
    hook.stop();
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_alert_states(&pw, "IdleTx", &["firing"]).await;
    pw.wait_for_metric(
        "poolwatch_notification_failures_total",
        &retryable,
        |n| n >= refused + 3.0,
        WAIT,
    )
    .await
    .expect("attempts against the stopped receiver fail");
    hook.restart();
    let mut want = vec!["resolved IdleTx db", "firing IdleTx db"];
    expect_accepted(&hook, &want).await;
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    want.push("resolved IdleTx db");
    expect_accepted(&hook, &want).await;
    expect_metric(&pw, "poolwatch_notifications_delivered_total", &oncall, 3.0).await;
    expect_metric(&pw, "poolwatch_notification_queue_length", &oncall, 0.0).await;
    let permanent = [("receiver", "oncall"), ("class", "permanent")];
    assert_eq!(
        metric(&pw, "poolwatch_notification_failures_total", &permanent).await,
        0.0
    );
    for reason in ["queue_full", "expired", "permanent_error", "shutdown"] {
        let labels = [("receiver", "oncall"), ("reason", reason)];
        assert_eq!(
            metric(&pw, "poolwatch_notifications_dropped_total", &labels).await,
            0.0,
            "{reason}"
        );
    }
    // Three times something fired that the receiver had not acknowledged as firing.
    let mut fired = 0.0;
    for reason in ["first_notification", "new_firing"] {
        let labels = [("receiver", "oncall"), ("reason", reason)];
        fired += metric(&pw, "poolwatch_notification_decisions_total", &labels).await;
    }
    assert_eq!(fired, 3.0);
    tx.close().await;
}

#[tokio::test]
async fn a_reload_keeps_what_is_queued_for_a_receiver_that_is_down() {
    let pg = monitored_cluster().await;
    let mut hook = Receiver::start().await;
    hook.stop();
    let audit = Receiver::start().await;
    let config = |targets: &[&str], receivers: &[(&str, &Receiver)]| {
        let mut c = header("shutdown_flush_timeout = \"200ms\"");
        for name in targets {
            c.push_str(&target(name, pg.port(), ""));
        }
        c.push_str(&idle_in_transaction_rule("IdleTx", 1));
        for (name, r) in receivers {
            c.push_str(&receiver(name, &r.url("/hook"), ""));
        }
        c
    };
    let pw = Poolwatch::start(&config(&["db"], &[("oncall", &hook)])).await;
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_alert_states(&pw, "IdleTx", &["firing"]).await;
    let retryable = [("receiver", "oncall"), ("class", "retryable")];
    pw.wait_for_metric(
        "poolwatch_notification_failures_total",
        &retryable,
        |n| n >= 2.0,
        WAIT,
    )
    .await
    .expect("attempts against the stopped receiver");

    // A reload that leaves this receiver as it is (but adds another), while it stays down for
    // longer than the flush timeout an old notifier would get: its queued notice must survive.
    pw.config().write(&config(
        &["db", "other"],
        &[("oncall", &hook), ("audit", &audit)],
    ));
    pw.sighup();
    expect_metric(&pw, "poolwatch_target_up", &[("target", "other")], 1.0).await;
    let polls = [("target", "other")];
    let count = "poolwatch_poll_duration_seconds_count";
    pw.wait_for_metric(count, &polls, |n| n >= 20.0, WAIT)
        .await
        .expect("polls after the reload");
    hook.restart();
    // `other` watches the same server, so it fires too, after the reload (each alert its own
    // group: no order between them).
    expect_accepted_unordered(&hook, 0, &["firing IdleTx db", "firing IdleTx other"]).await;
    // The added receiver gets what fires now, from before the reload too.
    expect_accepted_unordered(&audit, 0, &["firing IdleTx db", "firing IdleTx other"]).await;
    assert!(!pw.stderr().contains("dropped"), "{}", pw.stderr());
    tx.close().await;
}

#[tokio::test]
async fn metrics_pass_promtool_and_readyz_waits_for_the_first_poll_of_every_target() {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let silent = SilentServer::start().await;
    let config = [
        header(""),
        target("up", pg.port(), ""),
        target("down", closed_port, ""),
        target("silent", silent.port(), "").replace("\"3s\"", "\"120s\""),
        "[[rules]]\nname = \"TargetDown\"\nfor = \"300ms\"\n\n".into(),
        idle_in_transaction_rule("IdleTx", 1),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat();
    let pw = Poolwatch::start(&config).await;
    assert_eq!(pw.get("/healthz").await, (200, "ok\n".into()));
    let waiting = "not ready: waiting for the first poll of silent\n";
    let ready = common::poll_until(WAIT, || async {
        (pw.get("/readyz").await == (503, waiting.into())).then_some(())
    })
    .await;
    assert!(ready.is_some(), "/readyz: {:?}", pw.get("/readyz").await);

    // Up, down, never answering, with a firing pool alert and a firing TargetDown.
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_alert_states(&pw, "IdleTx", &["firing"]).await;
    expect_alert_states(&pw, "TargetDown", &["firing"]).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "up")], 1.0).await;
    let down = [("target", "down"), ("class", "network")];
    assert_eq!(metric(&pw, "poolwatch_target_error", &down).await, 1.0);
    let unknown = [("target", "silent"), ("state", "unknown")];
    assert_eq!(metric(&pw, "poolwatch_target_state", &unknown).await, 1.0);
    let firing = [
        ("alertname", "IdleTx"),
        ("state", "firing"),
        ("target", "up"),
    ];
    assert_eq!(metric(&pw, "poolwatch_alerts", &firing).await, 1.0);
    let (_, text) = pw.get("/metrics").await;
    promtool_check_metrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(pw.get("/readyz").await.0, 503);

    // The silent server hangs up: that target's first poll is done (down), poolwatch is ready.
    silent.close().await;
    let ready = common::poll_until(WAIT, || async {
        (pw.get("/readyz").await == (200, "ready\n".into())).then_some(())
    })
    .await;
    assert!(ready.is_some(), "/readyz: {:?}", pw.get("/readyz").await);
    let down = [("target", "silent"), ("state", "down")];
    expect_metric(&pw, "poolwatch_target_state", &down, 1.0).await;
    expect_alert_states(&pw, "TargetDown", &["firing", "firing"]).await;
    let (_, text) = pw.get("/metrics").await;
    promtool_check_metrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(pw.get("/nope").await.0, 404);
    tx.close().await;
}

/// Secret values used by [`secrets_appear_nowhere`], none a substring of another.
const PG_PASSWORD: &str = "Pw-Good-7f3a9c";
const WRONG_PASSWORD: &str = "Pw-Wrong-51c2e8";
const URL_TOKEN: &str = "SECRET123";
const REJECT_TOKEN: &str = "Reject-Tok-4d4d";
const AUTH_HEADER: &str = "Bearer Auth-Secret-99xq";

/// Runs poolwatch with secrets in every place a config can hold one, through a receiver that
/// fails, is down, comes back, and another that refuses (401), and a target whose password is
/// wrong; then checks that no secret value appears in the logs (`log_format`, `log_level`),
/// `/metrics`, `/api/v1/alerts` or `check-config`'s output.
async fn secrets_appear_nowhere(log_format: &str, log_level: &str) {
    let pg = PgCluster::start(PgOptions::default()).await;
    pg.create_role(MONITOR_ROLE, PG_PASSWORD, None).await;
    pg.exec(&format!("GRANT pg_monitor TO {MONITOR_ROLE}"))
        .await;
    let mut hook = Receiver::start().await;
    let reject = Receiver::start().await;
    reject.set_status(401);
    let url = format!(
        "postgres://{MONITOR_ROLE}:${{PG_PW}}@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port()
    );
    let config = [
        header(""),
        format!("[[targets]]\nname = \"byurl\"\nurl = \"{url}\"\ninterval = \"100ms\"\n\n"),
        target("badauth", pg.port(), "password = \"${WRONG_PW}\"\n"),
        "[[rules]]\nname = \"TargetDown\"\nfor = \"300ms\"\n\n".into(),
        idle_in_transaction_rule("IdleTx", 1),
        receiver(
            "oncall",
            &hook.url(&format!("/hook?token={URL_TOKEN}")),
            "headers = { Authorization = \"${AUTH}\" }\n",
        ),
        receiver(
            "strict",
            &reject.url(&format!("/hook?token={REJECT_TOKEN}")),
            "",
        ),
    ]
    .concat();
    let env: Vec<(String, String)> = [
        ("PG_PW", PG_PASSWORD),
        ("WRONG_PW", WRONG_PASSWORD),
        ("AUTH", AUTH_HEADER),
        ("POOLWATCH_LOG", log_level),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let options = PoolwatchOptions {
        env: env.clone(),
        args: vec!["--log-format".into(), log_format.into()],
    };
    hook.set_status(500);
    let mut pw = Poolwatch::start_with(&config, options).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "byurl")], 1.0).await;
    let auth = [("target", "badauth"), ("class", "auth")];
    expect_metric(&pw, "poolwatch_target_error", &auth, 1.0).await;
    expect_alert_states(&pw, "TargetDown", &["firing"]).await;
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_alert_states(&pw, "IdleTx", &["firing"]).await;
    assert!(hook.wait_for(|r| r.len() >= 2, WAIT).await, "no attempts");
    hook.stop();
    let retryable = [("receiver", "oncall"), ("class", "retryable")];
    let failed = metric(&pw, "poolwatch_notification_failures_total", &retryable).await;
    let more = |n: f64| n >= failed + 2.0;
    pw.wait_for_metric(
        "poolwatch_notification_failures_total",
        &retryable,
        more,
        WAIT,
    )
    .await
    .expect("attempts against the stopped receiver");
    hook.set_status(200);
    hook.restart();
    let want = ["firing TargetDown badauth", "firing IdleTx byurl"];
    expect_accepted_unordered(&hook, 0, &want).await;
    let permanent = [("receiver", "strict"), ("class", "permanent")];
    expect_metric(
        &pw,
        "poolwatch_notification_failures_total",
        &permanent,
        2.0,
    )
    .await;
    // The secrets were used: the receiver saw the token and the header.
    let delivered = hook
        .requests()
        .into_iter()
        .find(|r| r.answered == 200)
        .expect("a delivered request");
    assert_eq!(
        delivered.query.as_deref(),
        Some(&*format!("token={URL_TOKEN}"))
    );
    assert_eq!(delivered.header("authorization"), Some(AUTH_HEADER));

    let (_, metrics) = pw.get("/metrics").await;
    let (_, alerts) = pw.get("/api/v1/alerts").await;
    pw.sigterm();
    assert_eq!(pw.wait_exit(WAIT).await.code(), Some(0));
    let path = pw.config().path().display().to_string();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let check = run_cli_with_env(&["check-config", &path], &env_refs).await;
    assert_eq!(check.status.code(), Some(0));
    let outputs = [
        ("stderr", pw.stderr()),
        ("stdout", pw.stdout()),
        ("/metrics", metrics),
        ("/api/v1/alerts", alerts),
        (
            "check-config",
            String::from_utf8_lossy(&check.stdout).into_owned(),
        ),
        (
            "check-config stderr",
            String::from_utf8_lossy(&check.stderr).into_owned(),
        ),
    ];
    for (what, text) in &outputs {
        for secret in [
            PG_PASSWORD,
            WRONG_PASSWORD,
            URL_TOKEN,
            REJECT_TOKEN,
            AUTH_HEADER,
        ] {
            assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
        }
    }
    // The logs still say what went wrong, by name.
    let stderr = pw.stderr();
    let needles = [
        "password authentication failed",
        "HTTP 500",
        "Connection refused",
        "HTTP 401",
    ];
    for needle in needles {
        assert!(stderr.contains(needle), "{needle} not logged:\n{stderr}");
    }
    if log_format == "json" {
        for line in stderr.lines() {
            serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
    }
    tx.close().await;
}

#[tokio::test]
async fn secrets_appear_nowhere_with_text_logs() {
    secrets_appear_nowhere("text", "info").await;
}

#[tokio::test]
async fn secrets_appear_nowhere_with_json_trace_logs() {
    secrets_appear_nowhere("json", "trace").await;
}
