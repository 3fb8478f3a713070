//! The built-in rules and the default alert texts (firing and resolved). The built-ins are
//! complete [`RuleConfig`]s, every key set, so that `check-config` and the README can show
//! exactly what runs; a `[[rules]]` entry with the same name replaces only the keys it sets.

use super::{predict, Check};
use crate::config::values::HumanDuration;
use crate::model::Severity;
use crate::rules::config::{CmpOp, Condition, PoolMetric, RuleConfig, ThresholdConfig};
use std::collections::BTreeMap;

/// `keep_firing_for` of `PoolExhaustionPredicted`.
pub const PREDICTED_KEEP_FIRING_FOR: HumanDuration = HumanDuration::secs(120);

/// Default `window` of `capacity_dropped`.
pub const DEFAULT_WINDOW: HumanDuration = HumanDuration::secs(3600);

/// What any pool alert's description says: how capacity is derived, and what the pool's source
/// tells beyond it — for PostgreSQL who holds the connections and the idle-in-transaction
/// sessions that often are the real culprit, for a pool that queues its queue.
const POOL_DESCRIPTION: &str = "{{capacity_note}}; {{pool_details}}";

/// The firing and the resolved `summary` of a threshold rule on `metric`.
fn threshold_summaries(metric: PoolMetric) -> (&'static str, &'static str) {
    match metric {
        PoolMetric::Utilization
        | PoolMetric::InUse
        | PoolMetric::Free
        | PoolMetric::Capacity
        | PoolMetric::Idle => (
            "{{subject}}: {{in_use}}/{{capacity}} usable connections in use ({{utilization}})",
            "{{subject}}: {{alertname}} cleared after {{duration}}; \
             {{in_use}}/{{capacity}} usable connections in use ({{utilization}}) now",
        ),
        PoolMetric::Waiting | PoolMetric::Queued => (
            "{{subject}}: {{waiting}} clients waiting for a connection \
             ({{in_use}}/{{capacity}} in use)",
            "{{subject}}: {{alertname}} cleared after {{duration}}; {{waiting}} clients \
             waiting for a connection ({{in_use}}/{{capacity}} in use) now",
        ),
        PoolMetric::LongestWaitSeconds => (
            "{{subject}}: a client has waited {{longest_wait}} for a connection \
             ({{waiting}} waiting, {{in_use}}/{{capacity}} in use)",
            "{{subject}}: {{alertname}} cleared after {{duration}}; longest wait \
             {{longest_wait}}, {{waiting}} waiting now",
        ),
        PoolMetric::IdleInTransaction | PoolMetric::OldestIdleInTransactionSeconds => (
            "{{subject}}: {{idle_in_transaction}} sessions idle in transaction \
             (oldest {{oldest_idle_in_transaction}})",
            "{{subject}}: {{alertname}} cleared after {{duration}}; \
             {{idle_in_transaction}} sessions idle in transaction now",
        ),
        PoolMetric::OldestTransactionSeconds => (
            "{{subject}}: a transaction has been open for {{oldest_transaction}}",
            "{{subject}}: {{alertname}} cleared after {{duration}}",
        ),
        PoolMetric::BudgetDemand | PoolMetric::BudgetExcess => (
            "{{subject}}: the pools linked to it may open {{budget_demand}} connections, \
             over its {{configured_capacity}}",
            "{{subject}}: {{alertname}} cleared after {{duration}}; the pools linked to it \
             may open {{budget_demand}} of its {{configured_capacity}} connections now",
        ),
        PoolMetric::LockWaiting => (
            "{{subject}}: {{lock_waiting}} sessions waiting on a lock",
            "{{subject}}: {{alertname}} cleared after {{duration}}; \
             {{lock_waiting}} sessions waiting on a lock now",
        ),
        PoolMetric::WaitsPerSecond
        | PoolMetric::WaitSecondsPerSecond
        | PoolMetric::TimeoutsPerSecond => (
            "{{subject}}: {{value}} per second ({{waiting}} waiting, \
             {{in_use}}/{{capacity}} in use)",
            "{{subject}}: {{alertname}} cleared after {{duration}}; {{waiting}} waiting, \
             {{in_use}}/{{capacity}} in use now",
        ),
    }
}

