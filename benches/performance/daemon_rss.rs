//! Benchmark 2: resident memory of `poolwatch run` watching 10 PostgreSQL targets every 100 ms,
//! and 10 PostgreSQL plus 10 PgBouncer targets (one PgBouncer in front of each cluster) every 1 s.

use std::time::{Duration, Instant};

use crate::clients::{self, PASSWORD};
use crate::common::metrics::Sample;
use crate::common::pgbouncer::{PgBouncer, PgBouncerOptions};
use crate::common::{PgCluster, PgOptions, Poolwatch, Receiver};
use crate::stats::Summary;

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// PostgreSQL targets (clusters).
    pub targets: usize,
    /// PgBouncer targets: one PgBouncer in front of each of the first `bouncers` clusters.
    pub bouncers: usize,
    /// Every target's interval.
    pub interval: Duration,
    /// How long memory is sampled once every target is up.
    pub duration: Duration,
}

/// Fields of `/proc/PID/status`, in kB.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mem {
    pub(crate) rss: u64,
    pub(crate) hwm: u64,
    anon: u64,
    file: u64,
    threads: u64,
}

pub(crate) fn read_mem(pid: u32) -> Option<Mem> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(Mem {
        rss: field("VmRSS:"),
        hwm: field("VmHWM:"),
        anon: field("RssAnon:"),
        file: field("RssFile:"),
        threads: field("Threads:"),
    })
}

/// User plus system CPU time of `pid` in seconds (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After "pid (comm) ", field 3 (state) is index 0, so utime (14) is index 11.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

pub fn sum_samples(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        // A fold from +0.0: `sum()` of no samples is -0.0, printed as "-0".
        .fold(0.0, |total, s| total + s.value)
}

