//! Benchmark 8.4: hostile inputs are refused within their caps. A 100 MB push body (declared,
//! and chunked without a length) against the release daemon; an application endpoint serving
//! 100 MB (declared, and chunked), 1,000,000 series, and a 1 MB label value. For each: how long
//! the refusal takes, and the daemon's resident memory before and after taking them for a while.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use poolwatch::source::app_metrics::{config::AppMetricsSettings, fetch::Scraper, to_poll_data};
use poolwatch::source::target::SourceSettings;

use crate::app_server::{AppServer, Apps, HUGE_BYTES};
use crate::common::Poolwatch;
use crate::daemon_rss::{read_mem, sum_samples, Mem};
use crate::stats::Summary;

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Refusals timed per hostile input.
    pub rounds: usize,
    /// How long the daemon scrapes the hostile endpoints (every second), a quarter per endpoint.
    pub exposure: Duration,
}

/// The hostile endpoints of [`AppServer`] and what each one is.
const ENDPOINTS: [(&str, &str); 4] = [
    ("/huge", "100 MB body, Content-Length given"),
    ("/huge-chunked", "100 MB body, chunked (no length)"),
    ("/million", "1,000,000 series (12 MB)"),
    ("/long-label", "one 1 MB label value"),
];

/// Posts `HUGE_BYTES` to `/api/v1/pools` on a raw connection, writing while it reads; returns
/// the time to the answer's status line, the status and how many body bytes had been written
/// (handed to the kernel) by then.
async fn huge_push(addr: std::net::SocketAddr, chunked: bool) -> (Duration, String, usize) {
    let sock = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = sock.into_split();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {HUGE_BYTES}")
    };
    let head = format!(
        "POST /api/v1/pools HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    );
    let started = Instant::now();
    let written = Arc::new(AtomicUsize::new(0));
    let count = written.clone();
    let writer = tokio::spawn(async move {
        let chunk = vec![b' '; 64 << 10];
        if wr.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        while count.load(Ordering::Relaxed) < HUGE_BYTES {
            let ok = if chunked {
                let size = format!("{:x}\r\n", chunk.len());
                wr.write_all(size.as_bytes()).await.is_ok()
                    && wr.write_all(&chunk).await.is_ok()
                    && wr.write_all(b"\r\n").await.is_ok()
            } else {
                wr.write_all(&chunk).await.is_ok()
            };
            if !ok {
                break;
            }
            count.fetch_add(chunk.len(), Ordering::Relaxed);
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let took = started.elapsed();
    let sent = written.load(Ordering::Relaxed);
    writer.abort();
    let status = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("no answer")
        .to_string();
    (took, status, sent)
}

/// The settings of an `app_metrics` target scraping `url` with the default caps.
fn settings(url: &str) -> AppMetricsSettings {
    let src = format!(
        "[[targets]]\nname = \"hostile\"\ntype = \"app_metrics\"\nurl = \"{url}\"\npreset = \"go_sql\"\n"
    );
    let config =
        poolwatch::settings::parse(std::path::Path::new("bench.toml"), &src).expect("valid config");
    match &config.targets[0].source {
        SourceSettings::AppMetrics(s) => (**s).clone(),
        _ => unreachable!("an app_metrics target"),
    }
}

/// Scrapes `url` once in-process with the daemon's code (fetch, then parse and map): the time to
/// the refusal and its message.
async fn refuse_scrape(url: &str) -> (Duration, String) {
    let s = settings(url);
    let mut scraper = Scraper::new(&s).expect("client");
    let started = Instant::now();
    let outcome = match scraper.get(&s).await {
        Ok(answer) => to_poll_data(&s, &answer.body).map(|_| ()),
        Err(e) => Err(e),
    };
    let took = started.elapsed();
    let message = match outcome {
        Ok(()) => "ACCEPTED (not refused)".to_string(),
        Err(e) => format!("{}: {}", e.class.as_str(), e.message),
    };
    (took, message)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn mem_row(what: &str, m: Mem) {
    println!("| {what} | {:.1} | {:.1} |", mb(m.rss), mb(m.hwm));
}

/// Runs the benchmark and prints its results.
pub async fn run(plan: Plan) {
    println!("\n### 8.4 Hostile inputs refused within their caps (issue 7)\n");
    let started = Instant::now();
    let server = AppServer::start(Apps {
        count: 1,
        pools: 5,
        routes: 20,
    })
    .await;
    let base = "[http]\nlisten = \"127.0.0.1:0\"\n\n\
                [[targets]]\nname = \"pushed\"\ntype = \"push\"\n\n";
    let normal = format!(
        "[[targets]]\nname = \"app\"\ntype = \"app_metrics\"\nurl = \"{}\"\npreset = \"go_sql\"\n\
         interval = \"1s\"\n\n",
        server.url("/app/0/metrics")
    );
    let daemon = Poolwatch::start(&format!("{base}{normal}")).await;
    let pid = daemon.pid();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = read_mem(pid).unwrap_or_default();

    println!("Refusal times:\n");
    println!(
        "Push: a raw HTTP/1.1 connection to the release daemon (`http.max_body_bytes` 64 KiB) \
         writes the body while reading the answer. Scrape: the daemon's own scrape code \
         (`fetch::Scraper::get`, then `to_poll_data`) in this process, default caps (16 MiB body, \
         64 KiB line, 200,000 series, 4 KiB label value). {} rounds each.\n",
        plan.rounds
    );
    println!("| input | refused as | time to refuse, ms | body written before the answer |");
    println!("|---|---|---|---|");
    for (chunked, what) in [
        (false, "push, 100 MB, Content-Length"),
        (true, "push, 100 MB, chunked"),
    ] {
        let mut times = Vec::new();
        let mut last = (String::new(), 0);
        for _ in 0..plan.rounds {
            let (took, status, sent) = huge_push(daemon.addr(), chunked).await;
            times.push(took);
            last = (status, sent);
        }
        println!(
            "| {what} | `{}` | {} | {} KiB |",
            last.0,
            Summary::of_durations_ms(&times),
            last.1 >> 10
        );
    }
    for (path, what) in ENDPOINTS {
        let mut times = Vec::new();
        let mut message = String::new();
        for _ in 0..plan.rounds {
            let (took, m) = refuse_scrape(&server.url(path)).await;
            times.push(took);
            message = m;
        }
        println!(
            "| scrape, {what} | {} | {} | |",
            message.replace('|', "\\|"),
            Summary::of_durations_ms(&times)
        );
    }
    let after_pushes = read_mem(pid).unwrap_or_default();

    // The hostile targets join one by one (a reload each), each scraped every second for a
    // share of the exposure, so that each one's cost shows in the memory it adds.
    let mut hostile = String::new();
    let mut steps = Vec::new();
    for (i, (path, what)) in ENDPOINTS.iter().enumerate() {
        hostile.push_str(&format!(
            "[[targets]]\nname = \"hostile{i}\"\ntype = \"app_metrics\"\nurl = \"{}\"\n\
             preset = \"go_sql\"\ninterval = \"1s\"\nreconnect_max_backoff = \"1s\"\n\n",
            server.url(path)
        ));
        daemon.config().write(&format!("{base}{normal}{hostile}"));
        daemon.sighup();
        tokio::time::sleep(plan.exposure / ENDPOINTS.len() as u32).await;
        steps.push((*what, read_mem(pid).unwrap_or_default()));
    }
    let metrics = daemon.metrics().await.expect("metrics");
    let errors: Vec<String> = (0..ENDPOINTS.len())
        .map(|i| {
            let n: f64 = metrics
                .iter()
                .filter(|s| s.name == "poolwatch_poll_errors_total")
                .filter(|s| {
                    s.labels.get("target").map(String::as_str) == Some(&format!("hostile{i}"))
                })
                .map(|s| s.value)
                .sum();
            format!("{n:.0}")
        })
        .collect();
    let up = sum_samples(&metrics, "poolwatch_target_up");
    let alive = daemon.try_get("/healthz").await.is_ok();
    daemon.config().write(&format!("{base}{normal}"));
    daemon.sighup();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = read_mem(pid).unwrap_or_default();

    println!("\nThe daemon's memory:\n");
    println!(
        "The hostile endpoints join one by one, each scraped every second for {:.1?} before the \
         next joins (all of them keep being scraped).\n",
        plan.exposure / ENDPOINTS.len() as u32
    );
    println!("| moment | VmRSS MB | VmHWM MB |\n|---|---:|---:|");
    mem_row(
        "settled (1 app target, 1 push target, 3 s after start)",
        settled,
    );
    mem_row(
        &format!("after the {} refused 100 MB pushes", 2 * plan.rounds),
        after_pushes,
    );
    for (what, m) in &steps {
        mem_row(&format!("+ scraping: {what}"), *m);
    }
    mem_row(
        "3 s after the hostile targets were removed by a reload",
        after,
    );
    println!(
        "\nFailed polls per hostile target (`poolwatch_poll_errors_total`, in the order above): \
         {}; targets up at the end: {up:.0} of {} (the normal app target and the push target); \
         daemon alive: {alive}.",
        errors.join(" / "),
        ENDPOINTS.len() + 2
    );
    println!(
        "Growth over the settled daemon: VmRSS {:+.1} MB after the pushes, {:+.1} MB with every \
         hostile endpoint scraped, {:+.1} MB after their removal; peak (VmHWM) {:.1} MB.",
        mb(after_pushes.rss) - mb(settled.rss),
        mb(steps.last().map_or(0, |s| s.1.rss)) - mb(settled.rss),
        mb(after.rss) - mb(settled.rss),
        mb(after.hwm)
    );
    println!("(section took {:.0?})", started.elapsed());
}
