//! Test fixtures shared by the rules and alert tests: pool snapshots and reports without a
//! database.

use crate::model::{
    ErrorClass, Holder, Holders, PgSessions, PollData, PollError, PoolId, PoolSnapshot,
    TargetReport,
};
use crate::source::postgres::pools::{ROLE, SERVER};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// `secs` seconds after a fixed moment in 2023: test time, driven by hand.
pub(crate) fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

/// A label set from pairs.
pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A server pool of `target` with `capacity` usable slots and `in_use` taken.
pub(crate) fn pool(target: &str, capacity: u64, in_use: u64) -> PoolSnapshot {
    PoolSnapshot {
        postgres: Some(PgSessions::default()),
        ..PoolSnapshot::new(
            PoolId {
                target: target.into(),
                kind: SERVER,
                name: "server".into(),
            },
            capacity,
            in_use,
        )
    }
}

/// A role pool of `target`.
pub(crate) fn role_pool(target: &str, role: &str, capacity: u64, in_use: u64) -> PoolSnapshot {
    let mut p = pool(target, capacity, in_use);
    p.id.kind = ROLE;
    p.id.name = role.into();
    p.parent = Some((SERVER, "server".into()));
    p.capacity_note = format!("rolconnlimit {capacity}");
    p
}

fn holder(name: &str, connections: u64, idle_in_transaction: u64) -> Holder {
    Holder {
        name: name.into(),
        connections,
        idle_in_transaction,
    }
}

/// Incident 1: `orders-db`, 97 usable slots of `max_connections` 100, all taken, mostly by
/// django with 12 sessions idle in transaction for 4 minutes.
pub(crate) fn incident_one() -> PoolSnapshot {
    let mut p = pool("orders-db", 97, 97);
    p.idle = 3;
    p.postgres = Some(PgSessions {
        by_state: BTreeMap::from([("idle".into(), 3), ("idle in transaction".into(), 12)]),
        idle_in_transaction: 12,
        oldest_idle_in_transaction: Some(Duration::from_secs(240)),
        holders: Holders {
            roles: vec![holder("app", 95, 12), holder("postgres", 2, 0)],
            databases: vec![holder("orders", 97, 12)],
            applications: vec![holder("django", 91, 12), holder("celery", 4, 0)],
        },
        ..PgSessions::default()
    });
    p.capacity_note = "max_connections 100, 3 reserved".into();
    p
}

/// A successful poll of `target` at `at` seeing `pools`.
pub(crate) fn up(target: &str, at: SystemTime, pools: Vec<PoolSnapshot>) -> TargetReport {
    TargetReport {
        target: target.into(),
        at,
        duration: Duration::from_millis(3),
        outcome: Ok(std::sync::Arc::new(PollData {
            pools,
            ..PollData::default()
        })),
    }
}

/// A failed poll of `target` at `at`.
pub(crate) fn failed(target: &str, at: SystemTime, class: ErrorClass) -> TargetReport {
    let message = match class {
        ErrorClass::TooManyConnections => "sorry, too many clients already".to_string(),
        other => format!("{other} failure"),
    };
    TargetReport {
        target: target.into(),
        at,
        duration: Duration::from_millis(3),
        outcome: Err(PollError { class, message }),
    }
}
