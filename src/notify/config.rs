//! Receiver settings: `[[receivers]]` resolved (secrets read) and validated, its integrations
//! by [`super::integrations::config`], so that a worker never meets a bad URL or header at
//! delivery time.

use super::integrations::{IntegrationConfig, IntegrationSettings};
use crate::config::values::{HumanDuration, Problems};
use crate::model::Severity;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::HashSet;
use std::time::Duration;

/// `[[receivers]]`: a named destination of notifications, delivered through one or more
/// integrations (`[[receivers.integrations]]`), each on its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Unique name; the `receiver` field of payloads and the `receiver` metric label. Required.
    pub name: String,
    /// How notifications go out: one or more integrations. Required.
    #[serde(default)]
    pub integrations: Vec<IntegrationConfig>,
    /// Moved to `[[receivers.integrations]]`: refused with a message saying so.
    #[serde(default)]
    pub url: Option<IgnoredAny>,
    /// Moved to `[[receivers.integrations]]`: refused with a message saying so.
    #[serde(default)]
    pub url_file: Option<IgnoredAny>,
    /// Moved to `[[receivers.integrations]]`: refused with a message saying so.
    #[serde(default)]
    pub headers: Option<IgnoredAny>,
    /// Moved to `[[receivers.integrations]]`: refused with a message saying so.
    #[serde(default)]
    pub timeout: Option<IgnoredAny>,
    /// Severities this receiver gets, a matcher on every route to it. Default: all.
    #[serde(default = "default_severities")]
    pub severities: Vec<Severity>,
    /// Also notify when an alert resolves, unless a route says otherwise. Default `true`.
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    /// Notifications held while the receiver is failing (one per group at most); beyond it the
    /// oldest is dropped (and counted). Default 1000.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// At most this many alerts per payload, the rest counted in `truncatedAlerts`. Default 0:
    /// all.
    #[serde(default)]
    pub max_alerts: usize,
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

fn default_true() -> bool {
    true
}

/// One receiver, resolved and validated by [`settings_from_config`].
///
/// Fields are public so that tests and tools can build a receiver by hand; start from
/// [`ReceiverSettings::new`], which has the same defaults as the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverSettings {
    /// Unique name: the `receiver` payload field, the `receiver` metric label and the log field
    /// that identifies the receiver (URLs are never logged).
    pub name: String,
    /// How its notifications go out, each integration with its own queue and worker.
    pub integrations: Vec<IntegrationSettings>,
    /// Severities this receiver gets: a matcher on every route to it.
    pub severities: Vec<Severity>,
    /// Whether resolved alerts are sent too, where a route does not say.
    pub send_resolved: bool,
    /// At most this many alerts per notification (0: all); the rest are counted in
    /// `truncatedAlerts`.
    pub max_alerts: usize,
    /// How many notifications each integration holds while it fails; beyond it the oldest is
    /// dropped, so that memory stays bounded and the newest news survives.
    pub queue_capacity: usize,
    /// A notification queued longer than this is given up (counted dropped, reason `expired`):
    /// a page about a pool that filled up hours ago does more harm than good.
    pub max_retry_age: Duration,
    /// First retry delay; doubles per consecutive failure, with jitter.
    pub initial_backoff: Duration,
    /// Cap of the retry delay, also of a service's `Retry-After`.
    pub max_backoff: Duration,
}