/// Runs the benchmark and prints its results.
pub async fn run(plan: Plan) {
    let ms = plan.interval.as_millis();
    println!(
        "\n## 2. Resident memory of `poolwatch run` with {} PostgreSQL and {} PgBouncer targets at \
         interval = \"{ms}ms\"\n",
        plan.targets, plan.bouncers
    );
    let started = Instant::now();
    let starts = (0..plan.targets).map(|_| PgCluster::start(PgOptions::default()));
    let clusters = futures_util::future::join_all(starts).await;
    let mut holds = Vec::new();
    for pg in &clusters {
        clients::prepare(pg).await;
        holds.push(
            pg.hold_connections("app", 5, "web")
                .await
                .expect("5 idle clients"),
        );
    }
    let mut bouncers = Vec::new();
    let mut bouncer_clients = Vec::new();
    for pg in clusters.iter().take(plan.bouncers) {
        let options = PgBouncerOptions {
            users: vec!["app".into()],
            stats_users: vec!["poolwatch".into()],
            ..PgBouncerOptions::default()
        };
        let bouncer = PgBouncer::start(pg, options).await;
        bouncer_clients.push(bouncer.hold_clients("app", "postgres", 3));
        bouncers.push(bouncer);
    }
    println!(
        "started {} clusters (5 idle clients each) and {} PgBouncers (3 clients each) in {:.1?}",
        clusters.len(),
        bouncers.len(),
        started.elapsed()
    );
    let receiver = Receiver::start().await;
    let mut config = String::from("[http]\nlisten = \"127.0.0.1:0\"\n\n");
    for (i, pg) in clusters.iter().enumerate() {
        // sslmode left at its default ("prefer"): the TLS client set-up is part of the footprint.
        config.push_str(&format!(
            "[[targets]]\nname = \"db{i}\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"poolwatch\"\n\
             password = \"{PASSWORD}\"\ninterval = \"{ms}ms\"\n\n",
            pg.port()
        ));
    }
    for (i, bouncer) in bouncers.iter().enumerate() {
        config.push_str(&format!(
            "[[targets]]\nname = \"bouncer{i}\"\ntype = \"pgbouncer\"\nhost = \"127.0.0.1\"\n\
             port = {}\nuser = \"poolwatch\"\npassword = \"{PASSWORD}\"\ninterval = \"{ms}ms\"\n\n",
            bouncer.port()
        ));
    }
    let all = plan.targets + bouncers.len();
    config.push_str(&format!(
        "[[receivers]]\nname = \"oncall\"\n[[receivers.integrations]]\ntype = \"webhook\"\nurl = \"{}\"\n",
        receiver.url("/hook")
    ));
    let daemon = Poolwatch::start(&config).await;
    let pid = daemon.pid();
    let at_listen = read_mem(pid).unwrap_or_default();
    let up = crate::common::poll_until(Duration::from_secs(30), || async {
        let samples = daemon.metrics().await.ok()?;
        (sum_samples(&samples, "poolwatch_target_up") as usize == all).then_some(())
    })
    .await;
    assert!(up.is_some(), "not every target up\n{}", daemon.logs());
    let before = daemon.metrics().await.expect("metrics");
    let polls_before = sum_samples(&before, "poolwatch_poll_duration_seconds_count");
    let poll_seconds_before = sum_samples(&before, "poolwatch_poll_duration_seconds_sum");
    let cpu_before = cpu_seconds(pid);
    let window = Instant::now();
    let mut samples = Vec::new();
    let mut scrapes = 0;
    let mut next_scrape = Instant::now();
    while window.elapsed() < plan.duration {
        if let Some(m) = read_mem(pid) {
            samples.push((window.elapsed(), m));
        }
        // A scrape per second, as an eager Prometheus would.
        if Instant::now() >= next_scrape {
            daemon.metrics().await.expect("scrape");
            scrapes += 1;
            next_scrape += Duration::from_secs(1);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = window.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let after = daemon.metrics().await.expect("metrics");
    let polls = sum_samples(&after, "poolwatch_poll_duration_seconds_count") - polls_before;
    let delta = |name: &str, prefix: &str| {
        let of = |samples: &[Sample]| -> f64 {
            samples
                .iter()
                .filter(|s| s.name == name)
                .filter(|s| {
                    s.labels
                        .get("target")
                        .is_some_and(|t| t.starts_with(prefix))
                })
                .fold(0.0, |total, s| total + s.value)
        };
        of(&after) - of(&before)
    };
    let errors = sum_samples(&after, "poolwatch_poll_errors_total");
    let poll_time =
        (sum_samples(&after, "poolwatch_poll_duration_seconds_sum") - poll_seconds_before) / polls;
    let last = samples.last().map(|s| s.1).unwrap_or_default();
    let mb = |kb: u64| kb as f64 / 1024.0;
    let rss = Summary::new(samples.iter().map(|(_, m)| mb(m.rss)).collect());

    println!("binary: {}", crate::common::poolwatch::BINARY);
    println!(
        "sampled /proc/{pid}/status every 250 ms for {elapsed:.1} s after all targets were up; \
         {scrapes} scrapes of /metrics meanwhile"
    );
    println!("\n| moment | VmRSS MB | RssAnon MB | RssFile MB | VmHWM MB | threads |");
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |what: &str, m: Mem| {
        println!(
            "| {what} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            mb(m.rss),
            mb(m.anon),
            mb(m.file),
            mb(m.hwm),
            m.threads
        )
    };
    row("after `listening on`", at_listen);
    let step = (samples.len() / 4).max(1);
    for (t, m) in samples.iter().step_by(step) {
        row(&format!("t = {:.0} s", t.as_secs_f64()), *m);
    }
    row("end", last);
    println!(
        "\n- VmRSS over the window (MB): {rss}\n- VmHWM at the end: {:.1} MB; target < 20 MB: {}",
        mb(last.hwm),
        if mb(last.hwm) < 20.0 { "MET" } else { "MISSED" }
    );
    println!(
        "- {polls:.0} polls in {elapsed:.1} s ({:.1}/s, expected {}/s), {errors:.0} poll errors in total, \
         mean poll duration in the window {:.3} ms (daemon's histogram)",
        polls / elapsed,
        all as f64 / plan.interval.as_secs_f64(),
        poll_time * 1e3
    );
    println!(
        "- in the window, by target type: reports (poolwatch_target_reports_total) {:.0} PostgreSQL \
         / {:.0} PgBouncer; polls counted by the histogram {:.0} / {:.0}",
        delta("poolwatch_target_reports_total", "db"),
        delta("poolwatch_target_reports_total", "bouncer"),
        delta("poolwatch_poll_duration_seconds_count", "db"),
        delta("poolwatch_poll_duration_seconds_count", "bouncer")
    );
    println!(
        "- CPU of the daemon over the window: {cpu:.2} s = {:.1}% of one core",
        cpu / elapsed * 100.0
    );
    drop(daemon);
    drop(bouncer_clients);
    drop(bouncers);
    drop(holds);
    drop(clusters);
    println!("(section took {:.0?})", started.elapsed());
}
