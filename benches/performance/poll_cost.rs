//! Benchmark 1: the cost of one poll with 10 and with 1,000 connected clients.
//!
//! Two clusters with the same settings (`max_connections = 1100`) run side by side, one with 10
//! clients and one with 1,000, and the polls alternate between them, so that both see the same
//! machine noise and their ratio is meaningful within one run.
//!
//! Phases, in order:
//!
//! 1. **timing**: the library's `connect` + `poll` (prepared statement, one Bind/Execute/Sync
//!    per poll), timed on the client; `pg_stat_statements` over exactly those polls.
//! 2. **comparison**: the current poll alternated with the previous one (simple protocol,
//!    [`PREVIOUS_POLL_SQL`] over the `pg_stat_activity` view), so that the gain is a same-run
//!    ratio.
//! 3. **EXPLAIN**: the poll SQL with per-node timing, then the current and previous SQL and the
//!    floors (the cheapest reads of every backend's status) without it.
//! 4. **protocol**: a fresh monitoring connection through a recording proxy ([`crate::wire`]),
//!    with `log_min_duration_statement = 0` for role poolwatch: what went over the wire and what
//!    the server logged, per poll.
//! 5. **scaling of the floor**: the 10-client cluster grown step by step to 1,000 idle clients,
//!    with the cheapest reads of the backend status and the poll SQL measured at each step.

use std::path::Path;
use std::time::{Duration, Instant};

use poolwatch::source::postgres::config::PgSettings as TargetSettings;
use poolwatch::source::postgres::{self, query::POLL_SQL, PgConn};
use poolwatch::source::target::SourceSettings;
use tokio_postgres::SimpleQueryMessage;

use crate::clients::{self, Clients, PASSWORD};
use crate::common::{PgCluster, PgOptions};
use crate::stats::Summary;
use crate::wire::{self, Proxy};

/// Client counts of the two clusters.
const SIZES: [usize; 2] = [10, 1000];

/// Warm-up polls per cluster before each timed phase.
const WARM_UP: usize = 30;

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Timed polls per cluster (and per statement in the comparison).
    pub polls: usize,
    /// `EXPLAIN ANALYZE` runs per cluster.
    pub explains: usize,
    /// Polls per cluster with every statement logged (protocol check).
    pub logged_polls: usize,
    /// `EXPLAIN ANALYZE` rounds per step of the floor's scaling.
    pub scaling_rounds: usize,
}

/// One `pg_stat_statements` row (times in ms).
#[derive(Debug, Clone)]
struct Pgss {
    calls: i64,
    plans: i64,
    total_plan_ms: f64,
    mean_exec_ms: f64,
    min_exec_ms: f64,
    max_exec_ms: f64,
    stddev_exec_ms: f64,
    query: String,
}

impl Pgss {
    /// Planning time per call (0 when the plan was cached for every call).
    fn plan_per_call_ms(&self) -> f64 {
        self.total_plan_ms / self.calls.max(1) as f64
    }
}

/// The same-run comparison of the current poll with the previous one.
#[derive(Debug, Default)]
struct Comparison {
    current_rt: Vec<Duration>,
    previous_rt: Vec<Duration>,
    current: Option<Pgss>,
    previous: Option<Pgss>,
}

/// What the protocol phase saw for one cluster.
#[derive(Debug, Default)]
struct Protocol {
    /// Server log lines of role poolwatch by kind: `parse`, `bind`, `execute`, `statement`
    /// (simple protocol) and anything else.
    parse: usize,
    bind: usize,
    execute: usize,
    simple_poll: usize,
    simple_other: Vec<String>,
    other: usize,
    bind_ms: Vec<f64>,
    execute_ms: Vec<f64>,
    /// Client flights on the wire: (client shape, server answer) -> count.
    shapes: std::collections::BTreeMap<(String, String), usize>,
    /// Client flights carrying a Bind, per poll.
    bind_flights: usize,
    /// Client flights carrying a Parse.
    parse_flights: usize,
    round_trips: Vec<Duration>,
}

/// One cluster and what was measured on it.
struct Side {
    clients: usize,
    pg: PgCluster,
    settings: TargetSettings,
    round_trips: Vec<Duration>,
    pgss: Option<Pgss>,
    pgss_statements: usize,
    pgss_calls: i64,
    planning_ms: Vec<f64>,
    execution_ms: Vec<f64>,
    comparison: Comparison,
    protocol: Protocol,
}

/// A `TargetSettings` for `pg`, made the way the daemon makes them: from TOML.
pub fn target_settings(name: &str, pg: &PgCluster, extra: &str) -> TargetSettings {
    target_settings_at(name, pg.port(), extra)
}

/// Like [`target_settings`], for a server (or proxy) on `port` of 127.0.0.1.
fn target_settings_at(name: &str, port: u16, extra: &str) -> TargetSettings {
    let toml = format!(
        "[[targets]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"poolwatch\"\n\
         password = \"{PASSWORD}\"\nsslmode = \"disable\"\n{extra}\n"
    );
    let mut config = poolwatch::settings::parse(Path::new("bench.toml"), &toml)
        .unwrap_or_else(|problems| panic!("bench config: {problems:?}"));
    match config.targets.remove(0).source {
        SourceSettings::Postgres(s) => s,
        other => panic!("not a postgres target: {other:?}"),
    }
}

