//! Benchmark 5: many targets at one interval. 50 targets on one cluster, all at 1 s: when do
//! their polls start within the interval (each target's ticks are offset by a phase derived
//! from its name), and does a poll take longer than a lone target's poll in the same run?
//!
//! The start of each poll is read from the server: with `log_min_duration_statement = 0` for
//! role `poolwatch`, every poll logs a `bind` and an `execute` line, each stamped when it ended
//! (`%m`, milliseconds) with its duration. A poll starts at the `bind` line's stamp minus its
//! duration and ends at the `execute` line's stamp.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::clients::{self, PASSWORD};
use crate::common::{PgCluster, PgOptions, Poolwatch};
use crate::daemon_rss::{cpu_seconds, sum_samples};
use crate::stats::Summary;

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Targets of the many-target daemon.
    pub targets: usize,
    /// How long each daemon is observed once its targets are up.
    pub duration: Duration,
}

/// The one interval every target uses.
const INTERVAL: Duration = Duration::from_secs(1);

/// One poll as the server logged it: its backend, start and end in ms since midnight.
#[derive(Debug, Clone, Copy)]
struct ServerPoll {
    pid: u32,
    start: f64,
    end: f64,
    /// `bind` plus `execute` durations, ms.
    work: f64,
}

/// `2026-12-01 19:25:20.123 UTC [4242] ...`: (ms since midnight, pid).
fn stamp_and_pid(line: &str) -> Option<(f64, u32)> {
    let mut parts = line.split_whitespace();
    let _date = parts.next()?;
    let time = parts.next()?;
    let _zone = parts.next()?;
    let pid = parts
        .next()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let mut hms = time.split(':');
    let h: f64 = hms.next()?.parse().ok()?;
    let m: f64 = hms.next()?.parse().ok()?;
    let s: f64 = hms.next()?.parse().ok()?;
    Some(((h * 60.0 + m) * 60.0 * 1e3 + s * 1e3, pid))
}

/// `duration: 0.050 ms  bind s12: SELECT json_build_object(` → 0.05 when the step matches.
fn step_ms(line: &str, step: &str) -> Option<f64> {
    let (_, rest) = line.split_once("duration: ")?;
    let (ms, rest) = rest.split_once(" ms  ")?;
    (rest.starts_with(&format!("{step} ")) && rest.contains("SELECT json_build_object("))
        .then(|| ms.parse().ok())
        .flatten()
}

/// The polls of role poolwatch in a slice of the server log, in order.
fn server_polls(log: &str) -> Vec<ServerPoll> {
    let mut open: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    let mut polls = Vec::new();
    for line in log
        .lines()
        .filter(|l| l.contains(" poolwatch@postgres/poolwatch "))
    {
        let Some((at, pid)) = stamp_and_pid(line) else {
            continue;
        };
        if let Some(ms) = step_ms(line, "bind") {
            open.insert(pid, (at - ms, ms));
        } else if let Some(ms) = step_ms(line, "execute") {
            if let Some((start, bind)) = open.remove(&pid) {
                polls.push(ServerPoll {
                    pid,
                    start,
                    end: at,
                    work: bind + ms,
                });
            }
        }
    }
    polls
}

/// What one daemon's window showed.
struct Window {
    targets: usize,
    polls: Vec<ServerPoll>,
    /// Mean poll duration by the daemon's own histogram, ms.
    daemon_mean_ms: f64,
    daemon_polls: f64,
    cpu_percent: f64,
}

/// Starts a daemon with `n` targets on `pg`, waits until all are up, then observes it.
async fn observe(pg: &PgCluster, n: usize, prefix: &str, duration: Duration) -> Window {
    let mut config = String::from("[http]\nlisten = \"127.0.0.1:0\"\n\n");
    for i in 0..n {
        config.push_str(&format!(
            "[[targets]]\nname = \"{prefix}{i:02}\"\nhost = \"127.0.0.1\"\nport = {}\n\
             user = \"poolwatch\"\npassword = \"{PASSWORD}\"\nsslmode = \"disable\"\n\
             interval = \"{}ms\"\n\n",
            pg.port(),
            INTERVAL.as_millis()
        ));
    }
    let daemon = Poolwatch::start(&config).await;
    let up = crate::common::poll_until(Duration::from_secs(30), || async {
        let samples = daemon.metrics().await.ok()?;
        (sum_samples(&samples, "poolwatch_target_up") as usize == n).then_some(())
    })
    .await;
    assert!(up.is_some(), "not every target up\n{}", daemon.logs());
    // Past the immediate first polls, onto the spread schedule.
    tokio::time::sleep(2 * INTERVAL).await;
    let before = daemon.metrics().await.expect("metrics");
    let offset = pg.server_log().len();
    let cpu_before = cpu_seconds(daemon.pid());
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    let cpu = cpu_seconds(daemon.pid()) - cpu_before;
    let elapsed = started.elapsed().as_secs_f64();
    let after = daemon.metrics().await.expect("metrics");
    let log = pg.server_log();
    let count = "poolwatch_poll_duration_seconds_count";
    let sum = "poolwatch_poll_duration_seconds_sum";
    let daemon_polls = sum_samples(&after, count) - sum_samples(&before, count);
    let seconds = sum_samples(&after, sum) - sum_samples(&before, sum);
    drop(daemon);
    Window {
        targets: n,
        polls: server_polls(&log[offset..]),
        daemon_mean_ms: seconds / daemon_polls * 1e3,
        daemon_polls,
        cpu_percent: cpu / elapsed * 100.0,
    }
}

