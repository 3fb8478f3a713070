//! Benchmark 8.1: pushes of pool stats (`POST /api/v1/pools`) at a steady rate against the
//! release binary: answer latency as the pushing application sees it, the daemon's CPU and
//! resident memory while it takes them. The same senders first `GET /healthz` at the same rate
//! on the same kind of connections: the baseline that tells the machine's latency (loopback,
//! scheduling, the HTTP server) from what a push adds.

use std::time::{Duration, Instant};

use crate::common::Poolwatch;
use crate::daemon_rss::{cpu_seconds, read_mem};
use crate::stats::Summary;

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Pushes per second, in total.
    pub rate: u32,
    /// How long pushes are sent.
    pub duration: Duration,
    /// Instances pushing (each with 3 pools), spread over the senders.
    pub instances: u32,
    /// Concurrent senders, each on its own keep-alive connection.
    pub senders: u32,
}

fn body(instance: u32) -> String {
    let pools: Vec<String> = (0..3)
        .map(|p| {
            format!(
                r#"{{"name": "pool{p}", "capacity": 20, "in_use": {}, "idle": 3, "waiting": 0, "timeouts_total": 0}}"#,
                instance % 15
            )
        })
        .collect();
    format!(
        r#"{{"application": "bench", "instance": "i{instance}", "pools": [{}]}}"#,
        pools.join(", ")
    )
}

/// What the senders send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    /// `GET /healthz`, answered 200 with no work: the baseline.
    Healthz,
    /// `POST /api/v1/pools`, answered 202.
    Push,
}

/// One sender: `rate` requests per second for `duration`; the latency of each answer.
async fn sender(
    base: String,
    kind: Request,
    instances: Vec<u32>,
    rate: f64,
    duration: Duration,
) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut n = 0usize;
    while started.elapsed() < duration {
        tick.tick().await;
        let b = body(instances[n % instances.len()]);
        n += 1;
        let t0 = Instant::now();
        let (request, want) = match kind {
            Request::Healthz => (client.get(format!("{base}/healthz")), 200),
            Request::Push => (
                client
                    .post(format!("{base}/api/v1/pools"))
                    .header("content-type", "application/json")
                    .body(b),
                202,
            ),
        };
        let resp = request.send().await.expect("an answer");
        assert_eq!(resp.status().as_u16(), want, "{kind:?} refused");
        let _ = resp.bytes().await;
        latencies.push(t0.elapsed());
    }
    latencies
}

/// One phase: every sender at its share of the rate for the plan's duration; the latencies,
/// the elapsed seconds and the daemon's CPU seconds.
async fn phase(plan: &Plan, base: &str, kind: Request, pid: u32) -> (Vec<Duration>, f64, f64) {
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let per_sender = plan.rate as f64 / plan.senders as f64;
    let tasks: Vec<_> = (0..plan.senders)
        .map(|s| {
            let mine: Vec<u32> = (0..plan.instances)
                .filter(|i| i % plan.senders == s)
                .collect();
            tokio::spawn(sender(
                base.to_string(),
                kind,
                mine,
                per_sender,
                plan.duration,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("sender"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    (latencies, elapsed, cpu_seconds(pid) - cpu_before)
}

/// Runs the benchmark and prints its results.
pub async fn run(plan: Plan) {
    println!(
        "\n### 8.1 Pushed pool stats: {} pushes per second from {} instances\n",
        plan.rate, plan.instances
    );
    let config = "[http]\nlisten = \"127.0.0.1:0\"\nmax_connections = 64\n\n\
                  [[targets]]\nname = \"bench\"\ntype = \"push\"\nmax_instances = 1000\n";
    let daemon = Poolwatch::start(config).await;
    let pid = daemon.pid();
    let base = daemon.url("");
    let rss_before = read_mem(pid).unwrap_or_default().rss;
    let (healthz, healthz_secs, healthz_cpu) = phase(&plan, &base, Request::Healthz, pid).await;
    let (latencies, elapsed, cpu) = phase(&plan, &base, Request::Push, pid).await;
    let mem = read_mem(pid).unwrap_or_default();
    let baseline = Summary::of_durations_ms(&healthz);
    let summary = Summary::of_durations_ms(&latencies);
    println!(
        "{} senders, each on its own keep-alive connection; first `GET /healthz` for {:.0?}, then \
         the pushes for {:.0?}, at the same rate.\n",
        plan.senders, plan.duration, plan.duration
    );
    println!("| measure | `GET /healthz` (baseline) | `POST /api/v1/pools` |\n|---|---|---|");
    println!(
        "| answers | {} in {healthz_secs:.1} s ({:.0}/s) | {} in {elapsed:.1} s ({:.0}/s) |",
        healthz.len(),
        healthz.len() as f64 / healthz_secs,
        latencies.len(),
        latencies.len() as f64 / elapsed
    );
    println!("| answer latency, ms | {baseline} | {summary} |");
    println!(
        "| daemon CPU | {:.1} % of one core | {:.1} % of one core |",
        100.0 * healthz_cpu / healthz_secs,
        100.0 * cpu / elapsed
    );
    println!(
        "\nDaemon resident memory: {} kB before, {} kB after (peak {} kB).",
        rss_before, mem.rss, mem.hwm
    );
    println!(
        "Same-run ratio push / healthz: p50 ×{:.2}, p99 ×{:.2}.",
        summary.median() / baseline.median(),
        summary.pct(99.0) / baseline.pct(99.0)
    );
    let target = if summary.pct(99.0) < 5.0 {
        "MET"
    } else {
        "MISSED"
    };
    println!(
        "\nTarget \"1,000 pushes per second accepted with p99 under 5 ms\": **{target}** \
         (p99 {:.3} ms; the baseline's p99 {:.3} ms).",
        summary.pct(99.0),
        baseline.pct(99.0)
    );
}
