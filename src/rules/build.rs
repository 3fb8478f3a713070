//! Merging `[[rules]]` entries over the built-ins, and validating each merged rule into a
//! [`Rule`]. Every problem is collected (not just the first) with its key path.

use super::builtin::{
    builtin_rules, default_description, default_resolved_description, default_resolved_summary,
    default_summary, is_builtin_name, DEFAULT_WINDOW,
};
use super::eval::op_str;
use super::matcher::{is_valid_label_name, Matcher};
use super::predict::Predict;
use super::template::Template;
use super::{Check, Level, Rule, Threshold, RESERVED_LABELS};
use crate::config::message::did_you_mean;
use crate::config::values::Problems;
use crate::model::Severity;
use crate::rules::config::{CmpOp, Condition, RuleConfig, ThresholdConfig};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// See [`super::RuleSet::build`].
pub(super) fn build(configs: &[RuleConfig], builtin: bool, problems: &mut Problems) -> Vec<Rule> {
    let builtins = if builtin { builtin_rules() } else { Vec::new() };
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, c) in configs.iter().enumerate() {
        let key = format!("rules[{i}].name");
        if c.name.trim().is_empty() {
            problems.at(
                key,
                "a rule needs a non-empty `name` (it becomes the `alertname` label)",
            );
        } else if let Some(j) = first.get(c.name.as_str()) {
            problems.at(
                key,
                format!("duplicate rule name \"{}\" (also rules[{j}])", c.name),
            );
        } else {
            first.insert(&c.name, i);
        }
    }
    let mut rules = Vec::new();
    for b in &builtins {
        let compiled = match first.get(b.name.as_str()) {
            Some(&i) => compile(&overlay(b, &configs[i]), format!("rules[{i}]"), problems),
            None => compile(b, format!("built-in rule {}", b.name), problems),
        };
        rules.extend(compiled);
    }
    for (i, c) in configs.iter().enumerate() {
        let own = first.get(c.name.as_str()) == Some(&i);
        if own && !builtins.iter().any(|b| b.name == c.name) {
            rules.extend(compile(c, format!("rules[{i}]"), problems));
        }
    }
    rules
}

/// `base` with every key that `over` sets replaced. Thresholds are replaced whole: a
/// `warning = 0.85` drops the built-in's `clear`, which keeps the result predictable.
fn overlay(base: &RuleConfig, over: &RuleConfig) -> RuleConfig {
    fn pick<T: Clone>(over: &Option<T>, base: &Option<T>) -> Option<T> {
        over.clone().or_else(|| base.clone())
    }
    RuleConfig {
        name: over.name.clone(),
        enabled: pick(&over.enabled, &base.enabled),
        metric: pick(&over.metric, &base.metric),
        condition: pick(&over.condition, &base.condition),
        op: pick(&over.op, &base.op),
        warning: pick(&over.warning, &base.warning),
        critical: pick(&over.critical, &base.critical),
        severity: pick(&over.severity, &base.severity),
        for_: pick(&over.for_, &base.for_),
        keep_firing_for: pick(&over.keep_firing_for, &base.keep_firing_for),
        window: pick(&over.window, &base.window),
        horizon: pick(&over.horizon, &base.horizon),
        min_r2: pick(&over.min_r2, &base.min_r2),
        matchers: pick(&over.matchers, &base.matchers),
        labels: pick(&over.labels, &base.labels),
        summary: pick(&over.summary, &base.summary),
        description: pick(&over.description, &base.description),
        resolved_summary: pick(&over.resolved_summary, &base.resolved_summary),
        resolved_description: pick(&over.resolved_description, &base.resolved_description),
    }
}

/// Problems of one rule, keyed below its prefix (`rules[3]`).
struct Checker {
    prefix: String,
    found: Vec<(String, String)>,
}

impl Checker {
    fn at(&mut self, field: &str, message: impl Into<String>) {
        let key = if field.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}.{field}", self.prefix)
        };
        self.found.push((key, message.into()));
    }
}

