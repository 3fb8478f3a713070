//! The connection keys of targets reached over the PostgreSQL wire protocol (`postgres` and
//! `pgbouncer` targets): a libpq URL or key/value string, or separate keys; secrets from
//! `${ENV}` or a file; libpq's `sslmode` (tokio-postgres itself only knows
//! `disable`/`prefer`/`require`, so the verifying modes are taken out here and enforced by
//! [`super::tls`]).

use super::url::split_tls_params;
use crate::config::files::{read_limited, MAX_CERT_BYTES};
use crate::config::values::{resolve_secret, HumanDuration, Problems, SecretRef};
use serde::Deserialize;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// TLS mode, with libpq's meanings.
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

/// The connection keys of a target, as written. Connection settings come either as `url` or
/// as the separate keys; a key set both ways is an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnConfig {
    /// libpq connection URI (`postgres://user:pass@host:5432/db?sslmode=verify-full`) or
    /// key/value string (`host=... user=...`). Treated as a secret: it may hold a password.
    #[serde(default)]
    pub url: Option<SecretRef>,
    /// Host name, IP address or Unix socket directory. Default `localhost`.
    #[serde(default)]
    pub host: Option<String>,
    /// Port. Default 5432 (PostgreSQL) or 6432 (PgBouncer).
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
    /// Database to connect to. Default `postgres` (PostgreSQL) or `pgbouncer` (PgBouncer's
    /// admin console).
    #[serde(default)]
    pub dbname: Option<String>,
    /// TLS mode. Default `prefer` (as libpq).
    #[serde(default)]
    pub sslmode: Option<SslMode>,
    /// PEM file of CA certificates for `verify-ca` / `verify-full`. Default: the bundled
    /// Mozilla roots.
    #[serde(default)]
    pub sslrootcert: Option<PathBuf>,
    /// Timeout for establishing the connection (TCP, TLS, authentication). Default `"5s"`.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
}

/// The keys of [`ConnConfig`], to split them out of a target's table.
pub const CONN_KEYS: [&str; 10] = [
    "url",
    "host",
    "port",
    "user",
    "password",
    "password_file",
    "dbname",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
];

fn default_connect_timeout() -> HumanDuration {
    HumanDuration::secs(5)
}

/// Defaults that differ between the PostgreSQL server and PgBouncer's console.
#[derive(Debug, Clone, Copy)]
pub struct ConnDefaults {
    /// Default `port`.
    pub port: u16,
    /// Default `dbname`.
    pub dbname: &'static str,
}

/// Validated connection settings, ready to connect.
#[derive(Clone)]
pub struct ConnSettings {
    /// Connection parameters, including the password: never print this field.
    pub pg: tokio_postgres::Config,
    /// TLS mode.
    pub sslmode: SslMode,
    /// CA bundle for verification; `None` means the bundled Mozilla roots.
    pub sslrootcert: Option<PathBuf>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// `user@host:port/dbname`, for logs and `snapshot`: no password.
    pub endpoint: String,
}

impl std::fmt::Debug for ConnSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnSettings")
            .field("endpoint", &self.endpoint)
            .field("sslmode", &self.sslmode)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ConnSettings {
    /// Equal when a session opened with one would be opened the same way with the other (the
    /// password included).
    fn eq(&self, other: &Self) -> bool {
        self.endpoint == other.endpoint
            && self.pg.get_password() == other.pg.get_password()
            && self.pg.get_options() == other.pg.get_options()
            && self.sslmode == other.sslmode
            && self.sslrootcert == other.sslrootcert
            && self.connect_timeout == other.connect_timeout
    }
}

/// Longest timeout accepted for connecting or polling: beyond that a monitor is blind, and
/// `statement_timeout` must fit PostgreSQL's integer milliseconds.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Records a problem at `at(key)` unless `d` is a usable timeout.
pub fn check_timeout(problems: &mut Problems, key: String, d: HumanDuration) {
    if d.0.is_zero() {
        problems.at(key, "must be greater than 0");
    } else if d.0 > MAX_TIMEOUT {
        problems.at(key, format!("must be at most 1h (got {d})"));
    }
}

