//! A configuration change applied to the alert state: new rules, new target labels, a target
//! removed. Nothing here evaluates a condition, so nothing here may claim that one cleared.
//!
//! * An alert whose **label set** changes (a target's or its rule's `labels`) moves to its new
//!   label set with its state, `activeAt` and value: no new `for` wait, no gap in
//!   `/api/v1/alerts`. If it was firing, the new label set is announced (reason `fired`, the
//!   original `startsAt`), then the old one is retired (status resolved, reason `replaced`, an
//!   annotation `replaced_by` with the new fingerprint, text saying so).
//! * An alert whose **rule, severity or target is removed** is dropped; if it was firing it is
//!   retired (status resolved, reason `removed`), with text saying that poolwatch stopped
//!   evaluating it, not that it cleared. A pool alert whose pool the target no longer reports
//!   is retired the same way ([`Removed::Pool`], from the observation that misses it).

use super::{notice, notice_with, target_extra, Engine, Instance, Labels};
use crate::notice::{fingerprint, Notice, NoticeReason};
use crate::rules::{RuleSet, RESERVED_LABELS};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

/// What a configuration change removed from under an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Removed {
    /// Its rule (deleted or disabled).
    Rule,
    /// Its severity's threshold from its rule.
    Level,
    /// What its rule checks (a pool metric for a target condition, or the reverse).
    Check,
    /// Its target.
    Target,
    /// Its pool: not a change of poolwatch's configuration but of the target's, which no longer
    /// reports the pool (a PostgreSQL role's connection limit removed, a PgBouncer database
    /// entry removed); the alert is retired the same way.
    Pool,
}

impl Removed {
    /// Why the alert is no longer evaluated.
    fn why(self, i: &Instance) -> String {
        match self {
            Removed::Rule => format!(
                "a configuration change removed or disabled the rule {}",
                i.rule
            ),
            Removed::Level => format!(
                "a configuration change removed the {} threshold of the rule {}",
                i.severity, i.rule
            ),
            Removed::Check => format!(
                "a configuration change changed what the rule {} checks",
                i.rule
            ),
            Removed::Target => format!("a configuration change removed the target {}", i.target),
            Removed::Pool => format!("{} no longer reports this pool", i.target),
        }
    }
}

impl Engine {
    /// Applies reloaded rules and target labels (`target_labels`: every configured target's
    /// `labels`). Alerts whose rule or severity is gone are removed (a firing one is retired with
    /// reason `removed`); the others keep their state under the label set the new rules and
    /// target labels give them (see [`Engine::reconcile`]). Alerts whose matchers no longer
    /// select their pool resolve at the target's next observation.
    pub fn set_rules(
        &mut self,
        now: SystemTime,
        rules: RuleSet,
        target_labels: &BTreeMap<String, Labels>,
    ) -> Vec<Notice> {
        self.rules = Arc::new(rules);
        self.reconcile(now, target_labels)
    }

    /// Brings the alert state in line with the rules in force and the targets' labels, e.g.
    /// after restoring a state saved under another configuration: removes the alerts whose rule
    /// or severity is gone, and moves every other alert whose label set differs from the one
    /// the rule's `labels` and its target's (from `target_labels`; a target missing there keeps
    /// the labels it had) give it. Returns the notices: for a moved firing alert, `fired` under
    /// the new labels then `replaced` for the old; for a removed firing alert, `removed`.
    pub fn reconcile(
        &mut self,
        now: SystemTime,
        target_labels: &BTreeMap<String, Labels>,
    ) -> Vec<Notice> {
        let gone: Vec<(Labels, Removed)> = self
            .instances
            .iter()
            .filter_map(|(l, i)| self.removed(i).map(|why| (l.clone(), why)))
            .collect();
        let mut out = self.retire(now, gone);
        let moves: Vec<(Labels, Labels)> = self
            .instances
            .iter()
            .filter_map(|(old, i)| {
                let new = self.label_set(old, i, target_labels.get(&i.target))?;
                (new != *old).then(|| (old.clone(), new))
            })
            .collect();
        for (old, new) in moves {
            self.relabel(now, old, new, &mut out);
        }
        self.remember(&out);
        out
    }

    /// Forgets a target (removed from the config): its firing alerts are retired (reason
    /// `removed`), its pending ones vanish, and its capacity history is dropped.
    pub fn remove_target(&mut self, now: SystemTime, target: &str) -> Vec<Notice> {
        let gone: Vec<(Labels, Removed)> = self
            .instances
            .iter()
            .filter(|(_, i)| i.target == target)
            .map(|(l, _)| (l.clone(), Removed::Target))
            .collect();
        let out = self.retire(now, gone);
        self.remember(&out);
        out
    }

    /// What the rules in force no longer have for instance `i`, if anything.
    fn removed(&self, i: &Instance) -> Option<Removed> {
        let Some(rule) = self.rules.get(&i.rule) else {
            return Some(Removed::Rule);
        };
        if rule.level(i.severity).is_none() {
            Some(Removed::Level)
        } else if rule.check.is_per_pool() == i.kind.is_empty() {
            Some(Removed::Check)
        } else {
            None
        }
    }