async fn connect(s: &TargetSettings) -> PgConn {
    postgres::connect(s, None)
        .await
        .unwrap_or_else(|e| panic!("poolwatch connect to {}: {}", s.conn.endpoint, e.message))
}

fn check_in_use(name: &str, data: &poolwatch::model::PollData, expect: u64) {
    let server = data
        .pools
        .iter()
        .find(|p| p.id.kind == postgres::pools::SERVER)
        .expect("server pool");
    assert_eq!(
        server.in_use, expect,
        "{name}: poll counts {} clients, {expect} are connected",
        server.in_use
    );
}

/// One poll, timed on the client: query round trip plus JSON parsing into pools.
async fn timed_poll(conn: &PgConn, s: &TargetSettings, expect_in_use: u64) -> Duration {
    let started = Instant::now();
    let data = postgres::poll(conn, s).await;
    let took = started.elapsed();
    let data = data.unwrap_or_else(|e| panic!("poll {}: {}", s.name, e.message));
    check_in_use(&s.name, &data, expect_in_use);
    took
}

/// One poll as poolwatch made it before c8c6c53: [`PREVIOUS_POLL_SQL`] over the simple
/// protocol (parsed and planned on every call), then the same JSON parsing into pools.
async fn timed_previous_poll(
    client: &tokio_postgres::Client,
    name: &str,
    expect_in_use: u64,
) -> Duration {
    let started = Instant::now();
    let msgs = client
        .simple_query(PREVIOUS_POLL_SQL)
        .await
        .expect("previous poll SQL");
    let raw = postgres::query::parse(&first_cell(&msgs)).expect("previous answer");
    let data = postgres::pools::to_poll_data(name, &raw);
    let took = started.elapsed();
    check_in_use(name, &data, expect_in_use);
    took
}

/// Runs the benchmark and prints its results.
pub async fn run(plan: Plan) {
    println!("\n## 1. Cost of one poll (library: source::postgres::{{connect, poll}})\n");
    let started = Instant::now();
    let options = || PgOptions {
        max_connections: 1100,
        extra_conf: vec![
            "shared_preload_libraries = 'pg_stat_statements'".into(),
            "pg_stat_statements.track_planning = on".into(),
        ],
        ..PgOptions::default()
    };
    let (a, b) = tokio::join!(PgCluster::start(options()), PgCluster::start(options()));
    let mut sides = Vec::new();
    for (pg, n) in [(a, SIZES[0]), (b, SIZES[1])] {
        clients::prepare(&pg).await;
        pg.exec("CREATE EXTENSION pg_stat_statements").await;
        let settings = target_settings(&format!("clients-{n}"), &pg, "");
        sides.push(Side {
            clients: n,
            pg,
            settings,
            round_trips: Vec::new(),
            pgss: None,
            pgss_statements: 0,
            pgss_calls: 0,
            planning_ms: Vec::new(),
            execution_ms: Vec::new(),
            comparison: Comparison::default(),
            protocol: Protocol::default(),
        });
    }
    let mut held = Vec::new();
    for side in &sides {
        let t = Instant::now();
        held.push(Clients::open(&side.pg, side.clients).await);
        println!(
            "opened {} client sessions (5% active pg_sleep, 10% idle in transaction, rest idle; \
             2 roles, 2 databases) in {:.1?}",
            side.clients,
            t.elapsed()
        );
    }
    for (side, h) in sides.iter().zip(&held) {
        assert_eq!(h.len(), side.clients);
    }

    timing_phase(&mut sides, plan.polls).await;
    comparison_phase(&mut sides, plan.polls).await;
    let answers = explain_phase(&mut sides, plan.explains).await;
    protocol_phase(&mut sides, plan.logged_polls).await;
    report(&sides, &answers, &plan);
    if let (Some(side), Some(clients)) = (sides.first(), held.first_mut()) {
        scaling_phase(side, clients, plan.scaling_rounds).await;
    }
    drop(held);
    println!("(section took {:.0?})", started.elapsed());
}

/// The `pg_stat_statements` rows of role poolwatch.
async fn pgss_rows(pg: &PgCluster) -> Vec<Pgss> {
    pg.query(
        "SELECT calls, plans, total_plan_time, mean_exec_time, min_exec_time, max_exec_time, \
                stddev_exec_time, query \
           FROM pg_stat_statements WHERE userid = 'poolwatch'::regrole ORDER BY calls DESC",
    )
    .await
    .iter()
    .map(|r| Pgss {
        calls: r.get(0),
        plans: r.get(1),
        total_plan_ms: r.get(2),
        mean_exec_ms: r.get(3),
        min_exec_ms: r.get(4),
        max_exec_ms: r.get(5),
        stddev_exec_ms: r.get(6),
        query: r.get(7),
    })
    .collect()
}

/// Which poll SQL a `pg_stat_statements` text is (constants are normalised to `$n` there).
fn is_current(query: &str) -> bool {
    query.contains("pg_stat_get_activity(")
}

fn is_previous(query: &str) -> bool {
    query.contains("FROM pg_stat_activity")
}