impl ConnConfig {
    /// Validates the keys of the target at key path `prefix` (`targets[2]`).
    pub fn resolve(
        &self,
        prefix: &str,
        defaults: ConnDefaults,
        problems: &mut Problems,
    ) -> Option<ConnSettings> {
        let at = |k: &str| format!("{prefix}.{k}");
        let before = problems.len();
        check_timeout(problems, at("connect_timeout"), self.connect_timeout);
        let mut sslmode = self.sslmode;
        let mut sslrootcert = self.sslrootcert.clone();
        let mut pg = match &self.url {
            Some(url) => {
                for (key, set) in [
                    ("host", self.host.is_some()),
                    ("port", self.port.is_some()),
                    ("user", self.user.is_some()),
                    ("dbname", self.dbname.is_some()),
                ] {
                    if set {
                        problems.at(
                            at(key),
                            "set either `url` or the separate connection keys, not both",
                        );
                    }
                }
                let raw = match url.resolve() {
                    Ok(s) => s,
                    Err(e) => {
                        problems.at(at("url"), e);
                        return None;
                    }
                };
                let split = split_tls_params(raw.expose());
                if let Some(mode) = split.sslmode {
                    match SslMode::parse(&mode) {
                        Some(m) if sslmode.is_none() => sslmode = Some(m),
                        Some(_) => problems.at(at("sslmode"), "set in both `url` and `sslmode`"),
                        None => problems.at(at("url"), format!("unknown sslmode \"{mode}\"")),
                    }
                }
                if let Some(cert) = split.sslrootcert {
                    sslrootcert = Some(PathBuf::from(cert));
                }
                match tokio_postgres::Config::from_str(&split.rest) {
                    Ok(c) => c,
                    Err(e) => {
                        problems.at(
                            at("url"),
                            format!("not a valid connection URL or string: {e}"),
                        );
                        return None;
                    }
                }
            }
            None => {
                let mut c = tokio_postgres::Config::new();
                c.host(self.host.as_deref().unwrap_or("localhost"));
                c.port(self.port.unwrap_or(defaults.port));
                c.user(self.user.as_deref().unwrap_or("poolwatch"));
                c.dbname(self.dbname.as_deref().unwrap_or(defaults.dbname));
                c
            }
        };
        match resolve_secret(
            self.password.as_ref(),
            self.password_file.as_deref(),
            "password",
        ) {
            Ok(Some(pw)) => {
                if pg.get_password().is_some() {
                    problems.at(at("password"), "the URL already carries a password");
                }
                pg.password(pw.expose());
            }
            Ok(None) => {}
            // Point at the key the user wrote, as receivers do for `url_file`.
            Err(e) if self.password.is_none() => problems.at(at("password_file"), e),
            Err(e) => problems.at(at("password"), e),
        }
        if pg.get_user().is_none() {
            pg.user("poolwatch");
        }
        if pg.get_dbname().is_none() {
            pg.dbname(defaults.dbname);
        }
        if pg.get_hosts().is_empty() {
            pg.host("localhost");
        }
        if pg.get_ports().is_empty() {
            pg.port(defaults.port);
        }
        if let Some(path) = &sslrootcert {
            if let Err(e) = read_limited(path, MAX_CERT_BYTES) {
                problems.at(
                    at("sslrootcert"),
                    format!("cannot read {}: {e}", path.display()),
                );
            }
        }
        if problems.len() > before {
            return None;
        }
        Some(ConnSettings {
            endpoint: endpoint(&pg),
            pg,
            sslmode: sslmode.unwrap_or_default(),
            sslrootcert,
            connect_timeout: self.connect_timeout.0,
        })
    }
}

fn endpoint(pg: &tokio_postgres::Config) -> String {
    let host = pg
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_default();
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        pg.get_user().unwrap_or(""),
        pg.get_dbname().unwrap_or("")
    )
}
