//! Inhibition, with Alertmanager's semantics: a firing alert that matches a rule's target
//! matchers is muted while another firing alert matches its source matchers and has the same
//! values for the rule's `equal` labels (a label missing on both counts as equal). A muted alert
//! stays in the alert set and in `/api/v1/alerts`; it is left out of notifications.
//!
//! Built in (with the built-in rules): a target that is saturated or down mutes its pools'
//! utilization alerts — while poolwatch cannot see the pools, their last numbers would page for
//! the same incident twice.

use super::{Alert, Labels};
use crate::config::values::Problems;
use crate::rules::matcher::{is_valid_label_name, Matcher};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One inhibition rule.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    /// What a muting alert matches.
    pub source: Vec<Matcher>,
    /// What a muted alert matches.
    pub target: Vec<Matcher>,
    /// Labels both must have with the same value.
    pub equal: Vec<String>,
}

/// `[[inhibit_rules]]`, as written (Alertmanager's keys).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitConfig {
    /// Matchers of the muting (source) alert, e.g. `['alertname="TargetDown"']`.
    #[serde(default)]
    pub source_matchers: Vec<String>,
    /// Matchers of the muted (target) alerts; at least one.
    pub target_matchers: Vec<String>,
    /// Labels whose values must be equal in source and target, e.g. `["target"]`.
    #[serde(default)]
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// The built-in rule: `TargetSaturated` or `TargetDown` mutes the same target's
    /// `PoolUtilizationHigh`, `PoolNearFull` and `PoolExhausted`.
    pub fn builtin() -> InhibitRule {
        let m = |s: &str| Matcher::parse(s).expect("built-in matcher");
        InhibitRule {
            source: vec![m(r#"alertname=~"TargetSaturated|TargetDown""#)],
            target: vec![m(
                r#"alertname=~"PoolUtilizationHigh|PoolNearFull|PoolExhausted""#,
            )],
            equal: vec!["target".into()],
        }
    }

    fn equal_on(&self, a: &Labels, b: &Labels) -> bool {
        self.equal.iter().all(|l| a.get(l) == b.get(l))
    }
}

/// Resolves `[[inhibit_rules]]` (`builtin`: the built-in rule first). Problems are recorded at
/// `inhibit_rules[i].key`.
pub fn build(cfgs: &[InhibitConfig], builtin: bool, problems: &mut Problems) -> Vec<InhibitRule> {
    let mut out: Vec<InhibitRule> = builtin.then(InhibitRule::builtin).into_iter().collect();
    for (i, c) in cfgs.iter().enumerate() {
        let mut parse = |key: &str, texts: &[String]| -> Vec<Matcher> {
            let mut ms = Vec::new();
            for (j, t) in texts.iter().enumerate() {
                match Matcher::parse(t) {
                    Ok(m) => ms.push(m),
                    Err(e) => problems.at(format!("inhibit_rules[{i}].{key}[{j}]"), e),
                }
            }
            ms
        };
        let source = parse("source_matchers", &c.source_matchers);
        let target = parse("target_matchers", &c.target_matchers);
        if c.target_matchers.is_empty() {
            problems.at(
                format!("inhibit_rules[{i}].target_matchers"),
                "must not be empty: an empty list would mute every alert",
            );
        }
        for (j, l) in c.equal.iter().enumerate() {
            if !is_valid_label_name(l) {
                problems.at(
                    format!("inhibit_rules[{i}].equal[{j}]"),
                    format!("\"{l}\" is not a label name (letters, digits and _)"),
                );
            }
        }
        out.push(InhibitRule {
            source,
            target,
            equal: c.equal.clone(),
        });
    }
    out
}

/// The firing alerts of `alerts` that `rules` mute, each with the fingerprint of one alert that
/// mutes it. An alert does not mute itself.
pub fn inhibited(alerts: &[Alert], rules: &[InhibitRule]) -> BTreeMap<String, String> {
    let firing: Vec<&Alert> = alerts.iter().filter(|a| a.is_firing()).collect();
    let mut out = BTreeMap::new();
    for rule in rules {
        let sources: Vec<&&Alert> = firing
            .iter()
            .filter(|a| rule.source.iter().all(|m| m.matches(&a.labels)))
            .collect();
        if sources.is_empty() {
            continue;
        }
        for t in firing
            .iter()
            .filter(|a| rule.target.iter().all(|m| m.matches(&a.labels)))
        {
            let by = sources
                .iter()
                .find(|s| s.fingerprint != t.fingerprint && rule.equal_on(&s.labels, &t.labels));
            if let Some(s) = by {
                out.entry(t.fingerprint.clone())
                    .or_insert_with(|| s.fingerprint.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::fixtures::{firing, resolved};

    fn muted(alerts: &[Alert], rules: &[InhibitRule]) -> Vec<String> {
        let by_fp: BTreeMap<&str, &Alert> =
            alerts.iter().map(|a| (a.fingerprint.as_str(), a)).collect();
        let name = |fp: &str| {
            let a = by_fp[fp];
            format!(
                "{}@{}",
                a.labels["alertname"],
                a.labels.get("target").map_or("", |t| t)
            )
        };
        inhibited(alerts, rules)
            .iter()
            .map(|(t, s)| format!("{} by {}", name(t), name(s)))
            .collect()
    }

    #[test]
    fn builtin_rule_table() {
        let rules = [InhibitRule::builtin()];
        let down_db = firing("TargetDown", &[("target", "db")], 0);
        let sat_db = firing("TargetSaturated", &[("target", "db")], 0);
        let util_db = firing("PoolUtilizationHigh", &[("target", "db"), ("pool", "p")], 0);
        let full_db = firing("PoolNearFull", &[("target", "db"), ("pool", "p")], 0);
        let waiting_db = firing("PoolClientsWaiting", &[("target", "db"), ("pool", "p")], 0);
        let util_web = firing(
            "PoolUtilizationHigh",
            &[("target", "web"), ("pool", "p")],
            0,
        );
        #[rustfmt::skip]
        let cases: Vec<(&str, Vec<Alert>, Vec<&str>)> = vec![
            ("nothing to mute", vec![util_db.clone(), util_web.clone()], vec![]),
            ("down mutes its target's utilization alerts", vec![down_db.clone(), util_db.clone(), full_db.clone()],
                vec!["PoolNearFull@db by TargetDown@db", "PoolUtilizationHigh@db by TargetDown@db"]),
            ("saturated too", vec![sat_db.clone(), util_db.clone()], vec!["PoolUtilizationHigh@db by TargetSaturated@db"]),
            ("not another target's", vec![down_db.clone(), util_web.clone()], vec![]),
            ("not other alerts", vec![down_db.clone(), waiting_db.clone()], vec![]),
            ("a resolved source mutes nothing", vec![resolved(down_db.clone(), 5), util_db.clone()], vec![]),
        ];
        for (name, alerts, want) in cases {
            let mut got = muted(&alerts, &rules);
            got.sort();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn equal_labels_and_self() {
        let m = |s: &str| Matcher::parse(s).unwrap();
        let rule = InhibitRule {
            source: vec![m(r#"severity="critical""#)],
            target: vec![m(r#"severity=~"critical|warning""#)],
            equal: vec!["team".into()],
        };
        let crit = firing("A", &[("severity", "critical"), ("team", "x")], 0);
        let warn = firing("B", &[("severity", "warning"), ("team", "x")], 0);
        let other_team = firing("C", &[("severity", "warning"), ("team", "y")], 0);
        let no_team_a = firing("D", &[("severity", "critical")], 0);
        let no_team_b = firing("E", &[("severity", "warning")], 0);
        let alerts = [crit, warn, other_team, no_team_a, no_team_b];
        let mut got = muted(&alerts, &[rule]);
        got.sort();
        // A does not mute itself; missing on both counts as equal.
        assert_eq!(got, ["B@ by A@", "E@ by D@"]);
    }

    #[test]
    fn config_problems() {
        let mut problems = Problems::new("c.toml");
        let cfgs = [
            InhibitConfig {
                source_matchers: vec!["bad".into()],
                target_matchers: vec![],
                equal: vec!["a-b".into()],
            },
            InhibitConfig {
                source_matchers: vec![r#"alertname="X""#.into()],
                target_matchers: vec![r#"alertname="Y""#.into()],
                equal: vec!["target".into()],
            },
        ];
        let rules = build(&cfgs, true, &mut problems);
        assert_eq!(rules.len(), 3);
        let text: Vec<String> = problems.into_vec().iter().map(|p| p.to_string()).collect();
        for want in [
            "inhibit_rules[0].source_matchers[0]: matcher `bad` has no operator",
            "inhibit_rules[0].target_matchers: must not be empty",
            "inhibit_rules[0].equal[0]: \"a-b\" is not a label name",
        ] {
            assert!(text.iter().any(|t| t.contains(want)), "{want}: {text:?}");
        }
    }
}
