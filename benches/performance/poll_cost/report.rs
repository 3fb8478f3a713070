//! The results table of the poll benchmark's phases 1 to 4, with the ratios between the
//! clusters and whether the protocol and the target were as expected.

use std::time::Duration;

use crate::stats::Summary;

use super::{Pgss, Plan, Side};

/// Prints the results table of phases 1 to 4 (`answers`: the poll answer's size and parse
/// time per cluster, from [`super::explain::explain_phase`]), the ratios 1000/10 clients,
/// whether the protocol was as expected and whether the target was met.
pub(super) fn report(sides: &[Side], answers: &[(usize, Duration)], plan: &Plan) {
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
