//! Alerting: the pure state machine ([`state`]) and the [`Engine`] that owns every alert
//! instance, evaluates the rules against each [`TargetReport`], returns the transitions
//! (notices) and publishes the current alert set for the dispatcher.
//!
//! # Layout
//!
//! * [`state`] — `inactive → pending → firing → resolved`, one pure `step` function.
//! * `observe` — [`Engine::observe`]: rules × pools of one report → steps → notices.
//! * `trend` — the trend rule within a report: refits per slot in one pass over the history,
//!   steps only the pools predicted to fill up or alerted.
//! * `reconfigure` — [`Engine::set_rules`], [`Engine::reconcile`], [`Engine::remove_target`]:
//!   a configuration change applied to the alert state, without a false "resolved".
//! * [`view`] — [`AlertView`], the `/api/v1/alerts` entry.
//! * [`persist`] — [`PersistedState`], so that a restart neither forgets nor re-pages.
//! * `published` — [`Engine::alert_set`]: the current alerts for the dispatcher (pending,
//!   firing, and resolved ones kept for [`RESOLVED_RETENTION`]).
//!
//! The engine reads no clock and does no I/O: time is an argument, so tests drive `for = "5m"`
//! by hand. What it needs to know beyond a report — the last pools a target showed, its last
//! error, capacity history — it reads from the [`crate::store`], which the daemon updates with
//! each report before the engine sees it. An alert instance is keyed by its label set (`alertname`, `severity`, `target`,
//! `kind`, `pool`, the rule's and the target's labels); each severity of a rule is its own
//! instance, like two Prometheus rules. Only pending and firing instances are kept, plus the
//! resolved alerts of the last [`RESOLVED_RETENTION`]. Repeating notifications is the
//! dispatcher's job ([`crate::dispatch`]), not the engine's. A reload
//! that changes an alert's labels moves it to its new label set with its state and start time.
//!
//! [`TargetReport`]: crate::model::TargetReport

mod observe;
pub mod persist;
mod published;
mod reconfigure;
pub mod state;
mod trend;
pub mod view;

use crate::model::{PollError, Severity};
use crate::notice::{fingerprint, Notice, NoticeReason, NoticeStatus};
use crate::rules::{RuleSet, RESERVED_LABELS};
use serde::{Deserialize, Serialize};
use state::State;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

pub use persist::PersistedState;
pub use published::RESOLVED_RETENTION;
pub use view::{AlertView, Board};

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
    /// How alert text names the pool (`orders-db`, `orders-db role app`) or the target; empty
    /// in state saved by versions that did not keep it (see [`Instance::subject`]).
    #[serde(default)]
    subject: String,
    /// The rule's own labels in the instance's label set, to tell the target's labels apart
    /// from them when only the rule's change.
    rule_labels: Labels,
    /// Where the state machine is.
    state: State,
    /// The last evaluated value.
    value: f64,
    /// `summary` and `description` rendered at the last evaluation that could see the pool.
    annotations: Labels,
    /// For target conditions: the poll error that made the alert active, so that its resolved
    /// notice can say what it recovered from.
    #[serde(
        default,
        with = "persist::cause",
        skip_serializing_if = "Option::is_none"
    )]
    cause: Option<PollError>,
}

impl Instance {
    /// How alert text names the pool or the target.
    fn subject(&self) -> String {
        match (self.subject.is_empty(), self.kind.is_empty()) {
            (false, _) => self.subject.clone(),
            (true, true) => self.target.clone(),
            (true, false) => format!("{} {} {}", self.target, self.kind, self.pool),
        }
    }
}

/// Owns all alert state. See the module documentation.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Shared so that evaluation can walk the rules while mutating instances.
    rules: Arc<RuleSet>,
    /// Pending and firing instances by label set; sorted, so views are stable.
    instances: BTreeMap<Labels, Instance>,
    /// Alerts that resolved in the last [`RESOLVED_RETENTION`], by label set.
    resolved: BTreeMap<Labels, crate::dispatch::Alert>,
    /// When each target was last observed: trends are refitted only when a report enters a
    /// new refit slot ([`crate::rules::predict::due`]).
    observed: HashMap<String, SystemTime>,
}

impl Engine {
    /// An engine with no alert state.
    pub fn new(rules: RuleSet) -> Engine {
        Engine {
            rules: Arc::new(rules),
            instances: BTreeMap::new(),
            resolved: BTreeMap::new(),
            observed: HashMap::new(),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Pending and firing alerts, sorted by label set.
    pub fn alerts(&self) -> Vec<AlertView> {
        self.instances
            .iter()
            .filter_map(|(labels, i)| view::view(labels, i))
            .collect()
    }
}

/// What identifies an alert instance besides extra labels: its rule and severity, and where.
struct Identity<'a> {
    alertname: &'a str,
    severity: Severity,
    target: &'a str,
    /// Empty for target-level alerts, which have no `kind` and `pool` labels.
    kind: &'a str,
    pool: &'a str,
}

impl Identity<'_> {
    /// The alert's label set: the target's extra labels (already without reserved names), then
    /// the rule's (more specific), then the reserved ones.
    fn labels(&self, target_extra: &Labels, rule_labels: &Labels) -> Labels {
        let mut labels = target_extra.clone();
        labels.extend(rule_labels.clone());
        labels.insert("target".into(), self.target.into());
        if !self.kind.is_empty() {
            labels.insert("kind".into(), self.kind.into());
            labels.insert("pool".into(), self.pool.into());
        }
        labels.insert("alertname".into(), self.alertname.into());
        labels.insert("severity".into(), self.severity.as_str().into());
        labels
    }
}

impl Instance {
    fn identity(&self) -> Identity<'_> {
        Identity {
            alertname: &self.rule,
            severity: self.severity,
            target: &self.target,
            kind: &self.kind,
            pool: &self.pool,
        }
    }
}

/// A target's labels as alerts carry them: without the names poolwatch sets itself.
fn target_extra(target_labels: &Labels) -> Labels {
    target_labels
        .iter()
        .filter(|(k, _)| !RESERVED_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Builds the notice for instance `i`, with its current annotations.
fn notice(
    labels: &Labels,
    i: &Instance,
    reason: NoticeReason,
    starts_at: SystemTime,
    now: SystemTime,
) -> Notice {
    notice_with(labels, i, reason, starts_at, now, i.annotations.clone())
}

/// Builds the notice for instance `i` with `annotations`.
fn notice_with(
    labels: &Labels,
    i: &Instance,
    reason: NoticeReason,
    starts_at: SystemTime,
    now: SystemTime,
    annotations: Labels,
) -> Notice {
    let status = reason.status();
    let ends_at = (status == NoticeStatus::Resolved).then_some(now);
    Notice {
        status,
        reason,
        severity: i.severity,
        labels: labels.clone(),
        annotations,
        starts_at,
        ends_at,
        fingerprint: fingerprint(labels),
    }
}

#[cfg(test)]
mod tests;