/// How many other polls of the window were running on the server when each poll started.
fn concurrency(polls: &[ServerPoll]) -> Summary {
    Summary::new(
        polls
            .iter()
            .map(|p| {
                polls
                    .iter()
                    .filter(|q| q.pid != p.pid && q.start <= p.start && p.start < q.end)
                    .count() as f64
            })
            .collect(),
    )
}

/// Prints the distribution of poll start offsets within the interval, in tenths.
fn offsets(w: &Window) {
    let period = INTERVAL.as_secs_f64() * 1e3;
    let offs: Vec<f64> = w.polls.iter().map(|p| p.start.rem_euclid(period)).collect();
    let mut tenths = [0usize; 10];
    for o in &offs {
        tenths[((o / period * 10.0) as usize).min(9)] += 1;
    }
    // Each target's own offset (median over its polls), sorted: the gaps between targets.
    let mut by_pid: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
    for (p, o) in w.polls.iter().zip(&offs) {
        by_pid.entry(p.pid).or_default().push(*o);
    }
    let mut phases: Vec<f64> = by_pid
        .values()
        .map(|v| Summary::new(v.clone()).median())
        .collect();
    phases.sort_by(f64::total_cmp);
    let gaps: Vec<f64> = phases
        .iter()
        .zip(phases.iter().cycle().skip(1))
        .map(|(a, b)| (b - a).rem_euclid(period))
        .collect();
    // Around the target's median, on the circle (an offset of 995 ms is 10 ms from 5 ms).
    let jitter: Vec<f64> = by_pid
        .values()
        .map(|v| {
            let mid = Summary::new(v.clone()).median();
            let off = |o: &f64| (o - mid + period / 2.0).rem_euclid(period) - period / 2.0;
            let s = Summary::new(v.iter().map(off).collect());
            s.max() - s.min()
        })
        .collect();
    let same_10ms = {
        let mut bins: BTreeMap<i64, usize> = BTreeMap::new();
        for p in &w.polls {
            *bins.entry((p.start / 10.0) as i64).or_default() += 1;
        }
        bins.values().copied().max().unwrap_or(0)
    };
    println!(
        "- poll starts per tenth of the interval (0-100 ms, ..., 900-1000 ms): {tenths:?}; \
         most polls starting in one 10 ms window: {same_10ms}"
    );
    println!(
        "- each target's offset within the interval (median of its polls): {} distinct backends; \
         gaps between neighbouring targets (ms): {}; spread of one target's own offset over \
         the window, max - min (ms): {}",
        phases.len(),
        Summary::new(gaps),
        Summary::new(jitter)
    );
}

/// Runs the benchmark and prints its results.
pub async fn run(plan: Plan) {
    println!(
        "\n## 5. {} targets at one interval ({} s): spread ticks\n",
        plan.targets,
        INTERVAL.as_secs()
    );
    let started = Instant::now();
    let pg = PgCluster::start(PgOptions {
        max_connections: plan.targets as u32 + 30,
        ..PgOptions::default()
    })
    .await;
    clients::prepare(&pg).await;
    let _idle = pg
        .hold_connections("app", 10, "web")
        .await
        .expect("10 idle clients");
    pg.exec("ALTER ROLE poolwatch SET log_min_duration_statement = 0")
        .await;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("one cluster (10 idle clients), load average at the start: {load}");
    let one = observe(&pg, 1, "solo", plan.duration).await;
    let many = observe(&pg, plan.targets, "t", plan.duration).await;
    let one_again = observe(&pg, 1, "solo", plan.duration).await;
    println!("| daemon | targets | polls (server log) | server time per poll (bind + execute) ms: min / p50 / mean / p95 | daemon's mean poll ms | other polls running at a poll's start: p50 / p95 / max | daemon CPU % of a core |");
    println!("|---|---:|---:|---|---:|---|---:|");
    for (label, w) in [
        ("1 target", &one),
        ("many", &many),
        ("1 target again", &one_again),
    ] {
        let server = Summary::new(w.polls.iter().map(|p| p.work).collect());
        let c = concurrency(&w.polls);
        println!(
            "| {label} | {} | {} | {:.2} / {:.2} / {:.2} / {:.2} | {:.3} ({} polls) | {:.0} / {:.0} / {:.0} | {:.2} |",
            w.targets,
            w.polls.len(),
            server.min(),
            server.median(),
            server.mean(),
            server.pct(95.0),
            w.daemon_mean_ms,
            w.daemon_polls,
            c.median(),
            c.pct(95.0),
            c.max(),
            w.cpu_percent
        );
    }
    println!();
    offsets(&many);
    println!(
        "- mean poll, {} targets / 1 target (daemon's histogram, same run): {:.2}x",
        plan.targets,
        many.daemon_mean_ms / ((one.daemon_mean_ms + one_again.daemon_mean_ms) / 2.0)
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {load}");
    println!("(section took {:.0?})", started.elapsed());
}
