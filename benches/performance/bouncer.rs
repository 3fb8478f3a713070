//! Benchmark 7: one PgBouncer poll with 10 and 500 (database, user) pools. Two real PgBouncers
//! in front of one cluster: 2 database entries x 5 users, and 25 x 20; every pool is made by a
//! client that logs in through it once. poolwatch's library polls each console through a
//! recording proxy ([`crate::wire`]): round trips, bytes, client time per poll, and PgBouncer's
//! own CPU per poll. Then the real daemon watches the 500-pool PgBouncer, and `SHOW CLIENTS`
//! counts its console sessions.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use poolwatch::source::pgbouncer::{self, config::BouncerSettings};
use poolwatch::source::target::SourceSettings;
use tokio::sync::Semaphore;

use crate::clients::{self, PASSWORD};
use crate::common::pgbouncer::{Database, PgBouncer, PgBouncerOptions};
use crate::common::{PgCluster, PgOptions, Poolwatch};
use crate::daemon_rss::cpu_seconds;
use crate::stats::Summary;
use crate::wire::{Dir, Proxy};

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Timed polls per PgBouncer.
    pub polls: usize,
}

/// Users every PgBouncer may log in (the 10-pool one uses the first 5).
const USERS: usize = 20;

/// Options for a PgBouncer with `dbs` database entries (`d00`, ...) and `users` users.
fn options(dbs: usize, users: usize) -> PgBouncerOptions {
    PgBouncerOptions {
        databases: (0..dbs)
            .map(|d| Database::new(&format!("d{d:02}"), "postgres"))
            .collect(),
        users: (0..users).map(|u| format!("u{u:02}")).collect(),
        stats_users: vec!["poolwatch".into()],
        default_pool_size: 5,
        max_client_conn: 1000,
        ..PgBouncerOptions::default()
    }
}

