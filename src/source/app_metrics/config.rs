//! The keys of a `type = "app_metrics"` target beyond the common and loop keys: where the
//! endpoint is, how to ask it (secrets, CA, timeout), and how its series map to pools.

use super::exposition::Limits;
use super::presets::{preset, Mapping, Series, PRESETS};
use crate::config::files::{read_limited, MAX_CERT_BYTES};
use crate::config::values::{resolve_secret, HumanDuration, Problems, Secret, SecretRef};
use crate::source::pgwire::config::check_timeout;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[[targets]]` keys only an `app_metrics` target has.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppMetricsConfig {
    /// The metrics endpoint, `http://` or `https://` (e.g. `http://orders:8080/actuator/prometheus`).
    /// Required. Credentials go in `bearer_token` or `headers`, not in the URL.
    pub url: Option<String>,
    /// The library the application's pool metrics come from: one of [`PRESETS`]. Either this or
    /// `[targets.mapping]`.
    #[serde(default)]
    pub preset: Option<String>,
    /// A custom mapping, for pool metrics no preset knows.
    #[serde(default)]
    pub mapping: Option<MappingConfig>,
    /// Only samples with all these labels count (an endpoint serving several applications or
    /// databases), e.g. `{ application = "orders" }`.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// How long one scrape (connect, request and the whole body) may take. Default `"2s"`.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Sent as `Authorization: Bearer <token>`; literal or `${ENV_VAR}`. A secret.
    #[serde(default)]
    pub bearer_token: Option<SecretRef>,
    /// File holding the bearer token. Exclusive with `bearer_token`.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// Extra request headers; values literal or `${ENV_VAR}`, treated as secrets (never logged).
    #[serde(default)]
    pub headers: BTreeMap<String, SecretRef>,
    /// PEM file of the CA certificates that verify an `https://` endpoint, instead of the
    /// built-in web roots. Certificates are always verified.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Largest response body accepted, bytes. Default 16 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

fn default_timeout() -> HumanDuration {
    HumanDuration::secs(2)
}

fn default_max_body() -> usize {
    Limits::default().max_body
}

/// `[targets.mapping]`: which series give which pool number. Each value is a series selector,
/// `name` or `name{label="value"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// The label whose value names the pool; without it, one pool named `default`.
    #[serde(default)]
    pub pool_label: Option<String>,
    /// The pool's maximum size. Required.
    pub capacity: Option<String>,
    /// Connections checked out (or give `total` and `idle`).
    #[serde(default)]
    pub in_use: Option<String>,
    /// Open connections ready to be handed out.
    #[serde(default)]
    pub idle: Option<String>,
    /// Open connections, in use and idle.
    #[serde(default)]
    pub total: Option<String>,
    /// Clients waiting for a connection now.
    #[serde(default)]
    pub waiting: Option<String>,
    /// Counter of acquires that had to wait.
    #[serde(default)]
    pub waits: Option<String>,
    /// Counter of seconds spent waiting.
    #[serde(default)]
    pub wait_seconds: Option<String>,
    /// Counter of acquires that timed out.
    #[serde(default)]
    pub timeouts: Option<String>,
}

/// A validated `app_metrics` target.
#[derive(Debug, Clone, PartialEq)]
pub struct AppMetricsSettings {
    /// Target name.
    pub name: String,
    /// The endpoint.
    pub url: reqwest::Url,
    /// The URL without its query and credentials: for logs and `check-config`.
    pub endpoint: String,
    /// How series map to pools.
    pub mapping: Mapping,
    /// Samples must carry these labels.
    pub match_labels: Vec<(String, String)>,
    /// Limit of one scrape.
    pub timeout: Duration,
    /// Request headers, `Authorization` from `bearer_token` included; values are secrets.
    pub headers: Vec<(HeaderName, Secret)>,
    /// PEM CA certificates read from `ca_file`, and the file's name.
    pub ca: Option<(PathBuf, Vec<u8>)>,
    /// Parser caps, the body cap from `max_body_bytes`.
    pub limits: Limits,
}

impl AppMetricsSettings {
    /// How `check-config` shows the target.
    pub fn describe(&self) -> String {
        format!(
            "{}, preset {}, timeout {}",
            self.endpoint,
            self.mapping.name,
            crate::timefmt::human(self.timeout)
        )
    }
}

impl AppMetricsConfig {
    /// Validates the target at key path `prefix`.
    pub fn resolve(
        &self,
        name: &str,
        prefix: &str,
        problems: &mut Problems,
    ) -> Option<AppMetricsSettings> {
        let before = problems.len();
        let at = |k: &str| format!("{prefix}.{k}");
        check_timeout(problems, at("timeout"), self.timeout);
        if self.max_body_bytes < 1024 {
            problems.at(at("max_body_bytes"), "must be at least 1024");
        }
        let url = self.url(prefix, problems);
        let mapping = self.mapping(prefix, problems);
        let headers = self.headers(prefix, problems);
        let ca = self.ca(prefix, problems);
        let (url, mapping) = (url?, mapping?);
        if problems.len() > before {
            return None;
        }
        Some(AppMetricsSettings {
            name: name.to_string(),
            endpoint: endpoint(&url),
            url,
            mapping,
            match_labels: self.match_labels.clone().into_iter().collect(),
            timeout: self.timeout.0,
            headers,
            ca,
            limits: Limits {
                max_body: self.max_body_bytes,
                ..Limits::default()
            },
        })
    }

