//! The PgBouncer target as a whole: full at `max_client_conn` (saturated, not down), its
//! console stopped and started again, hung, or refusing a wrong password.

use crate::common::pgbouncer::error_text;
use crate::common::scenario::{
    expect_accepted, expect_metric, header, metric, notifications, poolwatch_sessions, receiver,
    WAIT,
};
use crate::common::{run_cli, ConfigFile, PgBouncerOptions, Poolwatch, Receiver};
use crate::scene::*;

#[tokio::test]
async fn max_client_conn_reached_is_saturated_not_down_and_recovers() {
    let options = PgBouncerOptions {
        max_client_conn: 5,
        ..Default::default()
    };
    let (_pg, pgb) = bouncer(vec![appdb(20)], options).await;
    let hook = Receiver::start().await;
    let pw = Poolwatch::start(&config(&pgb, &hook)).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", TARGET)], 1.0).await;

    // poolwatch's console session is a client too: four more fill max_client_conn 5.
    let mut clients = pgb.hold_clients(APP, "appdb", 4);
    clients.wait_for(4, 0, WAIT).await;
    let refused = pgb.connect(APP, "appdb").await.expect_err("a fifth client");
    assert_eq!(
        error_text(&refused),
        "no more connections allowed (max_client_conn)"
    );
    let state = |s| [("target", TARGET), ("state", s)];
    let all = pool_of("pgbouncer_clients", "clients");
    // The first poll after the four clients were served (a scrape shows the last report).
    let (body, samples) = wait_scrape(&pw, |s| {
        sample(s, "poolwatch_pool_in_use", &POOL) == Some(4.0)
            && sample(s, "poolwatch_pool_in_use", &all) == Some(4.0)
    })
    .await;
    // Saturated, not down: polled, with its pools; poolwatch's own session is no load.
    let t = [("target", TARGET)];
    let states: Vec<Option<f64>> = ["up", "saturated", "down"]
        .iter()
        .map(|s| sample(&samples, "poolwatch_target_state", &state(s)))
        .collect();
    assert_eq!(states, [Some(0.0), Some(1.0), Some(0.0)], "{body}");
    assert_eq!(sample(&samples, "poolwatch_target_up", &t), Some(1.0));
    let full = [("target", TARGET), ("class", "too_many_connections")];
    assert_eq!(sample(&samples, "poolwatch_target_error", &full), Some(1.0));
    assert_eq!(sample(&samples, "poolwatch_pool_capacity", &all), Some(4.0));
    crate::common::promtool_check_metrics(&body).unwrap_or_else(|e| panic!("{e}"));

    let fired = expect_pages(&hook, "TargetSaturated", 1).await;
    assert_eq!(
        fired[0].summary,
        "bouncer refuses new connections because it is full"
    );
    let description = &fired[0].description;
    assert!(
        description.starts_with("max_client_conn 5 reached: PgBouncer refuses new clients")
            && description.contains("4/4 usable connections in use (max_client_conn 5, 1 held by admin console sessions)"),
        "{fired:?}"
    );

    // `snapshot` says so too (its own console session is let in as well).
    let file = ConfigFile::new(&[header(""), bouncer_target(pgb.port(), "")].concat());
    let path = file.path().to_str().expect("UTF-8 path");
    let out = run_cli(&["snapshot", "--config", path]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let head = format!(
        "bouncer: saturated, PgBouncer {}, max_client_conn 5, 1 databases, 1 pools, polled in ",
        pgb.full_version()
    );
    assert!(stdout.starts_with(&head), "{stdout}");
    let refusing = "\n  refusing new clients (too_many_connections): max_client_conn 5 reached:";
    assert!(stdout.contains(refusing), "{stdout}");
    assert!(stdout.contains(" appdb/app "), "{stdout}");

    clients.release(4);
    let both = expect_pages(&hook, "TargetSaturated", 2).await;
    assert_eq!(both[1].status, "resolved");
    assert!(
        both[1].summary.starts_with("bouncer is up after "),
        "{both:?}"
    );
    expect_metric(&pw, "poolwatch_target_state", &state("up"), 1.0).await;
    assert!(pages(&hook, "TargetDown").is_empty());
}

#[tokio::test]
async fn a_stopped_console_is_down_and_each_restart_recovers_with_one_session() {
    let (pg, pgb) = bouncer(vec![appdb(5)], PgBouncerOptions::default()).await;
    let hook = Receiver::start().await;
    let config = [
        header(""),
        bouncer_target(pgb.port(), ""),
        FAST_TARGET_DOWN.into(),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat();
    let mut pw = Poolwatch::start(&config).await;
    let t = [("target", TARGET)];
    expect_metric(&pw, "poolwatch_target_up", &t, 1.0).await;
    assert_eq!(pgb.console_clients("poolwatch").await, 1);

    let mut want: Vec<&str> = Vec::new();
    for cycle in 1..=3 {
        pgb.stop().await;
        let down = [("target", TARGET), ("state", "down")];
        expect_metric(&pw, "poolwatch_target_state", &down, 1.0).await;
        let refused = [("target", TARGET), ("class", "network")];
        expect_metric(&pw, "poolwatch_target_error", &refused, 1.0).await;
        // Reports go on at every tick while the console cannot be reached.
        expect_reports_every_tick(&pw).await;
        want.push("firing TargetDown bouncer");
        expect_accepted(&hook, &want).await;

        pgb.start_again().await;
        expect_metric(&pw, "poolwatch_target_up", &t, 1.0).await;
        want.push("resolved TargetDown bouncer");
        expect_accepted(&hook, &want).await;
        let sessions = pgb.console_clients("poolwatch").await;
        assert_eq!(
            sessions, 1,
            "poolwatch console sessions after cycle {cycle}"
        );
    }
    let sent = notifications(&hook.requests());
    assert_eq!(sent[0].summary, "bouncer cannot be polled (network)");
    assert_eq!(metric(&pw, "poolwatch_connects_total", &t).await, 4.0);
    // The console is PgBouncer's own: PostgreSQL never sees poolwatch.
    assert_eq!(poolwatch_sessions(&pg).await, 0);
    pw.sigterm();
    assert_eq!(pw.wait_exit(WAIT).await.code(), Some(0), "{}", pw.logs());
}

#[tokio::test]
async fn a_hung_console_times_out_keeps_reporting_and_recovers_with_one_session() {
    let (_pg, pgb) = bouncer(vec![appdb(5)], PgBouncerOptions::default()).await;
    let extra = "poll_timeout = \"500ms\"\n";
    let pw = Poolwatch::start(&[header(""), bouncer_target(pgb.port(), extra)].concat()).await;
    let t = [("target", TARGET)];
    expect_metric(&pw, "poolwatch_target_up", &t, 1.0).await;
    assert_eq!(pgb.console_clients("poolwatch").await, 1);

    // The poll in flight times out, then connection attempts hang until their timeout.
    pgb.freeze();
    let down = [("target", TARGET), ("state", "down")];
    expect_metric(&pw, "poolwatch_target_state", &down, 1.0).await;
    let timeout = [("target", TARGET), ("class", "timeout")];
    expect_metric(&pw, "poolwatch_target_error", &timeout, 1.0).await;
    expect_reports_every_tick(&pw).await;
    assert_eq!(metric(&pw, "poolwatch_target_error", &timeout).await, 1.0);

    // Thawed, it answers the attempt in flight and closes the sessions poolwatch gave up.
    pgb.thaw();
    expect_metric(&pw, "poolwatch_target_up", &t, 1.0).await;
    let one = crate::common::poll_until(WAIT, || async {
        (pgb.console_clients("poolwatch").await == 1).then_some(())
    })
    .await;
    assert!(one.is_some(), "{:?}", pgb.show("CLIENTS").await.rows);
    for _ in 0..5 {
        tokio::time::sleep(INTERVAL * 2).await;
        assert_eq!(pgb.console_clients("poolwatch").await, 1);
    }
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_and_stays_out_of_the_logs() {
    let (_pg, pgb) = bouncer(vec![appdb(5)], PgBouncerOptions::default()).await;
    let wrong = "wrong-pw-91c2e7";
    let extra = format!("password = \"{wrong}\"\n");
    let pw = Poolwatch::start(&[header(""), bouncer_target(pgb.port(), &extra)].concat()).await;
    let auth = [("target", TARGET), ("class", "auth")];
    expect_metric(&pw, "poolwatch_target_error", &auth, 1.0).await;
    let down = [("target", TARGET), ("state", "down")];
    assert_eq!(metric(&pw, "poolwatch_target_state", &down).await, 1.0);
    let logged = pw.wait_for_log("SASL authentication failed", WAIT).await;
    assert!(logged, "{}", pw.logs());
    assert!(!pw.logs().contains(wrong), "{}", pw.logs());
    assert!(!pw.get("/metrics").await.1.contains(wrong));
    assert_eq!(pgb.console_clients("poolwatch").await, 0);
}
