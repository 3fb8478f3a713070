//! Benchmark 3: detection latency, from the moment the pool is full to the moment a real
//! webhook receiver has the firing notification (the stage is in [`crate::full_pool`]).
//!
//! * **Detection**: the built-in `PoolExhausted` with `for` set to 0 s and 2 s, at intervals
//!   of 250 ms and 1 s; the share of runs within the README's bound interval + `for` + 100 ms.
//! * **Server full → page, with defaults only**: a configuration that sets neither `interval`
//!   nor any rule, i.e. what a new user gets.
//! * Once, unless `--quick`: the built-in `PoolNearFull` (`for = "15s"`).

use std::time::Duration;

use crate::common::Poolwatch;
use crate::full_pool::{announces, pool_gauge, summary_of, Stage, APP_MAX};
use crate::stats::Summary;

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Runs per configuration.
    pub runs: usize,
    /// Whether to run once more with the built-in `PoolNearFull` (`for = "15s"`).
    pub default_for: bool,
}

/// `default_interval()` of the target schema.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The README's slack on top of interval + `for`.
const SLACK: Duration = Duration::from_millis(100);
/// How long one run waits for a notification before giving up.
const WAIT: Duration = Duration::from_secs(30);

/// What the runs of one configuration measured.
#[derive(Default)]
struct Outcome {
    latencies: Vec<Duration>,
    /// Firing notices received before the pool was full.
    early: usize,
    /// Runs where one more connection was not refused with 53300 after the alert.
    not_refused: usize,
    /// Runs whose gauges said in_use = capacity = APP_MAX, utilization 1.
    gauges_full: usize,
    /// The other runs' (in_use, capacity, utilization).
    gauges_seen: Vec<[f64; 3]>,
    summaries: Vec<String>,
}

/// Fills and releases the pool `runs` times under `daemon`, timing `alertname`'s page.
async fn series(stage: &Stage, daemon: &Poolwatch, interval: Duration, runs: usize) -> Outcome {
    let alertname = "PoolExhausted";
    let receiver = &stage.receiver;
    let mut out = Outcome::default();
    for run in 0..runs {
        receiver.clear();
        let full = stage.fill(interval).await;
        out.early += receiver
            .requests()
            .iter()
            .filter(|r| r.received_at < full.at && announces(r, alertname, "firing"))
            .count();
        let got = receiver
            .wait_for(
                |rs| rs.iter().any(|r| announces(r, alertname, "firing")),
                WAIT,
            )
            .await;
        assert!(got, "run {run}: no firing {alertname}\n{}", daemon.logs());
        let fired = receiver
            .requests()
            .into_iter()
            .find(|r| announces(r, alertname, "firing"))
            .expect("firing request");
        out.latencies
            .push(fired.received_at.saturating_duration_since(full.at));
        out.summaries.extend(summary_of(&fired, alertname));
        // The pool the alert was about really is full: one more application connection is
        // refused, and poolwatch's gauges say so.
        if !stage.refused_as_full().await {
            out.not_refused += 1;
        }
        let samples = daemon.metrics().await.expect("metrics");
        let gauges = [
            "poolwatch_pool_in_use",
            "poolwatch_pool_capacity",
            "poolwatch_pool_utilization_ratio",
        ]
        .map(|name| pool_gauge(&samples, name));
        if gauges == [APP_MAX as f64, APP_MAX as f64, 1.0] {
            out.gauges_full += 1;
        } else {
            out.gauges_seen.push(gauges);
        }
        full.release().await;
        let resolved = receiver
            .wait_for(
                |rs| rs.iter().any(|r| announces(r, alertname, "resolved")),
                WAIT,
            )
            .await;
        assert!(resolved, "run {run}: no resolved {alertname}");
    }
    out
}

/// `7/10 = 70% within 1100 ms (MISSED)`: the share of runs within `bound`.
fn share(latencies: &[Duration], bound: Duration) -> String {
    let n = latencies.iter().filter(|d| **d <= bound).count();
    let of = latencies.len();
    format!(
        "{n}/{of} = {:.0}% within {} ms{}",
        100.0 * n as f64 / of.max(1) as f64,
        ms(bound),
        if n == of { "" } else { " (MISSED)" }
    )
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e3)
}

/// One Markdown table row: interval, for, runs, min/median/p95/max, share within the bound.
fn row(interval: Duration, for_: Duration, out: &Outcome) -> String {
    let s = Summary::of_durations_ms(&out.latencies);
    format!(
        "| {} ms | {} s | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
        interval.as_millis(),
        for_.as_secs(),
        s.len(),
        s.min(),
        s.median(),
        s.pct(95.0),
        s.max(),
        share(&out.latencies, interval + for_ + SLACK)
    )
}

