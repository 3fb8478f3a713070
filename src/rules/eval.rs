//! Evaluating a threshold rule against one pool: the metric's value, and whether the condition
//! holds, with hysteresis once the alert is active.

use super::Threshold;
use crate::config::schema::{CmpOp, PoolMetric};
use crate::model::PoolSnapshot;

/// One evaluation: the number compared, and whether the condition holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The alert's value (Prometheus' sample value).
    pub value: f64,
    /// Whether the alert condition holds.
    pub active: bool,
}

/// The value of `metric` for `pool`. Ages are in seconds, 0 when there is no such session.
pub fn metric_value(metric: PoolMetric, pool: &PoolSnapshot) -> f64 {
    let secs = |d: Option<std::time::Duration>| d.map_or(0.0, |d| d.as_secs_f64());
    match metric {
        PoolMetric::Utilization => pool.utilization(),
        PoolMetric::InUse => pool.in_use as f64,
        PoolMetric::Idle => pool.idle as f64,
        PoolMetric::Waiting => pool.waiting as f64,
        PoolMetric::Free => pool.free() as f64,
        PoolMetric::Capacity => pool.capacity as f64,
        PoolMetric::IdleInTransaction => pool.idle_in_transaction as f64,
        PoolMetric::OldestIdleInTransactionSeconds => secs(pool.oldest_idle_in_transaction),
        PoolMetric::OldestTransactionSeconds => secs(pool.oldest_transaction),
        PoolMetric::LockWaiting => pool.lock_waiting as f64,
    }
}

/// `value op threshold`. NaN never compares true, except under `!=`.
pub fn compare(op: CmpOp, value: f64, threshold: f64) -> bool {
    match op {
        CmpOp::Gt => value > threshold,
        CmpOp::Ge => value >= threshold,
        CmpOp::Lt => value < threshold,
        CmpOp::Le => value <= threshold,
        CmpOp::Eq => value == threshold,
        CmpOp::Ne => value != threshold,
    }
}

/// The operator as written in the config.
pub fn op_str(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
    }
}

/// Evaluates `metric op threshold` for `pool`. While the alert is already active (pending or
/// firing) the `clear` value is compared instead, so that a metric hovering around the
/// threshold does not flap.
pub fn evaluate(
    metric: PoolMetric,
    op: CmpOp,
    threshold: &Threshold,
    pool: &PoolSnapshot,
    already_active: bool,
) -> Observation {
    let value = metric_value(metric, pool);
    let bound = if already_active {
        threshold.clear
    } else {
        threshold.value
    };
    Observation {
        value,
        active: compare(op, value, bound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixtures::pool;

    #[test]
    fn threshold_table() {
        // (op, value, clear, in_use of 100, already active, want active)
        let cases = [
            (CmpOp::Ge, 0.80, 0.75, 79, false, false),
            (CmpOp::Ge, 0.80, 0.75, 80, false, true),
            (CmpOp::Ge, 0.80, 0.75, 77, false, false),
            (CmpOp::Ge, 0.80, 0.75, 77, true, true),
            (CmpOp::Ge, 0.80, 0.75, 75, true, true),
            (CmpOp::Ge, 0.80, 0.75, 74, true, false),
            (CmpOp::Gt, 0.80, 0.80, 80, false, false),
            (CmpOp::Gt, 0.80, 0.80, 81, true, true),
            (CmpOp::Le, 0.20, 0.30, 20, false, true),
            (CmpOp::Le, 0.20, 0.30, 25, false, false),
            (CmpOp::Le, 0.20, 0.30, 25, true, true),
            (CmpOp::Le, 0.20, 0.30, 31, true, false),
            (CmpOp::Lt, 0.20, 0.20, 19, false, true),
            (CmpOp::Eq, 1.0, 1.0, 100, false, true),
            (CmpOp::Ne, 1.0, 1.0, 100, true, false),
        ];
        for (op, value, clear, in_use, already, want) in cases {
            let p = pool("db", 100, in_use);
            let obs = evaluate(
                PoolMetric::Utilization,
                op,
                &Threshold { value, clear },
                &p,
                already,
            );
            assert_eq!(
                obs.active,
                want,
                "{} {value} (clear {clear}) at {in_use}%, active before: {already}",
                op_str(op)
            );
            assert!((obs.value - in_use as f64 / 100.0).abs() < 1e-12);
        }
    }

    #[test]
    fn metric_values() {
        let mut p = pool("db", 10, 4);
        p.waiting = 3;
        p.idle = 2;
        p.oldest_transaction = Some(std::time::Duration::from_millis(1500));
        let cases = [
            (PoolMetric::Utilization, 0.4),
            (PoolMetric::InUse, 4.0),
            (PoolMetric::Idle, 2.0),
            (PoolMetric::Waiting, 3.0),
            (PoolMetric::Free, 6.0),
            (PoolMetric::Capacity, 10.0),
            (PoolMetric::IdleInTransaction, 0.0),
            (PoolMetric::OldestIdleInTransactionSeconds, 0.0),
            (PoolMetric::OldestTransactionSeconds, 1.5),
            (PoolMetric::LockWaiting, 0.0),
        ];
        for (m, want) in cases {
            assert_eq!(metric_value(m, &p), want, "{m:?}");
        }
        assert!(!compare(CmpOp::Ge, f64::NAN, 0.0));
    }
}
