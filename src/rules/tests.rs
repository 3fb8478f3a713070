//! Tests of merging and validation ([`RuleSet::build`]).

use super::*;
use crate::config::message::did_you_mean;
use crate::config::values::HumanDuration;
use crate::rules::config::{Condition, ThresholdConfig};
use crate::rules::fixtures::labels;
use std::path::PathBuf;

fn build(configs: &[RuleConfig], builtin: bool) -> (RuleSet, Vec<(String, String)>) {
    let mut problems = Problems::new("poolwatch.toml");
    let set = RuleSet::build(configs, builtin, &mut problems);
    let found = problems
        .into_vec()
        .into_iter()
        .map(|p| {
            assert_eq!(p.file, PathBuf::from("poolwatch.toml"));
            (p.key.unwrap_or_default(), p.message)
        })
        .collect();
    (set, found)
}

fn named(name: &str) -> RuleConfig {
    RuleConfig {
        name: name.into(),
        ..RuleConfig::default()
    }
}

fn th(value: f64, clear: Option<f64>) -> Option<ThresholdConfig> {
    Some(ThresholdConfig {
        value,
        clear,
        for_: None,
    })
}

fn threshold_rule(name: &str) -> RuleConfig {
    RuleConfig {
        metric: Some(PoolMetric::Utilization),
        critical: th(0.9, None),
        ..named(name)
    }
}

#[test]
fn builtins_are_valid_and_complete() {
    let (set, problems) = build(&[], true);
    assert!(problems.is_empty(), "{problems:?}");
    let names: Vec<&str> = set.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "PoolUtilizationHigh",
            "PoolNearFull",
            "PoolExhausted",
            "PoolClientsWaiting",
            "PoolLongestWait",
            "PoolCapacityDropped",
            "PoolExhaustionPredicted",
            "PoolBudgetExceeded",
            "TargetSaturated",
            "TargetDown"
        ]
    );
    // Every optional key is spelled out, so check-config can show what runs.
    for b in builtin_rules() {
        assert!(b.enabled.is_some() && b.for_.is_some() && b.keep_firing_for.is_some());
        assert!(b.summary.is_some() && b.description.is_some() && b.labels.is_some());
        assert!(b.resolved_summary.is_some() && b.resolved_description.is_some());
        assert!(b.matchers.is_some());
    }
    let util = set.get("PoolUtilizationHigh").unwrap();
    assert_eq!(
        util.levels,
        [Level {
            severity: Severity::Warning,
            for_: Duration::from_secs(60),
            threshold: Some(Threshold {
                value: 0.80,
                clear: 0.75
            }),
        }]
    );
    let exhausted = set.get("PoolExhausted").unwrap();
    assert_eq!(
        exhausted.check,
        Check::Threshold {
            metric: PoolMetric::Utilization,
            op: CmpOp::Ge
        }
    );
    assert_eq!(
        exhausted.levels,
        [Level {
            severity: Severity::Critical,
            for_: Duration::ZERO,
            threshold: Some(Threshold {
                value: 1.0,
                clear: 0.90
            }),
        }]
    );
    // Pools that refuse when full are exhausted when full; pools that queue page on waiting
    // clients instead.
    assert!(exhausted.applies_to(&labels(&[("kind", "server"), ("when_full", "refuses")])));
    assert!(!exhausted.applies_to(&labels(&[
        ("kind", "pgbouncer_pool"),
        ("when_full", "queues")
    ])));
    // Clients that wait with no free slot: a cold pool opening connections is not a queue.
    let waiting = set.get("PoolClientsWaiting").unwrap();
    assert_eq!(
        waiting.check,
        Check::Threshold {
            metric: PoolMetric::Queued,
            op: CmpOp::Gt
        }
    );
    assert_eq!(waiting.levels[0].severity, Severity::Critical);
    let dropped = set.get("PoolCapacityDropped").unwrap();
    assert_eq!(
        dropped.check,
        Check::CapacityDropped {
            window: Duration::from_secs(3600)
        }
    );
    assert_eq!(dropped.levels[0].severity, Severity::Warning);
    assert_eq!(
        set.get("TargetDown").unwrap().levels[0].for_,
        Duration::from_secs(30)
    );
    assert_eq!(set.max_window(), Some(Duration::from_secs(3600)));
    let predicted = set.get("PoolExhaustionPredicted").unwrap();
    assert_eq!(
        predicted.check,
        Check::ExhaustionPredicted(crate::rules::predict::Predict {
            window: Duration::from_secs(600),
            horizon: Duration::from_secs(1800),
            min_r2: 0.8,
        })
    );
    assert_eq!(predicted.levels[0].severity, Severity::Warning);
    assert_eq!(predicted.keep_firing_for, Duration::from_secs(120));
    assert_eq!(set.max_prediction_window(), Some(Duration::from_secs(600)));
}

