//! [`Engine::observe`]: one report in, the rules evaluated against it, every affected alert
//! instance stepped, notices out.

use super::reconfigure::{removed_notice, Removed};
use super::state::{elapsed, step, State, Transition};
use super::{notice, target_extra, Engine, Identity, Instance, Labels};
use crate::model::{PoolSnapshot, Severity, TargetReport};
use crate::notice::{Notice, NoticeReason};
use crate::rules::eval::{evaluate, Observation};
use crate::rules::predict::{predict, Predict, Prediction};
use crate::rules::template::Vars;
use crate::rules::{Check, Level, Rule, Text};
use crate::store::capacity::PoolRef;
use crate::store::StoreView;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

/// Where one instance is: the target, and the pool (both empty for target-level alerts).
pub(super) struct Subject<'a> {
    pub(super) target: &'a str,
    pub(super) kind: &'a str,
    pub(super) pool: &'a str,
    /// What the pool does with a new client when full (`refuses`, `queues`); empty for a
    /// target. Matchers see it; alerts do not carry it.
    when_full: &'static str,
    /// The pool as this report shows it; `None` for a target.
    snapshot: Option<&'a PoolSnapshot>,
}

impl<'a> Subject<'a> {
    /// A pool of `target`.
    pub(super) fn pool(target: &'a str, pool: &'a PoolSnapshot) -> Subject<'a> {
        Subject {
            target,
            kind: pool.id.kind.as_str(),
            pool: &pool.id.name,
            when_full: pool.id.kind.when_full.as_str(),
            snapshot: Some(pool),
        }
    }

    /// The label set of `rule`'s instance at `level` for this subject, with the target's
    /// `extra` labels.
    pub(super) fn labels(&self, rule: &Rule, level: &Level, extra: &Labels) -> Labels {
        let identity = Identity {
            alertname: &rule.name,
            severity: level.severity,
            target: self.target,
            kind: self.kind,
            pool: self.pool,
        };
        identity.labels(extra, &rule.labels)
    }

    /// How alert text names it; built only for an instance that is created.
    fn name(&self) -> String {
        self.snapshot
            .map_or_else(|| self.target.to_string(), |p| p.id.subject())
    }

    /// The value of label `name` as matchers see it: the subject's own labels over the
    /// target's `extra` ones.
    pub(super) fn label<'b>(&'b self, name: &str, extra: &'b Labels) -> Option<&'b str> {
        match name {
            "target" => Some(self.target),
            "kind" if !self.kind.is_empty() => Some(self.kind),
            "pool" if !self.kind.is_empty() => Some(self.pool),
            "when_full" if !self.when_full.is_empty() => Some(self.when_full),
            _ => extra.get(name).map(String::as_str),
        }
    }
}

/// What the subject of an evaluation is.
#[derive(Clone, Copy)]
enum Seeing<'a> {
    /// A target condition, already evaluated.
    Target(Observation),
    /// A pool, evaluated per level.
    Pool(&'a PoolSnapshot),
}

/// One call of [`Engine::observe`]: its time, the target's labels, and what it produced.
pub(super) struct Round<'r, 's> {
    pub(super) now: SystemTime,
    /// The target reported on.
    pub(super) target: &'r str,
    /// What is known beyond the report: last pools, last error, capacity history.
    pub(super) store: &'r StoreView<'s>,
    /// The target's extra labels, minus reserved names.
    pub(super) extra: Labels,
    /// Instances evaluated this round; the target's other instances are stale.
    pub(super) touched: BTreeSet<Labels>,
    /// [`key`]s of the target's instances (those that existed or were created this round):
    /// without one, an inactive observation changes nothing and costs no label set. A hash
    /// collision only sends an observation the long way.
    existing: HashSet<u64>,
    out: Vec<Notice>,
}

