//! End-to-end: the `poolwatch` binary against a real PgBouncer in front of a real PostgreSQL
//! cluster, on the version `POOLWATCH_TEST_PGBOUNCER` selects (`scripts/test.sh` runs this
//! binary on 1.18 and 1.24), with a real webhook receiver.
//!
//! Every test starts its own cluster with the application role `app` and the monitoring role
//! `poolwatch` (in PgBouncer's `stats_users`), a PgBouncer with the database entry `appdb`,
//! and `poolwatch run` polling the admin console every 100 ms. Assertions are on exact numbers
//! and texts; waits are bounded polls for expected events. The one timing bound asserted (a
//! page within a poll plus a second) is a correctness bound, far from what is measured.

mod common;

use std::time::{Duration, Instant};

use common::pgbouncer::{error_text, Database};
use common::scenario::{
    create_monitor_role, expect_accepted, expect_metric, header, metric, notifications,
    poolwatch_sessions, receiver, reports_over, target, Notification, MONITOR_ROLE, WAIT,
};
use common::{
    parse_exposition, run_cli, ConfigFile, PgBouncer, PgBouncerOptions, PgCluster, PgOptions,
    Poolwatch, Receiver,
};

/// The application role whose clients fill the pools.
const APP: &str = "app";
/// The target's name.
const TARGET: &str = "bouncer";
/// Its poll interval (the one [`target`] sets).
const INTERVAL: Duration = Duration::from_millis(100);
/// The pool of [`APP`] on `appdb`, as `/metrics` labels it.
const POOL: [(&str, &str); 3] = [
    ("target", TARGET),
    ("kind", "pgbouncer_pool"),
    ("pool", "appdb/app"),
];

/// A cluster with [`APP`] and the monitoring role, and a PgBouncer in front of it with
/// `databases` and `options` otherwise.
async fn bouncer(databases: Vec<Database>, options: PgBouncerOptions) -> (PgCluster, PgBouncer) {
    let pg = PgCluster::start(PgOptions {
        max_connections: 40,
        ..Default::default()
    })
    .await;
    pg.create_role(APP, "app-pw", None).await;
    create_monitor_role(&pg).await;
    let pgb = PgBouncer::start(
        &pg,
        PgBouncerOptions {
            databases,
            users: vec![APP.to_owned()],
            stats_users: vec![MONITOR_ROLE.to_owned()],
            ..options
        },
    )
    .await;
    (pg, pgb)
}

/// `appdb` for the cluster's database `postgres`, with `pool_size`.
fn appdb(pool_size: u32) -> Database {
    Database::new("appdb", "postgres").pool_size(pool_size)
}

/// The `[[targets]]` table of [`TARGET`]: PgBouncer's console on `port`; `extra` lines appended.
fn bouncer_target(port: u16, extra: &str) -> String {
    target(TARGET, port, &format!("type = \"pgbouncer\"\n{extra}"))
}

