//! End-to-end: the HTTP port cannot starve the daemon.
//!
//! poolwatch starts under systemd's default soft open-file limit (1024) while 2,000 idle TCP
//! connections are held against its HTTP port (each one it closes is opened again a second
//! later, so the pressure lasts), and the server it watches fills up. The page must arrive
//! within the README's detection bound (interval + `for` + 100 ms), polling must keep its
//! cadence on its one connection, `/metrics` must answer, the alert state must be saved, and no
//! part of poolwatch may run out of descriptors. Two cases: the soft limit raised to a hard
//! limit of 4096 at start, and a hard limit of 1024 with `max_connections` set far above what
//! fits, so that the descriptor reserve alone protects the daemon.
//!
//! Measured numbers are printed (`cargo test --test e2e_http_limits -- --nocapture`).

mod common;

use common::metrics::find_sample;
use common::scenario::{create_monitor_role, MONITOR_PASSWORD, MONITOR_ROLE, WAIT};
use common::{poll_until, PgCluster, PgOptions, Poolwatch, Receiver, RecordedRequest, Sample};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Idle connections held against the HTTP port.
const FLOOD: usize = 2000;
/// How long a flood connection the server closed stays closed before it is opened again.
const REOPEN_PAUSE: Duration = Duration::from_secs(1);
/// The target's poll interval.
const INTERVAL: Duration = Duration::from_millis(500);
/// README, "Performance": detection ≤ interval + `for` + 100 ms, the 100 ms being one poll and
/// one webhook POST. The rule here has `for = "0s"`.
const BOUND: Duration = Duration::from_millis(500 + 100);
/// Slots left to applications: `max_connections` 14, 3 reserved for superusers, 1 taken by
/// poolwatch's own session.
const APP_SLOTS: usize = 10;
const APP: &str = "app";
const APP_PASSWORD: &str = "app-pw";
/// How long the flood is held once it is on: past the default `header_timeout` (5 s), so that
/// the slots also turn over by timeouts.
const HOLD: Duration = Duration::from_secs(8);

/// Pages when the server pool has no free slot, at once.
const RULE: &str = r#"
[[rules]]
name = "ServerFull"
metric = "free"
op = "<="
critical = 0
matchers = ['kind="server"']
summary = "{{target}}: no free connection slot"
"#;

/// Connections held against `addr` from a thread and runtime of their own (so that the test's
/// own timing does not queue behind them); each never sends a byte.
struct Flood {
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<FloodStats>,
}

#[derive(Default)]
struct FloodStats {
    /// Connections established, first ones and re-opened ones.
    opened: AtomicUsize,
    /// Connections poolwatch closed.
    closed: AtomicUsize,
    /// Failed connection attempts.
    failed: AtomicUsize,
    /// Clients that finished their first attempt.
    started: AtomicUsize,
}

impl Flood {
    fn start(addr: SocketAddr, n: usize) -> Flood {
        let (stop, stop_rx) = watch::channel(false);
        let stats = Arc::new(FloodStats::default());
        let shared = stats.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("flood runtime");
            runtime.block_on(async move {
                let clients: Vec<_> = (0..n)
                    .map(|_| tokio::spawn(hold(addr, shared.clone(), stop_rx.clone())))
                    .collect();
                for c in clients {
                    let _ = c.await;
                }
            });
        });
        Flood {
            stop,
            thread: Some(thread),
            stats,
        }
    }

    /// Waits until every client made its first attempt.
    async fn started(&self) {
        let all = poll_until(WAIT, || async {
            (self.stats.started.load(Ordering::Relaxed) >= FLOOD).then_some(())
        })
        .await;
        assert!(
            all.is_some(),
            "the flood's first connections did not finish"
        );
    }

    fn summary(&self) -> String {
        let s = &self.stats;
        format!(
            "opened {}, closed by poolwatch {}, failed attempts {}",
            s.opened.load(Ordering::Relaxed),
            s.closed.load(Ordering::Relaxed),
            s.failed.load(Ordering::Relaxed)
        )
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One client: connect, stay silent until poolwatch closes, pause, again; until `stop`.
async fn hold(addr: SocketAddr, stats: Arc<FloodStats>, mut stop: watch::Receiver<bool>) {
    let mut first = true;
    while !*stop.borrow() {
        let connected = tokio::select! {
            c = TcpStream::connect(addr) => c,
            _ = stop.changed() => break,
        };
        if first {
            stats.started.fetch_add(1, Ordering::Relaxed);
            first = false;
        }
        match connected {
            Ok(mut stream) => {
                stats.opened.fetch_add(1, Ordering::Relaxed);
                let mut buf = [0u8; 256];
                tokio::select! {
                    _ = drain(&mut stream, &mut buf) => { stats.closed.fetch_add(1, Ordering::Relaxed); }
                    _ = stop.changed() => break,
                }
            }
            Err(_) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(REOPEN_PAUSE) => {}
            _ = stop.changed() => break,
        }
    }
}

/// Reads until the peer closes.
async fn drain(stream: &mut TcpStream, buf: &mut [u8]) {
    while let Ok(n) = stream.read(buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Raises this test process's own soft open-file limit: it holds the flood's 2,000 sockets.
fn raise_own_limit() {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one rlimit through valid pointers.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl), 0);
        rl.rlim_cur = rl.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &rl), 0);
    }
    assert!(
        rl.rlim_cur >= (FLOOD + 1000) as u64,
        "this test needs an open-file limit of at least {} (hard limit {})",
        FLOOD + 1000,
        rl.rlim_max
    );
}