/// Validates one merged rule. Returns it when it is enabled and has no problem.
fn compile(rc: &RuleConfig, prefix: String, problems: &mut Problems) -> Option<Rule> {
    let mut ck = Checker {
        prefix,
        found: Vec::new(),
    };
    let enabled = rc.enabled.unwrap_or(true);
    // `{ name = "PoolNearFull", enabled = false }` stays valid with built-in rules turned off.
    let lenient = !enabled && is_builtin_name(&rc.name);
    let for_ = rc.for_.map_or(Duration::ZERO, |d| d.0);
    let (check, levels) = match (rc.metric, rc.condition) {
        (Some(_), Some(_)) => {
            ck.at(
                "condition",
                "set either `metric` (a threshold rule) or `condition` (a built-in condition), \
                 not both",
            );
            (None, Vec::new())
        }
        (None, None) => {
            if !lenient {
                ck.at("", missing_kind(&rc.name));
            }
            (None, Vec::new())
        }
        (Some(metric), None) => {
            let op = rc.op.unwrap_or(CmpOp::Ge);
            let levels = threshold_levels(rc, op, for_, lenient, &mut ck);
            (Some(Check::Threshold { metric, op }), levels)
        }
        (None, Some(condition)) => {
            let check = condition_check(rc, condition, &mut ck);
            let severity = rc.severity.unwrap_or(Severity::Critical);
            let level = Level {
                severity,
                for_,
                threshold: None,
            };
            (Some(check), vec![level])
        }
    };
    let matchers = parse_matchers(rc.matchers.as_deref().unwrap_or_default(), &mut ck);
    let labels = check_labels(rc.labels.clone().unwrap_or_default(), &mut ck);
    let [summary, description, resolved_summary, resolved_description] = [
        ("summary", &rc.summary, default_summary as DefaultText),
        ("description", &rc.description, default_description),
        (
            "resolved_summary",
            &rc.resolved_summary,
            default_resolved_summary,
        ),
        (
            "resolved_description",
            &rc.resolved_description,
            default_resolved_description,
        ),
    ]
    .map(|(key, given, default)| {
        let parsed = template(given.as_deref(), check.as_ref().map(default));
        if let Some(Err(e)) = &parsed {
            ck.at(key, e.clone());
        }
        parsed
    });
    let failed = !ck.found.is_empty();
    for (key, message) in ck.found {
        problems.at(key, message);
    }
    if failed || !enabled || levels.is_empty() {
        return None;
    }
    Some(Rule {
        name: rc.name.clone(),
        check: check?,
        levels,
        keep_firing_for: rc.keep_firing_for.map_or(Duration::ZERO, |d| d.0),
        matchers,
        labels,
        summary: summary?.ok()?,
        description: description?.ok()?,
        resolved_summary: resolved_summary?.ok()?,
        resolved_description: resolved_description?.ok()?,
    })
}

fn missing_kind(name: &str) -> String {
    let mut msg = format!(
        "rule \"{name}\" needs `metric` (a threshold rule) or `condition` \
         (target_down, target_saturated, capacity_dropped or exhaustion_predicted)"
    );
    let builtins = builtin_rules();
    if is_builtin_name(name) {
        msg.push_str(
            "; built-in rules are off (`alerting.builtin_rules = false`), so an entry named \
             like one must be complete",
        );
    } else if let Some(s) = did_you_mean(name, builtins.iter().map(|b| b.name.as_str())) {
        msg.push_str(&format!("; did you mean the built-in rule \"{s}\"?"));
    }
    msg
}

