//! The keys of a `type = "pgbouncer"` target beyond its connection keys
//! ([`crate::source::pgwire::ConnConfig`], with `dbname` defaulting to the admin console
//! `pgbouncer` and `port` to 6432) and the loop's (`interval`, `reconnect_max_backoff`).

use crate::config::values::{HumanDuration, Problems};
use crate::source::pgwire::config::{check_timeout, ConnConfig, ConnDefaults, ConnSettings};
use serde::Deserialize;
use std::time::Duration;

/// `[[targets]]` keys only a PgBouncer target has.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BouncerConfig {
    /// How long one poll (its `SHOW` commands) may take before it counts as failed.
    /// Default `"2s"`.
    #[serde(default = "default_poll_timeout")]
    pub poll_timeout: HumanDuration,
}

fn default_poll_timeout() -> HumanDuration {
    HumanDuration::secs(2)
}

/// Where PgBouncer's admin console is when nothing else is said.
pub const DEFAULTS: ConnDefaults = ConnDefaults {
    port: 6432,
    dbname: "pgbouncer",
};

/// A validated PgBouncer target, ready to connect.
#[derive(Debug, Clone, PartialEq)]
pub struct BouncerSettings {
    /// Target name.
    pub name: String,
    /// How to reach the admin console.
    pub conn: ConnSettings,
    /// Client-side limit on one poll.
    pub poll_timeout: Duration,
}

impl BouncerConfig {
    /// Validates the target at key path `prefix`: its own keys, then its connection keys when
    /// they read without a type error (`conn`).
    pub fn resolve(
        &self,
        name: &str,
        prefix: &str,
        conn: Option<&ConnConfig>,
        problems: &mut Problems,
    ) -> Option<BouncerSettings> {
        check_timeout(
            problems,
            format!("{prefix}.poll_timeout"),
            self.poll_timeout,
        );
        let conn = conn?.resolve(prefix, DEFAULTS, problems)?;
        if conn.pg.get_dbname() != Some(DEFAULTS.dbname) {
            problems.at(
                format!("{prefix}.dbname"),
                "a pgbouncer target reads PgBouncer's admin console: dbname must be \"pgbouncer\"",
            );
            return None;
        }
        Some(BouncerSettings {
            name: name.to_string(),
            conn,
            poll_timeout: self.poll_timeout.0,
        })
    }
}
