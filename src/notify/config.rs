//! Receiver settings: `[[receivers]]` resolved (secrets read) and validated, so that the worker
//! never meets a bad URL or header at delivery time.

use crate::config::values::{resolve_secret, HumanDuration, Problems, Secret, SecretRef};
use crate::model::Severity;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

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

fn default_true() -> bool {
    true
}

/// One webhook receiver, resolved and validated by [`settings_from_config`].
///
/// Fields are public so that tests and tools can build a receiver by hand; start from
/// [`ReceiverSettings::new`], which has the same defaults as the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverSettings {
    /// Unique name: the `receiver` payload field, the `receiver` metric label and the log field
    /// that identifies the receiver (the URL is never logged).
    pub name: String,
    /// The webhook URL, an http(s) URL. A secret because it often carries a token.
    pub url: Secret,
    /// Timeout of one delivery attempt, connection included.
    pub timeout: Duration,
    /// Extra request headers; the values are secrets (e.g. `Authorization`) and never logged.
    pub headers: Vec<(HeaderName, Secret)>,
    /// Severities this receiver gets: a matcher on every route to it.
    pub severities: Vec<Severity>,
    /// Whether resolved alerts are sent too, where a route does not say.
    pub send_resolved: bool,
    /// At most this many alerts per payload (0: all); the rest are counted in
    /// `truncatedAlerts`.
    pub max_alerts: usize,
    /// How many notifications are held while the receiver fails; beyond it the oldest is
    /// dropped, so that memory stays bounded and the newest news survives.
    pub queue_capacity: usize,
    /// A notification queued longer than this is given up (counted dropped, reason `expired`):
    /// a page about a pool that filled up hours ago does more harm than good.
    pub max_retry_age: Duration,
    /// First retry delay; doubles per consecutive failure, with jitter.
    pub initial_backoff: Duration,
    /// Cap of the retry delay, also of a receiver's `Retry-After`.
    pub max_backoff: Duration,
}

impl ReceiverSettings {
    /// A receiver with the config file's defaults: 10s timeout, no extra headers, every
    /// severity, resolved notices on, 1000 queued, 1h max retry age, 500ms..30s backoff.
    pub fn new(name: impl Into<String>, url: Secret) -> Self {
        ReceiverSettings {
            name: name.into(),
            url,
            timeout: Duration::from_secs(10),
            headers: Vec::new(),
            severities: Severity::ALL.to_vec(),
            send_resolved: true,
            max_alerts: 0,
            queue_capacity: 1000,
            max_retry_age: Duration::from_secs(3600),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Headers poolwatch sets itself; a configured value would break the request or lie about it.
const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    super::deliver::IDEMPOTENCY_KEY,
];

/// Resolves and validates `[[receivers]]`. Every problem is recorded in `problems` at its key
/// path (`receivers[2].url`, indices from 0); only receivers without problems are returned.
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
        let url = check.url(cfg);
        let headers = check.headers(cfg);
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
        if let (true, Some(url)) = (check.ok, url) {
            let mut severities = cfg.severities.clone();
            severities.sort();
            severities.dedup();
            out.push(ReceiverSettings {
                name: cfg.name.clone(),
                url,
                timeout: cfg.timeout.0,
                headers,
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

    fn url(&mut self, cfg: &ReceiverConfig) -> Option<Secret> {
        let key = if cfg.url_file.is_some() && cfg.url.is_none() {
            "url_file"
        } else {
            "url"
        };
        match resolve_secret(cfg.url.as_ref(), cfg.url_file.as_deref(), "url") {
            Err(e) => self.fail(key, e),
            Ok(None) => self.fail("url", "required: set `url` or `url_file`"),
            Ok(Some(url)) => match check_url(url.expose()) {
                Ok(()) => return Some(url),
                Err(e) => self.fail(key, e),
            },
        }
        None
    }

    fn headers(&mut self, cfg: &ReceiverConfig) -> Vec<(HeaderName, Secret)> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(cfg.headers.len());
        for (name, value) in &cfg.headers {
            let key = format!("headers.{name}");
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                self.fail(&key, format!("\"{name}\" is not a valid HTTP header name"));
                continue;
            };
            if RESERVED_HEADERS.contains(&header.as_str()) {
                self.fail(
                    &key,
                    format!("\"{name}\" is set by poolwatch and cannot be configured"),
                );
                continue;
            }
            if !seen.insert(header.clone()) {
                self.fail(
                    &key,
                    format!("header \"{name}\" is set twice (names are case-insensitive)"),
                );
                continue;
            }
            match value.resolve() {
                Err(e) => self.fail(&key, e),
                Ok(secret) if HeaderValue::from_str(secret.expose()).is_err() => self.fail(
                    &key,
                    "value is not a valid HTTP header value (control characters or non-ASCII)",
                ),
                Ok(secret) => out.push((header, secret)),
            }
        }
        out
    }

    fn durations(&mut self, cfg: &ReceiverConfig) {
        for (key, value) in [
            ("timeout", cfg.timeout.0),
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

/// Checks that `s` is an absolute http(s) URL with a host. The error never quotes the URL.
fn check_url(s: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("not a valid http(s) URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        // The scheme is not quoted: a token pasted without a URL parses as a scheme.
        return Err("not a valid http(s) URL: the scheme is not http or https".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("not a valid http(s) URL: no host".into());
    }
    Ok(())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
