//! Keeps `alerts/poolwatch.rules.yml` in step with `poolwatch::rules::builtin_rules()`: the
//! Prometheus form of every built-in (name, severity, expression with its thresholds and clear
//! thresholds, `for`, `keep_firing_for`) is derived here from the built-in itself and compared
//! with the rules as a real Prometheus loads them (its `/api/v1/rules` gives every query in
//! one normal form). Changing a built-in without the rules file fails this test.

use std::time::Duration;

use poolwatch::model::metric::POOL_FAMILIES;
use poolwatch::model::{PoolKind, PoolMetric, Severity};
use poolwatch::rules::builtin::DEFAULT_WINDOW;
use poolwatch::rules::builtin_rules;
use poolwatch::rules::config::{CmpOp, RuleConfig};
use poolwatch::rules::eval::op_str;
use poolwatch::rules::predict;
use poolwatch::source::{app, pgbouncer, postgres};
use serde_json::Value;

use crate::tools::Prometheus;

/// Every pool kind poolwatch's sources report. A new kind belongs here, so that the kinds
/// PoolExhausted selects (those that refuse when full) follow its `when_full`.
const KINDS: [PoolKind; 7] = [
    postgres::pools::SERVER,
    postgres::pools::ROLE,
    postgres::pools::DATABASE,
    pgbouncer::pools::POOL,
    pgbouncer::pools::DATABASE,
    pgbouncer::pools::CLIENTS,
    app::APP,
];

/// Rules of the file about poolwatch itself, with no built-in counterpart.
const PROMETHEUS_ONLY: [&str; 3] = [
    "PoolwatchDown",
    "PoolwatchReloadFailed",
    "PoolwatchNotificationsDropped",
];

/// The labels every rule of the file adds besides `severity` (Alertmanager routes on it).
const RULE_LABELS: [(&str, &str); 1] = [("component", "poolwatch")];

/// One Prometheus alerting rule, as a built-in implies it.
#[derive(Debug)]
struct Expected {
    name: String,
    severity: &'static str,
    query: String,
    for_secs: f64,
    keep_firing_for_secs: f64,
}

/// A duration the way Prometheus prints one (`1h`, `1h30m`, `90s` as `1m30s`, `0s`).
fn prom_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// The `/metrics` family of a pool metric.
fn family(metric: PoolMetric) -> Result<&'static str, String> {
    let candidates = [
        format!("poolwatch_pool_{}", metric.as_str()),
        format!("poolwatch_pool_{}_ratio", metric.as_str()),
    ];
    POOL_FAMILIES
        .iter()
        .map(|f| f.name)
        .find(|name| candidates.iter().any(|c| c == name))
        .ok_or_else(|| format!("no /metrics family for the pool metric {}", metric.as_str()))
}

/// `{kind=~"..."}`-style matchers for a built-in's `matchers`. `when_full` is no label of the
/// series: it becomes the kinds that have that `when_full`.
fn selector_matchers(rule: &RuleConfig) -> Result<String, String> {
    let pattern = regex::Regex::new(r#"^(\w+)\s*(=~|!~|!=|=)\s*"(.*)"$"#).expect("regex");
    let mut out = Vec::new();
    for matcher in rule.matchers.iter().flatten() {
        let c = pattern
            .captures(matcher)
            .ok_or_else(|| format!("{}: cannot read the matcher {matcher:?}", rule.name))?;
        match (&c[1], &c[2]) {
            ("when_full", "=") => {
                let kinds: Vec<&str> = KINDS
                    .iter()
                    .filter(|k| k.when_full.as_str() == &c[3])
                    .map(|k| k.name)
                    .collect();
                out.push(format!("kind=~\"{}\"", kinds.join("|")));
            }
            ("target" | "kind" | "pool", op) => out.push(format!("{}{op}\"{}\"", &c[1], &c[3])),
            _ => {
                return Err(format!(
                    "{}: no Prometheus form for the matcher {matcher:?}",
                    rule.name
                ))
            }
        }
    }
    Ok(if out.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", out.join(","))
    })
}

