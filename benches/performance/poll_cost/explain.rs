//! Phase 3 of the poll benchmark: `EXPLAIN ANALYZE` of the poll SQL with per-node timing, then
//! of the current and previous SQL and of the floors (the cheapest reads of every backend's
//! status) without it.

use std::time::{Duration, Instant};

use poolwatch::source::postgres::{self, query::POLL_SQL};
use tokio_postgres::SimpleQueryMessage;

use crate::clients::PASSWORD;
use crate::stats::Summary;

use super::{first_cell, Side, PREVIOUS_POLL_SQL};

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
pub(super) async fn explain(
    client: &tokio_postgres::Client,
    options: &str,
    sql: &str,
) -> (f64, f64) {
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
pub(super) async fn explain_phase(sides: &mut [Side], runs: usize) -> Vec<(usize, Duration)> {
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
