//! Rule definitions: the built-in defaults merged with `[[rules]]` entries, validated into a
//! [`RuleSet`] whose rules the alert engine evaluates on every poll.
//!
//! # Layout
//!
//! * [`config`] — `[[rules]]` as written (the schema this module owns).
//! * [`builtin`] — the built-in rules, as complete [`RuleConfig`]s (so `check-config` and the
//!   README can show them), and the default alert texts.
//! * `build` — merging config entries over the built-ins and validating every key, recording
//!   each problem with its key path (`rules[3].critical`).
//! * [`matcher`] — Prometheus-style label matchers (`kind="role"`, `pool=~"app_.*"`).
//! * [`template`] — `{{name}}` templates for `summary` and `description` (and their resolved
//!   forms), checked at build time.
//! * [`eval`] — a threshold rule's metric value and whether it holds, with hysteresis.
//! * [`predict`] — time to exhaustion: a least-squares trend of in use, with its guards.
//!
//! A rule never looks at time: `for`, `keep_firing_for` and the capacity history are the alert
//! engine's business ([`crate::alert`]).

mod build;
pub mod builtin;
pub mod config;
pub mod eval;
pub mod matcher;
pub mod predict;
pub mod template;

use crate::config::values::Problems;
use crate::model::Severity;
use config::{CmpOp, PoolMetric, RuleConfig};
use matcher::Matcher;
use std::collections::BTreeMap;
use std::time::Duration;
use template::{Template, Vars};

pub use build::extra_label_problem;
pub use builtin::builtin_rules;

/// Labels rule matchers see beside an alert's own, which alerts do not carry: `when_full`
/// (`refuses` or `queues`: what the pool does with a new client when it is full).
pub const MATCHER_ONLY_LABELS: [&str; 1] = ["when_full"];

/// Labels that poolwatch sets on every alert itself; rules cannot set them.
pub const RESERVED_LABELS: [&str; 5] = ["alertname", "severity", "target", "kind", "pool"];

/// What a rule checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// Compare a pool metric with each level's threshold.
    Threshold {
        /// The metric compared.
        metric: PoolMetric,
        /// The comparison (`metric op threshold`).
        op: CmpOp,
    },
    /// The target cannot be polled (any error but SQLSTATE 53300).
    TargetDown,
    /// The target refuses connections with SQLSTATE 53300.
    TargetSaturated,
    /// A pool's capacity is below the highest capacity seen within `window`.
    CapacityDropped {
        /// How far back the higher capacity may have been seen.
        window: Duration,
    },
    /// A pool's trend of connections in use reaches its capacity within a horizon.
    ExhaustionPredicted(predict::Predict),
}

impl Check {
    /// True for checks evaluated per pool; false for those about the target as a whole.
    pub fn is_per_pool(&self) -> bool {
        !matches!(self, Check::TargetDown | Check::TargetSaturated)
    }
}

/// A threshold with its hysteresis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// The alert becomes active when `metric op value`.
    pub value: f64,
    /// Once active (pending or firing) it stays active while `metric op clear`; equals `value`
    /// when no hysteresis is configured.
    pub clear: f64,
}

/// One severity of a rule: its own alert instance per pool, like a separate Prometheus rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// The alert's severity.
    pub severity: Severity,
    /// How long the condition must hold before the alert fires.
    pub for_: Duration,
    /// The threshold (threshold rules only).
    pub threshold: Option<Threshold>,
}

/// A validated, enabled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name; the `alertname` label.
    pub name: String,
    /// What is checked.
    pub check: Check,
    /// One entry per severity, lowest first; never empty.
    pub levels: Vec<Level>,
    /// How long a firing alert keeps firing after its condition stops holding.
    pub keep_firing_for: Duration,
    /// Which pools (or targets) the rule applies to; all must match.
    pub matchers: Vec<Matcher>,
    /// Extra labels on the rule's alerts.
    pub labels: BTreeMap<String, String>,
    /// `summary` annotation.
    pub summary: Template,
    /// `description` annotation.
    pub description: Template,
    /// `summary` of a resolved notice: what recovered, and after how long.
    pub resolved_summary: Template,
    /// `description` of a resolved notice.
    pub resolved_description: Template,
}

