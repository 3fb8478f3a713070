//! Alerting: the pure state machine ([`state`]) and the [`Engine`] that owns every alert
//! instance, evaluates the rules against each [`TargetReport`] and returns the notices to send.
//!
//! # Layout
//!
//! * [`state`] — `inactive → pending → firing → resolved`, one pure `step` function.
//! * `observe` — [`Engine::observe`]: rules × pools of one report → steps → notices.
//! * [`capacity`] — per-pool capacity changes for `capacity_dropped`.
//! * [`view`] — [`AlertView`], the `/api/v1/alerts` entry.
//! * [`persist`] — [`PersistedState`], so that a restart neither forgets nor re-pages.
//!
//! The engine reads no clock and does no I/O: time is an argument, so tests drive `for = "5m"`
//! by hand. An alert instance is keyed by its label set (`alertname`, `severity`, `target`,
//! `kind`, `pool`, the rule's and the target's labels); each severity of a rule is its own
//! instance, like two Prometheus rules. Only pending and firing instances are kept.
//!
//! [`TargetReport`]: crate::model::TargetReport

pub mod capacity;
mod observe;
pub mod persist;
pub mod state;
pub mod view;

use crate::model::{PollError, PoolSnapshot, Severity};
use crate::notice::{fingerprint, Notice, NoticeReason, NoticeStatus};
use crate::rules::RuleSet;
use capacity::{History, PoolRef};
use serde::{Deserialize, Serialize};
use state::State;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use persist::PersistedState;
pub use view::AlertView;

/// A label set; the key of an alert instance.
pub type Labels = BTreeMap<String, String>;

/// One alert instance (pending or firing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Instance {
    /// The rule's name, to find its `for`, templates and thresholds again.
    rule: String,
    /// Which of the rule's levels this is.
    severity: Severity,
    /// Target name.
    target: String,
    /// Pool kind label; empty for target-level alerts, which are stepped even when the target
    /// is not up (pool alerts are frozen then).
    kind: String,
    /// Pool name label; empty for target-level alerts.
    pool: String,
    /// The rule's own labels when the instance was created: a reload that changes them makes a
    /// new instance, so this one resolves.
    rule_labels: Labels,
    /// Where the state machine is.
    state: State,
    /// The last evaluated value.
    value: f64,
    /// When a notice was last sent, for `repeat_interval`.
    last_notified: Option<SystemTime>,
    /// `summary` and `description` rendered at the last evaluation that could see the pool.
    annotations: Labels,
}

/// What the engine last knew of one target, for alert text when it cannot be seen now.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// The pools of the last successful poll.
    pools: Vec<PoolSnapshot>,
    /// Why the last poll failed; `None` after a successful one.
    error: Option<PollError>,
}

/// The engine's memory outside alert instances.
#[derive(Debug, Clone, Default)]
struct Known {
    /// Last known pools and error, per target.
    seen: HashMap<String, Seen>,
    /// Capacity changes per pool, for `capacity_dropped`.
    capacity: BTreeMap<PoolRef, History>,
}

/// Owns all alert state. See the module documentation.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Shared so that evaluation can walk the rules while mutating instances.
    rules: Arc<RuleSet>,
    /// How often a still-firing alert is notified again; zero turns repeats off.
    repeat_interval: Duration,
    /// Pending and firing instances by label set; sorted, so views are stable.
    instances: BTreeMap<Labels, Instance>,
    known: Known,
}

impl Engine {
    /// An engine with no alert state.
    pub fn new(rules: RuleSet, repeat_interval: Duration) -> Engine {
        Engine {
            rules: Arc::new(rules),
            repeat_interval,
            instances: BTreeMap::new(),
            known: Known::default(),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Replaces the rules (config reload). Instances whose rule, severity and rule labels still
    /// exist keep their state; the others are dropped, and those that were firing resolve
    /// (their notices are returned). Instances whose matchers no longer select their pool
    /// resolve at the target's next observation.
    pub fn set_rules(
        &mut self,
        now: SystemTime,
        rules: RuleSet,
        repeat_interval: Duration,
    ) -> Vec<Notice> {
        self.rules = Arc::new(rules);
        self.repeat_interval = repeat_interval;
        let gone: Vec<Labels> = self
            .instances
            .iter()
            .filter(|(_, i)| !self.still_defined(i))
            .map(|(l, _)| l.clone())
            .collect();
        self.drop_instances(now, gone)
    }

    /// Forgets a target (removed from the config): its firing alerts resolve (notices
    /// returned), its pending ones vanish, and its capacity history is dropped.
    pub fn remove_target(&mut self, now: SystemTime, target: &str) -> Vec<Notice> {
        let gone: Vec<Labels> = self
            .instances
            .iter()
            .filter(|(_, i)| i.target == target)
            .map(|(l, _)| l.clone())
            .collect();
        self.known.seen.remove(target);
        self.known.capacity.retain(|p, _| p.target != target);
        self.drop_instances(now, gone)
    }

    /// Pending and firing alerts, sorted by label set.
    pub fn alerts(&self) -> Vec<AlertView> {
        self.instances
            .iter()
            .filter_map(|(labels, i)| view::view(labels, i))
            .collect()
    }

    fn still_defined(&self, i: &Instance) -> bool {
        self.rules.get(&i.rule).is_some_and(|r| {
            r.level(i.severity).is_some()
                && r.labels == i.rule_labels
                && r.check.is_per_pool() != i.kind.is_empty()
        })
    }

    /// Removes instances, resolving those that were firing with their last annotations.
    fn drop_instances(&mut self, now: SystemTime, gone: Vec<Labels>) -> Vec<Notice> {
        let mut out = Vec::new();
        for labels in gone {
            if let Some(i) = self.instances.remove(&labels) {
                if let State::Firing { active_at, .. } = i.state {
                    out.push(notice(&labels, &i, NoticeReason::Resolved, active_at, now));
                }
            }
        }
        out
    }
}

/// Builds the notice for instance `i`.
fn notice(
    labels: &Labels,
    i: &Instance,
    reason: NoticeReason,
    starts_at: SystemTime,
    now: SystemTime,
) -> Notice {
    let (status, ends_at) = match reason {
        NoticeReason::Resolved => (NoticeStatus::Resolved, Some(now)),
        NoticeReason::Fired | NoticeReason::Repeat => (NoticeStatus::Firing, None),
    };
    Notice {
        status,
        reason,
        severity: i.severity,
        labels: labels.clone(),
        annotations: i.annotations.clone(),
        starts_at,
        ends_at,
        fingerprint: fingerprint(labels),
    }
}

#[cfg(test)]
mod tests;
