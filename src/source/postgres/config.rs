//! The keys of a `type = "postgres"` target beyond its connection keys
//! ([`crate::source::pgwire::ConnConfig`]) and the loop's (`interval`, `reconnect_max_backoff`).

use crate::config::values::{HumanDuration, Problems};
use crate::source::pgwire::config::{check_timeout, ConnConfig, ConnDefaults, ConnSettings};
use serde::Deserialize;
use std::time::Duration;

/// `[[targets]]` keys only a PostgreSQL target has.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgConfig {
    /// `statement_timeout` set on poolwatch's session, and the client-side limit on one poll.
    /// Default `"2s"`.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout: HumanDuration,
}

fn default_statement_timeout() -> HumanDuration {
    HumanDuration::secs(2)
}

/// Where a PostgreSQL target's connection goes when nothing else is said.
pub const DEFAULTS: ConnDefaults = ConnDefaults {
    port: 5432,
    dbname: "postgres",
};

/// A validated PostgreSQL target, ready to connect.
#[derive(Debug, Clone, PartialEq)]
pub struct PgSettings {
    /// Target name.
    pub name: String,
    /// How to reach the server.
    pub conn: ConnSettings,
    /// Statement timeout and client-side poll limit.
    pub statement_timeout: Duration,
}

impl PgConfig {
    /// Validates the target at key path `prefix`: its own keys, then its connection keys when
    /// they read without a type error (`conn`).
    pub fn resolve(
        &self,
        name: &str,
        prefix: &str,
        conn: Option<&ConnConfig>,
        problems: &mut Problems,
    ) -> Option<PgSettings> {
        check_timeout(
            problems,
            format!("{prefix}.statement_timeout"),
            self.statement_timeout,
        );
        let conn = conn?.resolve(prefix, DEFAULTS, problems)?;
        Some(PgSettings {
            name: name.to_string(),
            conn,
            statement_timeout: self.statement_timeout.0,
        })
    }
}

impl PgSettings {
    /// How `check-config` shows the target.
    pub fn describe(&self) -> String {
        format!(
            "{}, sslmode {}, statement_timeout {}",
            self.conn.endpoint,
            self.conn.sslmode.as_str(),
            crate::timefmt::human(self.statement_timeout)
        )
    }
}
