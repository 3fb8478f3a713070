//! The trend rule (`exhaustion_predicted`) in [`Engine::observe`]. Unlike the other pool rules
//! it does not visit every pool of every report, which would cost more than the fits:
//!
//! * on a report that enters a new refit slot ([`due`]), every pool of the target is fitted in
//!   one pass over the store's history ([`crate::store::StoreView::target_history`], no look-up
//!   per pool), and only the pools predicted to fill up and those with an alert are stepped;
//! * on the reports in between, only the pools with an alert are stepped, holding the verdict
//!   of the last refit.
//!
//! A pool that has an alert but is missing from the report is left to the stale step, as for
//! every other rule.

use super::observe::{Round, Subject};
use super::Engine;
use crate::model::PoolSnapshot;
use crate::rules::eval::Observation;
use crate::rules::predict::{due, predict, Predict, Prediction};
use crate::rules::Rule;
use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

/// `(kind, pool)` of a pool of the round's target.
type PoolKey<'a> = (&'a str, &'a str);

impl Engine {
    /// Steps `rule` (a trend rule with settings `p`) for the pools of one successful report of
    /// `target`, observed before at `previous`.
    pub(super) fn observe_trend(
        &mut self,
        round: &mut Round<'_, '_>,
        rule: &Rule,
        p: &Predict,
        pools: &[PoolSnapshot],
        previous: Option<SystemTime>,
    ) {
        let store = round.store;
        let target = round.target;
        let refit = due(previous, round.now, p);
        let verdicts: HashMap<PoolKey<'_>, Prediction> = if refit {
            store
                .target_history(target)
                .filter_map(|(key, history)| {
                    let v = predict(history, round.now, p).ok()?;
                    Some(((key.kind.as_str(), key.pool.as_str()), v))
                })
                .collect()
        } else {
            HashMap::new()
        };
        let alerted: Vec<(String, String)> = self
            .instances
            .values()
            .filter(|i| i.target == target && i.rule == rule.name && !i.kind.is_empty())
            .map(|i| (i.kind.clone(), i.pool.clone()))
            .collect();
        if verdicts.is_empty() && alerted.is_empty() {
            return;
        }
        let index: HashMap<PoolKey<'_>, usize> = pools
            .iter()
            .enumerate()
            .map(|(n, pool)| ((pool.id.kind.as_str(), pool.id.name.as_str()), n))
            .collect();
        let alerted = alerted.iter().map(|(k, p)| (k.as_str(), p.as_str()));
        let candidates: BTreeSet<usize> = verdicts
            .keys()
            .copied()
            .chain(alerted)
            .filter_map(|key| index.get(&key).copied())
            .collect();
        for n in candidates {
            let pool = &pools[n];
            let verdict = verdicts.get(&(pool.id.kind.as_str(), pool.id.name.as_str()));
            self.step_trend(round, rule, pool, refit.then_some(verdict.copied()));
        }
    }

    /// Steps each level of `rule` for `pool`: with the new `verdict` after a refit
    /// (`Some(None)`: nothing predicted), or holding an alert's last one (`None`).
    fn step_trend(
        &mut self,
        round: &mut Round<'_, '_>,
        rule: &Rule,
        pool: &PoolSnapshot,
        verdict: Option<Option<Prediction>>,
    ) {
        let s = Subject::pool(round.target, pool);
        if !rule.applies_with(|name| s.label(name, &round.extra)) {
            return;
        }
        for level in &rule.levels {
            let labels = s.labels(rule, level, &round.extra);
            let before = self.instances.get(&labels);
            let obs = match (verdict, before) {
                (Some(Some(v)), _) => Observation {
                    value: v.exhausted_in.as_secs_f64(),
                    active: true,
                },
                (Some(None), Some(_)) => Observation {
                    value: f64::NAN,
                    active: false,
                },
                // The last refit's verdict: a time to exhaustion, or NaN when it predicted none
                // (the alert then keeps firing for `keep_firing_for`, which a hold must not reset).
                (None, Some(i)) => Observation {
                    value: i.value,
                    active: !i.value.is_nan(),
                },
                (_, None) => continue,
            };
            round.touched.insert(labels.clone());
            self.step_one(round, rule, level, &s, labels, obs);
        }
    }
}