    fn url(&self, prefix: &str, problems: &mut Problems) -> Option<reqwest::Url> {
        let key = format!("{prefix}.url");
        let Some(s) = &self.url else {
            problems.at(key, "required: the application's metrics URL");
            return None;
        };
        let problem = match reqwest::Url::parse(s) {
            Err(e) => format!("not a valid http(s) URL: {e}"),
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                "the scheme must be http or https".into()
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => "no host".into(),
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                "credentials in the URL are refused: use bearer_token or headers".into()
            }
            Ok(u) => return Some(u),
        };
        problems.at(key, problem);
        None
    }

    fn mapping(&self, prefix: &str, problems: &mut Problems) -> Option<Mapping> {
        match (&self.preset, &self.mapping) {
            (Some(_), Some(_)) => {
                problems.at(
                    format!("{prefix}.preset"),
                    "set either `preset` or `[mapping]`, not both",
                );
                None
            }
            (None, None) => {
                problems.at(
                    format!("{prefix}.preset"),
                    format!("required: one of {} (or a `[mapping]`)", PRESETS.join(", ")),
                );
                None
            }
            (Some(p), None) => {
                let found = preset(p);
                if found.is_none() {
                    let hint = crate::config::message::did_you_mean(p, PRESETS)
                        .map(|t| format!(" (did you mean \"{t}\"?)"))
                        .unwrap_or_default();
                    problems.at(
                        format!("{prefix}.preset"),
                        format!(
                            "unknown preset \"{p}\"{hint}: expected one of {}",
                            PRESETS.join(", ")
                        ),
                    );
                }
                found
            }
            (None, Some(m)) => m.resolve(&format!("{prefix}.mapping"), problems),
        }
    }

    fn headers(&self, prefix: &str, problems: &mut Problems) -> Vec<(HeaderName, Secret)> {
        let mut out = Vec::new();
        match resolve_secret(
            self.bearer_token.as_ref(),
            self.bearer_token_file.as_deref(),
            "bearer_token",
        ) {
            Err(e) => problems.at(format!("{prefix}.bearer_token"), e),
            Ok(Some(token)) => out.push((
                reqwest::header::AUTHORIZATION,
                Secret::new(format!("Bearer {}", token.expose())),
            )),
            Ok(None) => {}
        }
        for (name, value) in &self.headers {
            let key = format!("{prefix}.headers.{name}");
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                problems.at(key, format!("\"{name}\" is not a valid HTTP header name"));
                continue;
            };
            if header == reqwest::header::ACCEPT || out.iter().any(|(h, _)| *h == header) {
                problems.at(key, format!("\"{name}\" is set by poolwatch or twice"));
                continue;
            }
            match value.resolve() {
                Err(e) => problems.at(key, e),
                Ok(v) if HeaderValue::from_str(v.expose()).is_err() => problems.at(
                    key,
                    "value is not a valid HTTP header value (control characters or non-ASCII)",
                ),
                Ok(v) => out.push((header, v)),
            }
        }
        out
    }

    fn ca(&self, prefix: &str, problems: &mut Problems) -> Option<(PathBuf, Vec<u8>)> {
        let path = self.ca_file.as_ref()?;
        match read_limited(path, MAX_CERT_BYTES) {
            Ok(pem) if reqwest::Certificate::from_pem_bundle(&pem).is_ok_and(|c| !c.is_empty()) => {
                Some((path.clone(), pem))
            }
            Ok(_) => {
                problems.at(
                    format!("{prefix}.ca_file"),
                    format!("{} holds no PEM certificate", path.display()),
                );
                None
            }
            Err(e) => {
                problems.at(
                    format!("{prefix}.ca_file"),
                    format!("cannot read {}: {e}", path.display()),
                );
                None
            }
        }
    }
}

/// `url` without its query and credentials.
fn endpoint(u: &reqwest::Url) -> String {
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "{}://{}{port}{}",
        u.scheme(),
        u.host_str().unwrap_or_default(),
        u.path()
    )
}

impl MappingConfig {
    fn resolve(&self, prefix: &str, problems: &mut Problems) -> Option<Mapping> {
        let before = problems.len();
        let mut series = |key: &str, value: &Option<String>| -> Option<Series> {
            let s = value.as_ref()?;
            Series::parse(s)
                .map_err(|e| problems.at(format!("{prefix}.{key}"), format!("{s:?}: {e}")))
                .ok()
        };
        let m = Mapping {
            name: "custom".into(),
            pool_label: self.pool_label.clone(),
            capacity: series("capacity", &self.capacity),
            in_use: series("in_use", &self.in_use),
            idle: series("idle", &self.idle),
            total: series("total", &self.total),
            waiting: series("waiting", &self.waiting),
            waits: series("waits", &self.waits),
            wait_seconds: series("wait_seconds", &self.wait_seconds),
            timeouts: series("timeouts", &self.timeouts),
            zero_capacity_is_unlimited: false,
        };
        if self.capacity.is_none() {
            problems.at(
                format!("{prefix}.capacity"),
                "required: the series of the pool's maximum size",
            );
        }
        if self.in_use.is_none() && (self.total.is_none() || self.idle.is_none()) {
            problems.at(
                format!("{prefix}.in_use"),
                "required: the series of connections in use (or both `total` and `idle`)",
            );
        }
        (problems.len() == before).then_some(m)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