/// The soft and hard "Max open files" of process `pid`.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

/// The target polled every [`INTERVAL`], [`RULE`] alone, and a receiver with the default
/// retry settings (a delivery that fails waits 500 ms and more before its next attempt).
fn config(pg: &PgCluster, hook: &Receiver, state: &std::path::Path, http_extra: &str) -> String {
    format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n{http_extra}\n\n[alerting]\nbuiltin_rules = false\n\
         state_file = \"{state}\"\n\n[[targets]]\nname = \"db\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         user = \"{MONITOR_ROLE}\"\npassword = \"{MONITOR_PASSWORD}\"\nsslmode = \"disable\"\n\
         interval = \"{interval}ms\"\nconnect_timeout = \"3s\"\n\n{RULE}\n\
         [[receivers]]\nname = \"oncall\"\n[[receivers.integrations]]\ntype = \"webhook\"\nurl = \"{url}\"\n",
        state = state.display(),
        port = pg.port(),
        interval = INTERVAL.as_millis(),
        url = hook.url("/hook"),
    )
}

/// The two cases run one after the other: two floods at once would measure each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `/metrics` on a new connection each time, as a scraper without keep-alive.
async fn scrape(addr: SocketAddr) -> Result<(Vec<Sample>, Duration), String> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let response = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| format!("{e:?}"))?;
    if !status.is_success() {
        return Err(format!("/metrics answered {status}"));
    }
    Ok((common::parse_exposition(&body)?, started.elapsed()))
}

/// The one sample `name{labels}` of the last good scrape, if any.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    find_sample(samples, name, labels).ok()
}

fn closed(samples: &[Sample], reason: &str) -> Option<f64> {
    value(
        samples,
        "poolwatch_http_connections_closed_total",
        &[("reason", reason)],
    )
}

fn polls(samples: &[Sample]) -> Option<f64> {
    value(
        samples,
        "poolwatch_poll_duration_seconds_count",
        &[("target", "db")],
    )
}

fn fired(r: &RecordedRequest) -> bool {
    r.json.as_ref().is_some_and(|j| {
        j["status"] == "firing" && j["alerts"][0]["labels"]["alertname"] == "ServerFull"
    })
}

/// Scrapes of `/metrics` over the flood: how many failed, the slowest answer, the last samples.
#[derive(Default)]
struct Scrapes {
    made: usize,
    failed: Vec<String>,
    slowest: Duration,
    last: Vec<Sample>,
}

impl Scrapes {
    async fn one(&mut self, addr: SocketAddr) {
        self.made += 1;
        match scrape(addr).await {
            Ok((samples, took)) => {
                self.slowest = self.slowest.max(took);
                self.last = samples;
            }
            Err(e) => self.failed.push(e),
        }
    }
}

