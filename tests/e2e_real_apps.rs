//! End-to-end: the `poolwatch` binary scraping real applications in three ecosystems, each
//! with its library's own pool and its own metrics library (`tests/common/real_apps.rs`):
//! Go `database/sql` + client_golang (`go_sql`), Node `pg` + `@opentelemetry/instrumentation-pg`
//! (`otel`), SQLAlchemy + `opentelemetry-instrumentation-sqlalchemy` (`otel_legacy`). A pool of
//! 5 gets 20 concurrent requests; poolwatch must page on what the library reports, count what
//! it counts, and resolve once the requests are done. Also: the expositions captured from the
//! same applications (`tests/fixtures/exposition/`) read by the library's presets.
//!
//! Latencies are printed, not asserted (the README's bound is one poll plus 100 ms).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::real_apps::{map_pool, AppKind, RealApp};
use common::scenario::{expect_metric, header, metric, notifications, receiver, WAIT};
use common::{PgCluster, PgOptions, Poolwatch, Receiver, RecordedRequest};
use poolwatch::source::app_metrics::exposition::{parse, Limits};

/// The target's name.
const TARGET: &str = "shop";
/// Pool size and concurrent requests.
const SIZE: u32 = 5;
const REQUESTS: u32 = 20;
/// poolwatch's poll interval.
const INTERVAL_MS: u64 = 100;

/// Pages when acquires that had to wait start (`database/sql` counts them but has no gauge of
/// waiters now).
const WAITS_RULE: &str =
    "[[rules]]\nname = \"PoolWaits\"\nmetric = \"waits_per_second\"\nop = \">\"\ncritical = 0\n\n";
/// Pages on acquire timeouts.
const TIMEOUTS_RULE: &str = "[[rules]]\nname = \"PoolAcquireTimeouts\"\nmetric = \"timeouts_per_second\"\nop = \">\"\ncritical = 0\n\n";

fn config(app: &RealApp, hook: &Receiver, rules: &str) -> String {
    let target = format!(
        "[[targets]]\nname = \"{TARGET}\"\ntype = \"app_metrics\"\nurl = \"{}\"\npreset = \"{}\"\n\
         interval = \"{INTERVAL_MS}ms\"\nreconnect_max_backoff = \"200ms\"\n\n",
        app.metrics_url(),
        app.kind.preset()
    );
    [
        header(""),
        target,
        receiver("oncall", &hook.url("/hook"), ""),
        rules.to_string(),
    ]
    .concat()
}

/// `("status summary", arrival)` of every notification of `alertname`, oldest first.
fn pages(requests: &[RecordedRequest], alertname: &str) -> Vec<(String, Instant)> {
    notifications(requests)
        .into_iter()
        .zip(requests)
        .filter(|(n, _)| n.alertname == alertname)
        .map(|(n, r)| (format!("{} {}", n.status, n.summary), r.received_at))
        .collect()
}

/// Waits for the `n`th notification of `alertname`; returns it (`"firing summary"`) and when
/// it arrived.
async fn expect_page(hook: &Receiver, alertname: &str, n: usize) -> (String, Instant) {
    let arrived = hook
        .wait_for(|r| pages(r, alertname).len() >= n, WAIT)
        .await;
    let got = pages(&hook.requests(), alertname);
    assert!(
        arrived,
        "expected {n} {alertname} notifications, got {got:?}"
    );
    got[n - 1].clone()
}

