//! The conformance test every polling source passes against its real peer, through the real
//! `poolwatch` binary: one test body per property, run for every source.
//!
//! | property | how |
//! |---|---|
//! | steady cadence while down | the peer stopped, then a peer that accepts TCP and never answers: `poolwatch_target_reports_total` grows by about one per interval |
//! | shutdown within its bound | SIGTERM while a connection attempt to a silent peer is in flight: exit 0 within about a second |
//! | at most one connection | the peer's sessions from poolwatch, counted over many polls |
//! | failure classification | wrong credentials (`auth`), a closed port (`network`), a silent peer (`timeout`) |
//! | series removed when a pool disappears | the pool's `poolwatch_pool_*` series leave `/metrics` and its alert resolves |
//!
//! The sources: PostgreSQL, PgBouncer, and `app_metrics` against a real application (Python,
//! psycopg_pool on a real cluster, its pool exported by prometheus_client; `/metrics` behind a
//! bearer token, so that wrong credentials are a 401). For it, a connection is an HTTP
//! keep-alive connection to the application, counted in `/proc/net/tcp`; its pool disappears
//! when the application exports it under another name, as after a deployment that renamed it.
//!
//! A source is a row: a variant of [`Source`], its arms in [`Source`] and [`Peer`], and one line
//! in the `conformance!` invocation at the end, which makes a test per property for it
//! (`postgres::steady_cadence_while_the_peer_is_stopped`, ...). `scripts/test.sh` runs this
//! binary on every PostgreSQL major and both PgBouncer versions.
//!
//! The cadence bounds are loose (at least 70 % of the ticks, at most one more): this checks that
//! reports keep coming at the interval, not how precisely; BENCHMARKS.md measures timings.

mod common;

use std::time::{Duration, Instant};

use common::apps::{AppOptions, PythonPoolApp};
use common::pgbouncer::Database;
use common::scenario::{
    bouncer_with_cluster, create_monitor_role, expect_metric, header, metric, notifications,
    poolwatch_sessions, receiver, reports_over, target, ClosedPort, SilentServer, WAIT,
};
use common::{
    ConnectionHold, PgBouncer, PgBouncerOptions, PgCluster, PgOptions, Poolwatch, Receiver,
};

/// The sources under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Postgres,
    Pgbouncer,
    AppMetrics,
}

/// The application role whose load fills the pool that later disappears.
const APP: &str = "app";
/// The target's name in every test.
const TARGET: &str = "t";
/// The poll interval of every test.
const INTERVAL: Duration = Duration::from_millis(200);
/// The bearer token the application's `/metrics` wants.
const APP_TOKEN: &str = "conformance-token";

