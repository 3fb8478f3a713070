//! Benchmark 6: what `/metrics` costs with 500 role pools. A cluster has 500 login roles, each
//! with a connection limit (so each is a pool) and each holding one session; the daemon polls it
//! every second. The daemon's CPU is measured over windows without scrapes and with scrapes at
//! 1/s and 10/s, plain and with `Accept-Encoding: gzip`: the exposition is rendered once per
//! report, so a scrape should cost only assembling and (maybe) compressing it. Then the same
//! steps timed in this process on the library: poll, store, render a target's piece (once per
//! report), assemble the exposition and gzip it (once per scrape).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::clients::{self, PASSWORD};
use crate::common::metrics::parse_exposition;
use crate::common::{PgCluster, PgOptions, Poolwatch};
use crate::daemon_rss::{cpu_seconds, sum_samples};
use crate::stats::Summary;

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Roles, each a pool holding one session.
    pub roles: usize,
    /// Length of each measuring window.
    pub window: Duration,
}

/// One plain HTTP/1.1 GET of `/metrics`: (status line, headers, body bytes as sent).
async fn raw_get(daemon: &Poolwatch, gzip: bool) -> (String, String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(daemon.addr())
        .await
        .expect("connect to /metrics");
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\n{}Connection: close\r\n\r\n",
        daemon.addr(),
        if gzip {
            "Accept-Encoding: gzip\r\n"
        } else {
            ""
        }
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send GET");
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.expect("read answer");
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&bytes[..split]).to_string();
    let body = bytes[split + 4..].to_vec();
    let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    (status.to_string(), headers.to_ascii_lowercase(), body)
}

/// The body's size as sent: `content-length`, else the body bytes (chunk framing included).
fn body_size(headers: &str, body: &[u8]) -> usize {
    headers
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(body.len())
}