/// Runs the scene with poolwatch under `soft`/`hard`, `[http]` lines `http_extra`; prints what
/// was measured, then checks everything the daemon must keep doing.
async fn under_flood(soft: u64, hard: u64, http_extra: &str, want_limit: f64) {
    let _alone = ONE_AT_A_TIME.lock().await;
    raise_own_limit();
    let pg = PgCluster::start(PgOptions {
        max_connections: 14,
        superuser_reserved_connections: 3,
        ..Default::default()
    })
    .await;
    create_monitor_role(&pg).await;
    pg.create_role(APP, APP_PASSWORD, None).await;
    let hook = Receiver::start().await;
    let state_dir = tempfile::tempdir().expect("state dir");
    let state = state_dir.path().join("state.json");
    let config = config(&pg, &hook, &state, http_extra);
    let pw = Poolwatch::start_with_nofile(&config, soft, hard).await;
    let addr = pw.addr();
    let up = [("target", "db")];
    let up = pw.wait_for_metric("poolwatch_target_up", &up, |v| v == 1.0, WAIT);
    up.await.unwrap_or_else(|e| panic!("{e}"));
    let limits = open_file_limits(pw.pid());

    let flood = Flood::start(addr, FLOOD);
    flood.started().await;
    let mut scrapes = Scrapes::default();
    let window = Instant::now();
    scrapes.one(addr).await;
    let polls_before = polls(&scrapes.last);

    // Fill the server: 9 of 10 slots, three polls, a random phase, then the 10th (t0).
    let _load = pg.hold_connections(APP, APP_SLOTS - 1, "load").await;
    tokio::time::sleep(INTERVAL * 3 + INTERVAL.mul_f64(rand_fraction())).await;
    let _full = pg
        .hold_connections(APP, 1, "load")
        .await
        .expect("the last slot");
    let t0 = Instant::now();
    let paged = hook.wait_for(|r| r.iter().any(fired), WAIT).await;
    let page = hook
        .requests()
        .iter()
        .find(|r| fired(r))
        .map(|r| r.received_at.saturating_duration_since(t0));
    // Keep the flood on past `header_timeout`, scraping as Prometheus would.
    while window.elapsed() < HOLD {
        scrapes.one(addr).await;
        tokio::time::sleep(INTERVAL).await;
    }
    let elapsed = window.elapsed();
    let logs = pw.logs();
    let saved = std::fs::read_to_string(&state).unwrap_or_default();
    let flood_summary = flood.summary();
    drop(flood);

    let last = &scrapes.last;
    let polled = polls(last).zip(polls_before).map(|(b, a)| b - a);
    let expected_polls = elapsed.as_secs_f64() / INTERVAL.as_secs_f64();
    let show = |v: Option<f64>| v.map_or("-".to_string(), |v| v.to_string());
    eprintln!(
        "nofile {soft}/{hard} (at start: {limits:?}): page after {page:?} (bound {BOUND:?}); \
         {} polls in {elapsed:?} (cadence: {expected_polls:.1}); {} of {} scrapes failed, \
         slowest {:?}; flood: {flood_summary}; http: limit {}, open {}, evicted {}, refused {}, \
         header_timeout {}",
        show(polled),
        scrapes.failed.len(),
        scrapes.made,
        scrapes.slowest,
        show(value(last, "poolwatch_http_connection_limit", &[])),
        show(value(last, "poolwatch_http_connections", &[])),
        show(closed(last, "evicted")),
        show(closed(last, "refused")),
        show(closed(last, "header_timeout")),
    );

    // What on-call and Prometheus see.
    assert!(paged, "no page under the flood ({flood_summary})\n{logs}");
    let page = page.unwrap_or(WAIT);
    assert!(
        page <= BOUND,
        "the page took {page:?}, more than interval + for + 100 ms = {BOUND:?}"
    );
    assert!(
        scrapes.failed.is_empty(),
        "/metrics did not answer: {:?}",
        scrapes.failed
    );
    assert!(
        !logs.contains("Too many open files") && !logs.contains("os error 24"),
        "poolwatch ran out of descriptors:\n{logs}"
    );
    assert!(
        saved.contains("ServerFull") && !logs.contains("cannot save alert state"),
        "alert state not saved: {saved:?}\n{logs}"
    );
    // Polling kept its cadence on its one long-lived connection. A poll loop starved by the
    // flood would lose most polls; the quarter allowed here is for stalls of the shared test
    // machine itself (the poll ticker delays, it does not catch up).
    let polled = polled.unwrap_or(0.0);
    assert!(
        polled >= (expected_polls * 0.75).floor(),
        "{polled} polls in {elapsed:?}, {expected_polls:.1} expected at {INTERVAL:?}"
    );
    let connects = value(last, "poolwatch_connects_total", &[("target", "db")]);
    assert_eq!(connects, Some(1.0));
    // The mechanism: the soft limit raised, the HTTP limit in force, the flood's connections
    // closed to stay under it.
    assert_eq!(
        limits,
        (hard.to_string(), hard.to_string()),
        "the soft limit was not raised to the hard limit"
    );
    let limit = value(last, "poolwatch_http_connection_limit", &[]);
    assert_eq!(limit, Some(want_limit));
    let open = value(last, "poolwatch_http_connections", &[]);
    assert!(open.is_some_and(|n| n <= want_limit), "{open:?}");
    // The flood's idle connections were closed to make room: evicted once every slot was
    // taken, or by the header deadline when the flood (slowed by a loaded machine) opened them
    // more slowly than the deadline closes them. Either way, some were closed.
    let evicted = closed(last, "evicted").unwrap_or(0.0);
    let timed_out = closed(last, "header_timeout").unwrap_or(0.0);
    assert!(
        evicted + timed_out > 0.0,
        "poolwatch closed none of the flood's connections"
    );
}

/// A fraction in [0, 1) from the clock, to land the filling connection at a random phase of
/// the poll ticker.
fn rand_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}

/// systemd's default soft limit with a hard limit poolwatch can raise it to: the default
/// `max_connections` (64) applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_does_not_delay_the_page_when_the_limit_is_raised() {
    under_flood(1024, 4096, "", 64.0).await;
}

/// Soft = hard = 1024 and a `max_connections` far above it: the HTTP limit is what the
/// reserve leaves (1024 − (64 + 4 × 1 target + 4 × 1 receiver) − 1 = 951).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_does_not_starve_a_daemon_that_cannot_raise_its_limit() {
    under_flood(1024, 1024, "max_connections = 100000", 951.0).await;
}