impl Source {
    /// Its `type` in `[[targets]]`.
    fn type_name(self) -> &'static str {
        match self {
            Source::Postgres => "postgres",
            Source::Pgbouncer => "pgbouncer",
            Source::AppMetrics => "app_metrics",
        }
    }

    /// Target keys with credentials the peer refuses.
    fn wrong_credentials(self) -> &'static str {
        match self {
            Source::Postgres | Source::Pgbouncer => "password = \"wrong-pw-3d1f\"\n",
            Source::AppMetrics => "bearer_token = \"wrong-pw-3d1f\"\n",
        }
    }

    /// Starts its real peer: for PostgreSQL a cluster with the monitoring role and [`APP`]
    /// limited to 2 connections; for PgBouncer one in front of a cluster, with two databases,
    /// `appdb` (pool size 2) and `otherdb`, [`APP`] as a user and the monitoring role in
    /// `stats_users`.
    async fn start_peer(self) -> Peer {
        match self {
            Source::Postgres => {
                let pg = PgCluster::start(PgOptions::default()).await;
                create_monitor_role(&pg).await;
                pg.create_role(APP, "app-pw", Some(2)).await;
                Peer::Postgres(pg)
            }
            Source::Pgbouncer => {
                let databases = vec![
                    Database::new("appdb", "postgres").pool_size(2),
                    Database::new("otherdb", "postgres"),
                ];
                let (pg, pgb) =
                    bouncer_with_cluster(APP, databases, PgBouncerOptions::default()).await;
                Peer::Pgbouncer {
                    pg,
                    pgb: Box::new(pgb),
                }
            }
            Source::AppMetrics => {
                let pg = PgCluster::start(PgOptions::default()).await;
                let options = AppOptions {
                    size: 2,
                    acquire_timeout: 60.0,
                    token: Some(APP_TOKEN.into()),
                    ..AppOptions::default()
                };
                let app = PythonPoolApp::start(&pg, options).await;
                Peer::App {
                    port: app.port(),
                    release: app.url("/release"),
                    app: Box::new(tokio::sync::Mutex::new(app)),
                    _pg: pg,
                }
            }
        }
    }

    /// The `[[targets]]` table of [`TARGET`] on `port`, polled every [`INTERVAL`], with a
    /// connect timeout of `connect_timeout`; `extra` lines appended.
    fn target(self, port: u16, connect_timeout: &str, extra: &str) -> String {
        if self == Source::AppMetrics {
            let token = if extra.contains("bearer_token") {
                String::new()
            } else {
                format!("bearer_token = \"{APP_TOKEN}\"\n")
            };
            return format!(
                "[[targets]]\nname = \"{TARGET}\"\ntype = \"app_metrics\"\n\
                 url = \"http://127.0.0.1:{port}/metrics\"\npreset = \"otel\"\n\
                 interval = \"{}ms\"\ntimeout = \"{connect_timeout}\"\n\
                 reconnect_max_backoff = \"200ms\"\n{token}{extra}\n",
                INTERVAL.as_millis()
            );
        }
        let table = target(
            TARGET,
            port,
            &format!("type = \"{}\"\n{extra}", self.type_name()),
        );
        table
            .replace(
                "interval = \"100ms\"",
                &format!("interval = \"{}ms\"", INTERVAL.as_millis()),
            )
            .replace(
                "connect_timeout = \"3s\"",
                &format!("connect_timeout = \"{connect_timeout}\""),
            )
    }
}

/// A source's real peer.
enum Peer {
    Postgres(PgCluster),
    /// Boxed: a PgBouncer is much larger than a cluster handle.
    Pgbouncer {
        pg: PgCluster,
        pgb: Box<PgBouncer>,
    },
    /// The application (behind a lock: stopping and starting it needs it mutable) on its
    /// cluster; boxed, as it is large too.
    App {
        app: Box<tokio::sync::Mutex<PythonPoolApp>>,
        port: u16,
        /// `POST` here releases every held connection.
        release: String,
        _pg: PgCluster,
    },
}

/// Load that holds a pool full.
enum Load {
    Sessions(ConnectionHold),
    Clients(common::pgbouncer::ClientHold),
    /// Connections the application holds; released by a POST to this URL.
    App(String),
}

impl Load {
    /// Ends it.
    async fn release(self) {
        match self {
            Load::Sessions(hold) => hold.close_all().await,
            Load::Clients(mut clients) => clients.release(clients.len()),
            Load::App(release) => {
                let r = reqwest::Client::new().post(&release).send().await;
                assert!(r.is_ok_and(|r| r.status().is_success()), "POST {release}");
            }
        }
    }
}

impl Peer {
    /// Where poolwatch connects.
    fn port(&self) -> u16 {
        match self {
            Peer::Postgres(pg) => pg.port(),
            Peer::Pgbouncer { pgb, .. } => pgb.port(),
            Peer::App { port, .. } => *port,
        }
    }

    /// Stops it.
    async fn stop(&self) {
        match self {
            Peer::Postgres(pg) => pg.stop().await,
            Peer::Pgbouncer { pgb, .. } => pgb.stop().await,
            Peer::App { app, .. } => app.lock().await.stop().await,
        }
    }