#[test]
fn exhaustion_predicted_takes_its_window_horizon_and_fit() {
    let over = RuleConfig {
        window: Some(HumanDuration::secs(900)),
        horizon: Some(HumanDuration::secs(600)),
        min_r2: Some(0.9),
        ..named("PoolExhaustionPredicted")
    };
    let (set, problems) = build(&[over], true);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        set.get("PoolExhaustionPredicted").unwrap().check,
        Check::ExhaustionPredicted(crate::rules::predict::Predict {
            window: Duration::from_secs(900),
            horizon: Duration::from_secs(600),
            min_r2: 0.9,
        })
    );
    assert_eq!(set.max_prediction_window(), Some(Duration::from_secs(900)));
}

#[test]
fn overrides_only_replace_the_keys_they_set() {
    let over = RuleConfig {
        for_: Some(HumanDuration::secs(300)),
        labels: Some(BTreeMap::from([("team".into(), "dba".into())])),
        ..named("PoolUtilizationHigh")
    };
    let off = RuleConfig {
        enabled: Some(false),
        ..named("TargetDown")
    };
    let (set, problems) = build(&[over, off, threshold_rule("Mine")], true);
    assert!(problems.is_empty(), "{problems:?}");
    let util = set.get("PoolUtilizationHigh").unwrap();
    assert_eq!(util.levels[0].for_, Duration::from_secs(300));
    assert_eq!(util.levels[0].threshold.unwrap().clear, 0.75);
    assert_eq!(util.labels["team"], "dba");
    assert!(set.get("TargetDown").is_none());
    // Config rules come after the built-ins.
    assert_eq!(set.rules().last().unwrap().name, "Mine");
    assert_eq!(set.rules().len(), builtin_rules().len());
}

#[test]
fn without_builtins_only_config_rules_run() {
    let off = RuleConfig {
        enabled: Some(false),
        ..named("PoolNearFull")
    };
    let (set, problems) = build(&[threshold_rule("Mine"), off], false);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(set.rules().len(), 1);
    // An incomplete entry named like a built-in is an error when built-ins are off.
    let (_, problems) = build(&[named("PoolNearFull")], false);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].1.contains("builtin_rules = false"),
        "{problems:?}"
    );
}

#[test]
fn per_severity_for_and_defaults() {
    let rule = RuleConfig {
        metric: Some(PoolMetric::InUse),
        warning: th(40.0, Some(35.0)),
        critical: Some(ThresholdConfig {
            value: 48.0,
            clear: None,
            for_: Some(HumanDuration::secs(5)),
        }),
        for_: Some(HumanDuration::secs(60)),
        ..named("InUse")
    };
    let (set, problems) = build(&[rule], false);
    assert!(problems.is_empty(), "{problems:?}");
    let r = set.get("InUse").unwrap();
    assert_eq!(r.levels.len(), 2);
    assert_eq!(
        r.level(Severity::Warning).unwrap().for_,
        Duration::from_secs(60)
    );
    assert_eq!(
        r.level(Severity::Critical).unwrap().for_,
        Duration::from_secs(5)
    );
    assert_eq!(
        r.level(Severity::Critical).unwrap().threshold,
        Some(Threshold {
            value: 48.0,
            clear: 48.0
        })
    );
    assert_eq!(
        r.check,
        Check::Threshold {
            metric: PoolMetric::InUse,
            op: CmpOp::Ge
        }
    );
    assert_eq!(r.summary.source(), builtin::default_summary(&r.check));
}

