//! Benchmark 3: detection latency, from the moment the pool is full to the moment a real
//! webhook receiver has the firing notification.
//!
//! The cluster has `max_connections = 23` and 3 slots reserved for superusers: 20 slots for
//! ordinary roles. poolwatch's own session (role `poolwatch`, not a superuser) takes one of them,
//! so applications are refused (SQLSTATE 53300) once they hold 19. poolwatch leaves its own
//! session out of `in_use` and takes its slot out of `capacity`, so at that moment it reports
//! 19/19 = 1.0: `PoolNearFull` overridden with `critical = { value = 1.0, for = "0s" }` fires on
//! the connection that fills the pool, and not on the one before (18/19 = 0.947).

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use crate::clients::{self, PASSWORD};
use crate::common::pg::hold::with_application_name;
use crate::common::{poll_until, ConnectionHold, PgCluster, PgOptions, Poolwatch, RecordedRequest};
use crate::common::{Receiver, Sample};
use crate::stats::Summary;

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Runs with `for = "0s"`.
    pub runs: usize,
    /// Whether to run once more with the built-in `for = "15s"`.
    pub default_for: bool,
}

/// Slots for ordinary roles (`max_connections - superuser_reserved_connections`).
const SLOTS: usize = 20;
/// Connections applications can hold, and the capacity poolwatch reports: its own session
/// takes one slot.
const APP_MAX: usize = SLOTS - 1;
const INTERVAL_MS: u64 = 100;

/// Whether `r` announces `alertname` with `status` (`firing` or `resolved`).
fn announces(r: &RecordedRequest, alertname: &str, status: &str) -> bool {
    let Some(json) = &r.json else { return false };
    json["alerts"].as_array().is_some_and(|alerts| {
        alerts
            .iter()
            .any(|a| a["status"] == status && a["labels"]["alertname"] == alertname)
    })
}

fn config(pg: &PgCluster, receiver: &Receiver, rules: &str) -> String {
    format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n[[targets]]\nname = \"db\"\nhost = \"127.0.0.1\"\n\
         port = {}\nuser = \"poolwatch\"\npassword = \"{PASSWORD}\"\nsslmode = \"disable\"\n\
         interval = \"{INTERVAL_MS}ms\"\n\n{rules}\n[[receivers]]\nname = \"oncall\"\nurl = \"{}\"\n\
         initial_backoff = \"100ms\"\n",
        pg.port(),
        receiver.url("/hook")
    )
}

async fn start_daemon(pg: &PgCluster, receiver: &Receiver, rules: &str) -> Poolwatch {
    let daemon = Poolwatch::start(&config(pg, receiver, rules)).await;
    daemon
        .wait_for_metric(
            "poolwatch_target_up",
            &[("target", "db")],
            |v| v == 1.0,
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", daemon.logs()));
    daemon
}

/// Stops the daemon and waits until its session has left the server.
async fn stop_daemon(pg: &PgCluster, daemon: Poolwatch) {
    drop(daemon);
    let gone = poll_until(Duration::from_secs(10), || async {
        let rows = pg
            .query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'poolwatch'")
            .await;
        (rows[0].get::<_, i64>(0) == 0).then_some(())
    })
    .await;
    assert!(gone.is_some(), "poolwatch's session still on the server");
}

/// Fills the pool: `APP_MAX - 1` connections, a pause of a few polls, a random delay within one
/// interval (so the last connection lands at a random phase of the poll ticker), then the last
/// one. Returns the bulk, the last session and the instant it was established: when
/// `connect` returned, i.e. the client had the server's ReadyForQuery (the harness's tracked
/// connections would add a `pg_backend_pid()` round trip before that instant).
async fn fill(pg: &PgCluster) -> (ConnectionHold, tokio_postgres::Client, Instant) {
    let bulk = pg
        .hold_connections("app", APP_MAX - 1, "web")
        .await
        .expect("all but the last connection");
    tokio::time::sleep(Duration::from_millis(3 * INTERVAL_MS)).await;
    let jitter = rand::random::<f64>() * INTERVAL_MS as f64;
    tokio::time::sleep(Duration::from_secs_f64(jitter / 1e3)).await;
    let url = with_application_name(&pg.url_with_password("app", PASSWORD, "postgres"), "web");
    let last = crate::common::pg::connect(&url)
        .await
        .expect("the last connection");
    (bulk, last, Instant::now())
}

/// Ends the sessions of [`fill`]; the bulk's backends are gone when it returns.
async fn release(bulk: ConnectionHold, last: tokio_postgres::Client) {
    drop(last);
    bulk.close_all().await;
}

/// Whether one more ordinary connection is refused with 53300.
async fn refused_as_full(pg: &PgCluster) -> bool {
    match crate::common::pg::connect(&pg.url_with_password("app", PASSWORD, "postgres")).await {
        Ok(_) => false,
        Err(e) => e.code() == Some(&SqlState::TOO_MANY_CONNECTIONS),
    }
}

fn pool_gauge(samples: &[Sample], name: &str) -> f64 {
    crate::common::metrics::find_sample(samples, name, &[("target", "db"), ("pool", "server")])
        .unwrap_or(f64::NAN)
}

/// The `summary` annotation of the first alert named `alertname` in a webhook.
fn summary_of(r: &RecordedRequest, alertname: &str) -> Option<String> {
    let alerts = r.json.as_ref()?["alerts"].as_array()?.clone();
    alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == alertname)
        .and_then(|a| a["annotations"]["summary"].as_str().map(str::to_string))
}