/// The default `summary` of a rule that does not set one.
pub fn default_summary(check: &Check) -> &'static str {
    match check {
        Check::Threshold { metric, .. } => threshold_summaries(*metric).0,
        Check::CapacityDropped { .. } => {
            "{{subject}}: capacity fell from {{previous_capacity}} to {{configured_capacity}}"
        }
        Check::TargetSaturated => "{{target}} refuses new connections because it is full",
        Check::TargetDown => "{{target}} cannot be polled ({{error_class}})",
        Check::ExhaustionPredicted(_) => {
            "{{subject}} will be exhausted in ~{{exhausted_in}} at the current rate \
             ({{slope}} connections/min, {{in_use}}/{{capacity}} now)"
        }
    }
}

/// What a budget alert's description says: who draws on the ceiling, and the ceiling.
const BUDGET_DESCRIPTION: &str = "{{budget_contributors}}; {{capacity_note}}. At their peak \
     these pools ask for more connections than the ceiling allows: the last ones are refused \
     or queued. Shrink a pool, cut replicas, or put PgBouncer in between \
     (`poolwatch budget --propose` checks a change)";

fn is_budget(check: &Check) -> bool {
    matches!(
        check,
        Check::Threshold {
            metric: PoolMetric::BudgetDemand | PoolMetric::BudgetExcess,
            ..
        }
    )
}

/// The default `description` of a rule that does not set one.
pub fn default_description(check: &Check) -> &'static str {
    match check {
        c if is_budget(c) => BUDGET_DESCRIPTION,
        Check::Threshold { .. } => POOL_DESCRIPTION,
        Check::CapacityDropped { .. } => {
            "{{capacity_note}}; {{in_use}} in use now ({{utilization}}). A smaller pool \
             saturates at the next peak: check the latest deployment or configuration change"
        }
        Check::TargetSaturated => "{{error}}. {{last_seen}}",
        Check::TargetDown => "{{error}}",
        Check::ExhaustionPredicted(_) => PREDICTED_DESCRIPTION,
    }
}

/// What a predicted exhaustion's description says: what the prediction rests on, then the
/// pool's details (who holds the connections).
const PREDICTED_DESCRIPTION: &str = "A straight line through the recent connections in use \
     reaches the capacity ({{capacity_note}}); {{pool_details}}";

/// The default `resolved_summary` of a rule that does not set one: what recovered (the numbers
/// of the poll that resolved it) and after how long, worded so that it cannot read as still
/// firing.
pub fn default_resolved_summary(check: &Check) -> &'static str {
    match check {
        Check::Threshold { metric, .. } => threshold_summaries(*metric).1,
        Check::CapacityDropped { .. } => {
            "{{subject}}: {{alertname}} cleared after {{duration}}; capacity {{capacity}} now"
        }
        Check::TargetSaturated => "{{target}} is {{target_state}} after {{duration}} saturated",
        Check::TargetDown => {
            "{{target}} is {{target_state}} after {{duration}} down ({{error_class}})"
        }
        Check::ExhaustionPredicted(_) => {
            "{{subject}}: {{alertname}} cleared after {{duration}}; the trend no longer \
             reaches the capacity soon ({{in_use}}/{{capacity}} in use now)"
        }
    }
}

