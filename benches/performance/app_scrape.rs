//! Benchmark 8.2: one release daemon scraping 100 application metrics endpoints (5 pools each,
//! a few hundred series per endpoint like a real service) every second: its CPU and resident
//! memory. The endpoints are real HTTP servers ([`crate::app_server`]) in this process.

use std::time::{Duration, Instant};

use crate::app_server::{AppServer, Apps};
use crate::common::Poolwatch;
use crate::daemon_rss::{cpu_seconds, read_mem, sum_samples};
use crate::stats::Summary;

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The applications served.
    pub apps: Apps,
    /// Every target's interval.
    pub interval: Duration,
    /// Running time before the window (connections opened, allocator settled).
    pub warm_up: Duration,
    /// How long CPU and memory are measured.
    pub window: Duration,
}

/// The daemon's config: one `app_metrics` target per application.
fn config(server: &AppServer, plan: &Plan) -> String {
    let mut config = String::from("[http]\nlisten = \"127.0.0.1:0\"\n\n");
    for n in 0..plan.apps.count {
        config.push_str(&format!(
            "[[targets]]\nname = \"app{n}\"\ntype = \"app_metrics\"\nurl = \"{}\"\n\
             preset = \"{}\"\ninterval = \"{}ms\"\n\n",
            server.url(&format!("/app/{n}/metrics")),
            Apps::library(n).preset(),
            plan.interval.as_millis()
        ));
    }
    config
}

/// Runs the benchmark and prints its results.
pub async fn run(plan: Plan) {
    let apps = plan.apps;
    println!(
        "\n### 8.2 {} application endpoints with {} pools each, scraped every {} ms (issue 7)\n",
        apps.count,
        apps.pools,
        plan.interval.as_millis()
    );
    let started = Instant::now();
    let server = AppServer::start(apps).await;
    let (bytes0, series0) = server.size_of(0);
    let (bytes1, series1) = server.size_of(1);
    let daemon = Poolwatch::start(&config(&server, &plan)).await;
    let pid = daemon.pid();
    let at_listen = read_mem(pid).unwrap_or_default();
    let pools_wanted = (apps.count * apps.pools) as f64;
    let up = crate::common::poll_until(Duration::from_secs(30), || async {
        let samples = daemon.metrics().await.ok()?;
        let up = sum_samples(&samples, "poolwatch_target_up") as usize == apps.count;
        let pools = samples
            .iter()
            .filter(|s| s.name == "poolwatch_pool_capacity")
            .count() as f64;
        (up && pools == pools_wanted).then_some(())
    })
    .await;
    assert!(
        up.is_some(),
        "not every target up with its pools\n{}",
        daemon.logs()
    );
    tokio::time::sleep(plan.warm_up).await;
    let before = daemon.metrics().await.expect("metrics");
    let cpu_before = cpu_seconds(pid);
    let window = Instant::now();
    let mut rss = Vec::new();
    let mut timeline = Vec::new();
    while window.elapsed() < plan.window {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(m) = read_mem(pid) {
            rss.push(m.rss as f64 / 1024.0);
            timeline.push((window.elapsed(), m));
        }
    }
    let elapsed = window.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let after = daemon.metrics().await.expect("metrics");
    let end = read_mem(pid).unwrap_or_default();
    let delta = |name: &str| sum_samples(&after, name) - sum_samples(&before, name);
    let polls = delta("poolwatch_poll_duration_seconds_count");
    let poll_mean = delta("poolwatch_poll_duration_seconds_sum") / polls;
    let errors = sum_samples(&after, "poolwatch_poll_errors_total");
    let pools = after
        .iter()
        .filter(|s| s.name == "poolwatch_pool_capacity")
        .count();
    let rss = Summary::new(rss);
    let quarter = (timeline.len() / 4).max(1);
    let over_time: Vec<String> = timeline
        .iter()
        .step_by(quarter)
        .chain(timeline.last())
        .map(|(t, m)| format!("{:.0} s: {:.1}", t.as_secs_f64(), m.rss as f64 / 1024.0))
        .collect();
    // Each pool's history is about 91 slots (`store::history`: 90 per window, and the one the
    // window's edge cuts), reached after the default 15-minute window.
    let slot = std::mem::size_of::<poolwatch::store::trend::Slot>();
    let history_mb = pools as f64 * 91.0 * slot as f64 / (1 << 20) as f64;
    let core = 100.0 * cpu / elapsed;
    let mb = |kb: u64| kb as f64 / 1024.0;
    println!("binary: {}", crate::common::poolwatch::BINARY);
    println!(
        "endpoints: hyper in the benchmark process, keep-alive; even applications Go \
         `database/sql` ({series0} series, {bytes0} bytes), odd ones HikariCP ({series1} series, \
         {bytes1} bytes); numbers change every second"
    );
    println!(
        "warm-up {:.0?} after all {} targets were up with {pools} pools; window {elapsed:.1} s\n",
        plan.warm_up, apps.count
    );
    println!("| measure | value |\n|---|---|");
    println!(
        "| scrapes in the window | {polls:.0} ({:.1}/s, due {:.0}/s); poll errors since start: {errors:.0} |",
        polls / elapsed,
        apps.count as f64 / plan.interval.as_secs_f64()
    );
    println!(
        "| mean scrape (fetch + parse + map), daemon's histogram | {:.3} ms |",
        poll_mean * 1e3
    );
    println!(
        "| connections the endpoints accepted since the start | {} ({:.2} per target) |",
        server.accepted(),
        server.accepted() as f64 / apps.count as f64
    );
    println!("| daemon CPU | {cpu:.2} s in {elapsed:.1} s = {core:.2} % of one core |");
    println!("| VmRSS over the window, MB | {rss} |");
    println!(
        "| VmRSS by time in the window, MB | {} |",
        over_time.join(", ")
    );
    println!(
        "| VmRSS after `listening on` / end; VmHWM | {:.1} / {:.1} MB; {:.1} MB |",
        mb(at_listen.rss),
        mb(end.rss),
        mb(end.hwm)
    );
    println!(
        "\nPool history at its bound (15 minutes: {pools} pools × 91 slots × {slot} B): \
         {history_mb:.1} MB, of which about {:.1} MB were held at the end of this window.",
        history_mb * ((plan.warm_up + plan.window).as_secs_f64() / 900.0).min(1.0)
    );
    let verdict = |met: bool| if met { "MET" } else { "MISSED" };
    println!(
        "\nTarget \"under 5 % of one core\": **{}**; \"under 30 MB resident\" (VmHWM): **{}**.",
        verdict(core < 5.0),
        verdict(mb(end.hwm) < 30.0)
    );
    drop(daemon);
    drop(server);
    println!("(section took {:.0?})", started.elapsed());
}