    /// The label set instance `i` (now keyed by `old`) should have under the rules in force and
    /// `target_labels` (`None`: the target's labels did not change). `None` without its rule.
    fn label_set(
        &self,
        old: &Labels,
        i: &Instance,
        target_labels: Option<&Labels>,
    ) -> Option<Labels> {
        let rule = self.rules.get(&i.rule)?;
        let extra = match target_labels {
            Some(l) => target_extra(l),
            // What the old label set has besides the reserved names and the rule's labels.
            None => old
                .iter()
                .filter(|(k, _)| {
                    !RESERVED_LABELS.contains(&k.as_str()) && !i.rule_labels.contains_key(*k)
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        Some(i.identity().labels(&extra, &rule.labels))
    }

    /// Removes instances, retiring those that were firing with reason `removed`.
    fn retire(&mut self, now: SystemTime, gone: Vec<(Labels, Removed)>) -> Vec<Notice> {
        let mut out = Vec::new();
        for (labels, why) in gone {
            let Some(i) = self.instances.remove(&labels) else {
                continue;
            };
            if let (true, Some(active_at)) = (i.state.is_firing(), i.state.active_at()) {
                out.push(removed_notice(&labels, &i, why, active_at, now));
            }
        }
        out
    }

    /// Moves the instance keyed `old` to `new`, keeping its state. If `new` is already taken
    /// (a state restored under both label sets), the one further along stays: firing before
    /// pending, then the one active for longer.
    fn relabel(&mut self, now: SystemTime, old: Labels, new: Labels, out: &mut Vec<Notice>) {
        let Some(mut moved) = self.instances.remove(&old) else {
            return;
        };
        let Some(active_at) = moved.state.active_at() else {
            return;
        };
        let rule_labels = self.rules.get(&moved.rule).map(|r| r.labels.clone());
        moved.rule_labels = rule_labels.unwrap_or_default();
        let was_firing = moved.state.is_firing();
        let occupant = self.instances.get(&new);
        let occupant_firing = occupant.is_some_and(|o| o.state.is_firing());
        let rank = |firing: bool, at: Option<SystemTime>| (firing, at.map(std::cmp::Reverse));
        let keep_occupant = occupant.is_some_and(|o| {
            rank(occupant_firing, o.state.active_at()) >= rank(was_firing, Some(active_at))
        });
        let retired = notice_with(
            &old,
            &moved,
            NoticeReason::Replaced,
            active_at,
            now,
            replaced_text(&moved, &new),
        );
        if !keep_occupant {
            if was_firing && !occupant_firing {
                out.push(notice(&new, &moved, NoticeReason::Fired, active_at, now));
            }
            self.instances.insert(new, moved);
        }
        if was_firing {
            out.push(retired);
        }
    }
}

/// `env="prod", team="dba"`: the labels of `labels` besides the reserved ones.
fn extra_labels_text(labels: &Labels) -> String {
    let extra: Vec<String> = labels
        .iter()
        .filter(|(k, _)| !RESERVED_LABELS.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    if extra.is_empty() {
        "none besides alertname, severity, target, kind and pool".into()
    } else {
        extra.join(", ")
    }
}

/// The annotations of the notice that retires `i`'s old label set for `new`.
fn replaced_text(i: &Instance, new: &Labels) -> Labels {
    let replaced_by = fingerprint(new);
    let subject = i.subject();
    Labels::from([
        (
            "summary".into(),
            format!(
                "{subject}: {} replaced by a configuration change: labels now {}; it did not clear",
                i.rule,
                extra_labels_text(new)
            ),
        ),
        (
            "description".into(),
            format!(
                "A configuration change gave this alert new labels, so this notice retires its \
                 old label set. The condition did not clear: the alert goes on under the new \
                 labels (fingerprint {replaced_by}) with the same start time."
            ),
        ),
        ("reason".into(), NoticeReason::Replaced.as_str().into()),
        ("replaced_by".into(), replaced_by),
    ])
}

/// The notice that retires `i` (keyed `labels`, active since `active_at`) because a
/// configuration change removed what it was evaluated for.
pub(super) fn removed_notice(
    labels: &Labels,
    i: &Instance,
    why: Removed,
    active_at: SystemTime,
    now: SystemTime,
) -> Notice {
    let text = removed_text(i, why);
    notice_with(labels, i, NoticeReason::Removed, active_at, now, text)
}

/// The annotations of the notice that retires `i` because a configuration change removed
/// what it was evaluated for.
fn removed_text(i: &Instance, why: Removed) -> Labels {
    let subject = i.subject();
    let last = i.annotations.get("summary").cloned().unwrap_or_default();
    Labels::from([
        (
            "summary".into(),
            format!(
                "{subject}: {} is no longer evaluated: {}",
                i.rule,
                why.why(i)
            ),
        ),
        (
            "description".into(),
            format!(
                "This notice does not mean that the condition cleared: poolwatch stopped \
                 evaluating it. Last known: {last}"
            ),
        ),
        ("reason".into(), NoticeReason::Removed.as_str().into()),
    ])
}