/// Logs in once per (database, user), 16 at a time, so that PgBouncer has every pool.
async fn make_pools(bouncer: &PgBouncer, dbs: usize, users: usize) {
    let gate = Arc::new(Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for d in 0..dbs {
        for u in 0..users {
            let url = bouncer.url(&format!("u{u:02}"), &format!("d{d:02}"));
            let gate = Arc::clone(&gate);
            tasks.spawn(async move {
                let _permit = gate.acquire().await.expect("gate");
                let client = crate::common::pg::connect(&url).await.expect("pool login");
                client.simple_query("SELECT 1").await.expect("SELECT 1");
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("pool task");
    }
}

/// A PgBouncer target's settings for the console at `port`, made from TOML as the daemon does.
fn settings_at(name: &str, port: u16) -> BouncerSettings {
    let toml = format!(
        "[[targets]]\nname = \"{name}\"\ntype = \"pgbouncer\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         user = \"poolwatch\"\npassword = \"{PASSWORD}\"\nsslmode = \"disable\"\n"
    );
    let mut config = poolwatch::settings::parse(Path::new("bench.toml"), &toml)
        .unwrap_or_else(|problems| panic!("bench config: {problems:?}"));
    match config.targets.remove(0).source {
        SourceSettings::Pgbouncer(s) => s,
        other => panic!("not a pgbouncer target: {other:?}"),
    }
}

/// What the polls of one PgBouncer measured.
struct Measured {
    pools: usize,
    client_ms: Summary,
    client_flights_per_poll: f64,
    server_flights_per_poll: f64,
    request_bytes: f64,
    answer_bytes: f64,
    bouncer_cpu_ms_per_poll: f64,
    /// Flight shapes and how often each was seen.
    shapes: std::collections::BTreeMap<(String, String), usize>,
}

/// Connects through a recording proxy and polls `polls` times, 10 ms apart.
async fn measure(bouncer: &PgBouncer, expect_pools: usize, polls: usize) -> Measured {
    let proxy = Proxy::start(bouncer.port()).await;
    let settings = settings_at("bouncer", proxy.port());
    let console = pgbouncer::connect(&settings, None)
        .await
        .unwrap_or_else(|e| panic!("console connect: {}", e.message));
    let set_up = proxy.flights().len();
    let pid = bouncer.pid().expect("PgBouncer running");
    let mut times = Vec::new();
    let mut pools = 0;
    let cpu_before = cpu_seconds(pid);
    for _ in 0..polls {
        let t = Instant::now();
        let data = pgbouncer::poll(&console, &settings)
            .await
            .unwrap_or_else(|f| panic!("poll: {}", f.error.message));
        times.push(t.elapsed());
        pools = data
            .pools
            .iter()
            .filter(|p| p.id.kind.name == "pgbouncer_pool")
            .count();
        assert!(
            pools >= expect_pools,
            "poll saw {pools} (database, user) pools, {expect_pools} exist"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    let flights = proxy.flights().split_off(set_up);
    drop(console);
    drop(proxy);
    let of = |dir: Dir| flights.iter().filter(move |f| f.dir == dir);
    let n = polls as f64;
    Measured {
        pools,
        client_ms: Summary::of_durations_ms(&times),
        client_flights_per_poll: of(Dir::ToServer).count() as f64 / n,
        server_flights_per_poll: of(Dir::ToClient).count() as f64 / n,
        request_bytes: of(Dir::ToServer).map(|f| f.bytes).sum::<usize>() as f64 / n,
        answer_bytes: of(Dir::ToClient).map(|f| f.bytes).sum::<usize>() as f64 / n,
        bouncer_cpu_ms_per_poll: cpu * 1e3 / n,
        shapes: crate::wire::shapes(&flights),
    }
}

/// The daemon watches `bouncer` at 1 s; `SHOW CLIENTS` counts its console sessions 5 times.
async fn sessions_held(bouncer: &PgBouncer) -> Vec<usize> {
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n[[targets]]\nname = \"bouncer\"\ntype = \"pgbouncer\"\n\
         host = \"127.0.0.1\"\nport = {}\nuser = \"poolwatch\"\npassword = \"{PASSWORD}\"\n\
         sslmode = \"disable\"\ninterval = \"1s\"\n",
        bouncer.port()
    );
    let daemon = Poolwatch::start(&config).await;
    daemon
        .wait_for_metric(
            "poolwatch_target_up",
            &[("target", "bouncer")],
            |v| v == 1.0,
            Duration::from_secs(20),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", daemon.logs()));
    let mut counts = Vec::new();
    for _ in 0..5 {
        counts.push(bouncer.console_clients("poolwatch").await);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(daemon);
    counts
}

/// `T D D D ... C Z` shortened: runs of one message type as `D x500`.
fn short(shape: &str) -> String {
    let mut out: Vec<(String, usize)> = Vec::new();
    for m in shape.split(' ') {
        match out.last_mut() {
            Some((last, n)) if last == m => *n += 1,
            _ => out.push((m.to_string(), 1)),
        }
    }
    out.iter()
        .map(|(m, n)| {
            if *n > 1 {
                format!("{m}x{n}")
            } else {
                m.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the benchmark and prints its results.
pub async fn run(plan: Plan) {
    println!("\n## 7. PgBouncer: one poll with 10 and 500 pools\n");
    let started = Instant::now();
    let pg = PgCluster::start(PgOptions {
        max_connections: 600,
        ..PgOptions::default()
    })
    .await;
    clients::prepare(&pg).await;
    for u in 0..USERS {
        pg.create_role(&format!("u{u:02}"), PASSWORD, None).await;
    }
    let small = PgBouncer::start(&pg, options(2, 5)).await;
    let big = PgBouncer::start(&pg, options(25, USERS)).await;
    make_pools(&small, 2, 5).await;
    make_pools(&big, 25, USERS).await;
    println!(
        "PgBouncer {} in front of PostgreSQL {}; pools made in {:.1?}; load average {}",
        big.full_version(),
        pg.major_version(),
        started.elapsed(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("\n| pools | polls | (database, user) pools seen | client time per poll ms: min / p50 / p95 / max | client flights per poll | server flights per poll | bytes sent / received per poll | PgBouncer CPU per poll ms |");
    println!("|---:|---:|---:|---|---:|---:|---|---:|");
    // Alternate the two, twice, so that both get the same noise.
    let mut rows = Vec::new();
    for _ in 0..2 {
        for (n, bouncer) in [(10, &small), (500, &big)] {
            rows.push((n, measure(bouncer, n, plan.polls / 2).await));
        }
    }
    for (n, m) in &rows {
        println!(
            "| {n} | {} | {} | {:.3} / {:.3} / {:.3} / {:.3} | {:.2} | {:.2} | {:.0} / {:.0} | {:.3} |",
            m.client_ms.len(),
            m.pools,
            m.client_ms.min(),
            m.client_ms.median(),
            m.client_ms.pct(95.0),
            m.client_ms.max(),
            m.client_flights_per_poll,
            m.server_flights_per_poll,
            m.request_bytes,
            m.answer_bytes,
            m.bouncer_cpu_ms_per_poll
        );
    }
    for (n, m) in &rows {
        let shapes: Vec<String> = m
            .shapes
            .iter()
            .map(|((req, answer), count)| format!("[{req}] -> [{}] x {count}", short(answer)))
            .collect();
        println!(
            "- {n} pools, client flight -> server flight: {}",
            shapes.join("; ")
        );
    }
    let held = sessions_held(&big).await;
    println!(
        "\n- console sessions of application_name `poolwatch` in SHOW CLIENTS while the daemon \
         watched the 500-pool PgBouncer, 5 checks 1 s apart: {held:?} (expected 1 each: {})",
        if held.iter().all(|&n| n == 1) {
            "MET"
        } else {
            "MISSED"
        }
    );
    println!("(section took {:.0?})", started.elapsed());
}
