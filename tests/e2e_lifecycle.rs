//! End-to-end: the `poolwatch` binary against real PostgreSQL servers and webhook receivers,
//! through a server's outage, restarts of poolwatch itself, SIGTERM and TLS. Waits are bounded
//! polls for expected events; nothing asserts how fast anything is.

mod common;

use common::scenario::{
    accepted, create_monitor_role, expect_accepted, expect_metric, header,
    idle_in_transaction_rule, metric, monitored_cluster, notifications, poolwatch_sessions,
    receiver, target, SilentServer, WAIT,
};
use common::{PgCluster, PgOptions, Poolwatch, Receiver};
use std::time::{Duration, Instant};

/// `TargetDown` overridden to fire 300 ms after the first failed poll.
const FAST_TARGET_DOWN: &str = "[[rules]]\nname = \"TargetDown\"\nfor = \"300ms\"\n\n";

#[tokio::test]
async fn server_outages_page_and_recover_without_leaking_connections() {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let config = [
        header(""),
        target("db", pg.port(), ""),
        FAST_TARGET_DOWN.into(),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat();
    let mut pw = Poolwatch::start(&config).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "db")], 1.0).await;
    assert_eq!(poolwatch_sessions(&pg).await, 1);

    let mut want: Vec<&str> = Vec::new();
    for cycle in 1..=3 {
        pg.stop().await;
        expect_metric(&pw, "poolwatch_target_up", &[("target", "db")], 0.0).await;
        let down = [("target", "db"), ("state", "down")];
        expect_metric(&pw, "poolwatch_target_state", &down, 1.0).await;
        let up = [("target", "db"), ("state", "up")];
        assert_eq!(metric(&pw, "poolwatch_target_state", &up).await, 0.0);
        let refused = [("target", "db"), ("class", "network")];
        expect_metric(&pw, "poolwatch_target_error", &refused, 1.0).await;
        want.push("firing TargetDown db");
        expect_accepted(&hook, &want).await;

        pg.start_again().await;
        expect_metric(&pw, "poolwatch_target_up", &[("target", "db")], 1.0).await;
        want.push("resolved TargetDown db");
        expect_accepted(&hook, &want).await;
        assert!(
            pw.get("/healthz").await.0 == 200,
            "daemon unhealthy after cycle {cycle}"
        );
        assert_eq!(
            poolwatch_sessions(&pg).await,
            1,
            "poolwatch sessions after cycle {cycle}"
        );
    }

    let sent = notifications(&hook.requests());
    let firing = &sent[0];
    assert_eq!(
        (firing.severity.as_str(), firing.summary.as_str()),
        ("critical", "db cannot be polled (network)")
    );
    let fingerprints: Vec<&str> = sent.iter().map(|n| n.fingerprint.as_str()).collect();
    assert!(
        fingerprints.iter().all(|f| *f == fingerprints[0]),
        "{fingerprints:?}"
    );
    // Every firing/resolved pair shares its startsAt; each outage is a new one.
    for pair in sent.chunks(2) {
        assert_eq!(pair[0].starts_at, pair[1].starts_at, "{pair:?}");
    }
    assert_ne!(sent[0].starts_at, sent[2].starts_at);
    // The first connection and one per outage.
    assert_eq!(
        metric(&pw, "poolwatch_connects_total", &[("target", "db")]).await,
        4.0
    );
    pw.sigterm();
    assert_eq!(pw.wait_exit(WAIT).await.code(), Some(0), "{}", pw.logs());
}

/// Polls of `target` poolwatch has finished so far.
async fn polls(pw: &Poolwatch, target: &str) -> f64 {
    metric(
        pw,
        "poolwatch_poll_duration_seconds_count",
        &[("target", target)],
    )
    .await
}