fn threshold_levels(
    rc: &RuleConfig,
    op: CmpOp,
    for_: Duration,
    lenient: bool,
    ck: &mut Checker,
) -> Vec<Level> {
    if rc.severity.is_some() {
        ck.at(
            "severity",
            "`severity` applies to condition rules; a threshold rule sets `warning` and/or \
             `critical`",
        );
    }
    reject_window_keys(rc, ck, false);
    if rc.warning.is_none() && rc.critical.is_none() && !lenient {
        ck.at(
            "",
            format!(
                "threshold rule \"{}\" needs `warning` and/or `critical`, e.g. critical = 0.95",
                rc.name
            ),
        );
    }
    let mut levels = Vec::new();
    for (severity, key, t) in [
        (Severity::Warning, "warning", &rc.warning),
        (Severity::Critical, "critical", &rc.critical),
    ] {
        if let Some(threshold) = t.as_ref().and_then(|t| check_threshold(op, key, t, ck)) {
            let level_for = t.as_ref().and_then(|t| t.for_).map_or(for_, |d| d.0);
            levels.push(Level {
                severity,
                for_: level_for,
                threshold: Some(threshold),
            });
        }
    }
    if let (Some(w), Some(c)) = (&rc.warning, &rc.critical) {
        let inverted = match op {
            CmpOp::Gt | CmpOp::Ge => w.value > c.value,
            CmpOp::Lt | CmpOp::Le => w.value < c.value,
            CmpOp::Eq | CmpOp::Ne => false,
        };
        if inverted {
            ck.at(
                "warning",
                format!(
                    "the warning threshold {} is past the critical threshold {} for `{}`: the \
                     warning would fire after the critical alert",
                    w.value,
                    c.value,
                    op_str(op)
                ),
            );
        }
    }
    levels
}

fn check_threshold(
    op: CmpOp,
    key: &str,
    t: &ThresholdConfig,
    ck: &mut Checker,
) -> Option<Threshold> {
    if !t.value.is_finite() {
        ck.at(
            key,
            format!("the threshold must be a finite number, not {}", t.value),
        );
        return None;
    }
    let Some(clear) = t.clear else {
        return Some(Threshold {
            value: t.value,
            clear: t.value,
        });
    };
    let clear_key = format!("{key}.clear");
    let (v, o) = (t.value, op_str(op));
    let problem = if !clear.is_finite() {
        Some(format!("`clear` must be a finite number, not {clear}"))
    } else {
        match op {
            CmpOp::Gt | CmpOp::Ge if clear > v => Some(format!(
                "`clear` {clear} is above `value` {v}: with `{o}` the alert clears when the \
                 metric falls below `clear`, so it must be at most {v}"
            )),
            CmpOp::Lt | CmpOp::Le if clear < v => Some(format!(
                "`clear` {clear} is below `value` {v}: with `{o}` the alert clears when the \
                 metric rises above `clear`, so it must be at least {v}"
            )),
            CmpOp::Eq | CmpOp::Ne => Some(format!(
                "`clear` has no meaning with `{o}`: remove it, or use >, >=, < or <="
            )),
            _ => None,
        }
    };
    match problem {
        Some(p) => {
            ck.at(&clear_key, p);
            None
        }
        None => Some(Threshold { value: v, clear }),
    }
}

fn condition_check(rc: &RuleConfig, condition: Condition, ck: &mut Checker) -> Check {
    for (set, key) in [
        (rc.op.is_some(), "op"),
        (rc.warning.is_some(), "warning"),
        (rc.critical.is_some(), "critical"),
    ] {
        if set {
            ck.at(
                key,
                format!(
                    "`{key}` applies to threshold rules (with `metric`); a condition rule sets \
                     `severity` (default critical)"
                ),
            );
        }
    }
    match condition {
        Condition::CapacityDropped => {
            let window = rc.window.unwrap_or(DEFAULT_WINDOW).0;
            if window.is_zero() {
                ck.at(
                    "window",
                    "`window` must be longer than 0s, e.g. \"1h\": it is how long a higher \
                     capacity is remembered",
                );
            }
            reject_window_keys(rc, ck, true);
            Check::CapacityDropped { window }
        }
        Condition::ExhaustionPredicted => Check::ExhaustionPredicted(predict_settings(rc, ck)),
        other => {
            reject_window_keys(rc, ck, false);
            match other {
                Condition::TargetSaturated => Check::TargetSaturated,
                _ => Check::TargetDown,
            }
        }
    }
}

