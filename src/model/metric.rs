//! The numbers of a pool, in one table: what a threshold rule can compare ([`PoolMetric`]) and
//! what `/metrics` exports per pool ([`POOL_FAMILIES`]) read the model through the same
//! accessors, so a rule and a dashboard never disagree on what a number means. A number a
//! source does not report (PostgreSQL's idle-in-transaction count for a PgBouncer pool, a wait
//! time PostgreSQL never has) is absent: no series, and rules on it never fire.

use super::PoolSnapshot;
use serde::Deserialize;
use std::time::Duration;

/// A pool metric a threshold rule can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolMetric {
    /// `in_use / capacity`, 0–1.
    Utilization,
    /// Connections taken out of capacity.
    InUse,
    /// Open connections doing no work.
    Idle,
    /// Clients queued for a connection.
    Waiting,
    /// Clients waiting that no free slot can serve: `waiting − free`, at least 0. Clients of a
    /// pool that still has room wait only for connections being opened (a cold PgBouncer pool,
    /// an application pool growing to its maximum); this counts those that wait because the
    /// pool is full. A pool summed over application instances sums each instance's.
    Queued,
    /// `capacity - in_use`.
    Free,
    /// The usable ceiling.
    Capacity,
    /// How long the longest-waiting queued client has waited, seconds (0 when none waits;
    /// sources that can queue: PgBouncer, application pools).
    LongestWaitSeconds,
    /// Sessions idle in transaction (PostgreSQL).
    IdleInTransaction,
    /// Age of the oldest idle-in-transaction session, seconds (0 when none; PostgreSQL).
    OldestIdleInTransactionSeconds,
    /// Age of the oldest open transaction, seconds (0 when none; PostgreSQL).
    OldestTransactionSeconds,
    /// Sessions waiting on a lock (PostgreSQL).
    LockWaiting,
    /// Clients that had to wait for a connection, per second since the previous poll (pools
    /// whose source counts waits: Go's `database/sql`, pgxpool).
    WaitsPerSecond,
    /// Seconds spent waiting per second since the previous poll: the average number of clients
    /// waiting, bursts included (pools whose source counts wait time).
    WaitSecondsPerSecond,
    /// Clients that gave up waiting (acquire timeouts), per second since the previous poll
    /// (pools whose source counts them: HikariCP, OpenTelemetry).
    TimeoutsPerSecond,
    /// Connections the pools linked to this ceiling may open (sizes × instances; ceilings that
    /// something linked draws on: see README "Pool budget").
    BudgetDemand,
    /// `budget_demand − configured capacity`: above 0 the ceiling is over-committed, below 0
    /// it is the headroom.
    BudgetExcess,
}

impl PoolMetric {
    /// Every metric, in declaration order.
    pub const ALL: [PoolMetric; 17] = [
        PoolMetric::Utilization,
        PoolMetric::InUse,
        PoolMetric::Idle,
        PoolMetric::Waiting,
        PoolMetric::Queued,
        PoolMetric::Free,
        PoolMetric::Capacity,
        PoolMetric::LongestWaitSeconds,
        PoolMetric::IdleInTransaction,
        PoolMetric::OldestIdleInTransactionSeconds,
        PoolMetric::OldestTransactionSeconds,
        PoolMetric::LockWaiting,
        PoolMetric::WaitsPerSecond,
        PoolMetric::WaitSecondsPerSecond,
        PoolMetric::TimeoutsPerSecond,
        PoolMetric::BudgetDemand,
        PoolMetric::BudgetExcess,
    ];

    /// The name as written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMetric::Utilization => "utilization",
            PoolMetric::InUse => "in_use",
            PoolMetric::Idle => "idle",
            PoolMetric::Waiting => "waiting",
            PoolMetric::Queued => "queued",
            PoolMetric::Free => "free",
            PoolMetric::Capacity => "capacity",
            PoolMetric::LongestWaitSeconds => "longest_wait_seconds",
            PoolMetric::IdleInTransaction => "idle_in_transaction",
            PoolMetric::OldestIdleInTransactionSeconds => "oldest_idle_in_transaction_seconds",
            PoolMetric::OldestTransactionSeconds => "oldest_transaction_seconds",
            PoolMetric::LockWaiting => "lock_waiting",
            PoolMetric::WaitsPerSecond => "waits_per_second",
            PoolMetric::WaitSecondsPerSecond => "wait_seconds_per_second",
            PoolMetric::TimeoutsPerSecond => "timeouts_per_second",
            PoolMetric::BudgetDemand => "budget_demand",
            PoolMetric::BudgetExcess => "budget_excess",
        }
    }

    /// The metric's value for `pool`; `None` when its source does not report it.
    pub fn value(self, pool: &PoolSnapshot) -> Option<f64> {
        let secs = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64());
        let pg = pool.postgres.as_ref();
        Some(match self {
            PoolMetric::Utilization => pool.utilization(),
            PoolMetric::InUse => pool.in_use as f64,
            PoolMetric::Idle => pool.idle as f64,
            PoolMetric::Waiting => pool.waiting as f64,
            PoolMetric::Queued => pool.queued() as f64,
            PoolMetric::Free => pool.free() as f64,
            PoolMetric::Capacity => pool.capacity as f64,
            PoolMetric::LongestWaitSeconds => pool.longest_wait?.as_secs_f64(),
            PoolMetric::IdleInTransaction => pg?.idle_in_transaction as f64,
            PoolMetric::OldestIdleInTransactionSeconds => secs(pg?.oldest_idle_in_transaction),
            PoolMetric::OldestTransactionSeconds => secs(pg?.oldest_transaction),
            PoolMetric::LockWaiting => pg?.lock_waiting as f64,
            PoolMetric::WaitsPerSecond => pool.rates.waits?,
            PoolMetric::WaitSecondsPerSecond => pool.rates.wait_seconds?,
            PoolMetric::TimeoutsPerSecond => pool.rates.timeouts?,
            PoolMetric::BudgetDemand => pool.budget.as_ref()?.demand as f64,
            PoolMetric::BudgetExcess => {
                pool.budget.as_ref()?.demand as f64 - pool.configured_capacity as f64
            }
        })
    }
}