/// Which texts of a rule a notice carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// `summary` and `description`: the alert is pending or firing.
    Active,
    /// `resolved_summary` and `resolved_description`: its condition stopped holding.
    Resolved,
}

impl Rule {
    /// Whether the rule applies to a pool or target with these labels (`target`, `kind`, `pool`
    /// and the target's labels; a missing label matches as the empty string).
    pub fn applies_to(&self, labels: &BTreeMap<String, String>) -> bool {
        self.applies_with(|name| labels.get(name).map(String::as_str))
    }

    /// [`Rule::applies_to`] with each label looked up by `label`, so that a caller need not
    /// build a label set.
    pub fn applies_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches_value(label(&m.name).unwrap_or("")))
    }

    /// The level of `severity`, if the rule has one.
    pub fn level(&self, severity: Severity) -> Option<&Level> {
        self.levels.iter().find(|l| l.severity == severity)
    }

    /// Renders the `summary` and `description` annotations from the templates of `text`.
    pub fn annotate(&self, text: Text, vars: &Vars<'_>) -> BTreeMap<String, String> {
        let (summary, description) = match text {
            Text::Active => (&self.summary, &self.description),
            Text::Resolved => (&self.resolved_summary, &self.resolved_description),
        };
        BTreeMap::from([
            ("summary".to_string(), summary.render(vars)),
            ("description".to_string(), description.render(vars)),
        ])
    }
}

/// The enabled rules, validated, built-ins first (in their documented order), then the config's
/// own rules in file order.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// Merges the built-in rules (when `builtin`) with the config's `[[rules]]` entries and
    /// validates the result. Every problem is recorded in `problems` under the entry's key path
    /// (`rules[3].critical`); a rule with a problem is left out of the returned set, so callers
    /// must check `problems` before using it.
    pub fn build(configs: &[RuleConfig], builtin: bool, problems: &mut Problems) -> RuleSet {
        RuleSet {
            rules: build::build(configs, builtin, problems),
        }
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule called `name`.
    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The longest `exhaustion_predicted` window, if any rule has one: samples must go back
    /// at least that far.
    pub fn max_prediction_window(&self) -> Option<Duration> {
        self.rules
            .iter()
            .filter_map(|r| match r.check {
                Check::ExhaustionPredicted(p) => Some(p.window),
                _ => None,
            })
            .max()
    }

    /// The longest `capacity_dropped` window, if any rule has one: how long capacity history
    /// must be kept.
    pub fn max_window(&self) -> Option<Duration> {
        self.rules
            .iter()
            .filter_map(|r| match r.check {
                Check::CapacityDropped { window } => Some(window),
                _ => None,
            })
            .max()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod fixtures;

impl Rule {
    /// One line for `check-config`: `PoolNearFull: utilization >= 0.95 → critical after 15s`.
    pub fn describe(&self) -> String {
        let what = match &self.check {
            Check::Threshold { metric, op } => {
                format!("{} {}", metric.as_str(), eval::op_str(*op))
            }
            Check::TargetDown => "target down".to_string(),
            Check::TargetSaturated => {
                "target saturated (refuses clients because it is full)".to_string()
            }
            Check::CapacityDropped { window } => {
                format!("capacity dropped within {}", crate::timefmt::human(*window))
            }
            Check::ExhaustionPredicted(p) => format!(
                "in use over {} predicted to reach capacity within {} (R² >= {})",
                crate::timefmt::human(p.window),
                crate::timefmt::human(p.horizon),
                p.min_r2
            ),
        };
        let levels: Vec<String> = self
            .levels
            .iter()
            .map(|l| {
                let threshold = l.threshold.as_ref().map(|t| {
                    if t.clear != t.value {
                        format!("{} (clear {}) ", t.value, t.clear)
                    } else {
                        format!("{} ", t.value)
                    }
                });
                let when = if l.for_.is_zero() {
                    "at once".to_string()
                } else {
                    format!("after {}", crate::timefmt::human(l.for_))
                };
                format!("{}{} {when}", threshold.unwrap_or_default(), l.severity)
            })
            .collect();
        format!("{}: {} {}", self.name, what, levels.join("; "))
    }
}
