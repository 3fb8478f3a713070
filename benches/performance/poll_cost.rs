//! Benchmark 1: the cost of one poll with 10 and with 1,000 connected clients.
//!
//! Two clusters with the same settings (`max_connections = 1100`) run side by side, one with 10
//! clients and one with 1,000, and the polls alternate between them, so that both see the same
//! machine noise and their ratio is meaningful within one run.

use std::path::Path;
use std::time::{Duration, Instant};

use poolwatch::config::target::TargetSettings;
use poolwatch::model::PoolKind;
use poolwatch::source::postgres::{self, query::POLL_SQL, PgConn};
use tokio_postgres::SimpleQueryMessage;

use crate::clients::{self, Clients, PASSWORD};
use crate::common::{PgCluster, PgOptions};
use crate::stats::Summary;

/// Client counts of the two clusters.
const SIZES: [usize; 2] = [10, 1000];

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Timed polls per cluster.
    pub polls: usize,
    /// `EXPLAIN ANALYZE` runs per cluster.
    pub explains: usize,
    /// Polls per cluster with every statement logged (protocol check).
    pub logged_polls: usize,
}

/// One cluster and what was measured on it.
struct Side {
    clients: usize,
    pg: PgCluster,
    settings: TargetSettings,
    round_trips: Vec<Duration>,
    planning_ms: Vec<f64>,
    execution_ms: Vec<f64>,
    logged_ms: Vec<f64>,
    /// pg_stat_statements over the timed polls: mean planning and execution time (ms).
    pgss_mean_ms: (f64, f64),
}

/// A `TargetSettings` for `pg`, made the way the daemon makes them: from TOML.
pub fn target_settings(name: &str, pg: &PgCluster, extra: &str) -> TargetSettings {
    let toml = format!(
        "[[targets]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"poolwatch\"\n\
         password = \"{PASSWORD}\"\nsslmode = \"disable\"\n{extra}\n",
        pg.port()
    );
    let mut config = poolwatch::config::parse(Path::new("bench.toml"), &toml)
        .unwrap_or_else(|problems| panic!("bench config: {problems:?}"));
    config.targets.remove(0)
}

async fn connect(s: &TargetSettings) -> PgConn {
    postgres::connect(s, None)
        .await
        .unwrap_or_else(|e| panic!("poolwatch connect to {}: {}", s.endpoint, e.message))
}

/// One poll, timed on the client: query round trip plus JSON parsing into pools.
async fn timed_poll(conn: &PgConn, s: &TargetSettings, expect_in_use: u64) -> Duration {
    let started = Instant::now();
    let data = postgres::poll(conn, s).await;
    let took = started.elapsed();
    let data = data.unwrap_or_else(|e| panic!("poll {}: {}", s.name, e.message));
    let server = data
        .pools
        .iter()
        .find(|p| p.id.kind == PoolKind::Server)
        .expect("server pool");
    assert_eq!(
        server.in_use, expect_in_use,
        "{}: poll counts {} clients, {} are connected",
        s.name, server.in_use, expect_in_use
    );
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
            planning_ms: Vec::new(),
            execution_ms: Vec::new(),
            logged_ms: Vec::new(),
            pgss_mean_ms: (f64::NAN, f64::NAN),
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
    let answers = explain_phase(&mut sides, plan.explains).await;
    protocol_phase(&mut sides, plan.logged_polls).await;
    report(&sides, &answers, &plan);
    drop(held);
    println!("(section took {:.0?})", started.elapsed());
}