/// Watches the application's own exposition every 10 ms (read with the preset, as poolwatch
/// reads it) and returns when the queue first became visible there: clients waiting, or for
/// `database/sql` the count of waits moving.
fn watch_queue(app: &RealApp) -> tokio::task::JoinHandle<Instant> {
    let (url, preset, pool) = (app.metrics_url(), app.kind.preset(), app.pool.clone());
    let reports_waiting = app.kind.reports_waiting();
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        loop {
            let text = http.get(&url).send().await.expect("GET").text().await;
            let p = map_pool(preset, &text.expect("body"), &pool);
            let queued = if reports_waiting {
                p.waiting > 0
            } else {
                p.counters.waits.unwrap_or(0) > 0
            };
            if queued {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

async fn exhaust_and_release(kind: AppKind) {
    let pg = PgCluster::start(PgOptions::default()).await;
    // Clients that cannot count timeouts wait until the release; SQLAlchemy's give up after 2 s.
    let timeout = if kind.counts_timeouts() { 2 } else { 60 };
    let (app, startup) = RealApp::start(kind, &pg, SIZE, Duration::from_secs(timeout)).await;
    eprintln!("{kind:?}: the application served {startup:?} after it was started");
    let hook = Receiver::start().await;
    let rules = if kind.reports_waiting() {
        ""
    } else {
        WAITS_RULE
    };
    let rules = format!("{rules}{TIMEOUTS_RULE}");
    let pw = Poolwatch::start(&config(&app, &hook, &rules)).await;
    let pool = [
        ("target", TARGET),
        ("kind", "app"),
        ("pool", app.pool.as_str()),
    ];
    expect_metric(&pw, "poolwatch_pool_capacity", &pool, SIZE.into()).await;
    expect_metric(&pw, "poolwatch_pool_in_use", &pool, 0.0).await;

    eprintln!("{kind:?}: poolwatch reads the idle pool; {REQUESTS} requests start");
    let watcher = watch_queue(&app);
    app.hold(REQUESTS).await;
    let visible = tokio::time::timeout(WAIT, watcher)
        .await
        .expect("the queue never showed in the application's exposition")
        .expect("watcher");
    let page = if kind.reports_waiting() {
        "PoolClientsWaiting"
    } else {
        "PoolWaits"
    };
    let (firing, at) = expect_page(&hook, page, 1).await;
    eprintln!(
        "{kind:?}: {page} paged {:?} after the queue was visible in the application's \
         exposition (poll interval {INTERVAL_MS} ms): {firing}",
        at.saturating_duration_since(visible)
    );
    assert!(firing.starts_with("firing "), "{firing}");
    expect_metric(&pw, "poolwatch_pool_in_use", &pool, SIZE.into()).await;
    if kind.reports_waiting() {
        let queued = f64::from(REQUESTS - SIZE);
        expect_metric(&pw, "poolwatch_pool_waiting", &pool, queued).await;
        // The text is the poll that fired: on a loaded machine not every request may have
        // queued by then, so it says some of them, from a full pool.
        let text = regex::Regex::new(r"(\d+) clients waiting for a connection \((\d+)/5 in use\)$");
        let counts = text.expect("regex").captures(&firing).and_then(|c| {
            let n = |i: usize| c[i].parse::<u32>().ok();
            n(1).zip(n(2))
        });
        let Some((waiting, in_use)) = counts else {
            panic!("not the waiting clients' text: {firing}");
        };
        assert!(
            (1..=REQUESTS - SIZE).contains(&waiting) && in_use <= SIZE,
            "{firing}"
        );
    } else {
        let waits = metric(&pw, "poolwatch_pool_waits_total", &pool).await;
        assert!(waits >= 1.0, "{waits}");
    }

    if kind.counts_timeouts() {
        // The queued requests give up; the library's count becomes a rate above 0.
        let (timeouts, _) = expect_page(&hook, "PoolAcquireTimeouts", 1).await;
        assert!(timeouts.starts_with("firing "), "{timeouts}");
        let queued = f64::from(REQUESTS - SIZE);
        expect_metric(&pw, "poolwatch_pool_timeouts_total", &pool, queued).await;
        expect_metric(&pw, "poolwatch_pool_waiting", &pool, 0.0).await;
        let (resolved, _) = expect_page(&hook, "PoolAcquireTimeouts", 2).await;
        assert!(resolved.starts_with("resolved "), "{resolved}");
    }

    app.release().await;
    expect_metric(&pw, "poolwatch_pool_in_use", &pool, 0.0).await;
    expect_metric(&pw, "poolwatch_pool_waiting", &pool, 0.0).await;
    let (resolved, _) = expect_page(&hook, page, 2).await;
    assert!(resolved.starts_with("resolved "), "{resolved}");
    let requests = hook.requests();
    assert_eq!(
        pages(&requests, page).len(),
        2,
        "{:?}",
        pages(&requests, page)
    );
    if !kind.counts_timeouts() {
        assert!(pages(&requests, "PoolAcquireTimeouts").is_empty());
    }
    fixture_names_are_served(&app).await;
}

/// Every series name of the captured fixture is still what the application serves.
async fn fixture_names_are_served(app: &RealApp) {
    let names = |text: &str| -> BTreeSet<String> {
        let expo = parse(text.as_bytes(), &Limits::default()).expect("exposition");
        expo.samples
            .into_iter()
            .map(|s| s.name.into_owned())
            .collect()
    };
    let live = names(&app.exposition().await);
    let captured = names(&fixture(&format!("{}.txt", app.kind.dir())));
    let missing: Vec<_> = captured.difference(&live).collect();
    assert!(
        missing.is_empty(),
        "{:?} no longer serves {missing:?}",
        app.kind
    );
}

/// `tests/fixtures/exposition/FILE`.
fn fixture(file: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/exposition/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn go_database_sql_waits_page_and_resolve() {
    exhaust_and_release(AppKind::GoSql).await;
}

#[tokio::test]
async fn node_pg_opentelemetry_waiting_clients_page_and_resolve() {
    exhaust_and_release(AppKind::NodeOtel).await;
}

#[tokio::test]
async fn sqlalchemy_opentelemetry_waiting_clients_page_time_out_and_resolve() {
    exhaust_and_release(AppKind::SqlalchemyOtel).await;
}

/// instrumentation-pg recomputes `pending_requests` only on the pool's events: clients that
/// give up waiting (`connectionTimeoutMillis`) fire none, so the exposition, and poolwatch,
/// keep counting them until the next event (here a release). What the library really emits.
#[tokio::test]
async fn node_pg_waiters_that_give_up_stay_counted_until_the_next_pool_event() {
    let pg = PgCluster::start(PgOptions::default()).await;
    let (app, _) = RealApp::start(AppKind::NodeOtel, &pg, SIZE, Duration::from_secs(1)).await;
    let hook = Receiver::start().await;
    let pw = Poolwatch::start(&config(&app, &hook, "")).await;
    let pool = [
        ("target", TARGET),
        ("kind", "app"),
        ("pool", app.pool.as_str()),
    ];
    expect_metric(&pw, "poolwatch_pool_capacity", &pool, SIZE.into()).await;
    app.hold(SIZE + 3).await;
    expect_metric(&pw, "poolwatch_pool_waiting", &pool, 3.0).await;
    // The three give up after 1 s: the pool itself has nobody waiting any more...
    let gave_up = common::poll_until(WAIT, || async {
        (app.stats().await["waitingCount"] == 0).then_some(())
    })
    .await;
    assert!(gave_up.is_some(), "{}", app.stats().await);
    // ...but its exposition still says three, and so does poolwatch.
    assert_eq!(app.pool_now().await.waiting, 3, "{}", app.stats().await);
    expect_metric(&pw, "poolwatch_pool_waiting", &pool, 3.0).await;
    app.release().await;
    expect_metric(&pw, "poolwatch_pool_waiting", &pool, 0.0).await;
    expect_metric(&pw, "poolwatch_pool_in_use", &pool, 0.0).await;
}

/// The captured expositions (5 connections in use, 3 more requests waiting), in text format
/// and, where the library serves it, OpenMetrics, read by each application's preset.
#[test]
fn captured_expositions_map_with_their_presets() {
    // (kind, capture, pool name in it, waiting as reported, waits counted, timeouts counted)
    let cases = [
        (AppKind::GoSql, "go_sql.txt", "checkout", 0, Some(3), None),
        (
            AppKind::GoSql,
            "go_sql.openmetrics.txt",
            "checkout",
            0,
            Some(3),
            None,
        ),
        (
            AppKind::NodeOtel,
            "node_otel.txt",
            "127.0.0.1:55432/postgres",
            3,
            None,
            None,
        ),
        (
            AppKind::SqlalchemyOtel,
            "sqlalchemy_otel.txt",
            "checkout",
            3,
            None,
            Some(3),
        ),
        (
            AppKind::SqlalchemyOtel,
            "sqlalchemy_otel.openmetrics.txt",
            "checkout",
            3,
            None,
            Some(0),
        ),
    ];
    for (kind, file, name, waiting, waits, timeouts) in cases {
        let p = map_pool(kind.preset(), &fixture(file), name);
        let c = &p.counters;
        assert_eq!(
            (p.capacity, p.in_use, p.idle, p.waiting, c.waits, c.timeouts),
            (5, 5, 0, waiting, waits, timeouts),
            "{file}: {p:?}"
        );
    }
}