/// The checks every series makes, and every run's latency.
fn details(label: &str, out: &Outcome) {
    let all: Vec<String> = out.latencies.iter().map(|d| ms(*d)).collect();
    let runs = out.latencies.len();
    println!("- {label}, every run (ms): {}", all.join(" "));
    println!(
        "  firing before the pool was full: {}; a further connection refused with 53300 after \
         the page: {}/{runs}; gauges in_use = capacity = {APP_MAX}, utilization 1.0: {}/{runs}{}",
        out.early,
        runs - out.not_refused,
        out.gauges_full,
        if out.gauges_seen.is_empty() {
            String::new()
        } else {
            format!(
                "; otherwise (in_use, capacity, utilization): {:?}",
                out.gauges_seen
            )
        }
    );
}

/// Runs the benchmark and prints its results.
pub async fn run(plan: Plan) {
    println!("\n## 3. Detection latency: pool full -> firing webhook received\n");
    let started = std::time::Instant::now();
    let stage = Stage::start().await;

    println!(
        "### Detection: PoolExhausted at two intervals, `for` 0 s and 2 s ({} runs each)\n",
        plan.runs
    );
    println!("| interval | for | runs | min ms | median ms | p95 ms | max ms | bound interval + for + 100 ms |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut outcomes = Vec::new();
    for interval in [Duration::from_millis(250), Duration::from_secs(1)] {
        for for_ in [Duration::ZERO, Duration::from_secs(2)] {
            let rules = format!(
                "[[rules]]\nname = \"PoolExhausted\"\nfor = \"{}ms\"\n\n\
                 [[rules]]\nname = \"PoolNearFull\"\nenabled = false\n\n\
                 [[rules]]\nname = \"PoolUtilizationHigh\"\nenabled = false\n",
                for_.as_millis()
            );
            let daemon = stage.daemon(Some(interval), &rules).await;
            let out = series(&stage, &daemon, interval, plan.runs).await;
            stage.stop(daemon).await;
            println!("{}", row(interval, for_, &out));
            outcomes.push((interval, for_, out));
        }
    }
    println!();
    for (interval, for_, out) in &outcomes {
        details(
            &format!(
                "interval {} ms, for {} s",
                interval.as_millis(),
                for_.as_secs()
            ),
            out,
        );
    }

    defaults_only(&stage, plan.runs).await;
    if plan.default_for {
        near_full_once(&stage).await;
    }
    println!("(section took {:.0?})", started.elapsed());
}

/// Server full → page, with a configuration that sets neither `interval` nor any rule.
async fn defaults_only(stage: &Stage, runs: usize) {
    println!("\n### Server full -> page, with defaults only ({runs} runs)\n");
    let daemon = stage.daemon(None, "").await;
    let out = series(stage, &daemon, DEFAULT_INTERVAL, runs).await;
    stage.stop(daemon).await;
    let s = Summary::of_durations_ms(&out.latencies);
    println!(
        "Built-in PoolExhausted (for 0 s) at the default interval (1 s): n = {}, min {:.0} ms, \
         median {:.0} ms, mean {:.0} ms, p95 {:.0} ms, max {:.0} ms; {} (interval + for + 100 ms)",
        s.len(),
        s.min(),
        s.median(),
        s.mean(),
        s.pct(95.0),
        s.max(),
        share(&out.latencies, DEFAULT_INTERVAL + SLACK)
    );
    details("defaults only", &out);
    let mut summaries = out.summaries;
    summaries.sort();
    summaries.dedup();
    println!("  summary of the page: {summaries:?}");
}

/// One run with the built-in PoolNearFull (`for = "15s"`), defaults otherwise.
async fn near_full_once(stage: &Stage) {
    let daemon = stage.daemon(None, "").await;
    let receiver = &stage.receiver;
    receiver.clear();
    let full = stage.fill(DEFAULT_INTERVAL).await;
    let got = receiver
        .wait_for(
            |rs| rs.iter().any(|r| announces(r, "PoolNearFull", "firing")),
            WAIT,
        )
        .await;
    let fired = receiver
        .requests()
        .into_iter()
        .find(|r| announces(r, "PoolNearFull", "firing"));
    let bound = DEFAULT_INTERVAL + Duration::from_secs(15) + SLACK;
    match (got, fired) {
        (true, Some(r)) => {
            let took = r.received_at.saturating_duration_since(full.at);
            println!(
                "\nBuilt-in PoolNearFull (for = \"15s\"), defaults only, 1 run: {:.3} s (bound {:.1} s: {})",
                took.as_secs_f64(),
                bound.as_secs_f64(),
                if took <= bound { "MET" } else { "MISSED" }
            );
        }
        _ => println!("\nBuilt-in PoolNearFull (for = \"15s\"): no firing webhook within 30 s"),
    }
    full.release().await;
    stage.stop(daemon).await;
}