/// Waits until poolwatch has polled `target` `n` more times: long enough for anything that
/// one observation would trigger to have been sent.
async fn wait_polls(pw: &Poolwatch, target: &str, n: f64) {
    let from = polls(pw, target).await;
    pw.wait_for_metric(
        "poolwatch_poll_duration_seconds_count",
        &[("target", target)],
        |v| v >= from + n,
        WAIT,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_restart_with_a_state_file_neither_pages_again_nor_forgets() {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let state_dir = tempfile::tempdir().expect("temp dir");
    let state_file = state_dir.path().join("state.json");
    let config = [
        header(&format!("state_file = \"{}\"", state_file.display())),
        target("db", pg.port(), ""),
        idle_in_transaction_rule("IdleTx", 1),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat();
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");

    let mut first = Poolwatch::start(&config).await;
    expect_accepted(&hook, &["firing IdleTx db"]).await;
    first.sigterm();
    assert_eq!(first.wait_exit(WAIT).await.code(), Some(0));
    assert!(state_file.is_file(), "no state file written");

    // Same condition, new process: the alert is known and firing, and nobody is paged again.
    let second = Poolwatch::start(&config).await;
    expect_metric(
        &second,
        "poolwatch_alerts",
        &[("alertname", "IdleTx"), ("state", "firing")],
        1.0,
    )
    .await;
    wait_polls(&second, "db", 20.0).await;
    let sent = notifications(&hook.requests());
    assert_eq!(sent.len(), 1, "paged again after a restart: {sent:?}");
    let (_, body) = second.get("/api/v1/alerts").await;
    let alerts: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let alert = &alerts["data"]["alerts"][0];
    assert_eq!(alert["fingerprint"], sent[0].fingerprint.as_str(), "{body}");

    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    expect_accepted(&hook, &["firing IdleTx db", "resolved IdleTx db"]).await;
    wait_polls(&second, "db", 10.0).await;
    let sent = notifications(&hook.requests());
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1].fingerprint, sent[0].fingerprint);
    assert_eq!(
        sent[1].starts_at, sent[0].starts_at,
        "activeAt not restored"
    );

    // Fires again, and clears while poolwatch is stopped: the next start resolves it, once.
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    let mut want = vec!["firing IdleTx db", "resolved IdleTx db", "firing IdleTx db"];
    expect_accepted(&hook, &want).await;
    // The state is saved when the alert fires and when its delivery is acknowledged, not only
    // at exit: once the file holds both, a SIGKILL loses nothing and re-sends nothing. (The
    // writer thread saves after the loop, so the delivery comes first.)
    let saved = common::poll_until(WAIT, || async {
        let text = std::fs::read_to_string(&state_file).unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let acknowledged = acknowledged_firing(&json["dispatch"]["log"]["entries"]);
        (json["alerts"].as_array().map(Vec::len) == Some(1) && acknowledged).then_some(())
    })
    .await;
    assert!(
        saved.is_some(),
        "{}",
        std::fs::read_to_string(&state_file).unwrap_or_default()
    );
    drop(second); // SIGKILL
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    let third = Poolwatch::start(&config).await;
    want.push("resolved IdleTx db");
    expect_accepted(&hook, &want).await;
    wait_polls(&third, "db", 10.0).await;
    assert_eq!(accepted(&hook.requests()), want);
    tx.close().await;
}

/// Whether the saved notification log (receiver → integration → group → entry) records a
/// firing alert as acknowledged.
fn acknowledged_firing(entries: &serde_json::Value) -> bool {
    fn objects(v: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
        v.as_object().into_iter().flat_map(|o| o.values())
    }
    objects(entries)
        .flat_map(objects)
        .flat_map(objects)
        .any(|entry| entry["firing"].as_array().is_some_and(|f| !f.is_empty()))
}

/// Starts poolwatch on `pg` (and on a server that never answers) with three rules that hold at
/// the first poll (three notices queued at once) and `hook`; once the first request has reached the receiver, sends SIGTERM and
/// waits for a 0 exit. Returns the stopped process and how long it took to exit.
async fn sigterm_with_queued_notices(
    pg: &PgCluster,
    hook: &Receiver,
    flush_timeout: &str,
) -> (Poolwatch, Duration) {
    // A server that accepts and never answers: its target is connecting at SIGTERM, with a
    // connect timeout far longer than the flush timeout.
    let silent = SilentServer::start().await;
    let always = |name: &str| {
        format!("[[rules]]\nname = \"{name}\"\nmetric = \"capacity\"\nwarning = 0\nmatchers = ['kind=\"server\"']\n\n")
    };
    let config = [
        header(&format!("shutdown_flush_timeout = \"{flush_timeout}\"")),
        target("db", pg.port(), ""),
        target("silent", silent.port(), "").replace("\"3s\"", "\"120s\""),
        always("A"),
        always("B"),
        always("C"),
        receiver("oncall", &hook.url("/hook"), "timeout = \"60s\"\n"),
    ]
    .concat();
    let mut pw = Poolwatch::start(&config).await;
    assert!(hook.wait_for(|r| !r.is_empty(), WAIT).await, "nothing sent");
    let asked = Instant::now();
    pw.sigterm();
    assert_eq!(pw.wait_exit(WAIT).await.code(), Some(0));
    let took = asked.elapsed();
    (pw, took)
}

#[tokio::test]
async fn sigterm_flushes_to_a_healthy_receiver_and_gives_up_on_a_failing_one_in_time() {
    let pg = monitored_cluster().await;

    // Healthy but slow: each answer takes 500 ms, so notices are still queued at SIGTERM.
    let hook = Receiver::start().await;
    hook.set_delay(Duration::from_millis(500));
    let (pw, _) = sigterm_with_queued_notices(&pg, &hook, "20s").await;
    let mut names: Vec<String> = notifications(&hook.requests())
        .into_iter()
        .map(|n| n.brief())
        .collect();
    names.sort();
    assert_eq!(names, ["firing A db", "firing B db", "firing C db"]);
    assert!(!pw.stderr().contains("dropped"), "{}", pw.stderr());

    // Failing (500) or hanging: poolwatch exits 0 once shutdown_flush_timeout has passed.
    for (status, delay) in [(500, Duration::ZERO), (200, Duration::from_secs(120))] {
        let hook = Receiver::start().await;
        hook.set_status(status);
        hook.set_delay(delay);
        let (pw, took) = sigterm_with_queued_notices(&pg, &hook, "1s").await;
        assert!(
            took < Duration::from_secs(1) + Duration::from_secs(5),
            "exit took {took:?} with a 1s flush timeout"
        );
        // All three were still queued (the hanging receiver never answered its first one).
        let dropped = "notifications dropped: shutdown deadline reached before delivery \
                       receiver=oncall integration=webhook count=3 reason=\"shutdown\"";
        assert!(pw.stderr().contains(dropped), "{}", pw.stderr());
    }
}

/// A target table with explicit TLS settings, connecting to `host`.
fn tls_target(name: &str, host: &str, port: u16, tls: &str) -> String {
    let t = target(name, port, tls);
    t.replace("host = \"127.0.0.1\"", &format!("host = \"{host}\""))
}

#[tokio::test]
async fn tls_modes_verify_the_server_as_libpq_does() {
    let pg = PgCluster::start(PgOptions {
        ssl: true,
        ..Default::default()
    })
    .await;
    create_monitor_role(&pg).await;
    let ca = pg.ca_file().expect("CA").display().to_string();
    let other = tempfile::tempdir().expect("temp dir");
    let other_ca = common::pg::ssl::generate(other.path()).expect("another CA");
    let port = pg.port();
    let verify = |mode: &str, ca: &str| format!("sslmode = \"{mode}\"\nsslrootcert = \"{ca}\"\n");
    let config = [
        header(""),
        tls_target("full_ip", "127.0.0.1", port, &verify("verify-full", &ca)),
        tls_target("full_name", "localhost", port, &verify("verify-full", &ca)),
        tls_target("ca_only", "127.0.0.1", port, &verify("verify-ca", &ca)),
        tls_target("require", "127.0.0.1", port, "sslmode = \"require\"\n"),
        tls_target(
            "wrong_ca",
            "127.0.0.1",
            port,
            &verify("verify-full", &other_ca.ca_cert.display().to_string()),
        ),
    ]
    .concat();
    let pw = Poolwatch::start(&config).await;
    for name in ["full_ip", "full_name", "ca_only", "require"] {
        expect_metric(&pw, "poolwatch_target_up", &[("target", name)], 1.0).await;
    }
    let wrong = [("target", "wrong_ca"), ("state", "down")];
    expect_metric(&pw, "poolwatch_target_state", &wrong, 1.0).await;
    let wrong = [("target", "wrong_ca"), ("class", "tls")];
    assert_eq!(metric(&pw, "poolwatch_target_error", &wrong).await, 1.0);
    let encrypted = pg
        .query(
            "SELECT count(*) FROM pg_stat_activity JOIN pg_stat_ssl USING (pid) \
             WHERE application_name = 'poolwatch' AND ssl",
        )
        .await;
    assert_eq!(encrypted[0].get::<_, i64>(0), 4);
    assert_eq!(poolwatch_sessions(&pg).await, 4);
}
