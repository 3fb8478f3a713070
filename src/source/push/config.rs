//! The keys of a `type = "push"` target beyond the common ones and the loop's (`interval` is
//! how often the target reports what was pushed; `reconnect_max_backoff` has nothing to do).
//! The target's `name` is the application's name, as it posts it.

use crate::config::values::{resolve_secret, HumanDuration, Problems, Secret, SecretRef};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[[targets]]` keys only a push target has.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushConfig {
    /// Bearer token the application must send (`Authorization: Bearer ...`), literal or
    /// `${ENV_VAR}`. Default: none, and anyone who reaches the port can push for this
    /// application. Never logged.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// File holding the token (trailing newline ignored). Exclusive with `token`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// How old an instance's last push may be and still count: older, the instance is stale
    /// and leaves the sums; with no fresh instance the target is down (`stale`). Default
    /// `"30s"` (a push every 1–10 s misses a few before its instance is dropped).
    #[serde(default = "default_ttl")]
    pub ttl: HumanDuration,
    /// Most instances remembered at once; a new instance beyond it takes the place of a stale
    /// one, or is refused (409). Default 100.
    #[serde(default = "default_max_instances")]
    pub max_instances: usize,
    /// Most pools per push, and most distinct pool names of the application (each is a series
    /// set). Default 20.
    #[serde(default = "default_max_pools")]
    pub max_pools: usize,
    /// Whether a push for an application that has no target is accepted: the application
    /// becomes a push target of its own, named after it, with this target's settings (token,
    /// ttl, limits, interval, labels). At most one push target sets it. Default `false`: such
    /// pushes are refused (404).
    #[serde(default)]
    pub accept_unknown: bool,
    /// Most applications `accept_unknown` creates (each is a target and a set of series);
    /// beyond it, pushes of new applications are refused (409). Default 10.
    #[serde(default = "default_max_applications")]
    pub max_applications: usize,
}

fn default_ttl() -> HumanDuration {
    HumanDuration::secs(30)
}

fn default_max_instances() -> usize {
    100
}

fn default_max_pools() -> usize {
    20
}

fn default_max_applications() -> usize {
    10
}

/// Bounds of `ttl`.
const TTL_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(3600));

/// Bounds of `max_instances` and `max_pools`: a sum over more than this many is a mistake, and
/// memory stays bounded.
const MAX_LIMIT: usize = 10_000;

/// A validated push target.
#[derive(Debug, Clone, PartialEq)]
pub struct PushSettings {
    /// The target's name (checked as every target's): the `application` pushes name.
    pub application: String,
    /// The token pushes must carry, if any.
    pub token: Option<Secret>,
    /// See [`PushConfig::ttl`].
    pub ttl: Duration,
    /// See [`PushConfig::max_instances`].
    pub max_instances: usize,
    /// See [`PushConfig::max_pools`].
    pub max_pools: usize,
    /// Most applications created from unknown pushes ([`PushConfig::accept_unknown`]); 0 when
    /// this target does not accept them.
    pub max_applications: usize,
}

impl PushConfig {
    /// Validates the target named `name` at key path `prefix`.
    pub fn resolve(
        &self,
        name: &str,
        prefix: &str,
        problems: &mut Problems,
    ) -> Option<PushSettings> {
        let at = |k: &str| format!("{prefix}.{k}");
        let before = problems.len();
        if self.ttl.0 < TTL_RANGE.0 || self.ttl.0 > TTL_RANGE.1 {
            problems.at(
                at("ttl"),
                format!("must be between 1s and 1h (got {})", self.ttl),
            );
        }
        for (key, v) in [
            ("max_instances", self.max_instances),
            ("max_pools", self.max_pools),
            ("max_applications", self.max_applications),
        ] {
            if v == 0 || v > MAX_LIMIT {
                problems.at(
                    at(key),
                    format!("must be between 1 and {MAX_LIMIT} (got {v})"),
                );
            }
        }
        let token = match resolve_secret(self.token.as_ref(), self.token_file.as_deref(), "token") {
            Ok(t) => t,
            Err(e) => {
                let key = if self.token.is_none() {
                    "token_file"
                } else {
                    "token"
                };
                problems.at(at(key), e);
                None
            }
        };
        if token.as_ref().is_some_and(|t| t.expose().trim().is_empty()) {
            problems.at(at("token"), "must not be empty");
        }
        if problems.len() > before {
            return None;
        }
        Some(PushSettings {
            application: name.to_string(),
            token,
            ttl: self.ttl.0,
            max_instances: self.max_instances,
            max_pools: self.max_pools,
            max_applications: if self.accept_unknown {
                self.max_applications
            } else {
                0
            },
        })
    }
}

impl PushSettings {
    /// The settings of `application`, created by a push from this target's settings: the same
    /// token, ttl and limits, accepting no unknown applications itself.
    pub fn adopted(&self, application: &str) -> PushSettings {
        PushSettings {
            application: application.to_string(),
            max_applications: 0,
            ..self.clone()
        }
    }

    /// How `check-config` shows the target.
    pub fn describe(&self) -> String {
        format!(
            "pushed to POST /api/v1/pools as application \"{}\", ttl {}, {}, at most {} instances and {} pools{}",
            self.application,
            crate::timefmt::human(self.ttl),
            if self.token.is_some() { "bearer token required" } else { "no token" },
            self.max_instances,
            self.max_pools,
            match self.max_applications {
                0 => String::new(),
                n => format!("; accepts up to {n} unknown applications as targets of their own"),
            }
        )
    }
}