impl Engine {
    /// Evaluates every rule against one poll of one target and returns the notices to send.
    ///
    /// * A successful poll steps every pool rule for every pool (pools of this target that had
    ///   alerts but are missing from the report step as inactive) and clears target conditions.
    /// * A failed poll makes `target_saturated` (SQLSTATE 53300) or `target_down` (any other
    ///   error) active, and **freezes** the target's pool alerts: poolwatch cannot see the pools,
    ///   which does not mean they recovered.
    ///
    /// `target_labels` are the target's extra labels: on every alert, and visible to matchers.
    /// `store` must already hold the report ([`crate::store::Store::apply`]).
    pub fn observe(
        &mut self,
        now: SystemTime,
        report: &TargetReport,
        target_labels: &BTreeMap<String, String>,
        store: &StoreView<'_>,
    ) -> Vec<Notice> {
        let target = report.target.as_str();
        let rules = Arc::clone(&self.rules);
        let previous = match self.observed.get_mut(target) {
            Some(t) => Some(std::mem::replace(t, now)),
            None => self.observed.insert(target.to_string(), now),
        };
        let mut round = Round {
            now,
            target,
            store,
            extra: target_extra(target_labels),
            touched: BTreeSet::new(),
            existing: self
                .instances
                .values()
                .filter(|i| i.target == target)
                .map(|i| key(&i.rule, i.severity, &i.kind, &i.pool))
                .collect(),
            out: Vec::new(),
        };
        for rule in rules.rules() {
            if !rule.check.is_per_pool() {
                let active = target_condition(&rule.check, report);
                let obs = Observation {
                    value: if active { 1.0 } else { 0.0 },
                    active,
                };
                let subject = Subject {
                    target,
                    kind: "",
                    pool: "",
                    when_full: "",
                    snapshot: None,
                };
                self.observe_subject(&mut round, rule, &subject, Seeing::Target(obs));
            } else if let Ok(data) = &report.outcome {
                // When the target is not up, pool alerts are frozen: nothing to evaluate.
                if let Check::ExhaustionPredicted(p) = &rule.check {
                    self.observe_trend(&mut round, rule, p, &data.pools, previous);
                    continue;
                }
                for pool in &data.pools {
                    let subject = Subject::pool(target, pool);
                    self.observe_subject(&mut round, rule, &subject, Seeing::Pool(pool));
                }
            }
        }
        let up = report.outcome.is_ok();
        let stale: Vec<Labels> = self
            .instances
            .iter()
            .filter(|(l, i)| {
                i.target == target && !round.touched.contains(*l) && (up || i.kind.is_empty())
            })
            .map(|(l, _)| l.clone())
            .collect();
        for labels in stale {
            self.step_stale(labels, &mut round);
        }
        self.remember(&round.out);
        round.out
    }

    /// Steps each level of `rule` for one subject, if the rule's matchers select it.
    fn observe_subject(
        &mut self,
        round: &mut Round,
        rule: &Rule,
        s: &Subject<'_>,
        seeing: Seeing<'_>,
    ) {
        if !rule.applies_with(|name| s.label(name, &round.extra)) {
            return;
        }
        for level in &rule.levels {
            // Without an instance there is no `before`: evaluate first, and stop here when the
            // observation is inactive (stepping it would change nothing).
            let fresh = !round
                .existing
                .contains(&key(&rule.name, level.severity, s.kind, s.pool));
            let first = match (fresh, seeing) {
                (true, Seeing::Target(obs)) => Some(obs),
                (true, Seeing::Pool(pool)) => {
                    evaluate_pool(round.store, round.now, &rule.check, level, pool, None)
                }
                (false, _) => None,
            };
            if fresh && !first.is_some_and(|o| o.active) {
                continue;
            }
            let labels = s.labels(rule, level, &round.extra);
            let obs = match (seeing, first) {
                (Seeing::Target(obs), _) => Some(obs),
                (_, Some(obs)) if !self.instances.contains_key(&labels) => Some(obs),
                (Seeing::Pool(pool), _) => {
                    let before = self.instances.get(&labels);
                    evaluate_pool(round.store, round.now, &rule.check, level, pool, before)
                }
            };
            let Some(obs) = obs else {
                continue;
            };
            round.touched.insert(labels.clone());
            self.step_one(round, rule, level, s, labels, obs);
        }
    }