    /// Starts it again after [`Peer::stop`].
    async fn start_again(&self) {
        match self {
            Peer::Postgres(pg) => pg.start_again().await,
            Peer::Pgbouncer { pgb, .. } => pgb.start_again().await,
            Peer::App { app, .. } => app.lock().await.start_again().await,
        }
    }

    /// Every session poolwatch has with the peer: on PostgreSQL, its sessions; through
    /// PgBouncer, its console sessions plus any on the PostgreSQL behind (there should be none);
    /// to an application, the established TCP connections to its port (the test itself opens
    /// none while counting).
    async fn poolwatch_sessions(&self) -> usize {
        let on = |pg| async move { usize::try_from(poolwatch_sessions(pg).await).unwrap_or(0) };
        match self {
            Peer::Postgres(pg) => on(pg).await,
            Peer::Pgbouncer { pg, pgb } => pgb.console_clients("poolwatch").await + on(pg).await,
            Peer::App { port, .. } => connections_to(*port),
        }
    }

    /// Fills a pool so that a built-in rule fires on it: [`APP`]'s two connections on
    /// PostgreSQL (`PoolExhausted` on its role pool), three clients on `appdb`'s pool of two
    /// through PgBouncer (`PoolClientsWaiting`). Returns the load, the pool's labels in
    /// `/metrics` and the rule.
    async fn fill_a_pool(&self) -> (Load, [(&'static str, &'static str); 3], &'static str) {
        match self {
            Peer::Postgres(pg) => {
                let hold = pg
                    .hold_connections(APP, 2, "orders")
                    .await
                    .expect("app sessions");
                let pool = [("target", TARGET), ("kind", "role"), ("pool", APP)];
                (Load::Sessions(hold), pool, "PoolExhausted")
            }
            Peer::Pgbouncer { pgb, .. } => {
                let clients = pgb.hold_clients(APP, "appdb", 3);
                clients.wait_for(2, 1, WAIT).await;
                let pool = [
                    ("target", TARGET),
                    ("kind", "pgbouncer_pool"),
                    ("pool", "appdb/app"),
                ];
                (Load::Clients(clients), pool, "PoolClientsWaiting")
            }
            Peer::App { app, release, .. } => {
                let app = app.lock().await;
                app.hold(3).await;
                let waiting = common::poll_until(WAIT, || async {
                    (app.stats().await["requests_waiting"] == 1).then_some(())
                });
                assert!(
                    waiting.await.is_some(),
                    "no client waiting in the application"
                );
                let pool = [("target", TARGET), ("kind", "app"), ("pool", "checkout")];
                (Load::App(release.clone()), pool, "PoolClientsWaiting")
            }
        }
    }

    /// Makes the pool of [`Peer::fill_a_pool`] disappear while its load stays: [`APP`]'s
    /// connection limit removed; `appdb` removed from PgBouncer's file and `RELOAD`ed.
    async fn remove_the_pool(&self) {
        match self {
            Peer::Postgres(pg) => {
                pg.exec(&format!("ALTER ROLE {APP} CONNECTION LIMIT -1"))
                    .await
            }
            Peer::Pgbouncer { pgb, .. } => {
                pgb.remove_database("appdb");
                pgb.reload().await;
            }
            Peer::App { app, .. } => app.lock().await.misbehave("renamed").await,
        }
    }
}

/// Established IPv4 TCP connections whose remote end is 127.0.0.1:`port`, from `/proc/net/tcp`
/// (a line's `rem_address` is `0100007F:PORT` in hex, state `01` is ESTABLISHED).
fn connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(2) == Some(&remote.as_str()) && f.get(3) == Some(&"01")
        })
        .count()
}

/// Counts the reports made over two seconds and checks they kept the interval's cadence.
async fn expect_steady_cadence(pw: &Poolwatch, what: &str) {
    let (made, ticks) = reports_over(pw, TARGET, INTERVAL, Duration::from_secs(2)).await;
    eprintln!("{what}: {made} reports in {ticks:.1} intervals");
    assert!(
        made >= ticks * 0.7 - 1.0 && made <= ticks + 1.0,
        "{what}: {made} reports in {ticks:.1} intervals"
    );
}