/// Daemon CPU over one window while scraping `per_second` times a second (0: no scrapes).
async fn window(
    daemon: &Poolwatch,
    per_second: u32,
    gzip: bool,
    length: Duration,
) -> (f64, usize, Summary) {
    let pid = daemon.pid();
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let mut scrapes = 0;
    let mut latencies = Vec::new();
    if per_second == 0 {
        tokio::time::sleep(length).await;
    } else {
        let step = Duration::from_secs(1) / per_second;
        let mut next = started;
        while started.elapsed() < length {
            let t = Instant::now();
            let (status, _, _) = raw_get(daemon, gzip).await;
            assert!(status.contains(" 200 "), "scrape: {status}");
            latencies.push(t.elapsed());
            scrapes += 1;
            next += step;
            tokio::time::sleep_until(next.into()).await;
        }
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    let elapsed = started.elapsed().as_secs_f64();
    (
        cpu / elapsed * 100.0,
        scrapes,
        Summary::of_durations_ms(&latencies),
    )
}

/// Creates the roles `r001`.. (connection limit 5 each) and opens one session per role.
pub(crate) async fn roles_with_sessions(pg: &PgCluster, n: usize) -> Vec<tokio_postgres::Client> {
    pg.exec(&format!(
        "DO $$ BEGIN FOR i IN 1..{n} LOOP EXECUTE format('CREATE ROLE %I LOGIN CONNECTION LIMIT 5 \
         PASSWORD %L', 'r' || lpad(i::text, 3, '0'), '{PASSWORD}'); END LOOP; END $$"
    ))
    .await;
    let gate = Arc::new(Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..=n {
        let url = pg.url_with_password(&format!("r{i:03}"), PASSWORD, "postgres");
        let gate = Arc::clone(&gate);
        tasks.spawn(async move {
            let _permit = gate.acquire().await.expect("gate");
            crate::common::pg::connect(&url)
                .await
                .expect("role session")
        });
    }
    let mut sessions = Vec::new();
    while let Some(client) = tasks.join_next().await {
        sessions.push(client.expect("session task"));
    }
    sessions
}

/// Times each step of a report and of a scrape in this process, `rounds` times, alternated.
async fn in_process(pg: &PgCluster, rounds: usize) {
    use poolwatch::exporter::Exposition;
    use poolwatch::model::TargetReport;
    use std::io::Write;
    let settings = crate::poll_cost::target_settings("db", pg, "");
    let conn = poolwatch::source::postgres::connect(&settings, None)
        .await
        .unwrap_or_else(|e| panic!("connect: {}", e.message));
    let store = poolwatch::store::Store::new(["db"]);
    let exposition = Exposition::default();
    let registry = prometheus::Registry::new();
    let mut steps: [Vec<Duration>; 5] = Default::default();
    let mut sizes = (0, 0);
    for _ in 0..rounds {
        let t = Instant::now();
        let data = poolwatch::source::postgres::poll(&conn, &settings)
            .await
            .unwrap_or_else(|e| panic!("poll: {}", e.message));
        steps[0].push(t.elapsed());
        let report = TargetReport {
            target: "db".into(),
            at: std::time::SystemTime::now(),
            duration: t.elapsed(),
            outcome: Ok(std::sync::Arc::new(data)),
        };
        let t = Instant::now();
        let entry = store.apply(&report).expect("entry");
        steps[1].push(t.elapsed());
        let t = Instant::now();
        exposition.set_target("db", &entry);
        steps[2].push(t.elapsed());
        let t = Instant::now();
        let text = exposition.render(&registry);
        steps[3].push(t.elapsed());
        let t = Instant::now();
        // The daemon's level (`Compression::fast`, src/http/exposition.rs).
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).expect("gzip");
        let gz = enc.finish().expect("gzip");
        steps[4].push(t.elapsed());
        sizes = (text.len(), gz.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "\n### In this process (library), {rounds} rounds: ms per step, min / p50 / p95\n\n\
         | step | when | min | p50 | p95 |\n|---|---|---:|---:|---:|"
    );
    let names = [
        ("poll (round trip + parsing into 501 pools)", "per report"),
        ("store: apply the report", "per report"),
        ("exporter: take the target's entry", "per report"),
        (
            "exporter: render the target's piece and assemble",
            "per scrape",
        ),
        ("gzip the exposition", "per scrape with gzip"),
    ];
    for ((name, when), times) in names.iter().zip(&steps) {
        let s = Summary::of_durations_ms(times);
        println!(
            "| {name} | {when} | {:.3} | {:.3} | {:.3} |",
            s.min(),
            s.median(),
            s.pct(95.0)
        );
    }
    println!(
        "\n- exposition of this process: {} bytes, {} gzipped",
        sizes.0, sizes.1
    );
}

/// Runs the benchmark and prints its results.
pub async fn run(plan: Plan) {
    println!(
        "\n## 6. `/metrics` with {} role pools: CPU per scrape and bytes per scrape\n",
        plan.roles
    );
    let started = Instant::now();
    let pg = PgCluster::start(PgOptions {
        max_connections: plan.roles as u32 + 30,
        ..PgOptions::default()
    })
    .await;
    clients::prepare(&pg).await;
    let sessions = roles_with_sessions(&pg, plan.roles).await;
    println!(
        "{} roles with CONNECTION LIMIT 5, one session each, opened in {:.1?}",
        sessions.len(),
        started.elapsed()
    );
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n[[targets]]\nname = \"db\"\nhost = \"127.0.0.1\"\n\
         port = {}\nuser = \"poolwatch\"\npassword = \"{PASSWORD}\"\nsslmode = \"disable\"\n\
         interval = \"1s\"\n",
        pg.port()
    );
    let daemon = Poolwatch::start(&config).await;
    let all_pools = crate::common::poll_until(Duration::from_secs(30), || async {
        let samples = daemon.metrics().await.ok()?;
        let roles = samples
            .iter()
            .filter(|s| {
                s.name == "poolwatch_pool_in_use"
                    && s.labels.get("kind").map(String::as_str) == Some("role")
            })
            .count();
        (roles >= plan.roles).then_some(samples)
    })
    .await
    .unwrap_or_else(|| panic!("not every role pool exported\n{}", daemon.logs()));

    // Bytes per scrape, plain and gzip, and what the exposition holds.
    let (_, plain_headers, plain_body) = raw_get(&daemon, false).await;
    let (_, gzip_headers, gzip_body) = raw_get(&daemon, true).await;
    let plain = body_size(&plain_headers, &plain_body);
    let gzipped = body_size(&gzip_headers, &gzip_body);
    let text = String::from_utf8_lossy(&plain_body).to_string();
    let samples = parse_exposition(&text).expect("exposition parses");
    println!(
        "- bytes per scrape: {plain} plain, {gzipped} with `Accept-Encoding: gzip` (content-encoding gzip: {}); \
         ratio {:.1}x; {} series in the exposition",
        gzip_headers.contains("content-encoding: gzip"),
        plain as f64 / gzipped.max(1) as f64,
        samples.len()
    );
    let role_pools = all_pools
        .iter()
        .filter(|s| {
            s.name == "poolwatch_pool_in_use"
                && s.labels.get("kind").map(String::as_str) == Some("role")
        })
        .count();
    let mut families: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in &samples {
        *families.entry(s.name.as_str()).or_default() += 1;
    }
    let errors: Vec<_> = samples
        .iter()
        .filter(|s| s.name == "poolwatch_poll_errors_total")
        .collect();
    println!(
        "- role pools exported: {role_pools}; series per family: {families:?}\n\
         - `poolwatch_poll_errors_total` series for the target (it never failed): {} ({} of them zero)",
        errors.len(),
        errors.iter().filter(|s| s.value == 0.0).count()
    );

    println!(
        "\n| window ({} s each) | scrapes | daemon CPU % of a core | scrape latency ms p50 / max |",
        plan.window.as_secs()
    );
    println!("|---|---:|---:|---|");
    let plan_windows: [(&str, u32, bool); 6] = [
        ("no scrapes", 0, false),
        ("1 scrape/s, plain", 1, false),
        ("1 scrape/s, gzip", 1, true),
        ("10 scrapes/s, plain", 10, false),
        ("10 scrapes/s, gzip", 10, true),
        ("no scrapes, again", 0, false),
    ];
    let mut results = Vec::new();
    for (label, rate, gzip) in plan_windows {
        let (cpu, scrapes, lat) = window(&daemon, rate, gzip, plan.window).await;
        println!(
            "| {label} | {scrapes} | {cpu:.2} | {} |",
            if scrapes > 0 {
                format!("{:.2} / {:.2}", lat.median(), lat.max())
            } else {
                "-".into()
            }
        );
        results.push((rate, gzip, cpu));
    }
    let idle = (results[0].2 + results[5].2) / 2.0;
    let per_scrape = |rate: u32, gzip: bool| {
        let cpu = results
            .iter()
            .find(|r| r.0 == rate && r.1 == gzip)
            .map_or(f64::NAN, |r| r.2);
        // % of a core = 10 ms of CPU per second; per scrape in ms.
        (cpu - idle) * 10.0 / f64::from(rate)
    };
    println!(
        "\n- CPU per scrape above the no-scrape windows (mean {idle:.2} % of a core): plain {:.2} ms \
         (10/s) and {:.2} ms (1/s); gzip {:.2} ms (10/s) and {:.2} ms (1/s)",
        per_scrape(10, false),
        per_scrape(1, false),
        per_scrape(10, true),
        per_scrape(1, true)
    );
    let polls = sum_samples(
        &daemon.metrics().await.expect("metrics"),
        "poolwatch_poll_duration_seconds_count",
    );
    println!(
        "- polls so far: {polls:.0}; load average at the end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    drop(daemon);
    in_process(&pg, 100).await;
    drop(sessions);
    println!("(section took {:.0?})", started.elapsed());
}
