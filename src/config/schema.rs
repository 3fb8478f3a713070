//! The configuration file's shape, exactly as written in TOML. Every section rejects unknown
//! keys. Defaults are stated on each field and in `config.example.toml`; validation beyond types
//! (ranges, cross-references, secrets) lives in [`super::load`].

use super::values::{HumanDuration, SecretRef};
use crate::model::Severity;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The HTTP endpoint (`/metrics`, `/healthz`, `/readyz`, `/api/v1/alerts`).
    #[serde(default)]
    pub http: crate::http::HttpConfig,
    /// Alerting behaviour shared by all rules and receivers.
    #[serde(default)]
    pub alerting: AlertingConfig,
    /// PostgreSQL servers to watch.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
    /// Threshold rules; entries named like a built-in rule override or disable it.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Webhook receivers that get firing and resolved notifications.
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
}

/// `[alerting]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Load the built-in rules (see README "Rules and their defaults"). Default `true`.
    #[serde(default = "default_true")]
    pub builtin_rules: bool,
    /// While an alert keeps firing, notify again this often. Default `"4h"` (as Alertmanager).
    #[serde(default = "default_repeat_interval")]
    pub repeat_interval: HumanDuration,
    /// On SIGTERM/SIGINT, how long queued notifications may take to flush before exit.
    /// Default `"10s"`.
    #[serde(default = "default_flush_timeout")]
    pub shutdown_flush_timeout: HumanDuration,
    /// Where alert state is saved so that a restart neither forgets a firing alert nor pages
    /// again for it. Default: none (state lives in memory only).
    #[serde(default)]
    pub state_file: Option<PathBuf>,
}

fn default_true() -> bool {
    true
}
fn default_repeat_interval() -> HumanDuration {
    HumanDuration::secs(4 * 3600)
}
fn default_flush_timeout() -> HumanDuration {
    HumanDuration::secs(10)
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            builtin_rules: true,
            repeat_interval: default_repeat_interval(),
            shutdown_flush_timeout: default_flush_timeout(),
            state_file: None,
        }
    }
}

/// TLS mode towards PostgreSQL, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS if the server offers it, without verifying the certificate (libpq's default).
    #[default]
    Prefer,
    /// Require TLS, without verifying the certificate.
    Require,
    /// Require TLS and verify the certificate chain against `sslrootcert` (or the system's
    /// roots), but not the host name.
    VerifyCa,
    /// Require TLS, verify the chain and that the certificate names the host.
    VerifyFull,
}

impl SslMode {
    /// libpq's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Parses libpq's spelling.
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// `[[targets]]`: one PostgreSQL server. Connection settings come either as `url` or as the
/// separate keys; a key set both ways is an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Unique name; the `target` label everywhere. Required.
    pub name: String,
    /// libpq connection URI (`postgres://user:pass@host:5432/db?sslmode=verify-full`) or
    /// key/value string (`host=... user=...`). Treated as a secret: it may hold a password.
    #[serde(default)]
    pub url: Option<SecretRef>,
    /// Host name, IP address or Unix socket directory. Default `localhost`.
    #[serde(default)]
    pub host: Option<String>,
    /// Port. Default 5432.
    #[serde(default)]
    pub port: Option<u16>,
    /// Role to connect as. Default `poolwatch`.
    #[serde(default)]
    pub user: Option<String>,
    /// Password, literal or `${ENV_VAR}`. Never logged.
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// File holding the password (trailing newline ignored). Exclusive with `password`.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Database to connect to. Default `postgres`.
    #[serde(default)]
    pub dbname: Option<String>,
    /// TLS mode. Default `prefer` (as libpq).
    #[serde(default)]
    pub sslmode: Option<SslMode>,
    /// PEM file of CA certificates for `verify-ca` / `verify-full`. Default: the bundled
    /// Mozilla roots.
    #[serde(default)]
    pub sslrootcert: Option<PathBuf>,
    /// How often to poll. Default `"1s"`, so that the built-in `PoolExhausted` (`for = "0s"`)
    /// pages a full pool within about a second; one poll costs the server well under a
    /// millisecond at normal connection counts (BENCHMARKS.md). At least `"100ms"`.
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    /// Timeout for establishing the connection (TCP, TLS, authentication). Default `"5s"`.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// `statement_timeout` set on poolwatch's session, and the client-side limit on one poll.
    /// Default `"2s"`.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout: HumanDuration,
    /// Upper bound of the reconnect backoff. Default `"10s"`: short, because reconnecting is how
    /// poolwatch learns that a saturated server has room again.
    #[serde(default = "default_max_backoff")]
    pub reconnect_max_backoff: HumanDuration,
    /// Extra labels put on this target's alerts (not on metrics, to keep series bounded), e.g.
    /// `{ env = "prod", team = "orders" }`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_interval() -> HumanDuration {
    HumanDuration::secs(1)
}
fn default_connect_timeout() -> HumanDuration {
    HumanDuration::secs(5)
}
fn default_statement_timeout() -> HumanDuration {
    HumanDuration::secs(2)
}
fn default_max_backoff() -> HumanDuration {
    HumanDuration::secs(10)
}