/// Alternating polls on both clusters, then pg_stat_statements for the statements they ran.
async fn timing_phase(sides: &mut [Side], polls: usize) {
    let mut conns = Vec::new();
    for side in sides.iter() {
        conns.push(connect(&side.settings).await);
    }
    for _ in 0..WARM_UP {
        for (side, conn) in sides.iter().zip(&conns) {
            timed_poll(conn, &side.settings, side.clients as u64).await;
        }
    }
    for side in sides.iter() {
        side.pg.exec("SELECT pg_stat_statements_reset()").await;
    }
    for i in 0..polls {
        // Alternate which cluster goes first, so neither always follows the other.
        let order: Vec<usize> = if i % 2 == 0 { vec![0, 1] } else { vec![1, 0] };
        for k in order {
            let took = timed_poll(&conns[k], &sides[k].settings, sides[k].clients as u64).await;
            sides[k].round_trips.push(took);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(conns);
    println!(
        "\n### pg_stat_statements for role poolwatch during the {polls} timed polls per cluster"
    );
    println!(
        "(server-side, per statement; reset after the {WARM_UP} warm-up polls, which ran on the \
         same connection: the statement was prepared before the reset)"
    );
    for side in sides.iter_mut() {
        let rows = pgss_rows(&side.pg).await;
        side.pgss_statements = rows.len();
        side.pgss_calls = rows.iter().map(|r| r.calls).sum();
        println!(
            "- {:>4} clients: {} distinct statement(s), {} call(s) for {polls} polls \
             => {:.2} statement(s) per poll",
            side.clients,
            side.pgss_statements,
            side.pgss_calls,
            side.pgss_calls as f64 / polls as f64
        );
        for r in &rows {
            println!(
                "  calls={} plans={} planning per call={:.4} ms, exec mean={:.3} ms (min {:.3}, \
                 max {:.3}, stddev {:.3}); query: {:?}...",
                r.calls,
                r.plans,
                r.plan_per_call_ms(),
                r.mean_exec_ms,
                r.min_exec_ms,
                r.max_exec_ms,
                r.stddev_exec_ms,
                r.query.chars().take(40).collect::<String>()
            );
        }
        side.pgss = rows.into_iter().find(|r| is_current(&r.query));
    }
}

/// The current poll and the previous one, alternated on each cluster (and the clusters
/// alternated), on two connections of role poolwatch; then pg_stat_statements for both.
async fn comparison_phase(sides: &mut [Side], polls: usize) {
    let mut conns = Vec::new();
    for side in sides.iter() {
        // `application_name = poolwatch`, as poolwatch's sessions have always been named.
        let url = crate::common::pg::hold::with_application_name(
            &side.pg.url_with_password("poolwatch", PASSWORD, "postgres"),
            "poolwatch",
        );
        let previous = crate::common::pg::connect(&url)
            .await
            .expect("previous-poll session");
        conns.push((connect(&side.settings).await, previous));
    }
    // Both answers are read by today's parser, which leaves every poolwatch session out (a
    // slot taken, not load): each poll counts the clients only, not the other session.
    let expect = |side: &Side| side.clients as u64;
    for _ in 0..WARM_UP {
        for (side, (current, previous)) in sides.iter().zip(&conns) {
            timed_poll(current, &side.settings, expect(side)).await;
            timed_previous_poll(previous, &side.settings.name, expect(side)).await;
        }
    }
    for side in sides.iter() {
        side.pg.exec("SELECT pg_stat_statements_reset()").await;
    }
    for i in 0..polls {
        let order: Vec<usize> = if i % 2 == 0 { vec![0, 1] } else { vec![1, 0] };
        for k in order {
            let side = &mut sides[k];
            let (current, previous) = &conns[k];
            let e = expect(side);
            // Alternate which statement goes first as well.
            if (i / 2) % 2 == 0 {
                let c = timed_poll(current, &side.settings, e).await;
                let p = timed_previous_poll(previous, &side.settings.name, e).await;
                side.comparison.current_rt.push(c);
                side.comparison.previous_rt.push(p);
            } else {
                let p = timed_previous_poll(previous, &side.settings.name, e).await;
                let c = timed_poll(current, &side.settings, e).await;
                side.comparison.current_rt.push(c);
                side.comparison.previous_rt.push(p);
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(conns);
    for side in sides.iter_mut() {
        let rows = pgss_rows(&side.pg).await;
        side.comparison.current = rows.iter().find(|r| is_current(&r.query)).cloned();
        side.comparison.previous = rows.iter().find(|r| is_previous(&r.query)).cloned();
    }
    println!(
        "\n### Same-run comparison: current poll vs previous poll, {polls} of each per cluster, \
         alternated (ms)\n"
    );
    println!(
        "previous = simple protocol, `pg_stat_activity` view grouped by names (poolwatch before \
         c8c6c53, `PREVIOUS_POLL_SQL` in the bench); current = prepared statement, \
         `pg_stat_get_activity(NULL)` grouped by ids, names joined to the groups\n"
    );
    println!(
        "| clients | measure | previous | current | previous / current |\n|---:|---|---:|---:|---:|"
    );
    for side in sides.iter() {
        let c = &side.comparison;
        let (crt, prt) = (
            Summary::of_durations_ms(&c.current_rt),
            Summary::of_durations_ms(&c.previous_rt),
        );
        let mut rows = vec![
            ("client round trip p50", prt.median(), crt.median()),
            ("client round trip min", prt.min(), crt.min()),
        ];
        if let (Some(p), Some(cur)) = (&c.previous, &c.current) {
            rows.extend([
                (
                    "server planning per call (pg_stat_statements)",
                    p.plan_per_call_ms(),
                    cur.plan_per_call_ms(),
                ),
                (
                    "server execution mean (pg_stat_statements)",
                    p.mean_exec_ms,
                    cur.mean_exec_ms,
                ),
                (
                    "server execution min (pg_stat_statements)",
                    p.min_exec_ms,
                    cur.min_exec_ms,
                ),
                (
                    "server planning + execution mean",
                    p.plan_per_call_ms() + p.mean_exec_ms,
                    cur.plan_per_call_ms() + cur.mean_exec_ms,
                ),
            ]);
            println!(
                "  ({} clients: pg_stat_statements calls previous {} / current {}, plans previous \
                 {} / current {})",
                side.clients, p.calls, cur.calls, p.plans, cur.plans
            );
        }
        for (what, p, cur) in rows {
            println!(
                "| {} | {what} | {p:.3} | {cur:.3} | x{:.2} |",
                side.clients,
                p / cur
            );
        }
    }
}

/// What the explain phase runs without per-node timing: the current and previous poll SQL, and
/// three floors (the cheapest reads of every backend's status). The indexes matter: see [`SNAPSHOT_PROBE`], [`ROWS_PROBE`].
fn probes() -> Vec<(&'static str, String)> {
    vec![
        ("poll SQL (current)", POLL_SQL.into()),
        (
            "previous poll SQL (`pg_stat_activity` view)",
            PREVIOUS_POLL_SQL.into(),
        ),
        (
            "`SELECT count(*) FROM pg_stat_activity`",
            "SELECT count(*) FROM pg_stat_activity".into(),
        ),
        (
            "`SELECT count(*) FROM pg_stat_get_activity(NULL)`",
            "SELECT count(*) FROM pg_stat_get_activity(NULL)".into(),
        ),
        (
            "`SELECT count(*) FROM pg_stat_get_backend_idset()`",
            "SELECT count(*) FROM pg_stat_get_backend_idset()".into(),
        ),
    ]
}

/// Index of the probe that only takes the backend status snapshot, and of the one that also
/// builds a row per backend.
const SNAPSHOT_PROBE: usize = 4;
const ROWS_PROBE: usize = 3;

/// The monitoring query as it was before c8c6c53 (the parent of that commit,
/// `src/source/postgres/query.rs`), kept as a reference: it reads the `pg_stat_activity` view,
/// which joins `pg_database` and `pg_authid` for every backend, and groups on the names. Its
/// answer has the same shape; [`explain_phase`] checks that its groups equal the current ones.
/// It answers a constant `sees_all_sessions` (a key the current answer has since): a constant
/// costs nothing and lets the same parser read both answers.
const PREVIOUS_POLL_SQL: &str = r#"SELECT json_build_object(
  'version_num', current_setting('server_version_num')::int,
  'max_connections', current_setting('max_connections')::int,
  'superuser_reserved', current_setting('superuser_reserved_connections')::int,
  'reserved', COALESCE(current_setting('reserved_connections', true), '0')::int,
  'sees_all_sessions', true,
  'own_role', current_user,
  'own_db', current_database(),
  'groups', COALESCE((SELECT json_agg(g) FROM (
      SELECT datname AS db, usename AS role, application_name AS app,
             COALESCE(state, 'unknown') AS state, count(*) AS n,
             max(extract(epoch FROM clock_timestamp() - xact_start))::float8 AS oldest_xact,
             (max(extract(epoch FROM clock_timestamp() - state_change))
                FILTER (WHERE state LIKE 'idle in transaction%'))::float8 AS oldest_iit,
             count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_waiting
        FROM pg_stat_activity
       WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
       GROUP BY 1, 2, 3, 4) g), '[]'::json),
  'role_limits', COALESCE((SELECT json_agg(json_build_object('name', rolname, 'limit', rolconnlimit))
        FROM pg_roles WHERE rolconnlimit >= 0 AND rolcanlogin), '[]'::json),
  'db_limits', COALESCE((SELECT json_agg(json_build_object('name', datname, 'limit', datconnlimit))
        FROM pg_database WHERE datconnlimit >= 0 AND datallowconn), '[]'::json)
)::text"#;

/// The groups of an answer as comparable text: sorted, ages left out (they move).
fn group_keys(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("answer JSON");
    let mut keys: Vec<String> = v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        // poolwatch's own sessions: the current SQL lists the asking session among them, the
        // previous one left it out by pid; both are monitors, not load.
        .filter(|g| g["app"] != "poolwatch")
        .map(|g| {
            format!(
                "{} {} {} {} {} {}",
                g["db"], g["role"], g["app"], g["state"], g["n"], g["lock_waiting"]
            )
        })
        .collect();
    keys.sort();
    keys
}

/// Planning and execution time (ms) of one `EXPLAIN (ANALYZE, ..., FORMAT JSON)`.
async fn explain(client: &tokio_postgres::Client, options: &str, sql: &str) -> (f64, f64) {
    let text = first_cell(
        &client
            .simple_query(&format!("EXPLAIN (ANALYZE, {options}, FORMAT JSON) {sql}"))
            .await
            .expect("EXPLAIN"),
    );
    let plan: serde_json::Value = serde_json::from_str(&text).expect("EXPLAIN JSON");
    let ms = |key: &str| plan[0][key].as_f64().expect("EXPLAIN timing");
    (ms("Planning Time"), ms("Execution Time"))
}

/// `EXPLAIN (ANALYZE, TIMING ON)` of the poll SQL, alternating clusters, then the [`probes`]
/// with `TIMING OFF`, and one text plan of the largest cluster. Returns the size of the
/// query's answer (bytes of JSON) and the time to parse it into pools, per cluster.
async fn explain_phase(sides: &mut [Side], runs: usize) -> Vec<(usize, Duration)> {
    // Run as poolwatch's own role and name, so the privileges match and the session is left
    // out of the counts as a monitor, exactly as the monitoring connection is.
    let mut clients = Vec::new();
    for side in sides.iter() {
        let url = crate::common::pg::hold::with_application_name(
            &side.pg.url_with_password("poolwatch", PASSWORD, "postgres"),
            "poolwatch",
        );
        clients.push(
            crate::common::pg::connect(&url)
                .await
                .expect("explain session"),
        );
    }
    for i in 0..runs + 10 {
        for (k, side) in sides.iter_mut().enumerate() {
            let (planning, execution) = explain(&clients[k], "TIMING ON", POLL_SQL).await;
            if i >= 10 {
                side.planning_ms.push(planning);
                side.execution_ms.push(execution);
            }
        }
    }
    println!(
        "\n### Server execution time without per-node timing: EXPLAIN (ANALYZE, TIMING OFF), \
         {runs} rounds, each running every statement on both clusters (ms)\n"
    );
    println!(
        "| statement | clients | planning p50 | execution min | execution p50 | execution p95 |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    // times[probe][cluster] = (planning, execution); every round runs every probe on every
    // cluster, so that all rows of the table share the machine's noise.
    let probes = probes();
    let mut times = vec![vec![(Vec::new(), Vec::new()); sides.len()]; probes.len()];
    for i in 0..runs + 5 {
        for (p, (_, sql)) in probes.iter().enumerate() {
            for (k, client) in clients.iter().enumerate() {
                let (planning, execution) = explain(client, "TIMING OFF", sql).await;
                if i >= 5 {
                    times[p][k].0.push(planning);
                    times[p][k].1.push(execution);
                }
            }
        }
    }
    for ((label, _), per_cluster) in probes.iter().zip(&times) {
        for (side, (planning, execution)) in sides.iter().zip(per_cluster) {
            let execution = Summary::new(execution.clone());
            println!(
                "| {label} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
                side.clients,
                Summary::new(planning.clone()).median(),
                execution.min(),
                execution.median(),
                execution.pct(95.0)
            );
        }
    }
    println!();
    for (k, side) in sides.iter().enumerate() {
        // Paired per round: the statements ran back to back, so their ratio cancels most of
        // the machine's noise.
        let ratio = |num: usize, den: usize| {
            let paired: Vec<f64> = times[num][k]
                .1
                .iter()
                .zip(&times[den][k].1)
                .map(|(a, b)| a / b)
                .collect();
            let (a, b) = (
                Summary::new(times[num][k].1.clone()),
                Summary::new(times[den][k].1.clone()),
            );
            format!(
                "min x{:.2}, p50 x{:.2}, median of the per-round ratios x{:.2}",
                a.min() / b.min(),
                a.median() / b.median(),
                Summary::new(paired).median()
            )
        };
        println!(
            "- {:>4} clients, execution previous / current: {}",
            side.clients,
            ratio(1, 0)
        );
    }
    if let [small, big] = &sides[..] {
        let n = (big.clients - small.clients) as f64;
        let min = |p: usize, k: usize| Summary::new(times[p][k].1.clone()).min();
        let p50 = |p: usize, k: usize| Summary::new(times[p][k].1.clone()).median();
        println!(
            "- floor, per extra backend ({} -> {} clients, execution min / p50): status snapshot \
             only (`pg_stat_get_backend_idset`) {:.2} / {:.2} us; snapshot + one row per backend \
             (`count(*)` of `pg_stat_get_activity(NULL)`) {:.2} / {:.2} us; current poll SQL \
             {:.2} / {:.2} us; previous poll SQL {:.2} / {:.2} us",
            small.clients,
            big.clients,
            (min(SNAPSHOT_PROBE, 1) - min(SNAPSHOT_PROBE, 0)) / n * 1e3,
            (p50(SNAPSHOT_PROBE, 1) - p50(SNAPSHOT_PROBE, 0)) / n * 1e3,
            (min(ROWS_PROBE, 1) - min(ROWS_PROBE, 0)) / n * 1e3,
            (p50(ROWS_PROBE, 1) - p50(ROWS_PROBE, 0)) / n * 1e3,
            (min(0, 1) - min(0, 0)) / n * 1e3,
            (p50(0, 1) - p50(0, 0)) / n * 1e3,
            (min(1, 1) - min(1, 0)) / n * 1e3,
            (p50(1, 1) - p50(1, 0)) / n * 1e3,
        );
        println!(
            "- with {} clients, the current poll SQL's execution min is {:.3} ms, of which the \
             floor (`count(*)` of `pg_stat_get_activity(NULL)`, min) is {:.3} ms ({:.0}%)",
            big.clients,
            min(0, 1),
            min(ROWS_PROBE, 1),
            min(ROWS_PROBE, 1) / min(0, 1) * 100.0
        );
    }
    if let Some((client, side)) = clients.iter().zip(sides.iter()).last() {
        let msgs = client
            .simple_query(&format!("EXPLAIN (ANALYZE, TIMING ON) {POLL_SQL}"))
            .await
            .expect("EXPLAIN");
        println!(
            "\n### One EXPLAIN (ANALYZE, TIMING ON) of the poll SQL with {} clients\n",
            side.clients
        );
        println!("```");
        for m in &msgs {
            if let SimpleQueryMessage::Row(row) = m {
                println!("{}", row.get(0).unwrap_or_default());
            }
        }
        println!("```");
    }
    let mut answers = Vec::new();
    for (k, side) in sides.iter().enumerate() {
        let json = first_cell(&clients[k].simple_query(POLL_SQL).await.expect("poll SQL"));
        let previous = first_cell(
            &clients[k]
                .simple_query(PREVIOUS_POLL_SQL)
                .await
                .expect("previous poll SQL"),
        );
        let same = group_keys(&json) == group_keys(&previous);
        println!(
            "- {} clients: the previous poll SQL's groups {} the current one's ({} groups)",
            side.clients,
            if same { "equal" } else { "DIFFER FROM" },
            group_keys(&json).len()
        );
        let reps = 200;
        let t = Instant::now();
        for _ in 0..reps {
            let raw = postgres::query::parse(&json).expect("parse");
            let data = postgres::pools::to_poll_data(&side.settings.name, &raw);
            std::hint::black_box(data);
        }
        answers.push((json.len(), t.elapsed() / reps));
    }
    answers
}

/// The duration of a server log line `... duration: 1.234 ms  ...`.
fn logged_ms(line: &str) -> Option<f64> {
    let rest = line.split("duration: ").nth(1)?;
    rest.split(" ms").next()?.parse::<f64>().ok()
}

/// Whether `line` logs extended-protocol step `step` (`parse`, `bind`, `execute`) of the poll
/// SQL: `duration: 0.050 ms  bind s12: SELECT json_build_object(`.
fn is_step(line: &str, step: &str) -> bool {
    line.split_once(&format!("  {step} "))
        .is_some_and(|(_, rest)| rest.contains(": SELECT json_build_object("))
}

/// With `log_min_duration_statement = 0` for role poolwatch only, a fresh monitoring
/// connection goes through a recording proxy and polls: the server log shows what each poll
/// made the server do, the proxy what went over the wire.
async fn protocol_phase(sides: &mut [Side], polls: usize) {
    println!(
        "\n### Protocol check: a fresh monitoring connection through a recording proxy, with \
         log_min_duration_statement = 0 for role poolwatch"
    );
    for side in sides.iter_mut() {
        side.pg
            .exec("ALTER ROLE poolwatch SET log_min_duration_statement = 0")
            .await;
        let offset = side.pg.server_log().len();
        let proxy = Proxy::start(side.pg.port()).await;
        let settings = target_settings_at(&side.settings.name, proxy.port(), "");
        let conn = connect(&settings).await;
        let p = &mut side.protocol;
        for _ in 0..polls {
            p.round_trips
                .push(timed_poll(&conn, &settings, side.clients as u64).await);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Flights while the connection is open: dropping it only closes the socket.
        let flights = proxy.flights();
        drop(conn);
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(proxy);
        let log = side.pg.server_log();
        let ours: Vec<&str> = log[offset..]
            .lines()
            .filter(|l| l.contains(" poolwatch@postgres/poolwatch "))
            .collect();
        for line in &ours {
            if is_step(line, "parse") {
                p.parse += 1;
            } else if is_step(line, "bind") {
                p.bind += 1;
                p.bind_ms.extend(logged_ms(line));
            } else if is_step(line, "execute") {
                p.execute += 1;
                p.execute_ms.extend(logged_ms(line));
            } else if line.contains("statement: SELECT json_build_object(") {
                p.simple_poll += 1;
            } else if let Some((_, text)) = line.split_once("statement: ") {
                p.simple_other.push(text.to_string());
            } else {
                p.other += 1;
            }
        }
        p.shapes = wire::shapes(&flights);
        let client_flights = flights
            .iter()
            .filter(|f| f.dir == wire::Dir::ToServer)
            .collect::<Vec<_>>();
        p.bind_flights = client_flights
            .iter()
            .filter(|f| f.messages.iter().any(|m| m == "B"))
            .count();
        p.parse_flights = client_flights
            .iter()
            .filter(|f| f.messages.iter().any(|m| m == "P"))
            .count();
        println!(
            "- {:>4} clients, {polls} polls. Server log of role poolwatch: {} `parse`, {} `bind`, \
             {} `execute` line(s) of the poll SQL; {} simple-protocol poll statement(s); other \
             simple-protocol statements: {:?}; {} other line(s). Client round trip (through the \
             proxy): {}",
            side.clients,
            p.parse,
            p.bind,
            p.execute,
            p.simple_poll,
            p.simple_other,
            p.other,
            Summary::of_durations_ms(&p.round_trips)
        );
        println!(
            "  Wire: {} client flight(s) with a Bind for {polls} polls ({:.2} round trip(s) per \
             poll), {} with a Parse. Client flight -> server answer, count:",
            p.bind_flights,
            p.bind_flights as f64 / polls as f64,
            p.parse_flights
        );
        for ((client, server), n) in &p.shapes {
            println!("    [{client}] -> [{server}]: {n}");
        }
        side.pg
            .exec("ALTER ROLE poolwatch RESET log_min_duration_statement")
            .await;
    }
}

/// What the scaling phase runs at each step, cheapest first. The second and third differ only
/// in the per-backend function: `pg_stat_get_backend_dbid` reads the local status copy, while
/// `pg_stat_get_backend_wait_event_type` also looks the backend's PGPROC up by pid, which
/// `pg_stat_get_activity` does for every row too (`BackendPidGetProc`, a linear scan of the
/// process array under `ProcArrayLock`).
const SCALING_PROBES: [(&str, &str); 5] = [
    (
        "status snapshot (`count(*)` of `pg_stat_get_backend_idset()`)",
        "SELECT count(*) FROM pg_stat_get_backend_idset()",
    ),
    (
        "+ `pg_stat_get_backend_dbid(id)` per backend",
        "SELECT count(pg_stat_get_backend_dbid(b)) FROM pg_stat_get_backend_idset() b",
    ),
    (
        "+ `pg_stat_get_backend_wait_event_type(id)` per backend (PGPROC lookup by pid)",
        "SELECT count(pg_stat_get_backend_wait_event_type(b)) FROM pg_stat_get_backend_idset() b",
    ),
    (
        "`count(*)` of `pg_stat_get_activity(NULL)`",
        "SELECT count(*) FROM pg_stat_get_activity(NULL)",
    ),
    ("poll SQL (current)", POLL_SQL),
];

/// Client counts of the scaling steps (the smallest cluster is grown).
const SCALING_STEPS: [usize; 6] = [10, 100, 250, 500, 750, 1000];

/// Grows the smallest cluster step by step with idle clients and measures the
/// [`SCALING_PROBES`] at each step (`EXPLAIN (ANALYZE, TIMING OFF)`, every probe once per
/// round), to tell a per-backend cost that is constant from one that grows with the number of
/// backends.
async fn scaling_phase(side: &Side, clients: &mut Clients, rounds: usize) {
    println!(
        "\n### Scaling of the floor: execution (EXPLAIN ANALYZE, TIMING OFF) as the {}-client \
         cluster is grown with idle clients, {rounds} rounds per step (ms, min / p50)\n",
        side.clients
    );
    let url = side.pg.url_with_password("poolwatch", PASSWORD, "postgres");
    let mut header = String::from("| client backends |");
    let mut rule = String::from("|---:|");
    for (label, _) in &SCALING_PROBES {
        header.push_str(&format!(" {label} |"));
        rule.push_str("---:|");
    }
    println!("{header}\n{rule}");
    // Per step: the client count and the cost of each component (ms).
    let mut parts: Vec<(usize, [f64; 5])> = Vec::new();
    for &n in SCALING_STEPS.iter().filter(|&&n| n >= side.clients) {
        clients.grow_to(&side.pg, n).await;
        let n = clients.len();
        // A fresh session per step: its status snapshot and caches start the same way.
        let client = crate::common::pg::connect(&url)
            .await
            .expect("scaling session");
        let mut times = vec![Vec::new(); SCALING_PROBES.len()];
        for i in 0..rounds + 5 {
            for (p, (_, sql)) in SCALING_PROBES.iter().enumerate() {
                let (_, execution) = explain(&client, "TIMING OFF", sql).await;
                if i >= 5 {
                    times[p].push(execution);
                }
            }
        }
        let mut row = format!("| {n} |");
        for t in &times {
            let s = Summary::new(t.clone());
            row.push_str(&format!(" {:.3} / {:.3} |", s.min(), s.median()));
        }
        println!("{row}");
        // Each component is the median over rounds of the difference between two probes of
        // the same round, which cancels most of the noise that moves whole rounds.
        let part = |a: Option<usize>, b: usize| {
            let diffs: Vec<f64> = (0..times[b].len())
                .map(|r| times[b][r] - a.map_or(0.0, |a| times[a][r]))
                .collect();
            Summary::new(diffs).median()
        };
        parts.push((
            n,
            [
                part(None, 0),
                part(Some(0), 1),
                part(Some(1), 2),
                part(Some(2), 3),
                part(Some(3), 4),
            ],
        ));
    }
    println!(
        "\nThe same, split into components (ms; each the median over rounds of the difference \
         between two probes of the same round). A cost linear in the backends doubles from 500 \
         to 1000; a quadratic one quadruples:\n"
    );
    println!(
        "| client backends | status snapshot | `pg_stat_get_backend_dbid` call (control) | PGPROC \
         lookup by pid | rest of a `pg_stat_get_activity` row | poll SQL above `pg_stat_get_activity` |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for (n, p) in &parts {
        println!(
            "| {n} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            p[0], p[1], p[2], p[3], p[4]
        );
    }
}

fn first_cell(msgs: &[SimpleQueryMessage]) -> String {
    msgs.iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .expect("one row")
}

fn report(sides: &[Side], answers: &[(usize, Duration)], plan: &Plan) {
    println!("\n### Results (milliseconds)\n");
    println!(
        "| clients | client round trip p50 | p95 | p99 | pg_stat_statements calls / polls | plans | \
         server planning per call | server execution mean (pg_stat_statements) | min | \
         execution (EXPLAIN ANALYZE, TIMING ON) p50 | p95 | execute (server log) p50 | p95 | \
         bind (server log) p50 | answer | parsing it into pools |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for (side, (bytes, parse)) in sides.iter().zip(answers) {
        let rt = Summary::of_durations_ms(&side.round_trips);
        let exec = Summary::new(side.execution_ms.clone());
        let logged = Summary::new(side.protocol.execute_ms.clone());
        let bind = Summary::new(side.protocol.bind_ms.clone());
        let pgss = side.pgss.clone().unwrap_or(Pgss {
            calls: 0,
            plans: 0,
            total_plan_ms: f64::NAN,
            mean_exec_ms: f64::NAN,
            min_exec_ms: f64::NAN,
            max_exec_ms: f64::NAN,
            stddev_exec_ms: f64::NAN,
            query: String::new(),
        });
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {} / {} | {} | {:.4} | {:.3} | {:.3} | {:.3} | {:.3} | \
             {:.3} | {:.3} | {:.3} | {bytes} B | {:.3} |",
            side.clients,
            rt.median(),
            rt.pct(95.0),
            rt.pct(99.0),
            side.pgss_calls,
            plan.polls,
            pgss.plans,
            pgss.plan_per_call_ms(),
            pgss.mean_exec_ms,
            pgss.min_exec_ms,
            exec.median(),
            exec.pct(95.0),
            logged.median(),
            logged.pct(95.0),
            bind.median(),
            parse.as_secs_f64() * 1e3,
        );
        rows.push((rt, exec, logged, pgss));
    }
    println!(
        "\n(n = {} timed polls, {} EXPLAIN runs, {} logged polls per cluster)",
        plan.polls, plan.explains, plan.logged_polls
    );
    for (side, (rt, exec, logged, _)) in sides.iter().zip(&rows) {
        println!(
            "- {:>4} clients, client round trip (ms): {rt}\n       EXPLAIN execution (ms): {exec}\n       logged execute (ms): {logged}",
            side.clients
        );
    }
    let protocol_ok = sides.iter().all(|s| {
        let p = &s.protocol;
        s.pgss_statements == 1
            && s.pgss_calls == plan.polls as i64
            && s.pgss.as_ref().is_some_and(|r| r.plans == 0)
            && p.parse == 1
            && p.bind == plan.logged_polls
            && p.execute == plan.logged_polls
            && p.simple_poll == 0
            && p.bind_flights == plan.logged_polls
            && p.parse_flights == 1
    });
    println!(
        "- protocol: {} (expected per cluster: 1 statement and {} calls with 0 plans in \
         pg_stat_statements; 1 parse at connect, then {} bind + {} execute and no simple-protocol \
         poll in the server log; {} client flights with a Bind, 1 with a Parse on the wire)",
        if protocol_ok {
            "AS EXPECTED"
        } else {
            "UNEXPECTED, see above"
        },
        plan.polls,
        plan.logged_polls,
        plan.logged_polls,
        plan.logged_polls
    );
    if let [(rt_small, exec_small, log_small, pgss_small), (rt_big, exec_big, log_big, pgss_big)] =
        &rows[..]
    {
        println!(
            "- ratio 1000/10 clients: client round trip p50 x{:.1}, p95 x{:.1}; server execution \
             (pg_stat_statements mean) x{:.1}, min x{:.1}; EXPLAIN execution p50 x{:.1}; logged \
             execute p50 x{:.1}",
            rt_big.median() / rt_small.median(),
            rt_big.pct(95.0) / rt_small.pct(95.0),
            pgss_big.mean_exec_ms / pgss_small.mean_exec_ms,
            pgss_big.min_exec_ms / pgss_small.min_exec_ms,
            exec_big.median() / exec_small.median(),
            log_big.median() / log_small.median()
        );
        let met = pgss_big.mean_exec_ms + pgss_big.plan_per_call_ms() < 1.0
            && log_big.median() < 1.0
            && rt_big.median() < 1.0;
        println!(
            "- target \"under a millisecond with 1,000 clients\": {} (server execution mean {:.3} ms, \
             min {:.3} ms; logged execute p50 {:.3} ms; client round trip p50 {:.3} ms)",
            if met { "MET" } else { "MISSED" },
            pgss_big.mean_exec_ms,
            pgss_big.min_exec_ms,
            log_big.median(),
            rt_big.median()
        );
    }
}