fn secs(d: Option<poolwatch::config::values::HumanDuration>) -> f64 {
    d.map_or(0.0, |d| d.0.as_secs_f64())
}

/// The Prometheus rules a built-in implies: one per severity of a threshold rule.
fn expected(rule: &RuleConfig) -> Result<Vec<Expected>, String> {
    let keep_firing_for_secs = secs(rule.keep_firing_for);
    if let Some(metric) = rule.metric {
        let op = op_str(rule.op.unwrap_or(CmpOp::Ge));
        let selector = format!("{}{}", family(metric)?, selector_matchers(rule)?);
        let levels = [
            (Severity::Warning, &rule.warning),
            (Severity::Critical, &rule.critical),
        ];
        let mut out = Vec::new();
        for (severity, threshold) in levels {
            let Some(t) = threshold else { continue };
            let clear = t.clear.unwrap_or(t.value);
            let mut query = format!("{selector} {op} {}", t.value);
            if clear != t.value {
                let ignoring: Vec<&str> = RULE_LABELS.iter().map(|(k, _)| *k).collect();
                query = format!(
                    "{query} or ({selector} {op} {clear} and ignoring (alertname, alertstate, severity, {}) \
                     ALERTS{{alertname=\"{}\",severity=\"{}\"}})",
                    ignoring.join(", "),
                    rule.name,
                    severity.as_str()
                );
            }
            out.push(Expected {
                name: rule.name.clone(),
                severity: severity.as_str(),
                query,
                for_secs: secs(t.for_.or(rule.for_)),
                keep_firing_for_secs,
            });
        }
        return Ok(out);
    }
    // By name, not by an exhaustive match: a condition added to the crate must fail here
    // with instructions, not stop this test from compiling.
    let condition = rule
        .condition
        .map(|c| format!("{c:?}"))
        .ok_or_else(|| format!("{}: neither a metric nor a condition", rule.name))?;
    let query = match condition.as_str() {
        "TargetDown" => r#"poolwatch_target_state{state="down"} == 1"#.to_string(),
        "TargetSaturated" => r#"poolwatch_target_state{state="saturated"} == 1"#.to_string(),
        "CapacityDropped" => format!(
            "poolwatch_pool_configured_capacity < max_over_time(poolwatch_pool_configured_capacity[{}])",
            prom_duration(rule.window.unwrap_or(DEFAULT_WINDOW).0)
        ),
        "ExhaustionPredicted" => predicted_query(rule)?,
        other => {
            return Err(format!(
                "{}: no Prometheus form known for the condition {other}: write the expression it \
                 implies here (tests/alerts/builtins.rs) and align alerts/poolwatch.rules.yml",
                rule.name
            ))
        }
    };
    Ok(vec![Expected {
        name: rule.name.clone(),
        severity: rule.severity.unwrap_or(Severity::Critical).as_str(),
        query,
        for_secs: secs(rule.for_),
        keep_firing_for_secs,
    }])
}

/// The Prometheus form of `exhaustion_predicted`: `predict_linear` over the window reaching
/// the capacity within the horizon, rising, the recent half still rising at least
/// `STALLED_BELOW` as fast, and not full. (The built-in's R² and gap guards have no PromQL
/// form.)
fn predicted_query(rule: &RuleConfig) -> Result<String, String> {
    let window = rule
        .window
        .ok_or_else(|| format!("{}: no window", rule.name))?
        .0;
    let horizon = rule
        .horizon
        .ok_or_else(|| format!("{}: no horizon", rule.name))?
        .0;
    let (whole, half) = (prom_duration(window), prom_duration(window / 2));
    Ok(format!(
        "predict_linear(poolwatch_pool_in_use[{whole}], {}) >= poolwatch_pool_capacity \
         and deriv(poolwatch_pool_in_use[{whole}]) > 0 \
         and deriv(poolwatch_pool_in_use[{half}]) >= {} * deriv(poolwatch_pool_in_use[{whole}]) \
         and poolwatch_pool_utilization_ratio < 1",
        horizon.as_secs(),
        predict::STALLED_BELOW
    ))
}