/// Whether a family is a gauge or a counter (a source's cumulative count, re-exported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyType {
    /// Goes up and down.
    Gauge,
    /// Only goes up, except when the source restarts.
    Counter,
}

/// One per-pool family of `/metrics`: labels `target`, `kind`, `pool`.
pub struct PoolFamily {
    /// The family name.
    pub name: &'static str,
    /// The HELP text.
    pub help: &'static str,
    /// Gauge or counter.
    pub kind: FamilyType,
    /// The value for a pool; `None` leaves the pool out of the family.
    pub value: fn(&PoolSnapshot) -> Option<f64>,
}

/// Every per-pool family, in the order of the exposition.
pub const POOL_FAMILIES: [PoolFamily; 20] = [
    PoolFamily {
        name: "poolwatch_pool_capacity",
        help: "Usable connection limit of the pool.",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::Capacity.value(p),
    },
    // What capacity drops compare (`capacity` also moves with poolwatch's own sessions and a
    // PgBouncer reserve pool in use): `alerts/poolwatch.rules.yml`'s PoolCapacityDropped and the
    // dashboard's capacity-change annotations read it.
    PoolFamily {
        name: "poolwatch_pool_configured_capacity",
        help: "The pool's ceiling as configured (max_connections minus reserved slots, a role's or database's limit, PgBouncer's pool_size); capacity drops compare this one.",
        kind: FamilyType::Gauge,
        value: |p| Some(p.configured_capacity as f64),
    },
    PoolFamily {
        name: "poolwatch_pool_in_use",
        help: "Connections taken out of the pool's capacity (PostgreSQL pools: every client backend, whatever its state).",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::InUse.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_idle",
        help: "Open connections doing no work.",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::Idle.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_waiting",
        help: "Clients queued for a connection.",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::Waiting.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_queued",
        help: "Clients waiting that no free slot can serve (waiting - free, at least 0): the queue of a full pool.",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::Queued.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_utilization_ratio",
        help: "in_use / capacity.",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::Utilization.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_longest_wait_seconds",
        help: "How long the longest-waiting queued client has waited; 0 when none waits (pools that can queue).",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::LongestWaitSeconds.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_waits_total",
        help: "Clients that had to wait for a connection, as counted by the pool's source.",
        kind: FamilyType::Counter,
        value: |p| p.counters.waits.map(|n| n as f64),
    },
    PoolFamily {
        name: "poolwatch_pool_wait_seconds_total",
        help: "Total time clients waited for a connection, as counted by the pool's source.",
        kind: FamilyType::Counter,
        value: |p| p.counters.wait_seconds,
    },
    PoolFamily {
        name: "poolwatch_pool_timeouts_total",
        help: "Clients that gave up waiting for a connection, as counted by the pool's source.",
        kind: FamilyType::Counter,
        value: |p| p.counters.timeouts.map(|n| n as f64),
    },
    // Rates of the counters above since the previous poll, as rules compare them.
    PoolFamily {
        name: "poolwatch_pool_waits_per_second",
        help: "Clients that had to wait for a connection, per second since the previous poll (a counter reset counts from zero).",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::WaitsPerSecond.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_wait_seconds_per_second",
        help: "Seconds clients spent waiting for a connection, per second since the previous poll: the average number waiting.",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::WaitSecondsPerSecond.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_timeouts_per_second",
        help: "Clients that gave up waiting for a connection, per second since the previous poll (a counter reset counts from zero).",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::TimeoutsPerSecond.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_idle_in_transaction",
        help: "Sessions idle in transaction (holding a slot and locks while doing nothing; PostgreSQL pools).",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::IdleInTransaction.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_oldest_idle_in_transaction_seconds",
        help: "Age of the oldest idle-in-transaction session's current state; 0 when there is none (PostgreSQL pools).",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::OldestIdleInTransactionSeconds.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_oldest_transaction_seconds",
        help: "Age of the oldest open transaction; 0 when there is none (PostgreSQL pools).",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::OldestTransactionSeconds.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_lock_waiting",
        help: "Sessions waiting on a lock (PostgreSQL pools).",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::LockWaiting.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_budget_demand",
        help: "Connections the pools linked to this ceiling may open (their sizes x instances; PgBouncer pool sizes); compare with poolwatch_pool_configured_capacity.",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::BudgetDemand.value(p),
    },
    PoolFamily {
        name: "poolwatch_pool_budget_excess",
        help: "poolwatch_pool_budget_demand minus poolwatch_pool_configured_capacity: above 0 the ceiling is over-committed.",
        kind: FamilyType::Gauge,
        value: |p| PoolMetric::BudgetExcess.value(p),
    },
];

#[cfg(test)]
mod tests {
    use super::PoolMetric;
    use serde::Deserialize;

    #[test]
    fn as_str_is_the_config_spelling() {
        for m in PoolMetric::ALL {
            let parsed = PoolMetric::deserialize(serde::de::value::StrDeserializer::<
                serde::de::value::Error,
            >::new(m.as_str()));
            assert_eq!(parsed, Ok(m), "{}", m.as_str());
        }
    }
}