/// A config polling `pgb` and paging `hook`.
fn config(pgb: &PgBouncer, hook: &Receiver) -> String {
    [
        header(""),
        bouncer_target(pgb.port(), ""),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat()
}

/// The notifications of rule `alertname` the receiver got so far, oldest first.
fn pages(hook: &Receiver, alertname: &str) -> Vec<Notification> {
    notifications(&hook.requests())
        .into_iter()
        .filter(|n| n.alertname == alertname)
        .collect()
}

/// Waits until the receiver got `n` notifications of `alertname`; returns them, oldest first.
async fn expect_pages(hook: &Receiver, alertname: &str, n: usize) -> Vec<Notification> {
    let arrived = hook
        .wait_for(
            |r| {
                notifications(r)
                    .iter()
                    .filter(|x| x.alertname == alertname)
                    .count()
                    >= n
            },
            WAIT,
        )
        .await;
    let got = pages(hook, alertname);
    assert!(
        arrived,
        "expected {n} {alertname} notifications, got {got:?}"
    );
    got
}

#[tokio::test]
async fn clients_waiting_page_within_a_poll_and_resolve_after_release() {
    let (_pg, pgb) = bouncer(vec![appdb(5)], PgBouncerOptions::default()).await;
    let hook = Receiver::start().await;
    // The pool's five server connections are open before poolwatch looks: PgBouncer opens
    // them one at a time, and the clients of a cold pool wait for each to log in.
    let mut served = pgb.hold_clients(APP, "appdb", 5);
    served.wait_for(5, 0, WAIT).await;
    let pw = Poolwatch::start(&config(&pgb, &hook)).await;
    expect_metric(&pw, "poolwatch_pool_in_use", &POOL, 5.0).await;

    let mut clients = pgb.hold_clients(APP, "appdb", 15);
    clients.wait_for(0, 15, WAIT).await;
    let seen = Instant::now();
    let firing = expect_pages(&hook, "PoolClientsWaiting", 1).await;
    let paged = hook
        .requests()
        .iter()
        .find(|r| r.body_text().contains("PoolClientsWaiting"))
        .map(|r| r.received_at)
        .expect("the page");
    let after = paged.saturating_duration_since(seen);
    eprintln!("PoolClientsWaiting paged {after:?} after the clients were seen waiting");
    assert!(after <= INTERVAL + Duration::from_secs(1), "{after:?}");
    let summary = regex::Regex::new(
        r"^bouncer pgbouncer_pool appdb/app: (\d+) clients waiting for a connection \(5/5 in use\)$",
    )
    .expect("regex");
    // The page comes from the first poll that sees a client waiting: 1 to 15 of them.
    let waiting: u32 = summary
        .captures(&firing[0].summary)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("{firing:?}"));
    assert!((1..=15).contains(&waiting), "{firing:?}");
    assert_eq!(firing[0].severity, "critical");
    assert!(
        firing[0].description.starts_with("pool_size 5;"),
        "{firing:?}"
    );

    // The scrape that shows all 15 waiting shows a fresh, sub-second longest wait.
    let body = wait_scrape(&pw, |s| {
        sample(s, "poolwatch_pool_waiting", &POOL) == Some(15.0)
    })
    .await;
    let samples = parse_exposition(&body).expect("exposition");
    let wait = sample(&samples, "poolwatch_pool_longest_wait_seconds", &POOL).expect("wait");
    assert!(wait > 0.0 && wait < 1.0, "longest wait {wait}");
    assert_eq!(sample(&samples, "poolwatch_pool_in_use", &POOL), Some(5.0));
    assert_eq!(
        sample(&samples, "poolwatch_pool_capacity", &POOL),
        Some(5.0)
    );
    common::promtool_check_metrics(&body).unwrap_or_else(|e| panic!("{e}"));

    // PgBouncer notices that a waiting client left only when it has a server for it: the
    // clients holding the servers go too.
    clients.release(15);
    served.release(5);
    let both = expect_pages(&hook, "PoolClientsWaiting", 2).await;
    assert_eq!(both[1].status, "resolved", "{both:?}");
    let resolved = regex::Regex::new(
        r"^bouncer pgbouncer_pool appdb/app: PoolClientsWaiting cleared after \S+; 0 clients waiting for a connection \([0-5]/5 in use\) now$",
    )
    .expect("regex");
    assert!(resolved.is_match(&both[1].summary), "{both:?}");
    expect_metric(&pw, "poolwatch_pool_waiting", &POOL, 0.0).await;
}

/// The value of the one sample `name{labels}` in `samples`, if there is exactly one.
fn sample(samples: &[common::Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    common::metrics::find_sample(samples, name, labels).ok()
}

/// Scrapes `/metrics` until `check` holds for its samples; returns that scrape's text.
async fn wait_scrape(pw: &Poolwatch, check: impl Fn(&[common::Sample]) -> bool) -> String {
    let found = common::poll_until(WAIT, || async {
        let (_, body) = pw.get("/metrics").await;
        let samples = parse_exposition(&body).ok()?;
        check(&samples).then_some(body)
    })
    .await;
    found.unwrap_or_else(|| panic!("no scrape matched within {WAIT:?}"))
}

#[tokio::test]
async fn a_reload_with_a_smaller_pool_size_is_flagged_before_any_client_waits() {
    let (_pg, pgb) = bouncer(vec![appdb(20)], PgBouncerOptions::default()).await;
    // PgBouncer lists a pool once a client has used it. Its server connections are open before
    // poolwatch looks: clients of a cold pool wait for them to log in, which is no incident.
    let mut clients = pgb.hold_clients(APP, "appdb", 3);
    clients.wait_for(3, 0, WAIT).await;
    let hook = Receiver::start().await;
    let pw = Poolwatch::start(&config(&pgb, &hook)).await;
    expect_metric(&pw, "poolwatch_pool_capacity", &POOL, 20.0).await;

    // A deployment lowers the pool size and reloads PgBouncer.
    pgb.set_database(appdb(5));
    pgb.reload().await;
    let dropped = expect_pages(&hook, "PoolCapacityDropped", 1).await;
    assert_eq!(
        (dropped[0].severity.as_str(), dropped[0].summary.as_str()),
        (
            "warning",
            "bouncer pgbouncer_pool appdb/app: capacity fell from 20 to 5"
        ),
        "{dropped:?}"
    );
    assert!(
        dropped[0]
            .description
            .starts_with("pool_size 5; 3 in use now (60%)."),
        "{dropped:?}"
    );
    expect_metric(&pw, "poolwatch_pool_capacity", &POOL, 5.0).await;
    assert_eq!(metric(&pw, "poolwatch_pool_waiting", &POOL).await, 0.0);

    // The next peak finds the smaller pool: clients wait, paged after the drop was.
    let more = pgb.hold_clients(APP, "appdb", 4);
    more.wait_for(2, 2, WAIT).await;
    expect_pages(&hook, "PoolClientsWaiting", 1).await;
    let sent: Vec<String> = notifications(&hook.requests())
        .iter()
        .map(Notification::brief)
        .collect();
    assert_eq!(
        sent[..2],
        [
            "firing PoolCapacityDropped bouncer",
            "firing PoolClientsWaiting bouncer"
        ],
        "{sent:?}"
    );
    drop(more);
    clients.release(3);
}

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
    let all = [
        ("target", TARGET),
        ("kind", "pgbouncer_clients"),
        ("pool", "clients"),
    ];
    // The first poll after the four clients were served (a scrape shows the last report).
    let body = wait_scrape(&pw, |s| {
        sample(s, "poolwatch_pool_in_use", &POOL) == Some(4.0)
            && sample(s, "poolwatch_pool_in_use", &all) == Some(4.0)
    })
    .await;
    let samples = parse_exposition(&body).expect("exposition");
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
    common::promtool_check_metrics(&body).unwrap_or_else(|e| panic!("{e}"));

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

/// `TargetDown` overridden to fire 300 ms after the first failed poll.
const FAST_TARGET_DOWN: &str = "[[rules]]\nname = \"TargetDown\"\nfor = \"300ms\"\n\n";

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
    let one = common::poll_until(WAIT, || async {
        (pgb.console_clients("poolwatch").await == 1).then_some(())
    })
    .await;
    assert!(one.is_some(), "{:?}", pgb.show("CLIENTS").await.rows);
    for _ in 0..5 {
        tokio::time::sleep(INTERVAL * 2).await;
        assert_eq!(pgb.console_clients("poolwatch").await, 1);
    }
}