/// `window` (unless `window_used`), `horizon` and `min_r2` on a rule that has no use for them.
fn reject_window_keys(rc: &RuleConfig, ck: &mut Checker, window_used: bool) {
    let set = [
        ("window", rc.window.is_some() && !window_used),
        ("horizon", rc.horizon.is_some()),
        ("min_r2", rc.min_r2.is_some()),
    ];
    for (key, _) in set.iter().filter(|(_, set)| *set) {
        let conditions = if *key == "window" {
            "`condition = \"capacity_dropped\"` and `condition = \"exhaustion_predicted\"`"
        } else {
            "`condition = \"exhaustion_predicted\"`"
        };
        ck.at(key, format!("`{key}` applies only to {conditions}"));
    }
}

/// The settings of an `exhaustion_predicted` rule, defaults filled in.
fn predict_settings(rc: &RuleConfig, ck: &mut Checker) -> Predict {
    let defaults = Predict::default();
    let p = Predict {
        window: rc.window.map_or(defaults.window, |d| d.0),
        horizon: rc.horizon.map_or(defaults.horizon, |d| d.0),
        min_r2: rc.min_r2.unwrap_or(defaults.min_r2),
    };
    if p.window < Duration::from_secs(60) {
        ck.at(
            "window",
            "`window` must be at least 1m, e.g. \"10m\": it is the history the trend is fitted to",
        );
    }
    if p.horizon.is_zero() {
        ck.at(
            "horizon",
            "`horizon` must be longer than 0s, e.g. \"30m\": how far ahead exhaustion warns",
        );
    }
    if !(0.0..=1.0).contains(&p.min_r2) {
        ck.at(
            "min_r2",
            format!("`min_r2` must be between 0 and 1 (got {})", p.min_r2),
        );
    }
    p
}

fn parse_matchers(texts: &[String], ck: &mut Checker) -> Vec<Matcher> {
    let mut out = Vec::new();
    for (j, text) in texts.iter().enumerate() {
        match Matcher::parse(text) {
            Ok(m) => out.push(m),
            Err(e) => ck.at(&format!("matchers[{j}]"), e),
        }
    }
    out
}

/// What is wrong with `k` as the name of an extra alert label (a rule's or a target's), if
/// anything: it must be a Prometheus label name, not `__`-prefixed, and not one poolwatch sets.
pub fn extra_label_problem(k: &str) -> Option<String> {
    if !is_valid_label_name(k) {
        Some(format!(
            "`{k}` is not a valid label name (letters, digits and _, not starting with a digit)"
        ))
    } else if k.starts_with("__") {
        Some("label names starting with `__` are reserved by Prometheus".into())
    } else if super::MATCHER_ONLY_LABELS.contains(&k) {
        Some(format!(
            "`{k}` is a property of the pool that matchers see; it cannot be a label name"
        ))
    } else if RESERVED_LABELS.contains(&k) {
        Some(format!(
            "`{k}` is set by poolwatch on every alert and cannot be overridden (reserved: {})",
            RESERVED_LABELS.join(", ")
        ))
    } else {
        None
    }
}

fn check_labels(labels: BTreeMap<String, String>, ck: &mut Checker) -> BTreeMap<String, String> {
    for (k, v) in &labels {
        let key = format!("labels.{k}");
        if let Some(problem) = extra_label_problem(k) {
            ck.at(&key, problem);
        } else if v.is_empty() {
            ck.at(
                &key,
                "an empty label value is the same as no label: remove it or give it a value",
            );
        }
    }
    labels
}

/// A rule's default text for one annotation, by what it checks.
type DefaultText = fn(&Check) -> &'static str;

fn template(
    given: Option<&str>,
    default: Option<&'static str>,
) -> Option<Result<Template, String>> {
    given.or(default).map(Template::parse)
}
