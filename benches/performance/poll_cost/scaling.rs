//! Phase 5 of the poll benchmark: the 10-client cluster grown step by step to 1,000 idle
//! clients, with the cheapest reads of the backend status and the poll SQL measured at each
//! step.

use poolwatch::source::postgres::query::POLL_SQL;

use crate::clients::{Clients, PASSWORD};
use crate::stats::Summary;

use super::explain::explain;
use super::Side;

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
pub(super) async fn scaling_phase(side: &Side, clients: &mut Clients, rounds: usize) {
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