/// Waits until [`TARGET`] is down with error class `class`.
async fn expect_down(pw: &Poolwatch, class: &str) {
    let down = [("target", TARGET), ("state", "down")];
    expect_metric(pw, "poolwatch_target_state", &down, 1.0).await;
    let error = [("target", TARGET), ("class", class)];
    expect_metric(pw, "poolwatch_target_error", &error, 1.0).await;
}

async fn steady_cadence_while_the_peer_is_stopped(source: Source) {
    let peer = source.start_peer().await;
    let config = [header(""), source.target(peer.port(), "3s", "")].concat();
    let pw = Poolwatch::start(&config).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", TARGET)], 1.0).await;
    expect_steady_cadence(&pw, "up").await;
    peer.stop().await;
    expect_down(&pw, "network").await;
    expect_steady_cadence(&pw, "stopped").await;
    peer.start_again().await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", TARGET)], 1.0).await;
}

async fn steady_cadence_while_the_peer_never_answers(source: Source) {
    let silent = SilentServer::start().await;
    let config = [header(""), source.target(silent.port(), "1s", "")].concat();
    let pw = Poolwatch::start(&config).await;
    // The first attempt is waited for (until then nothing is known); every tick reports after.
    expect_down(&pw, "timeout").await;
    expect_steady_cadence(&pw, "silent").await;
    assert!(silent.accepted() >= 2, "no new attempt after the first");
}

async fn sigterm_while_connecting_exits_within_its_bound(source: Source) {
    let silent = SilentServer::start().await;
    let config = [header(""), source.target(silent.port(), "10s", "")].concat();
    let mut pw = Poolwatch::start(&config).await;
    let attempt = common::poll_until(WAIT, || async { (silent.accepted() > 0).then_some(()) });
    assert!(attempt.await.is_some(), "no connection attempt");
    tokio::time::sleep(INTERVAL).await;
    let started = Instant::now();
    pw.sigterm();
    let status = pw.wait_exit(WAIT).await;
    let took = started.elapsed();
    eprintln!("{source:?}: exited {took:?} after SIGTERM during a connection attempt");
    assert_eq!(status.code(), Some(0), "{}", pw.logs());
    // Far below the 10 s the attempt would take: it was dropped, not waited for.
    assert!(took < Duration::from_secs(2), "{took:?}");
}

async fn at_most_one_connection(source: Source) {
    let peer = source.start_peer().await;
    let config = [header(""), source.target(peer.port(), "3s", "")].concat();
    let pw = Poolwatch::start(&config).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", TARGET)], 1.0).await;
    let polls = "poolwatch_poll_duration_seconds_count";
    let first = metric(&pw, polls, &[("target", TARGET)]).await;
    for i in 0..20 {
        assert_eq!(peer.poolwatch_sessions().await, 1, "sample {i}");
        tokio::time::sleep(INTERVAL / 2).await;
    }
    let polled = metric(&pw, polls, &[("target", TARGET)]).await - first;
    assert!(polled >= 5.0, "only {polled} polls while counting");
    let connects = metric(&pw, "poolwatch_connects_total", &[("target", TARGET)]).await;
    assert_eq!(connects, 1.0);
}