/// Alternating polls on both clusters, then pg_stat_statements for the statements they ran.
async fn timing_phase(sides: &mut [Side], polls: usize) {
    let mut conns = Vec::new();
    for side in sides.iter() {
        conns.push(connect(&side.settings).await);
    }
    for _ in 0..30 {
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
    println!("(server-side, per statement; reset after the 30 warm-up polls)");
    for side in sides.iter_mut() {
        let rows = side
            .pg
            .query(
                "SELECT calls, mean_plan_time, mean_exec_time, min_exec_time, max_exec_time, \
                        stddev_exec_time, left(query, 40) \
                   FROM pg_stat_statements WHERE userid = 'poolwatch'::regrole",
            )
            .await;
        let statements = rows.len();
        let calls: i64 = rows.iter().map(|r| r.get::<_, i64>(0)).sum();
        println!(
            "- {:>4} clients: {statements} distinct statement(s), {calls} call(s) for {polls} polls \
             => {:.2} statement(s) per poll",
            side.clients,
            calls as f64 / polls as f64
        );
        if let [r] = &rows[..] {
            side.pgss_mean_ms = (r.get(1), r.get(2));
        }
        for r in &rows {
            println!(
                "  calls={} plan mean={:.3} ms, exec mean={:.3} ms (min {:.3}, max {:.3}, \
                 stddev {:.3}); query: {:?}...",
                r.get::<_, i64>(0),
                r.get::<_, f64>(1),
                r.get::<_, f64>(2),
                r.get::<_, f64>(3),
                r.get::<_, f64>(4),
                r.get::<_, f64>(5),
                r.get::<_, String>(6)
            );
        }
    }
}

/// What the explain phase runs, besides the poll SQL with per-node timing: the poll SQL and
/// two floors (the cheapest reads of every backend's status) without per-node timing.
const PROBES: [(&str, &str); 4] = [
    ("poll SQL", POLL_SQL),
    (
        "variant: group by oid first, names after (not poolwatch's query)",
        VARIANT_SQL,
    ),
    (
        "SELECT count(*) FROM pg_stat_activity",
        "SELECT count(*) FROM pg_stat_activity",
    ),
    (
        "SELECT count(*) FROM pg_stat_get_activity(NULL)",
        "SELECT count(*) FROM pg_stat_get_activity(NULL)",
    ),
];

/// An illustration of how much of the poll's cost is the query's shape rather than reading the
/// backends: the same answer, aggregated straight from `pg_stat_get_activity(NULL)` by database
/// and role oid, with names joined to the few groups afterwards (no per-row joins, no sort on
/// text keys). Checked against the poll SQL's answer in [`explain_phase`].
const VARIANT_SQL: &str = r#"SELECT json_build_object(
  'version_num', current_setting('server_version_num')::int,
  'max_connections', current_setting('max_connections')::int,
  'superuser_reserved', current_setting('superuser_reserved_connections')::int,
  'reserved', COALESCE(current_setting('reserved_connections', true), '0')::int,
  'groups', COALESCE((SELECT json_agg(g) FROM (
      SELECT d.datname AS db, r.rolname AS role, a.app, a.state, a.n, a.oldest_xact,
             a.oldest_iit, a.lock_waiting
        FROM (SELECT datid, usesysid, application_name AS app,
                     COALESCE(state, 'unknown') AS state, count(*) AS n,
                     max(extract(epoch FROM clock_timestamp() - xact_start))::float8 AS oldest_xact,
                     (max(extract(epoch FROM clock_timestamp() - state_change))
                        FILTER (WHERE state LIKE 'idle in transaction%'))::float8 AS oldest_iit,
                     count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_waiting
                FROM pg_stat_get_activity(NULL)
               WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
               GROUP BY 1, 2, 3, 4) a
        LEFT JOIN pg_database d ON d.oid = a.datid
        LEFT JOIN pg_roles r ON r.oid = a.usesysid) g), '[]'::json),
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

/// `EXPLAIN (ANALYZE, TIMING ON)` of the poll SQL, alternating clusters, then the [`PROBES`]
/// with `TIMING OFF`, and one text plan of the largest cluster. Returns the size of the
/// query's answer (bytes of JSON) and the time to parse it into pools, per cluster.
async fn explain_phase(sides: &mut [Side], runs: usize) -> Vec<(usize, Duration)> {
    // Run as poolwatch's own role so the privileges match; this session excludes itself from
    // the counts, exactly as the monitoring connection does.
    let mut clients = Vec::new();
    for side in sides.iter() {
        let url = side.pg.url_with_password("poolwatch", PASSWORD, "postgres");
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
    let mut times = vec![vec![(Vec::new(), Vec::new()); sides.len()]; PROBES.len()];
    for i in 0..runs + 5 {
        for (p, (_, sql)) in PROBES.iter().enumerate() {
            for (k, client) in clients.iter().enumerate() {
                let (planning, execution) = explain(client, "TIMING OFF", sql).await;
                if i >= 5 {
                    times[p][k].0.push(planning);
                    times[p][k].1.push(execution);
                }
            }
        }
    }
    for ((label, _), per_cluster) in PROBES.iter().zip(times) {
        for (side, (planning, execution)) in sides.iter().zip(per_cluster) {
            let execution = Summary::new(execution);
            println!(
                "| {label} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
                side.clients,
                Summary::new(planning).median(),
                execution.min(),
                execution.median(),
                execution.pct(95.0)
            );
        }
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
        let variant = first_cell(&clients[k].simple_query(VARIANT_SQL).await.expect("variant"));
        let same = group_keys(&json) == group_keys(&variant);
        println!(
            "- {} clients: the variant's groups {} the poll SQL's ({} groups)",
            side.clients,
            if same { "equal" } else { "DIFFER FROM" },
            group_keys(&json).len()
        );
        let reps = 200;
        let t = Instant::now();
        for _ in 0..reps {
            let data = postgres::query::parse(&side.settings.name, &json).expect("parse");
            std::hint::black_box(data);
        }
        answers.push((json.len(), t.elapsed() / reps));
    }
    answers
}

/// With `log_min_duration_statement = 0` for role poolwatch only: a fresh monitoring
/// connection polls, and the server log shows what each poll sent.
async fn protocol_phase(sides: &mut [Side], polls: usize) {
    println!(
        "\n### Protocol check: server log of role poolwatch with log_min_duration_statement = 0"
    );
    for side in sides.iter_mut() {
        side.pg
            .exec("ALTER ROLE poolwatch SET log_min_duration_statement = 0")
            .await;
        let conn = connect(&side.settings).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let offset = side.pg.server_log().len();
        let mut round_trips = Vec::new();
        for _ in 0..polls {
            round_trips.push(timed_poll(&conn, &side.settings, side.clients as u64).await);
        }
        drop(conn);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let log = side.pg.server_log();
        let ours: Vec<&str> = log[offset..]
            .lines()
            .filter(|l| l.contains(" poolwatch@postgres/poolwatch "))
            .collect();
        let simple = ours
            .iter()
            .filter(|l| l.contains("statement: SELECT json_build_object("))
            .count();
        let extended = ours
            .iter()
            .filter(|l| {
                ["parse <", "bind <", "execute <"]
                    .iter()
                    .any(|k| l.contains(k))
            })
            .count();
        side.logged_ms = ours
            .iter()
            .filter(|l| l.contains("statement: SELECT json_build_object("))
            .filter_map(|l| {
                let rest = l.split("duration: ").nth(1)?;
                rest.split(" ms").next()?.parse::<f64>().ok()
            })
            .collect();
        let other = ours.len() - simple - extended;
        println!(
            "- {:>4} clients: {polls} polls -> {simple} simple-protocol statement(s) `SELECT \
             json_build_object(...)`, {extended} extended-protocol (parse/bind/execute) line(s), \
             {other} other line(s) of role poolwatch; client round trip meanwhile: {}",
            side.clients,
            Summary::of_durations_ms(&round_trips)
        );
        side.pg
            .exec("ALTER ROLE poolwatch RESET log_min_duration_statement")
            .await;
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
        "| clients | client round trip p50 | p95 | p99 | server planning (pg_stat_statements mean) | \
         server execution (pg_stat_statements mean) | execution (EXPLAIN ANALYZE, TIMING ON) p50 | p95 | \
         whole statement (server log) p50 | p95 | answer | parsing it into pools |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for (side, (bytes, parse)) in sides.iter().zip(answers) {
        let rt = Summary::of_durations_ms(&side.round_trips);
        let exec = Summary::new(side.execution_ms.clone());
        let logged = Summary::new(side.logged_ms.clone());
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {bytes} B | {:.3} |",
            side.clients,
            rt.median(),
            rt.pct(95.0),
            rt.pct(99.0),
            side.pgss_mean_ms.0,
            side.pgss_mean_ms.1,
            exec.median(),
            exec.pct(95.0),
            logged.median(),
            logged.pct(95.0),
            parse.as_secs_f64() * 1e3,
        );
        rows.push((rt, exec, logged, side.pgss_mean_ms));
    }
    println!(
        "\n(n = {} timed polls, {} EXPLAIN runs, {} logged polls per cluster)",
        plan.polls, plan.explains, plan.logged_polls
    );
    for (side, (rt, exec, logged, _)) in sides.iter().zip(&rows) {
        println!(
            "- {:>4} clients, client round trip (ms): {rt}\n       EXPLAIN execution (ms): {exec}\n       logged statement (ms): {logged}",
            side.clients
        );
    }
    if let [(rt_small, exec_small, log_small, pgss_small), (rt_big, exec_big, log_big, pgss_big)] =
        &rows[..]
    {
        println!(
            "- ratio 1000/10 clients: client round trip p50 x{:.1}, p95 x{:.1}; server execution \
             (pg_stat_statements mean) x{:.1}; EXPLAIN execution p50 x{:.1}; whole statement p50 x{:.1}",
            rt_big.median() / rt_small.median(),
            rt_big.pct(95.0) / rt_small.pct(95.0),
            pgss_big.1 / pgss_small.1,
            exec_big.median() / exec_small.median(),
            log_big.median() / log_small.median()
        );
        let met = pgss_big.1 < 1.0 && log_big.median() < 1.0;
        println!(
            "- target \"under a millisecond with 1,000 clients\": {} (server execution mean {:.3} ms, \
             whole statement p50 {:.3} ms, client round trip p50 {:.3} ms)",
            if met { "MET" } else { "MISSED" },
            pgss_big.1,
            log_big.median(),
            rt_big.median()
        );
    }
}