/// The default `resolved_description` of a rule that does not set one.
pub fn default_resolved_description(check: &Check) -> &'static str {
    match check {
        c if is_budget(c) => "{{budget_contributors}}; {{capacity_note}}",
        Check::Threshold { .. } => POOL_DESCRIPTION,
        Check::CapacityDropped { .. } => {
            "{{capacity_note}}; {{in_use}} in use now ({{utilization}}). The alert clears when \
             the capacity is back at the highest seen within the rule's window, or once the \
             drop is older than the window"
        }
        Check::TargetSaturated => "New connections were refused with: {{error}}. {{last_seen}}",
        Check::TargetDown => "The last error was: {{error}}. {{last_seen}}",
        Check::ExhaustionPredicted(_) => POOL_DESCRIPTION,
    }
}

fn threshold(value: f64, clear: f64) -> Option<ThresholdConfig> {
    Some(ThresholdConfig {
        value,
        clear: Some(clear),
        for_: None,
    })
}

/// The skeleton shared by the built-ins: every optional key set to its default.
fn base(name: &str, check: Check, for_secs: u64) -> RuleConfig {
    RuleConfig {
        name: name.into(),
        enabled: Some(true),
        for_: Some(HumanDuration::secs(for_secs)),
        keep_firing_for: Some(HumanDuration::secs(0)),
        matchers: Some(Vec::new()),
        labels: Some(BTreeMap::new()),
        summary: Some(default_summary(&check).into()),
        description: Some(default_description(&check).into()),
        resolved_summary: Some(default_resolved_summary(&check).into()),
        resolved_description: Some(default_resolved_description(&check).into()),
        ..RuleConfig::default()
    }
}

fn pool_rule(name: &str, metric: PoolMetric, op: CmpOp, for_secs: u64) -> RuleConfig {
    RuleConfig {
        metric: Some(metric),
        op: Some(op),
        ..base(name, Check::Threshold { metric, op }, for_secs)
    }
}

fn condition_rule(
    name: &str,
    condition: Condition,
    check: Check,
    severity: Severity,
    for_secs: u64,
) -> RuleConfig {
    RuleConfig {
        condition: Some(condition),
        severity: Some(severity),
        ..base(name, check, for_secs)
    }
}