/// A pool metric a threshold rule can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolMetric {
    /// `in_use / capacity`, 0–1.
    Utilization,
    /// Connections taken out of capacity.
    InUse,
    /// Open connections doing no work.
    Idle,
    /// Clients queued for a connection.
    Waiting,
    /// `capacity - in_use`.
    Free,
    /// The usable ceiling.
    Capacity,
    /// Sessions idle in transaction.
    IdleInTransaction,
    /// Age of the oldest idle-in-transaction session, seconds (0 when none).
    OldestIdleInTransactionSeconds,
    /// Age of the oldest open transaction, seconds (0 when none).
    OldestTransactionSeconds,
    /// Sessions waiting on a lock.
    LockWaiting,
}

impl PoolMetric {
    /// Every metric, in declaration order.
    pub const ALL: [PoolMetric; 10] = [
        PoolMetric::Utilization,
        PoolMetric::InUse,
        PoolMetric::Idle,
        PoolMetric::Waiting,
        PoolMetric::Free,
        PoolMetric::Capacity,
        PoolMetric::IdleInTransaction,
        PoolMetric::OldestIdleInTransactionSeconds,
        PoolMetric::OldestTransactionSeconds,
        PoolMetric::LockWaiting,
    ];

    /// The name as written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMetric::Utilization => "utilization",
            PoolMetric::InUse => "in_use",
            PoolMetric::Idle => "idle",
            PoolMetric::Waiting => "waiting",
            PoolMetric::Free => "free",
            PoolMetric::Capacity => "capacity",
            PoolMetric::IdleInTransaction => "idle_in_transaction",
            PoolMetric::OldestIdleInTransactionSeconds => "oldest_idle_in_transaction_seconds",
            PoolMetric::OldestTransactionSeconds => "oldest_transaction_seconds",
            PoolMetric::LockWaiting => "lock_waiting",
        }
    }
}

#[cfg(test)]
mod metric_name_tests {
    use super::PoolMetric;
    use serde::Deserialize;

    #[test]
    fn as_str_is_the_config_spelling() {
        for m in PoolMetric::ALL {
            let parsed = PoolMetric::deserialize(serde::de::value::StrDeserializer::<
                serde::de::value::Error,
            >::new(m.as_str()));
            assert_eq!(parsed, Ok(m), "{}", m.as_str());
        }
    }
}

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
    /// For `capacity_dropped`: how far back the higher capacity may have been seen.
    /// Default `"1h"`.
    #[serde(default)]
    pub window: Option<HumanDuration>,
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

/// `[[receivers]]`: a webhook that gets Alertmanager-format (version 4) notifications.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Unique name; the `receiver` field of payloads and the `receiver` metric label. Required.
    pub name: String,
    /// Webhook URL, literal or `${ENV_VAR}`. A secret: it often carries a token.
    #[serde(default)]
    pub url: Option<SecretRef>,
    /// File holding the webhook URL. Exclusive with `url`.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Timeout of one delivery attempt. Default `"10s"`.
    #[serde(default = "default_receiver_timeout")]
    pub timeout: HumanDuration,
    /// Extra HTTP headers (values may be `${ENV_VAR}`, e.g. `Authorization`). Never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, SecretRef>,
    /// Severities this receiver gets. Default: all.
    #[serde(default = "default_severities")]
    pub severities: Vec<Severity>,
    /// Also notify when an alert resolves. Default `true`.
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    /// Notifications held while the receiver is failing; beyond it the oldest is dropped (and
    /// counted). Default 1000.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Give up on one notification after retrying it this long (counted as dropped).
    /// Default `"1h"`.
    #[serde(default = "default_max_retry_age")]
    pub max_retry_age: HumanDuration,
    /// First retry delay; doubles per attempt, with jitter. Default `"500ms"`.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff: HumanDuration,
    /// Cap of the retry delay. Default `"30s"`.
    #[serde(default = "default_receiver_max_backoff")]
    pub max_backoff: HumanDuration,
}

fn default_receiver_timeout() -> HumanDuration {
    HumanDuration::secs(10)
}
fn default_severities() -> Vec<Severity> {
    Severity::ALL.to_vec()
}
fn default_queue_capacity() -> usize {
    1000
}
fn default_max_retry_age() -> HumanDuration {
    HumanDuration::secs(3600)
}
fn default_initial_backoff() -> HumanDuration {
    HumanDuration::millis(500)
}
fn default_receiver_max_backoff() -> HumanDuration {
    HumanDuration::secs(30)
}