/// Runs the benchmark and prints its results.
pub async fn run(plan: Plan) {
    println!(
        "\n## 3. Detection latency: pool full -> firing webhook received (interval = \"{INTERVAL_MS}ms\")\n"
    );
    let started = Instant::now();
    let pg = PgCluster::start(PgOptions {
        max_connections: SLOTS as u32 + 3,
        superuser_reserved_connections: 3,
        ..PgOptions::default()
    })
    .await;
    clients::prepare(&pg).await;
    let receiver = Receiver::start().await;
    // PoolNearFull fires at a full pool (utilization 1.0: the own session's slot is out of the
    // capacity), within one poll.
    let rules = "[[rules]]\nname = \"PoolNearFull\"\ncritical = { value = 1.0, for = \"0s\" }\n";
    let daemon = start_daemon(&pg, &receiver, rules).await;
    let mut latencies = Vec::new();
    let mut early = 0;
    let mut not_refused = 0;
    let mut gauges_full = 0;
    let mut gauges_seen = Vec::new();
    let mut summaries = Vec::new();
    for run in 0..plan.runs {
        receiver.clear();
        let (bulk, last, full_at) = fill(&pg).await;
        let early_now = receiver
            .requests()
            .iter()
            .filter(|r| r.received_at < full_at && announces(r, "PoolNearFull", "firing"))
            .count();
        early += early_now;
        let got = receiver
            .wait_for(
                |rs| rs.iter().any(|r| announces(r, "PoolNearFull", "firing")),
                Duration::from_secs(10),
            )
            .await;
        assert!(
            got,
            "run {run}: no firing PoolNearFull within 10 s\n{}",
            daemon.logs()
        );
        let fired = receiver
            .requests()
            .into_iter()
            .find(|r| announces(r, "PoolNearFull", "firing"))
            .expect("firing request");
        latencies.push(fired.received_at.saturating_duration_since(full_at));
        summaries.extend(summary_of(&fired, "PoolNearFull"));
        // The pool the alert was about really is full: one more application connection is
        // refused, and poolwatch's gauges say so.
        if !refused_as_full(&pg).await {
            not_refused += 1;
        }
        let samples = daemon.metrics().await.expect("metrics");
        let gauges = [
            "poolwatch_pool_in_use",
            "poolwatch_pool_capacity",
            "poolwatch_pool_utilization_ratio",
        ]
        .map(|name| pool_gauge(&samples, name));
        if gauges == [APP_MAX as f64, APP_MAX as f64, 1.0] {
            gauges_full += 1;
        } else {
            gauges_seen.push(gauges);
        }
        release(bulk, last).await;
        let resolved = receiver
            .wait_for(
                |rs| rs.iter().any(|r| announces(r, "PoolNearFull", "resolved")),
                Duration::from_secs(10),
            )
            .await;
        assert!(resolved, "run {run}: no resolved PoolNearFull within 10 s");
    }
    stop_daemon(&pg, daemon).await;

    let ms = Summary::of_durations_ms(&latencies);
    let bound_ms = INTERVAL_MS as f64 + 100.0;
    let within = latencies
        .iter()
        .filter(|d| d.as_secs_f64() * 1e3 <= bound_ms)
        .count();
    println!(
        "PoolNearFull with critical = {{ value = 1.0, for = \"0s\" }}, {} runs:",
        plan.runs
    );
    println!(
        "- latency (ms): min {:.1}, median {:.1}, p95 {:.1}, max {:.1}, mean {:.1}",
        ms.min(),
        ms.median(),
        ms.pct(95.0),
        ms.max(),
        ms.mean()
    );
    println!(
        "- bound interval + for + 100 ms = {bound_ms:.0} ms: {within}/{} runs within ({})",
        latencies.len(),
        if within == latencies.len() {
            "MET"
        } else {
            "MISSED"
        }
    );
    let all: Vec<String> = latencies
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
        .collect();
    println!("- every run (ms): {}", all.join(" "));
    println!(
        "- firing before the last ({APP_MAX}th) connection: {early}; the pool refused a further \
         connection with 53300 after the alert in {}/{} runs",
        plan.runs - not_refused,
        plan.runs
    );
    println!(
        "- poolwatch's gauges after the alert: in_use = capacity = {APP_MAX}, utilization = 1.0 \
         in {gauges_full}/{} runs{}",
        plan.runs,
        if gauges_seen.is_empty() {
            String::new()
        } else {
            format!("; otherwise (in_use, capacity, utilization): {gauges_seen:?}")
        }
    );
    summaries.sort();
    summaries.dedup();
    println!("- summary of the firing alert: {summaries:?}");

    if plan.default_for {
        default_for_run(&pg, &receiver).await;
    }
    println!("(section took {:.0?})", started.elapsed());
}

/// One run with the built-in PoolNearFull (`for = "15s"`).
async fn default_for_run(pg: &PgCluster, receiver: &Receiver) {
    let daemon = start_daemon(pg, receiver, "").await;
    receiver.clear();
    let (bulk, last, full_at) = fill(pg).await;
    let got = receiver
        .wait_for(
            |rs| rs.iter().any(|r| announces(r, "PoolNearFull", "firing")),
            Duration::from_secs(30),
        )
        .await;
    let fired = receiver
        .requests()
        .into_iter()
        .find(|r| announces(r, "PoolNearFull", "firing"));
    match (got, fired) {
        (true, Some(r)) => {
            let s = r
                .received_at
                .saturating_duration_since(full_at)
                .as_secs_f64();
            let bound = INTERVAL_MS as f64 / 1e3 + 15.0 + 0.1;
            println!(
                "\nBuilt-in PoolNearFull (for = \"15s\"), 1 run: {s:.3} s (bound {bound:.1} s: {})",
                if s <= bound { "MET" } else { "MISSED" }
            );
        }
        _ => println!("\nBuilt-in PoolNearFull (for = \"15s\"): no firing webhook within 30 s"),
    }
    release(bulk, last).await;
    stop_daemon(pg, daemon).await;
}