    pub(super) fn step_one(
        &mut self,
        round: &mut Round,
        rule: &Rule,
        level: &Level,
        s: &Subject<'_>,
        labels: Labels,
        obs: Observation,
    ) {
        let now = round.now;
        let prev = self
            .instances
            .get(&labels)
            .map_or(State::Inactive, |i| i.state);
        let (next, transition) = step(&prev, now, obs.active, level.for_, rule.keep_firing_for);
        if next == State::Inactive {
            if let Some(i) = self.instances.get_mut(&labels) {
                i.value = obs.value;
            }
            self.finish(&labels, prev, transition, Some(rule), round);
            return;
        }
        let i = self
            .instances
            .entry(labels.clone())
            .or_insert_with(|| Instance {
                rule: rule.name.clone(),
                severity: level.severity,
                target: s.target.into(),
                kind: s.kind.into(),
                pool: s.pool.into(),
                subject: s.name(),
                rule_labels: rule.labels.clone(),
                state: State::Inactive,
                value: obs.value,
                annotations: Labels::new(),
                cause: None,
            });
        round
            .existing
            .insert(key(&rule.name, level.severity, s.kind, s.pool));
        i.state = next;
        i.value = obs.value;
        if obs.active && !rule.check.is_per_pool() {
            i.cause = round.store.last_error(s.target).cloned();
        }
        let Some(active_at) = next.active_at() else {
            return;
        };
        let known = Known {
            store: round.store,
            snapshot: s.snapshot,
        };
        refresh(i, rule, &known, now, Text::Active, active_at);
        if transition == Some(Transition::Fired) {
            round
                .out
                .push(notice(&labels, i, NoticeReason::Fired, active_at, now));
        }
    }

    /// Steps an instance that this report did not evaluate (its pool vanished, its rule or
    /// labels changed, its matchers no longer select it) as inactive.
    fn step_stale(&mut self, labels: Labels, round: &mut Round) {
        let now = round.now;
        let rules = Arc::clone(&self.rules);
        let Some(i) = self.instances.get_mut(&labels) else {
            return;
        };
        let rule = rules.get(&i.rule);
        let (for_, keep) = rule
            .and_then(|r| r.level(i.severity).map(|l| (l.for_, r.keep_firing_for)))
            .unwrap_or_default();
        let prev = i.state;
        let (next, transition) = step(&prev, now, false, for_, keep);
        i.state = next;
        if next != State::Inactive {
            return;
        }
        self.finish(&labels, prev, transition, rule, round);
    }

    /// Forgets an instance that stepped to inactive, announcing it if it was firing: with
    /// text re-rendered from what is known now when its rule still exists.
    fn finish(
        &mut self,
        labels: &Labels,
        prev: State,
        transition: Option<Transition>,
        rule: Option<&Rule>,
        round: &mut Round,
    ) {
        let Some(mut i) = self.instances.remove(labels) else {
            return;
        };
        let now = round.now;
        if let (Some(Transition::Resolved), Some(active_at)) = (transition, prev.active_at()) {
            round.out.push(match rule {
                // Nothing is known of the pool now: saying that it recovered would be a guess.
                Some(_) if pool_vanished(&i, round.store) => {
                    removed_notice(labels, &i, Removed::Pool, active_at, now)
                }
                Some(rule) => {
                    let known = Known {
                        store: round.store,
                        snapshot: None,
                    };
                    refresh(&mut i, rule, &known, now, Text::Resolved, active_at);
                    notice(labels, &i, NoticeReason::Resolved, active_at, now)
                }
                None => removed_notice(labels, &i, Removed::Rule, active_at, now),
            });
        }
    }
}

/// What identifies an instance within its target's round, hashed: its rule, severity and pool.
fn key(rule: &str, severity: Severity, kind: &str, pool: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (rule, severity.as_str(), kind, pool).hash(&mut h);
    h.finish()
}

/// The pool's last known snapshot; for a target-level alert, that of the pool that stands for
/// the whole target, if its source has one.
fn snapshot<'a>(
    store: &'a StoreView<'_>,
    target: &str,
    kind: &str,
    pool: &str,
) -> Option<&'a PoolSnapshot> {
    let pools = store.last_pools(target);
    if kind.is_empty() {
        return pools.iter().find(|p| p.id.kind.whole_target);
    }
    pools
        .iter()
        .find(|p| p.id.kind.as_str() == kind && p.id.name == pool)
}

