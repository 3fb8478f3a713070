//! [`Engine::observe`]: one report in, the rules evaluated against it, every affected alert
//! instance stepped, notices out.

use super::capacity::PoolRef;
use super::reconfigure::{removed_notice, Removed};
use super::state::{elapsed, step, State, Transition};
use super::{notice, target_extra, Engine, Identity, Instance, Known, Labels, Seen};
use crate::model::{ErrorClass, PollError, PoolSnapshot, TargetReport};
use crate::notice::{Notice, NoticeReason};
use crate::rules::eval::{evaluate, Observation};
use crate::rules::template::Vars;
use crate::rules::{Check, Level, Rule, Text};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long capacity history is kept when no rule has a `capacity_dropped` window.
const DEFAULT_HORIZON: Duration = Duration::from_secs(3600);

/// Where one instance is: the target, and the pool (both empty for target-level alerts).
struct Subject<'a> {
    target: &'a str,
    kind: &'a str,
    pool: &'a str,
    /// How alert text names it.
    name: String,
}

/// What the subject of an evaluation is.
enum Seeing<'a> {
    /// A target condition, already evaluated.
    Target(Observation),
    /// A pool, evaluated per level.
    Pool(&'a PoolSnapshot),
}

/// One call of [`Engine::observe`]: its time, the target's labels, and what it produced.
struct Round {
    now: SystemTime,
    /// The target's extra labels, minus reserved names.
    extra: Labels,
    /// Instances evaluated this round; the target's other instances are stale.
    touched: BTreeSet<Labels>,
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
    /// * Still-firing alerts are notified again once `repeat_interval` has passed.
    ///
    /// `target_labels` are the target's extra labels: on every alert, and visible to matchers.
    pub fn observe(
        &mut self,
        now: SystemTime,
        report: &TargetReport,
        target_labels: &BTreeMap<String, String>,
    ) -> Vec<Notice> {
        let target = report.target.as_str();
        let rules = Arc::clone(&self.rules);
        let horizon = rules.max_window().unwrap_or(DEFAULT_HORIZON);
        let mut round = Round {
            now,
            extra: target_extra(target_labels),
            touched: BTreeSet::new(),
            out: Vec::new(),
        };
        let error = report.outcome.as_ref().err();
        match &report.outcome {
            Ok(data) => self.known.record_pools(now, target, &data.pools, horizon),
            Err(e) => {
                let seen = self.known.seen.entry(target.to_string()).or_default();
                seen.error = Some(e.clone());
            }
        }
        for rule in rules.rules() {
            if !rule.check.is_per_pool() {
                let active = target_condition(&rule.check, error);
                let obs = Observation {
                    value: if active { 1.0 } else { 0.0 },
                    active,
                };
                let subject = Subject {
                    target,
                    kind: "",
                    pool: "",
                    name: target.to_string(),
                };
                self.observe_subject(&mut round, rule, &subject, Seeing::Target(obs));
            } else if let Ok(data) = &report.outcome {
                // When the target is not up, pool alerts are frozen: nothing to evaluate.
                for pool in &data.pools {
                    let subject = Subject {
                        target,
                        kind: pool.id.kind.as_str(),
                        pool: &pool.id.name,
                        name: pool.id.subject(),
                    };
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
            self.step_stale(now, labels, &mut round.out);
        }
        self.repeat(now, target, &mut round.out);
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
        let mut selector = round.extra.clone();
        selector.insert("target".into(), s.target.into());
        if !s.kind.is_empty() {
            selector.insert("kind".into(), s.kind.into());
            selector.insert("pool".into(), s.pool.into());
        }
        if !rule.applies_to(&selector) {
            return;
        }
        for level in &rule.levels {
            let identity = Identity {
                alertname: &rule.name,
                severity: level.severity,
                target: s.target,
                kind: s.kind,
                pool: s.pool,
            };
            let labels = identity.labels(&round.extra, &rule.labels);
            let obs = match seeing {
                Seeing::Target(obs) => Some(obs),
                Seeing::Pool(pool) => {
                    // Hysteresis holds a *firing* alert; a pending one must meet the threshold
                    // itself for the whole `for`.
                    let was_active = self
                        .instances
                        .get(&labels)
                        .is_some_and(|i| matches!(i.state, State::Firing { .. }));
                    evaluate_pool(&self.known, round.now, &rule.check, level, pool, was_active)
                }
            };
            let Some(obs) = obs else {
                continue;
            };
            round.touched.insert(labels.clone());
            self.step_one(round, rule, level, s, labels, obs);
        }
    }

    fn step_one(
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
            self.finish(&labels, prev, transition, Some(rule), now, &mut round.out);
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
                subject: s.name.clone(),
                rule_labels: rule.labels.clone(),
                state: State::Inactive,
                value: obs.value,
                last_notified: None,
                annotations: Labels::new(),
                cause: None,
            });
        i.state = next;
        i.value = obs.value;
        if obs.active && !rule.check.is_per_pool() {
            let seen = self.known.seen.get(s.target);
            i.cause = seen.and_then(|seen| seen.error.clone());
        }
        let Some(active_at) = next.active_at() else {
            return;
        };
        refresh(i, rule, &self.known, now, Text::Active, active_at);
        if transition == Some(Transition::Fired) {
            i.last_notified = Some(now);
            round
                .out
                .push(notice(&labels, i, NoticeReason::Fired, active_at, now));
        }
    }