impl ReceiverSettings {
    /// A receiver with `integrations` and the config file's defaults: every severity, resolved
    /// notices on, 1000 queued, 1h max retry age, 500ms..30s backoff.
    pub fn new(name: impl Into<String>, integrations: Vec<IntegrationSettings>) -> Self {
        ReceiverSettings {
            name: name.into(),
            integrations,
            severities: Severity::ALL.to_vec(),
            send_resolved: true,
            max_alerts: 0,
            queue_capacity: 1000,
            max_retry_age: Duration::from_secs(3600),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }

    /// The names of its integrations, in configuration order.
    pub fn integration_names(&self) -> Vec<String> {
        self.integrations.iter().map(|i| i.name.clone()).collect()
    }

    /// The same receiver with only its integration `index`: what one worker delivers.
    pub(crate) fn only(&self, index: usize) -> ReceiverSettings {
        ReceiverSettings {
            integrations: self.integrations.get(index).cloned().into_iter().collect(),
            ..self.clone()
        }
    }
}

/// Keys that moved from `[[receivers]]` to `[[receivers.integrations]]`.
const MOVED_KEYS: [&str; 4] = ["url", "url_file", "headers", "timeout"];

/// Resolves and validates `[[receivers]]`. Every problem is recorded in `problems` at its key
/// path (`receivers[2].integrations[0].url`, indices from 0); only receivers without problems are returned.
/// Messages never contain a secret: not the URL, not a header value.
pub fn settings_from_config(
    cfgs: &[ReceiverConfig],
    problems: &mut Problems,
) -> Vec<ReceiverSettings> {
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(cfgs.len());
    for (i, cfg) in cfgs.iter().enumerate() {
        let mut check = Check {
            index: i,
            problems,
            ok: true,
        };
        if cfg.name.trim().is_empty() {
            check.fail("name", "must not be empty");
        } else if !names.insert(cfg.name.as_str()) {
            check.fail(
                "name",
                format!(
                    "duplicate receiver name \"{}\": names must be unique",
                    cfg.name
                ),
            );
        }
        check.moved(cfg);
        let integrations = super::integrations::config::resolve(
            &cfg.integrations,
            &format!("receivers[{i}]"),
            check.problems,
        );
        check.ok &= integrations.is_some();
        check.durations(cfg);
        if cfg.severities.is_empty() {
            check.fail(
                "severities",
                "must not be empty: list at least one of \"warning\", \"critical\"",
            );
        }
        if cfg.queue_capacity == 0 {
            check.fail("queue_capacity", "must be at least 1");
        }
        if let (true, Some(integrations)) = (check.ok, integrations) {
            let mut severities = cfg.severities.clone();
            severities.sort();
            severities.dedup();
            out.push(ReceiverSettings {
                name: cfg.name.clone(),
                integrations,
                severities,
                send_resolved: cfg.send_resolved,
                max_alerts: cfg.max_alerts,
                queue_capacity: cfg.queue_capacity,
                max_retry_age: cfg.max_retry_age.0,
                initial_backoff: cfg.initial_backoff.0,
                max_backoff: cfg.max_backoff.0,
            });
        }
    }
    out
}

/// Records problems of one receiver and remembers whether there were any.
struct Check<'a> {
    /// Position in `[[receivers]]`, for the key paths.
    index: usize,
    /// Where every problem goes.
    problems: &'a mut Problems,
    /// No problem recorded yet: only then is the receiver returned.
    ok: bool,
}

impl Check<'_> {
    fn fail(&mut self, key: &str, message: impl Into<String>) {
        self.ok = false;
        self.problems
            .at(format!("receivers[{}].{key}", self.index), message);
    }

    /// Refuses the keys that moved to `[[receivers.integrations]]`, saying where they went.
    fn moved(&mut self, cfg: &ReceiverConfig) {
        let set = [
            cfg.url.is_some(),
            cfg.url_file.is_some(),
            cfg.headers.is_some(),
            cfg.timeout.is_some(),
        ];
        for (key, _) in MOVED_KEYS.iter().zip(set).filter(|(_, set)| *set) {
            self.fail(
                key,
                format!(
                    "`{key}` moved from [[receivers]] into [[receivers.integrations]]: write \
                     the receiver's `{key}` under an integration with type = \"webhook\" \
                     (see config.example.toml)"
                ),
            );
        }
    }

    fn durations(&mut self, cfg: &ReceiverConfig) {
        for (key, value) in [
            ("max_retry_age", cfg.max_retry_age.0),
            ("initial_backoff", cfg.initial_backoff.0),
            ("max_backoff", cfg.max_backoff.0),
        ] {
            if value.is_zero() {
                self.fail(key, "must be greater than 0");
            }
        }
        if cfg.initial_backoff > cfg.max_backoff {
            self.fail(
                "initial_backoff",
                format!(
                    "{} is larger than max_backoff ({})",
                    cfg.initial_backoff, cfg.max_backoff
                ),
            );
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