fn label<'a>(rule: &'a Value, name: &str) -> &'a str {
    rule["labels"][name].as_str().unwrap_or("")
}

/// What differs between `want` and the loaded rules.
fn compare(want: &Expected, loaded: &[&Value]) -> Option<String> {
    let Some(rule) = loaded
        .iter()
        .find(|r| r["name"] == want.name.as_str() && label(r, "severity") == want.severity)
    else {
        return Some(format!(
            "{} ({}): missing; want `{}` for {}s",
            want.name, want.severity, want.query, want.for_secs
        ));
    };
    let mut diffs = Vec::new();
    if rule["query"] != want.query.as_str() {
        diffs.push(format!(
            "expr is `{}`, want `{}`",
            rule["query"], want.query
        ));
    }
    if rule["duration"].as_f64() != Some(want.for_secs) {
        diffs.push(format!(
            "for is {}s, want {}s",
            rule["duration"], want.for_secs
        ));
    }
    if rule["keepFiringFor"].as_f64().unwrap_or(0.0) != want.keep_firing_for_secs {
        diffs.push(format!(
            "keep_firing_for is {}s, want {}s",
            rule["keepFiringFor"], want.keep_firing_for_secs
        ));
    }
    (!diffs.is_empty()).then(|| format!("{} ({}): {}", want.name, want.severity, diffs.join("; ")))
}

#[tokio::test]
async fn the_rules_file_is_in_step_with_the_built_in_rules() {
    let prometheus = Prometheus::start(&["alerts/poolwatch.rules.yml"], None).await;
    let rules = prometheus.rules().await;
    let alerting: Vec<&Value> = rules.iter().filter(|r| r["type"] == "alerting").collect();
    let builtins: Vec<RuleConfig> = builtin_rules()
        .into_iter()
        .filter(|r| r.enabled != Some(false))
        .collect();
    let mut problems = Vec::new();
    let mut wanted = Vec::new();
    for rule in &builtins {
        match expected(rule) {
            Ok(e) => wanted.extend(e),
            Err(e) => problems.push(e),
        }
    }
    problems.extend(wanted.iter().filter_map(|w| compare(w, &alerting)));
    for rule in &alerting {
        let name = rule["name"].as_str().unwrap_or_default();
        let wanted_here = wanted
            .iter()
            .any(|w| w.name == name && w.severity == label(rule, "severity"));
        if !wanted_here && !PROMETHEUS_ONLY.contains(&name) {
            problems.push(format!(
                "{name} ({}): no built-in rule (or severity) of that name",
                label(rule, "severity")
            ));
        }
        for (key, value) in RULE_LABELS {
            if label(rule, key) != value {
                problems.push(format!("{name}: label {key} is not {value:?}"));
            }
        }
        if rule["health"] == "err" {
            problems.push(format!(
                "{name}: health {} ({})",
                rule["health"], rule["lastError"]
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "alerts/poolwatch.rules.yml is out of step with builtin_rules():\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn durations_print_as_prometheus_prints_them() {
    for (secs, want) in [
        (0, "0s"),
        (30, "30s"),
        (90, "1m30s"),
        (3600, "1h"),
        (86_400, "1d"),
    ] {
        assert_eq!(prom_duration(Duration::from_secs(secs)), want);
    }
}

#[test]
fn pool_exhausted_selects_the_kinds_that_refuse_when_full() {
    let exhausted = builtin_rules()
        .into_iter()
        .find(|r| r.name == "PoolExhausted")
        .expect("built-in PoolExhausted");
    assert_eq!(
        selector_matchers(&exhausted).unwrap(),
        r#"{kind=~"server|role|database|pgbouncer_clients"}"#
    );
}