/// One invalid entry (alone, built-ins off) and the key and message fragments expected.
fn invalid_cases() -> Vec<(RuleConfig, &'static str, &'static str)> {
    let cond = |c: Condition| RuleConfig {
        condition: Some(c),
        ..named("C")
    };
    let with_label = |k: &str, v: &str| RuleConfig {
        labels: Some(BTreeMap::from([(k.to_string(), v.to_string())])),
        ..threshold_rule("L")
    };
    vec![
        (named("X"), "rules[0]", "needs `metric`"),
        (
            named("PoolNearFul"),
            "rules[0]",
            "did you mean the built-in rule \"PoolNearFull\"",
        ),
        (
            RuleConfig {
                condition: Some(Condition::TargetDown),
                ..threshold_rule("B")
            },
            "rules[0].condition",
            "not both",
        ),
        (
            RuleConfig {
                critical: None,
                ..threshold_rule("T")
            },
            "rules[0]",
            "needs `warning` and/or `critical`",
        ),
        (
            RuleConfig {
                severity: Some(Severity::Warning),
                ..threshold_rule("T")
            },
            "rules[0].severity",
            "condition rules",
        ),
        (
            RuleConfig {
                window: Some(HumanDuration::secs(60)),
                ..threshold_rule("T")
            },
            "rules[0].window",
            "capacity_dropped",
        ),
        (
            RuleConfig {
                critical: th(f64::NAN, None),
                ..threshold_rule("T")
            },
            "rules[0].critical",
            "finite",
        ),
        (
            RuleConfig {
                critical: th(0.9, Some(f64::INFINITY)),
                ..threshold_rule("T")
            },
            "rules[0].critical.clear",
            "finite",
        ),
        (
            RuleConfig {
                critical: th(0.9, Some(0.95)),
                ..threshold_rule("T")
            },
            "rules[0].critical.clear",
            "at most 0.9",
        ),
        (
            RuleConfig {
                op: Some(CmpOp::Lt),
                critical: th(0.2, Some(0.1)),
                ..threshold_rule("T")
            },
            "rules[0].critical.clear",
            "at least 0.2",
        ),
        (
            RuleConfig {
                op: Some(CmpOp::Eq),
                critical: th(1.0, Some(1.0)),
                ..threshold_rule("T")
            },
            "rules[0].critical.clear",
            "no meaning with `==`",
        ),
        (
            RuleConfig {
                warning: th(0.95, None),
                ..threshold_rule("T")
            },
            "rules[0].warning",
            "past the critical threshold",
        ),
        (
            RuleConfig {
                op: Some(CmpOp::Gt),
                ..cond(Condition::TargetDown)
            },
            "rules[0].op",
            "threshold rules",
        ),
        (
            RuleConfig {
                warning: th(1.0, None),
                ..cond(Condition::CapacityDropped)
            },
            "rules[0].warning",
            "threshold rules",
        ),
        (
            RuleConfig {
                window: Some(HumanDuration::secs(60)),
                ..cond(Condition::TargetSaturated)
            },
            "rules[0].window",
            "only to `condition = \"capacity_dropped\"`",
        ),
        (
            RuleConfig {
                window: Some(HumanDuration::secs(0)),
                ..cond(Condition::CapacityDropped)
            },
            "rules[0].window",
            "longer than 0s",
        ),
        (
            with_label("severity", "page"),
            "rules[0].labels.severity",
            "cannot be overridden",
        ),
        (
            with_label("pool", "x"),
            "rules[0].labels.pool",
            "cannot be overridden",
        ),
        (
            with_label("team-a", "x"),
            "rules[0].labels.team-a",
            "not a valid label name",
        ),
        (
            with_label("__meta", "x"),
            "rules[0].labels.__meta",
            "reserved by Prometheus",
        ),
        (
            with_label("when_full", "x"),
            "rules[0].labels.when_full",
            "a property of the pool that matchers see",
        ),
        (
            RuleConfig {
                horizon: Some(HumanDuration::secs(60)),
                ..threshold_rule("T")
            },
            "rules[0].horizon",
            "only to `condition = \"exhaustion_predicted\"`",
        ),
        (
            RuleConfig {
                min_r2: Some(0.5),
                ..cond(Condition::CapacityDropped)
            },
            "rules[0].min_r2",
            "only to `condition = \"exhaustion_predicted\"`",
        ),
        (
            RuleConfig {
                min_r2: Some(1.5),
                ..cond(Condition::ExhaustionPredicted)
            },
            "rules[0].min_r2",
            "between 0 and 1",
        ),
        (
            RuleConfig {
                window: Some(HumanDuration::secs(30)),
                ..cond(Condition::ExhaustionPredicted)
            },
            "rules[0].window",
            "at least 1m",
        ),
        (
            RuleConfig {
                horizon: Some(HumanDuration::secs(0)),
                ..cond(Condition::ExhaustionPredicted)
            },
            "rules[0].horizon",
            "longer than 0s",
        ),
        (
            with_label("team", ""),
            "rules[0].labels.team",
            "empty label value",
        ),
        (
            RuleConfig {
                matchers: Some(vec!["kind=\"role\"".into(), "pool=app".into()]),
                ..threshold_rule("M")
            },
            "rules[0].matchers[1]",
            "quoted",
        ),
        (
            RuleConfig {
                summary: Some("{{target}} at {{utilisation}}".into()),
                ..threshold_rule("S")
            },
            "rules[0].summary",
            "did you mean {{utilization}}",
        ),
        (
            RuleConfig {
                description: Some("{{holders}}".into()),
                ..threshold_rule("S")
            },
            "rules[0].description",
            "unknown template variable {{holders}}",
        ),
        (
            RuleConfig {
                resolved_summary: Some("{{target}} fine after {{durration}}".into()),
                ..threshold_rule("R")
            },
            "rules[0].resolved_summary",
            "did you mean {{duration}}",
        ),
        (
            RuleConfig {
                resolved_description: Some("{{target_state".into()),
                ..threshold_rule("R")
            },
            "rules[0].resolved_description",
            "unclosed placeholder",
        ),
        (named(" "), "rules[0].name", "non-empty"),
    ]
}

