//! `[[rules]]` as written: a threshold rule (`metric`, `op`, `warning` and/or `critical`) or a
//! built-in condition (`condition`, `severity`). Validation beyond types lives in `build`.

use crate::config::values::HumanDuration;
pub use crate::model::PoolMetric;
use crate::model::Severity;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// A built-in condition that is not a simple threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The target cannot be polled (any error class but `too_many_connections`).
    TargetDown,
    /// The target refuses connections with SQLSTATE 53300.
    TargetSaturated,
    /// A pool's capacity is lower than the highest capacity seen within `window`.
    CapacityDropped,
    /// The least-squares trend of a pool's connections in use over `window` reaches its
    /// capacity within `horizon` ([`crate::rules::predict`]).
    ExhaustionPredicted,
}

/// Comparison operator of a threshold rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum CmpOp {
    /// Greater than.
    #[serde(rename = ">")]
    Gt,
    /// Greater than or equal.
    #[serde(rename = ">=")]
    Ge,
    /// Less than.
    #[serde(rename = "<")]
    Lt,
    /// Less than or equal.
    #[serde(rename = "<=")]
    Le,
    /// Equal.
    #[serde(rename = "==")]
    Eq,
    /// Not equal.
    #[serde(rename = "!=")]
    Ne,
}

/// A threshold, written either as a number (`warning = 0.8`) or as a table that adds a clear
/// threshold and a per-severity `for` (`warning = { value = 0.8, clear = 0.75, for = "1m" }`).
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdConfig {
    /// The value compared with the metric.
    pub value: f64,
    /// Once firing, the alert stays active until the metric is on the other side of this value
    /// (hysteresis). Default: `value`.
    pub clear: Option<f64>,
    /// Overrides the rule's `for` for this severity.
    pub for_: Option<HumanDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdTable {
    value: f64,
    #[serde(default)]
    clear: Option<f64>,
    #[serde(default, rename = "for")]
    for_: Option<HumanDuration>,
}

impl<'de> Deserialize<'de> for ThresholdConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ThresholdConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, or a table { value = ..., clear = ..., for = \"...\" }")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ThresholdConfig, E> {
                Ok(ThresholdConfig {
                    value: v,
                    clear: None,
                    for_: None,
                })
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ThresholdConfig, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ThresholdConfig, E> {
                self.visit_f64(v as f64)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ThresholdConfig, A::Error> {
                let t =
                    ThresholdTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ThresholdConfig {
                    value: t.value,
                    clear: t.clear,
                    for_: t.for_,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// `[[rules]]`. A rule is either a threshold rule (`metric`, `op`, `warning` and/or `critical`)
/// or a built-in condition (`condition`, `severity`). An entry whose `name` is a built-in rule's
/// overrides only the keys it sets; `enabled = false` turns a rule off.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name; the `alertname` label. Required.
    pub name: String,
    /// Whether the rule is evaluated. Default `true`.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The pool metric compared (threshold rules).
    #[serde(default)]
    pub metric: Option<PoolMetric>,
    /// The built-in condition (condition rules).
    #[serde(default)]
    pub condition: Option<Condition>,
    /// Comparison. Default `">="`.
    #[serde(default)]
    pub op: Option<CmpOp>,
    /// Threshold for a warning alert.
    #[serde(default)]
    pub warning: Option<ThresholdConfig>,
    /// Threshold for a critical alert.
    #[serde(default)]
    pub critical: Option<ThresholdConfig>,
    /// Severity of a condition rule. Default `critical`.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// How long the condition must hold before the alert fires (pending until then).
    /// Default `"0s"`.
    #[serde(default, rename = "for")]
    pub for_: Option<HumanDuration>,
    /// Keep firing this long after the condition stops holding, against flapping. Default `"0s"`.
    #[serde(default)]
    pub keep_firing_for: Option<HumanDuration>,
    /// For `capacity_dropped`: how far back the higher capacity may have been seen (default
    /// `"1h"`). For `exhaustion_predicted`: how much history the trend is fitted to (default
    /// `"10m"`).
    #[serde(default)]
    pub window: Option<HumanDuration>,
    /// For `exhaustion_predicted`: how far ahead a predicted exhaustion warns. Default `"30m"`.
    #[serde(default)]
    pub horizon: Option<HumanDuration>,
    /// For `exhaustion_predicted`: the least R² (0 to 1) of the fitted line; below it the load
    /// is too noisy for a trend. Default `0.8`.
    #[serde(default)]
    pub min_r2: Option<f64>,
    /// Which pools the rule applies to, as Prometheus label matchers over `target`, `kind`,
    /// `pool` and the target's labels: `['kind="role"', 'pool=~"app_.*"', 'target!="dev"']`.
    /// Default: every pool.
    #[serde(default)]
    pub matchers: Option<Vec<String>>,
    /// Extra labels on the alert.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    /// One-line summary template, with `{{name}}` placeholders (see README).
    #[serde(default)]
    pub summary: Option<String>,
    /// Longer description template.
    #[serde(default)]
    pub description: Option<String>,
    /// `summary` of the notice sent when the alert resolves: what recovered and after how long
    /// (`{{duration}}`). Default: the built-in text for the rule's metric or condition.
    #[serde(default)]
    pub resolved_summary: Option<String>,
    /// `description` of the notice sent when the alert resolves. Default: the built-in text
    /// for the rule's metric or condition.
    #[serde(default)]
    pub resolved_description: Option<String>,
}
