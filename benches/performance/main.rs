//! poolwatch's performance benchmark: prints numbers, asserts no timings.
//!
//! ```text
//! cargo bench --bench performance                     # every section
//! cargo bench --bench performance -- poll rss         # some of: poll, rss, latency, spread,
//!                                                     # metrics, pgbouncer, predict, status, push,
//!                                                     # restart, scrape, parse, report,
//!                                                     # hostile
//! cargo bench --bench performance -- --quick          # smaller sample sizes
//! cargo bench --bench performance -- scrape --steady  # the scrape section for 16 minutes
//! ```
//!
//! Every section runs real PostgreSQL clusters started by the test harness (`tests/common`),
//! the real library or the real release binary, and a real webhook receiver; all of them are
//! stopped when the section ends (or when it panics). Results are printed as Markdown, ready
//! for `BENCHMARKS.md`.
//!
//! # Layout
//!
//! * [`poll_cost`] — one poll with 10 and 1,000 clients: client round trip, server time, protocol,
//!   and the same-run gain over the previous poll.
//! * [`daemon_rss`] — resident memory of `poolwatch run` with 10 targets at 100 ms, and with 10
//!   PostgreSQL plus 10 PgBouncer targets at 1 s.
//! * [`detection`] — pool full → firing webhook received: `for` 0 s and 2 s at intervals of
//!   250 ms and 1 s, then with the defaults only (interval and rules left out of the config).
//! * [`push_rate`] — 1,000 pushes per second on `POST /api/v1/pools`: latency, CPU, memory,
//!   against `GET /healthz` at the same rate in the same run.
//! * [`app_scrape`] — one daemon scraping 100 application endpoints (5 pools each) every
//!   second: CPU and resident memory.
//! * [`parse_cost`] — in-process: parsing (and mapping) a 10,000-series exposition.
//! * [`report_cost`] — in-process: the daemon's work per report of [`app_scrape`]'s
//!   applications outside fetching (parse and map, store, exporter).
//! * [`hostile`] — a 100 MB push, endpoints serving 100 MB, 1 M series, a 1 MB label value:
//!   time to refuse, the daemon's memory.
//! * [`app_server`] — real HTTP endpoints in this process playing applications (and hostile
//!   ones); [`exposition_text`] — what they serve.
//! * [`full_pool`] — the stage of [`detection`]: a cluster an application fills up, the daemon.
//! * [`spread`] — 50 targets at one interval: poll start offsets, poll duration vs 1 target.
//! * [`metrics_cost`] — `/metrics` with 500 role pools: CPU per scrape, bytes plain and gzip.
//! * [`bouncer`] — a PgBouncer poll with 10 and 500 pools: round trips, client time, sessions.
//! * [`clients`] — many client sessions in a mix of states; roles the sections share.
//! * [`evaluation`] — in-process, no server: `predict`, what `PoolExhaustionPredicted` adds to
//!   evaluating a report with 500 pools; `status`, rendering `GET /` with 100 pools, and its
//!   weight.
//! * [`restart`] — 1,000 firing alerts in 50 groups to 3 receivers, all unacknowledged:
//!   `kill -9`, restart, time to the first notification; the state file's size and write time.
//! * [`stats`] — medians and percentiles.
//! * [`wire`] — a recording TCP proxy that counts round trips and decodes protocol messages.

#[path = "../../tests/common/mod.rs"]
mod common;

mod app_scrape;
mod app_server;
mod bouncer;
mod clients;
mod daemon_rss;
mod detection;
mod evaluation;
mod exposition_text;
mod full_pool;
mod hostile;
mod metrics_cost;
mod parse_cost;
mod poll_cost;
mod push_rate;
mod report_cost;
mod restart;
mod spread;
mod stats;
mod wire;

use std::time::{Duration, Instant};

/// Raises the soft open-file limit to the hard one: the 1,000-client section holds over 1,000
/// sockets in this process.
fn raise_nofile() -> (libc::rlim_t, libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
    }
    (lim.rlim_cur, lim.rlim_max)
}

/// PostgreSQL server processes still running from clusters of this process.
fn leftover_servers() -> usize {
    let marker = format!(
        "{}{}-",
        common::pg::setup::CLUSTER_DIR_PREFIX,
        std::process::id()
    );
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&marker))
                .unwrap_or(false)
        })
        .count()
}