/// The built-in rules, in evaluation order:
///
/// | rule | checks | severity | for |
/// |---|---|---|---|
/// | `PoolUtilizationHigh` | utilization >= 0.80 (clears below 0.75) | warning | 1m |
/// | `PoolNearFull` | utilization >= 0.95 (clears below 0.90) | critical | 15s |
/// | `PoolExhausted` | utilization >= 1 (no free slot; clears below 0.90), pools that refuse when full | critical | 0s |
/// | `PoolClientsWaiting` | queued > 0 (clients waiting with no free slot) | critical | 0s |
/// | `PoolLongestWait` | longest wait >= 1s (clears below 0.5s) | warning | 0s |
/// | `PoolCapacityDropped` | capacity below the highest of the last hour | warning | 0s |
/// | `PoolExhaustionPredicted` | the trend of in use over 10m reaches capacity within 30m (keeps firing 2m) | warning | 0s |
/// | `PoolBudgetExceeded` | budget excess > 0 (linked pools may open more than the ceiling) | warning | 0s |
/// | `TargetSaturated` | the target refuses new clients because it is full | critical | 0s |
/// | `TargetDown` | the target cannot be polled | critical | 30s |
pub fn builtin_rules() -> Vec<RuleConfig> {
    vec![
        RuleConfig {
            warning: threshold(0.80, 0.75),
            ..pool_rule(
                "PoolUtilizationHigh",
                PoolMetric::Utilization,
                CmpOp::Ge,
                60,
            )
        },
        RuleConfig {
            critical: threshold(0.95, 0.90),
            ..pool_rule("PoolNearFull", PoolMetric::Utilization, CmpOp::Ge, 15)
        },
        // No free slot in a pool that refuses rather than queues (`when_full="refuses"`:
        // PostgreSQL's server, roles and databases, PgBouncer's max_client_conn): the next
        // connection is refused now. That is the incident
        // itself, so it fires on the first poll that sees it. Pools that queue (poolers,
        // application pools) are full by design under load; their incident is clients
        // waiting, PoolClientsWaiting's page, so one full pooler pages once.
        // `utilization`, not `free <= 0`: a role with `CONNECTION LIMIT 0` (a common way to
        // lock a role out) has no free slot but is not exhausted unless someone is connected.
        // It releases where PoolNearFull does, so a pool flickering between full and one free
        // slot stays one alert, and both alerts of one incident resolve together.
        RuleConfig {
            critical: threshold(1.0, 0.90),
            matchers: Some(vec![r#"when_full="refuses""#.into()]),
            ..pool_rule("PoolExhausted", PoolMetric::Utilization, CmpOp::Ge, 0)
        },
        // A full pool with queued clients is critical within one poll. PostgreSQL's own pools
        // never queue (waiting = 0); PgBouncer and application pools report real queues.
        RuleConfig {
            critical: Some(ThresholdConfig {
                value: 0.0,
                clear: None,
                for_: None,
            }),
            ..pool_rule("PoolClientsWaiting", PoolMetric::Queued, CmpOp::Gt, 0)
        },
        // How long the longest-waiting client has waited (pools that queue: PgBouncer's with
        // microseconds, application pools that tell). A second is felt on any interactive
        // request. PoolClientsWaiting has already paged when the queue formed; this warning
        // says the waits are long enough to be felt, and stays while they are.
        RuleConfig {
            warning: threshold(1.0, 0.5),
            ..pool_rule(
                "PoolLongestWait",
                PoolMetric::LongestWaitSeconds,
                CmpOp::Ge,
                0,
            )
        },
        // Incident 2: a deployment shrank a pool. Flag it when it happens, not at the next peak.
        RuleConfig {
            window: Some(DEFAULT_WINDOW),
            ..condition_rule(
                "PoolCapacityDropped",
                Condition::CapacityDropped,
                Check::CapacityDropped {
                    window: DEFAULT_WINDOW.0,
                },
                Severity::Warning,
                0,
            )
        },
        // Early warning: the trend reaches the capacity before the threshold rules see
        // anything on a slow ramp, and minutes before PoolNearFull on a fast one. Its guards
        // (rules::predict) keep it quiet on noise, sawtooth, steps, gaps and full pools.
        // It keeps firing 2m after the prediction stops: at the horizon's edge a slow ramp's
        // estimate crosses it back and forth as in use moves by whole connections.
        RuleConfig {
            window: Some(HumanDuration(predict::DEFAULT_WINDOW)),
            keep_firing_for: Some(PREDICTED_KEEP_FIRING_FOR),
            horizon: Some(HumanDuration(predict::DEFAULT_HORIZON)),
            min_r2: Some(predict::DEFAULT_MIN_R2),
            ..condition_rule(
                "PoolExhaustionPredicted",
                Condition::ExhaustionPredicted,
                Check::ExhaustionPredicted(predict::Predict::default()),
                Severity::Warning,
                0,
            )
        },
        // The pools linked to a ceiling may open more than it allows (`[[links]]`): a peak
        // away from refusals. Not an outage yet, so a warning; the numbers are configured
        // sizes, which do not flap, so at once.
        RuleConfig {
            warning: Some(ThresholdConfig {
                value: 0.0,
                clear: None,
                for_: None,
            }),
            ..pool_rule("PoolBudgetExceeded", PoolMetric::BudgetExcess, CmpOp::Gt, 0)
        },
        condition_rule(
            "TargetSaturated",
            Condition::TargetSaturated,
            Check::TargetSaturated,
            Severity::Critical,
            0,
        ),
        condition_rule(
            "TargetDown",
            Condition::TargetDown,
            Check::TargetDown,
            Severity::Critical,
            30,
        ),
    ]
}

/// Whether `name` is a built-in rule's name.
pub fn is_builtin_name(name: &str) -> bool {
    builtin_rules().iter().any(|r| r.name == name)
}
