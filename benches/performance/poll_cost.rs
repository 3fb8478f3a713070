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
//!
//! # Layout
//!
//! * this file — the run ([`run`]), the clusters ([`Side`]) and what every phase shares: the
//!   target settings, one timed poll (current and previous), [`PREVIOUS_POLL_SQL`];
//! * [`timing`] — phases 1 and 2, and the `pg_stat_statements` rows they read;
//! * [`explain`] — phase 3;
//! * [`protocol`] — phase 4;
//! * [`scaling`] — phase 5;
//! * [`report`] — the results table of phases 1 to 4.

mod explain;
mod protocol;
mod report;
mod scaling;
mod timing;

use std::path::Path;
use std::time::{Duration, Instant};

use poolwatch::source::postgres::config::PgSettings as TargetSettings;
use poolwatch::source::postgres::{self, PgConn};
use poolwatch::source::target::SourceSettings;
use tokio_postgres::SimpleQueryMessage;

use crate::clients::{self, Clients, PASSWORD};
use crate::common::{PgCluster, PgOptions};

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

/// poolwatch's own monitoring connection to `s` (panics when it fails).
async fn connect(s: &TargetSettings) -> PgConn {
    postgres::connect(s, None)
        .await
        .unwrap_or_else(|e| panic!("poolwatch connect to {}: {}", s.conn.endpoint, e.message))
}

/// Checks that a poll of `name` counts `expect` sessions in use on the server.
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

    timing::timing_phase(&mut sides, plan.polls).await;
    timing::comparison_phase(&mut sides, plan.polls).await;
    let answers = explain::explain_phase(&mut sides, plan.explains).await;
    protocol::protocol_phase(&mut sides, plan.logged_polls).await;
    report::report(&sides, &answers, &plan);
    if let (Some(side), Some(clients)) = (sides.first(), held.first_mut()) {
        scaling::scaling_phase(side, clients, plan.scaling_rounds).await;
    }
    drop(held);
    println!("(section took {:.0?})", started.elapsed());
}

/// The monitoring query as it was before c8c6c53 (the parent of that commit,
/// `src/source/postgres/query.rs`), kept as a reference: it reads the `pg_stat_activity` view,
/// which joins `pg_database` and `pg_authid` for every backend, and groups on the names. Its
/// answer has the same shape; [`explain::explain_phase`] checks that its groups equal the current ones.
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

/// The first column of the first row of a simple-protocol answer (panics when there is none).
fn first_cell(msgs: &[SimpleQueryMessage]) -> String {
    msgs.iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .expect("one row")
}