    /// Steps an instance that this report did not evaluate (its pool vanished, its rule or
    /// labels changed, its matchers no longer select it) as inactive.
    fn step_stale(&mut self, now: SystemTime, labels: Labels, out: &mut Vec<Notice>) {
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
        self.finish(&labels, prev, transition, rule, now, out);
    }

    /// Forgets an instance that stepped to inactive, announcing it if it was firing: with
    /// text re-rendered from what is known now when its rule still exists.
    fn finish(
        &mut self,
        labels: &Labels,
        prev: State,
        transition: Option<Transition>,
        rule: Option<&Rule>,
        now: SystemTime,
        out: &mut Vec<Notice>,
    ) {
        let Some(mut i) = self.instances.remove(labels) else {
            return;
        };
        if let (Some(Transition::Resolved), Some(active_at)) = (transition, prev.active_at()) {
            out.push(match rule {
                Some(rule) => {
                    refresh(&mut i, rule, &self.known, now, Text::Resolved, active_at);
                    notice(labels, &i, NoticeReason::Resolved, active_at, now)
                }
                None => removed_notice(labels, &i, Removed::Rule, active_at, now),
            });
        }
    }

    /// Notifies again every firing alert of `target` whose last notice is `repeat_interval` old.
    fn repeat(&mut self, now: SystemTime, target: &str, out: &mut Vec<Notice>) {
        if self.repeat_interval.is_zero() {
            return;
        }
        for (labels, i) in self
            .instances
            .iter_mut()
            .filter(|(_, i)| i.target == target)
        {
            let State::Firing { active_at, .. } = i.state else {
                continue;
            };
            if i.last_notified
                .is_none_or(|t| elapsed(t, now) >= self.repeat_interval)
            {
                i.last_notified = Some(now);
                out.push(notice(labels, i, NoticeReason::Repeat, active_at, now));
            }
        }
    }
}

impl Known {
    /// Remembers a successful poll's pools and their capacity changes.
    fn record_pools(
        &mut self,
        now: SystemTime,
        target: &str,
        pools: &[PoolSnapshot],
        horizon: Duration,
    ) {
        let mut present = BTreeSet::new();
        // Each pool's capacity as of the previous poll of this target.
        let before: BTreeMap<PoolRef, u64> = self
            .capacity
            .iter()
            .filter(|(key, _)| key.target == target)
            .filter_map(|(key, h)| h.changes().last().map(|c| (key.clone(), c.capacity)))
            .collect();
        for p in pools {
            let key = pool_ref(target, p.id.kind.as_str(), &p.id.name);
            let history = self.capacity.entry(key.clone()).or_default();
            if history.changes().is_empty() {
                // A pool bounded until now by its parent (a PostgreSQL role or database by the
                // server) shows a limit of its own for the first time while in use
                // (`ALTER ROLE app CONNECTION LIMIT 10` by a deployment): it dropped from the
                // parent's capacity. A brand-new pool (nothing in use yet) has no "before".
                let parent = p
                    .parent
                    .as_ref()
                    .and_then(|(kind, name)| before.get(&pool_ref(target, kind.as_str(), name)));
                if let (Some(before), true) = (parent, p.in_use > 0) {
                    if let Some(just_before) = now.checked_sub(Duration::from_millis(1)) {
                        history.record(just_before, *before);
                    }
                }
            }
            history.record(now, p.configured_capacity);
            present.insert(key);
        }
        self.capacity.retain(|key, h| {
            if key.target != target {
                return true;
            }
            h.prune(now, horizon);
            // A vanished pool's history only matters while it could still show a drop.
            present.contains(key) || h.last_change().is_some_and(|t| elapsed(t, now) < horizon)
        });
        self.seen.insert(
            target.to_string(),
            Seen {
                pools: pools.to_vec(),
                error: None,
            },
        );
    }

