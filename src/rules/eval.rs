//! Evaluating a threshold rule against one pool: the metric's value, and whether the condition
//! holds, with hysteresis once the alert is active.

use super::Threshold;
use crate::model::PoolSnapshot;
use crate::rules::config::{CmpOp, PoolMetric};

/// One evaluation: the number compared, and whether the condition holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The alert's value (Prometheus' sample value).
    pub value: f64,
    /// Whether the alert condition holds.
    pub active: bool,
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
/// threshold does not flap. A metric the pool's source does not report never holds.
pub fn evaluate(
    metric: PoolMetric,
    op: CmpOp,
    threshold: &Threshold,
    pool: &PoolSnapshot,
    already_active: bool,
) -> Observation {
    let Some(value) = metric.value(pool) else {
        return Observation {
            value: f64::NAN,
            active: false,
        };
    };
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
        p.rates.timeouts = Some(0.5);
        if let Some(pg) = p.postgres.as_mut() {
            pg.oldest_transaction = Some(std::time::Duration::from_millis(1500));
        }
        let cases = [
            (PoolMetric::Utilization, Some(0.4)),
            (PoolMetric::InUse, Some(4.0)),
            (PoolMetric::Idle, Some(2.0)),
            (PoolMetric::Waiting, Some(3.0)),
            (PoolMetric::Queued, Some(0.0)),
            (PoolMetric::Free, Some(6.0)),
            (PoolMetric::Capacity, Some(10.0)),
            (PoolMetric::LongestWaitSeconds, None),
            (PoolMetric::IdleInTransaction, Some(0.0)),
            (PoolMetric::OldestIdleInTransactionSeconds, Some(0.0)),
            (PoolMetric::OldestTransactionSeconds, Some(1.5)),
            (PoolMetric::LockWaiting, Some(0.0)),
            (PoolMetric::WaitsPerSecond, None),
            (PoolMetric::WaitSecondsPerSecond, None),
            (PoolMetric::TimeoutsPerSecond, Some(0.5)),
        ];
        for (m, want) in cases {
            assert_eq!(m.value(&p), want, "{m:?}");
        }
        assert!(!compare(CmpOp::Ge, f64::NAN, 0.0));
    }

    #[test]
    fn metrics_a_source_does_not_report_never_hold() {
        let mut p = pool("db", 10, 10);
        p.postgres = None;
        let t = Threshold {
            value: 0.0,
            clear: 0.0,
        };
        for m in [
            PoolMetric::IdleInTransaction,
            PoolMetric::LongestWaitSeconds,
        ] {
            let obs = evaluate(m, CmpOp::Ge, &t, &p, false);
            assert!(!obs.active && obs.value.is_nan(), "{m:?}");
        }
        p.longest_wait = Some(std::time::Duration::from_millis(250));
        let obs = evaluate(PoolMetric::LongestWaitSeconds, CmpOp::Ge, &t, &p, false);
        assert!(obs.active && obs.value == 0.25);
    }
}