/// Checks that reports keep coming at about one per interval for a second (a loose bound: the
/// conformance test checks the cadence itself).
async fn expect_reports_every_tick(pw: &Poolwatch) {
    let second = Duration::from_secs(1);
    let (made, ticks) = reports_over(pw, TARGET, INTERVAL, second).await;
    assert!(
        made >= ticks / 2.0 && made <= ticks + 2.0,
        "{made} reports in {ticks} ticks"
    );
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

#[tokio::test]
async fn snapshot_and_check_config_show_a_pgbouncer_target() {
    let (_pg, pgb) = bouncer(vec![appdb(5)], PgBouncerOptions::default()).await;
    let clients = pgb.hold_clients(APP, "appdb", 7);
    clients.wait_for(5, 2, WAIT).await;
    let file = ConfigFile::new(&[header(""), bouncer_target(pgb.port(), "")].concat());
    let path = file.path().to_str().expect("UTF-8 path");

    let out = run_cli(&["check-config", path]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let described = format!(
        "pgbouncer every 100ms, poolwatch@127.0.0.1:{}/pgbouncer (admin console), sslmode disable, poll_timeout 2s",
        pgb.port()
    );
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(TARGET))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(
        line.split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" "),
        described
    );

    let out = run_cli(&["snapshot", "--config", path]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let head = format!(
        "bouncer: up, PgBouncer {}, max_client_conn 100, 1 databases, 1 pools",
        pgb.full_version()
    );
    assert!(stdout.starts_with(&head), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let row = |pool: &str| {
        let at = lines
            .iter()
            .position(|l| l.split_whitespace().nth(1) == Some(pool))
            .unwrap_or_else(|| panic!("no row {pool} in\n{stdout}"));
        (at, lines[at].split_whitespace().collect::<Vec<_>>())
    };
    let (at, pool) = row("appdb/app");
    assert_eq!(
        pool,
        [
            "pgbouncer_pool",
            "appdb/app",
            "5",
            "5",
            "0",
            "2",
            "100%",
            "-"
        ]
    );
    assert!(
        lines[at + 1].trim_start().starts_with("longest wait "),
        "{stdout}"
    );
    let (_, all) = row("clients");
    assert_eq!(
        all,
        [
            "pgbouncer_clients",
            "clients",
            "99",
            "7",
            "0",
            "0",
            "7%",
            "-"
        ]
    );
    // Columns line up under the header, whatever the length of the kinds.
    let header_line = lines
        .iter()
        .find(|l| l.contains("CAPACITY"))
        .expect("header");
    let pool_column = header_line.find("POOL").expect("POOL");
    assert_eq!(lines[at].find("appdb/app"), Some(pool_column), "{stdout}");
    let firing = format!(
        "FIRING   critical  PoolClientsWaiting     {TARGET} pgbouncer_pool appdb/app: 2 clients waiting"
    );
    assert!(stdout.contains(&firing), "{stdout}");
}