    /// The pool's last known snapshot; for a target-level alert, that of the pool that stands
    /// for the whole target, if its source has one.
    fn snapshot(&self, target: &str, kind: &str, pool: &str) -> Option<&PoolSnapshot> {
        let pools = &self.seen.get(target)?.pools;
        if kind.is_empty() {
            return pools.iter().find(|p| p.id.kind.whole_target);
        }
        pools
            .iter()
            .find(|p| p.id.kind.as_str() == kind && p.id.name == pool)
    }

    /// The highest capacity of the pool within `window`, if any was recorded.
    fn highest(
        &self,
        now: SystemTime,
        target: &str,
        kind: &str,
        pool: &str,
        window: Duration,
    ) -> Option<u64> {
        self.capacity
            .get(&pool_ref(target, kind, pool))?
            .highest_within(now, window)
    }
}

fn pool_ref(target: &str, kind: &str, pool: &str) -> PoolRef {
    PoolRef {
        target: target.into(),
        kind: kind.into(),
        pool: pool.into(),
    }
}

/// Whether a target-level condition holds for this poll outcome.
fn target_condition(check: &Check, error: Option<&PollError>) -> bool {
    let saturated = error.map(|e| e.class == ErrorClass::TooManyConnections);
    match check {
        Check::TargetSaturated => saturated == Some(true),
        Check::TargetDown => saturated == Some(false),
        _ => false,
    }
}

/// Evaluates a pool rule's level against one pool.
fn evaluate_pool(
    known: &Known,
    now: SystemTime,
    check: &Check,
    level: &Level,
    pool: &PoolSnapshot,
    was_active: bool,
) -> Option<Observation> {
    match (check, &level.threshold) {
        (Check::Threshold { metric, op }, Some(t)) => {
            Some(evaluate(*metric, *op, t, pool, was_active))
        }
        (Check::CapacityDropped { window }, _) => {
            let id = &pool.id;
            let highest = known
                .highest(now, &id.target, id.kind.as_str(), &id.name, *window)
                .unwrap_or(pool.configured_capacity);
            Some(Observation {
                value: pool.configured_capacity as f64,
                active: pool.configured_capacity < highest,
            })
        }
        _ => None,
    }
}

/// Re-renders an instance's annotations (active since `active_at`) from what is known now, with
/// the rule's `text`. A pool alert whose pool cannot be found keeps its last text.
fn refresh(
    i: &mut Instance,
    rule: &Rule,
    known: &Known,
    now: SystemTime,
    text: Text,
    active_at: SystemTime,
) {
    let snapshot = known.snapshot(&i.target, &i.kind, &i.pool);
    let seen = known.seen.get(&i.target);
    if snapshot.is_none() && !i.kind.is_empty() {
        return;
    }
    let previous_capacity = match rule.check {
        Check::CapacityDropped { window } => {
            known.highest(now, &i.target, &i.kind, &i.pool, window)
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
        error: i.cause.as_ref().or(seen.and_then(|s| s.error.as_ref())),
        duration: Some(elapsed(active_at, now)),
        target_state: seen.map(|s| s.error.as_ref().map_or(Ok(()), |e| Err(e.class))),
    };
    i.annotations = rule.annotate(text, &vars);
}
