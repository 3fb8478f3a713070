//! Scenarios of pools and targets other than PostgreSQL's: a target that answers but refuses
//! clients, and pools that queue.

use super::*;
use crate::model::ErrorClass;
use crate::rules::fixtures::{pool, up};

/// One server pool of target `db` with capacity 100 and `in_use` taken.
fn db(secs: u64, in_use: u64) -> TargetReport {
    up("db", t(secs), vec![pool("db", 100, in_use)])
}

fn with_pools(secs: u64, pools: Vec<crate::model::PoolSnapshot>) -> TargetReport {
    up("db", t(secs), pools)
}

const FULL_FIRED: &str = "fired PoolNearFull/critical@db:server";
const FULL_RESOLVED: &str = "resolved PoolNearFull/critical@db:server";

#[test]
fn a_target_polled_but_refusing_clients_is_saturated_and_its_pools_are_evaluated() {
    let mut e = engine();
    let refusing = |secs: u64, in_use: u64| {
        let mut r = db(secs, in_use);
        if let Ok(data) = &mut r.outcome {
            std::sync::Arc::make_mut(data).refusing = Some(crate::model::PollError {
                class: ErrorClass::TooManyConnections,
                message: "max_client_conn 100 reached".into(),
            });
        }
        r
    };
    run(
        &mut e,
        vec![
            (
                0,
                refusing(0, 100),
                vec![
                    "fired PoolExhausted/critical@db:server",
                    "fired TargetSaturated/critical@db",
                ],
            ),
            // Not frozen: the pools are seen, and their rules run.
            (15, refusing(15, 100), vec![FULL_FIRED]),
            (
                20,
                db(20, 10),
                vec![
                    "resolved PoolExhausted/critical@db:server",
                    FULL_RESOLVED,
                    "resolved TargetSaturated/critical@db",
                ],
            ),
        ],
    );
}

#[test]
fn a_long_wait_in_a_queueing_pool_warns_and_postgres_pools_never_do() {
    let mut e = engine();
    let queue = |secs: u64, waiting: u64, wait_ms: u64| {
        let mut p = pool("db", 5, 5);
        p.id.kind = crate::source::pgbouncer::pools::POOL;
        p.id.name = "app/app".into();
        p.postgres = None;
        p.waiting = waiting;
        p.longest_wait = Some(std::time::Duration::from_millis(wait_ms));
        with_pools(secs, vec![p])
    };
    let waiting = "fired PoolClientsWaiting/critical@db:app/app";
    let long = "fired PoolLongestWait/warning@db:app/app";
    run(
        &mut e,
        vec![
            (0, queue(0, 0, 0), vec![]),
            (1, queue(1, 3, 250), vec![waiting]),
            (2, queue(2, 3, 1_200), vec![long]),
            // Hysteresis: still above the 0.5 s clear value.
            (3, queue(3, 2, 600), vec![]),
            (
                4,
                queue(4, 0, 0),
                vec![
                    "resolved PoolClientsWaiting/critical@db:app/app",
                    "resolved PoolLongestWait/warning@db:app/app",
                ],
            ),
        ],
    );
    // A cold pool: clients wait for connections being opened, with slots free. Not a page.
    let mut cold = engine();
    let opening = |secs: u64, in_use: u64, waiting: u64| {
        let mut r = queue(secs, waiting, 20);
        if let Ok(data) = &mut r.outcome {
            std::sync::Arc::make_mut(data).pools[0].in_use = in_use;
        }
        r
    };
    run(
        &mut cold,
        vec![
            (0, opening(0, 0, 1), vec![]),
            (1, opening(1, 3, 2), vec![]),
            // Full with clients left over: now it is a queue.
            (2, opening(2, 5, 2), vec![waiting]),
        ],
    );
    // PostgreSQL never queues: no wait, no rule, whatever else happens.
    let mut pg = engine();
    run(&mut pg, vec![(0, db(0, 50), vec![])]);
    assert!(pg.alerts().is_empty());
}