#[test]
fn each_invalid_entry_is_reported_at_its_key() {
    for (rule, key, fragment) in invalid_cases() {
        let (set, problems) = build(std::slice::from_ref(&rule), false);
        assert!(set.get(&rule.name).is_none(), "{rule:?} was accepted");
        assert!(
            problems
                .iter()
                .any(|(k, m)| k == key && m.contains(fragment)),
            "{rule:?}: want {key}: ..{fragment}.., got {problems:?}"
        );
    }
}

#[test]
fn all_problems_are_reported_at_once_with_their_index() {
    let bad_override = RuleConfig {
        critical: th(0.9, Some(0.99)),
        ..named("PoolNearFull")
    };
    let configs = [
        threshold_rule("Ok"),
        bad_override,
        threshold_rule("Ok"),
        RuleConfig {
            labels: Some(BTreeMap::from([("kind".into(), "x".into())])),
            summary: Some("{{nope}}".into()),
            ..threshold_rule("Two")
        },
    ];
    let (set, problems) = build(&configs, true);
    let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "rules[2].name",
            "rules[1].critical.clear",
            "rules[3].labels.kind",
            "rules[3].summary"
        ],
        "{problems:?}"
    );
    assert!(problems[0]
        .1
        .contains("duplicate rule name \"Ok\" (also rules[0])"));
    assert!(set.get("Ok").is_some());
    assert!(set.get("PoolNearFull").is_none());
}

#[test]
fn a_disabled_rule_is_still_checked() {
    let rule = RuleConfig {
        enabled: Some(false),
        matchers: Some(vec!["kind=".into()]),
        ..threshold_rule("Off")
    };
    let (set, problems) = build(&[rule], true);
    assert!(set.get("Off").is_none());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "rules[0].matchers[0]");
}

#[test]
fn matchers_select_pools() {
    let rule = RuleConfig {
        matchers: Some(vec!["kind=\"role\"".into(), "env!=\"dev\"".into()]),
        ..threshold_rule("RoleOnly")
    };
    let (set, problems) = build(&[rule], false);
    assert!(problems.is_empty(), "{problems:?}");
    let r = set.get("RoleOnly").unwrap();
    assert!(r.applies_to(&labels(&[("kind", "role"), ("env", "prod")])));
    assert!(r.applies_to(&labels(&[("kind", "role")])));
    assert!(!r.applies_to(&labels(&[("kind", "role"), ("env", "dev")])));
    assert!(!r.applies_to(&labels(&[("kind", "server")])));
}

#[test]
fn suggestions() {
    let names = ["PoolNearFull", "TargetDown"];
    assert_eq!(did_you_mean("PoolNearFul", names), Some("PoolNearFull"));
    assert_eq!(did_you_mean("targetdown", names), Some("TargetDown"));
    assert_eq!(did_you_mean("Completely", names), None);
}
