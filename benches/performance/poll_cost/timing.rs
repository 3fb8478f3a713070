//! Phases 1 and 2 of the poll benchmark: the library's polls timed on the client, alternating
//! the clusters, with `pg_stat_statements` over exactly those polls; then the current poll
//! alternated with the previous one, for a same-run ratio.

use std::time::Duration;

use crate::clients::PASSWORD;
use crate::common::PgCluster;
use crate::stats::Summary;

use super::{connect, timed_poll, timed_previous_poll, Pgss, Side, WARM_UP};

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

/// Which is the previous poll SQL ([`super::PREVIOUS_POLL_SQL`]).
fn is_previous(query: &str) -> bool {
    query.contains("FROM pg_stat_activity")
}

/// Alternating polls on both clusters, then pg_stat_statements for the statements they ran.
pub(super) async fn timing_phase(sides: &mut [Side], polls: usize) {
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
pub(super) async fn comparison_phase(sides: &mut [Side], polls: usize) {
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