/// Whether `i` is a pool's alert and its target's last poll did not report that pool.
fn pool_vanished(i: &Instance, store: &StoreView<'_>) -> bool {
    !i.kind.is_empty() && snapshot(store, &i.target, &i.kind, &i.pool).is_none()
}

/// Whether a target-level condition holds for this poll outcome.
fn target_condition(check: &Check, report: &TargetReport) -> bool {
    match check {
        Check::TargetSaturated => report.saturation().is_some(),
        Check::TargetDown => report.failure().is_some(),
        _ => false,
    }
}

/// Evaluates a pool rule's level against one pool; `before` is its alert instance, while
/// pending or firing.
fn evaluate_pool(
    store: &StoreView<'_>,
    now: SystemTime,
    check: &Check,
    level: &Level,
    pool: &PoolSnapshot,
    before: Option<&Instance>,
) -> Option<Observation> {
    // Hysteresis holds a *firing* alert; a pending one must meet the threshold itself for the
    // whole `for`.
    let was_active = before.is_some_and(|i| matches!(i.state, State::Firing { .. }));
    match (check, &level.threshold) {
        (Check::Threshold { metric, op }, Some(t)) => {
            Some(evaluate(*metric, *op, t, pool, was_active))
        }
        (Check::CapacityDropped { window }, _) => {
            let id = &pool.id;
            let highest = store
                .highest_capacity(&PoolRef::of(id), now, *window)
                .unwrap_or(pool.configured_capacity);
            Some(Observation {
                value: pool.configured_capacity as f64,
                active: pool.configured_capacity < highest,
            })
        }
        // Trend rules are stepped by `Engine::observe_trend`, not per pool.
        _ => None,
    }
}

/// The predicted exhaustion of `pool` at `now`, if any.
fn prediction(
    store: &StoreView<'_>,
    pool: &PoolRef,
    now: SystemTime,
    p: &Predict,
) -> Option<Prediction> {
    predict(store.history(pool)?, now, p).ok()
}

/// What alert text is rendered from: the store, and the pool's snapshot when the caller has it
/// at hand (found in the store otherwise, by a search of its target's pools).
struct Known<'k, 's> {
    store: &'k StoreView<'s>,
    snapshot: Option<&'k PoolSnapshot>,
}

/// Re-renders an instance's annotations (active since `active_at`) from what is known now, with
/// the rule's `text`. A pool alert whose pool cannot be found keeps its last text.
fn refresh(
    i: &mut Instance,
    rule: &Rule,
    known: &Known<'_, '_>,
    now: SystemTime,
    text: Text,
    active_at: SystemTime,
) {
    let store = known.store;
    let snapshot = known
        .snapshot
        .or_else(|| snapshot(store, &i.target, &i.kind, &i.pool));
    if !i.kind.is_empty() && snapshot.is_none() {
        return;
    }
    let previous_capacity = match rule.check {
        Check::CapacityDropped { window } => {
            store.highest_capacity(&PoolRef::new(&i.target, &i.kind, &i.pool), now, window)
        }
        _ => None,
    };
    let prediction = match &rule.check {
        Check::ExhaustionPredicted(p) => {
            prediction(store, &PoolRef::new(&i.target, &i.kind, &i.pool), now, p)
        }
        _ => None,
    };
    let threshold = match rule.check {
        Check::Threshold { .. } => rule
            .level(i.severity)
            .and_then(|l| l.threshold)
            .map(|t| t.value),
        _ => None,
    };
    let subject = i.subject();
    let vars = Vars {
        alertname: &rule.name,
        severity: i.severity,
        target: &i.target,
        kind: &i.kind,
        pool: &i.pool,
        subject: &subject,
        snapshot,
        value: Some(i.value),
        threshold,
        previous_capacity,
        error: i.cause.as_ref().or(store.last_error(&i.target)),
        duration: Some(elapsed(active_at, now)),
        target_state: store
            .polled(&i.target)
            .then(|| store.last_error(&i.target).map_or(Ok(()), |e| Err(e.class))),
        prediction,
    };
    i.annotations = rule.annotate(text, &vars);
}