/// The applications of section 8.2 (scraped by a daemon) and 8.5 (their reports in-process).
const SCRAPED_APPS: app_server::Apps = app_server::Apps {
    count: 100,
    pools: 5,
    routes: 20,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo test --all-targets` runs this binary without `--bench`: do nothing then.
    if !args.iter().any(|a| a == "--bench") {
        println!("performance: a benchmark; run it with `cargo bench --bench performance`");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let steady = args.iter().any(|a| a == "--steady");
    let picked: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| picked.is_empty() || picked.contains(&name);
    let (soft, hard) = raise_nofile();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    println!("# poolwatch performance benchmark\n");
    println!(
        "- profile: {} (benchmarks build the library and the `poolwatch` binary in the bench profile, \
         which inherits [profile.release])",
        if cfg!(debug_assertions) {
            "debug assertions ON (not an optimised build)"
        } else {
            "release"
        }
    );
    println!(
        "- cores: {}, open-file limit of this process: {soft} (hard {hard})",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "- PostgreSQL {} from {}",
        common::pg::setup::major_version(),
        common::pg::setup::bin_dir().display()
    );
    let in_process = evaluation::Plan {
        rounds: if quick { 50 } else { 300 },
    };
    if wants("predict") {
        evaluation::run_predict(&in_process);
    }
    if wants("status") {
        evaluation::run_status(&in_process);
    }
    if wants("parse") {
        parse_cost::run(parse_cost::Plan {
            series: 10_000,
            rounds: if quick { 50 } else { 300 },
        });
    }
    if wants("report") {
        report_cost::run(report_cost::Plan {
            apps: SCRAPED_APPS,
            rounds: if quick { 30 } else { 150 },
            reports_per_scrape: 15,
        });
    }
    runtime.block_on(async {
        if wants("poll") {
            poll_cost::run(poll_cost::Plan {
                polls: if quick { 100 } else { 500 },
                explains: if quick { 30 } else { 100 },
                logged_polls: if quick { 20 } else { 100 },
                scaling_rounds: if quick { 10 } else { 40 },
            })
            .await;
        }
        if wants("rss") {
            let duration = Duration::from_secs(if quick { 8 } else { 20 });
            daemon_rss::run(daemon_rss::Plan {
                targets: 10,
                bouncers: 0,
                interval: Duration::from_millis(100),
                duration,
            })
            .await;
            daemon_rss::run(daemon_rss::Plan {
                targets: 10,
                bouncers: 10,
                interval: Duration::from_secs(1),
                duration,
            })
            .await;
        }
        if wants("push") {
            push_rate::run(push_rate::Plan {
                rate: 1000,
                duration: Duration::from_secs(if quick { 5 } else { 20 }),
                instances: 100,
                senders: 16,
            })
            .await;
        }
        if wants("scrape") {
            app_scrape::run(app_scrape::Plan {
                apps: SCRAPED_APPS,
                interval: Duration::from_secs(1),
                warm_up: Duration::from_secs(5),
                // `--steady`: past the 15 minutes of history every pool keeps by default, so
                // that memory is read at its steady state.
                window: Duration::from_secs(match (steady, quick) {
                    (true, _) => 16 * 60,
                    (false, true) => 20,
                    (false, false) => 30,
                }),
            })
            .await;
        }
        if wants("hostile") {
            hostile::run(hostile::Plan {
                rounds: if quick { 3 } else { 10 },
                exposure: Duration::from_secs(if quick { 10 } else { 20 }),
            })
            .await;
        }
        if wants("latency") {
            detection::run(detection::Plan {
                runs: if quick { 5 } else { 20 },
                default_for: !quick,
            })
            .await;
        }
        if wants("spread") {
            spread::run(spread::Plan {
                targets: 50,
                duration: Duration::from_secs(if quick { 8 } else { 20 }),
            })
            .await;
        }
        if wants("metrics") {
            metrics_cost::run(metrics_cost::Plan {
                roles: 500,
                window: Duration::from_secs(if quick { 8 } else { 20 }),
            })
            .await;
        }
        if wants("restart") {
            restart::run(restart::Plan {
                groups: 50,
                rules: 20,
                receivers: 3,
                runs: if quick { 3 } else { 10 },
                rounds: if quick { 20 } else { 100 },
            })
            .await;
        }
        if wants("pgbouncer") {
            bouncer::run(bouncer::Plan {
                polls: if quick { 100 } else { 400 },
            })
            .await;
        }
    });
    drop(runtime);
    let left = leftover_servers();
    println!(
        "\nTotal {:.0?}. Cleanup: {left} PostgreSQL process(es) of this run still running.",
        started.elapsed()
    );
}