async fn failures_are_classified(source: Source) {
    let peer = source.start_peer().await;
    let silent = SilentServer::start().await;
    let closed = ClosedPort::new();
    // (target, table, class)
    let cases = [
        (
            "wrongpw",
            source.target(peer.port(), "1s", source.wrong_credentials()),
            "auth",
        ),
        ("closed", source.target(closed.port(), "1s", ""), "network"),
        ("silent", source.target(silent.port(), "1s", ""), "timeout"),
    ];
    let mut config = header("");
    for (name, table, _) in &cases {
        config.push_str(&table.replace(
            &format!("name = \"{TARGET}\""),
            &format!("name = \"{name}\""),
        ));
    }
    let pw = Poolwatch::start(&config).await;
    for (name, _, class) in &cases {
        let down = [("target", *name), ("state", "down")];
        expect_metric(&pw, "poolwatch_target_state", &down, 1.0).await;
        let samples = pw.metrics().await.expect("scrape");
        let classes: Vec<&str> = samples
            .iter()
            .filter(|s| s.name == "poolwatch_target_error" && s.labels["target"] == *name)
            .map(|s| s.labels["class"].as_str())
            .collect();
        assert_eq!(classes, [*class], "{name}");
    }
    // A refused attempt leaves nothing open. The refused target keeps retrying (every 200 ms
    // here); an application's HTTP attempt may be caught in flight, so zero must be seen, not
    // seen at once.
    let none = common::poll_until(WAIT, || async {
        (peer.poolwatch_sessions().await == 0).then_some(())
    });
    assert!(none.await.is_some(), "a refused target holds a connection");
}

async fn series_are_removed_when_a_pool_disappears(source: Source) {
    let peer = source.start_peer().await;
    let hook = Receiver::start().await;
    let config = [
        header(""),
        source.target(peer.port(), "3s", ""),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat();
    // Full before poolwatch looks: PgBouncer's clients also wait, briefly, while it opens the
    // server connections of a cold pool, and the page would come and go.
    let (load, pool, rule) = peer.fill_a_pool().await;
    let pw = Poolwatch::start(&config).await;
    let paged = |r: &[common::RecordedRequest]| {
        notifications(r)
            .iter()
            .any(|n| n.alertname == rule && n.status == "firing")
    };
    assert!(hook.wait_for(paged, WAIT).await, "{rule} never fired");
    let before = hook.requests().len();

    // The load stays; the pool goes.
    peer.remove_the_pool().await;
    let exported = |samples: &[common::Sample]| -> Vec<String> {
        let of_pool = |s: &&common::Sample| {
            pool.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        };
        let alerts = |s: &&common::Sample| {
            s.labels.get("alertname").map(String::as_str) == Some(rule) && of_pool(s)
        };
        samples
            .iter()
            .filter(|s| (s.name.starts_with("poolwatch_pool_") && of_pool(s)) || alerts(s))
            .map(|s| format!("{}{:?}", s.name, s.labels))
            .collect()
    };
    let gone = common::poll_until(WAIT, || async {
        let samples = pw.metrics().await.ok()?;
        exported(&samples).is_empty().then_some(())
    })
    .await;
    let samples = pw.metrics().await.expect("scrape");
    assert!(gone.is_some(), "still exported: {:?}", exported(&samples));
    // Its alert is retired: resolved, without claiming a recovery nobody saw.
    let retired = |r: &[common::RecordedRequest]| {
        let sent = notifications(r.get(before..).unwrap_or_default());
        sent.into_iter()
            .find(|n| n.alertname == rule && n.pool == pool[2].1)
    };
    assert!(hook.wait_for(|r| retired(r).is_some(), WAIT).await);
    let notice = retired(&hook.requests()).expect("notice");
    assert_eq!(notice.status, "resolved", "{notice:?}");
    let summary = format!("{rule} is no longer evaluated: {TARGET} no longer reports this pool");
    assert!(notice.summary.ends_with(&summary), "{notice:?}");
    load.release().await;
}

/// A test for each property, in the module of one source.
macro_rules! properties {
    ($source:expr; $($property:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $property() {
            super::$property($source).await
        }
    )*};
}

/// A module of tests, one per property, for each source.
macro_rules! conformance {
    ($($module:ident => $source:expr),* $(,)?) => {$(
        mod $module {
            properties!(
                $source;
                steady_cadence_while_the_peer_is_stopped,
                steady_cadence_while_the_peer_never_answers,
                sigterm_while_connecting_exits_within_its_bound,
                at_most_one_connection,
                failures_are_classified,
                series_are_removed_when_a_pool_disappears,
            );
        }
    )*};
}

conformance!(
    postgres => super::Source::Postgres,
    pgbouncer => super::Source::Pgbouncer,
    app_metrics => super::Source::AppMetrics,
);
