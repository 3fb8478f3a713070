//! Resolves a `[[targets]]` entry into connection settings: URL or key/value string or separate
//! keys, secrets from the environment or files, and libpq's `sslmode` (tokio-postgres itself only
//! knows `disable`/`prefer`/`require`, so the verifying modes are taken out here and enforced by
//! poolwatch's TLS set-up).

use super::files::{read_limited, MAX_CERT_BYTES};
use super::schema::{SslMode, TargetConfig};
use super::values::{resolve_secret, Problems};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A validated target, ready to connect.
#[derive(Clone)]
pub struct TargetSettings {
    /// Target name (`target` label).
    pub name: String,
    /// Connection parameters, including the password: never print this field.
    pub pg: tokio_postgres::Config,
    /// TLS mode.
    pub sslmode: SslMode,
    /// CA bundle for verification; `None` means the bundled Mozilla roots.
    pub sslrootcert: Option<PathBuf>,
    /// Poll interval.
    pub interval: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Statement timeout and client-side poll limit.
    pub statement_timeout: Duration,
    /// Reconnect backoff cap.
    pub reconnect_max_backoff: Duration,
    /// Extra alert labels.
    pub labels: BTreeMap<String, String>,
    /// `user@host:port/dbname`, for logs and `snapshot`: no password.
    pub endpoint: String,
}

impl fmt::Debug for TargetSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetSettings")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("sslmode", &self.sslmode)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl TargetSettings {
    /// True when a reload would not change how this target is polled, so its connection can be
    /// kept. Compares everything that the polling task uses, the password included; alert
    /// `labels` are applied without touching the connection.
    pub fn same_as(&self, other: &TargetSettings) -> bool {
        self.name == other.name
            && self.endpoint == other.endpoint
            && self.pg.get_password() == other.pg.get_password()
            && self.pg.get_options() == other.pg.get_options()
            && self.sslmode == other.sslmode
            && self.sslrootcert == other.sslrootcert
            && self.interval == other.interval
            && self.connect_timeout == other.connect_timeout
            && self.statement_timeout == other.statement_timeout
            && self.reconnect_max_backoff == other.reconnect_max_backoff
    }
}

/// Longest interval, timeout or backoff accepted for a target: beyond that a monitor is blind,
/// and `statement_timeout` must fit PostgreSQL's integer milliseconds.
pub const MAX_TARGET_DURATION: Duration = Duration::from_secs(3600);

/// Shortest poll interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Validates `[[targets]]` entry `i`, recording problems under `targets[i]`.
pub fn resolve(i: usize, t: &TargetConfig, problems: &mut Problems) -> Option<TargetSettings> {
    let at = |k: &str| format!("targets[{i}].{k}");
    let before = problems.len();
    if t.name.trim().is_empty() {
        problems.at(at("name"), "must not be empty");
    } else if !t
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        problems.at(at("name"), "use letters, digits, '-', '_' and '.' only");
    }
    if t.interval.0 < MIN_INTERVAL {
        problems.at(
            at("interval"),
            format!("must be at least 100ms (got {})", t.interval),
        );
    } else if t.interval.0 > MAX_TARGET_DURATION {
        problems.at(
            at("interval"),
            format!("must be at most 1h (got {})", t.interval),
        );
    }
    for (key, d) in [
        ("connect_timeout", t.connect_timeout),
        ("statement_timeout", t.statement_timeout),
        ("reconnect_max_backoff", t.reconnect_max_backoff),
    ] {
        if d.0.is_zero() {
            problems.at(at(key), "must be greater than 0");
        } else if d.0 > MAX_TARGET_DURATION {
            problems.at(at(key), format!("must be at most 1h (got {d})"));
        }
    }
    for name in t.labels.keys() {
        if let Some(problem) = crate::rules::extra_label_problem(name) {
            problems.at(at(&format!("labels.{name}")), problem);
        }
    }

    let mut sslmode = t.sslmode;
    let mut sslrootcert = t.sslrootcert.clone();
    let mut pg = match &t.url {
        Some(url) => {
            let separate = [
                ("host", t.host.is_some()),
                ("port", t.port.is_some()),
                ("user", t.user.is_some()),
                ("dbname", t.dbname.is_some()),
            ];
            for (key, set) in separate {
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
            c.host(t.host.as_deref().unwrap_or("localhost"));
            c.port(t.port.unwrap_or(5432));
            c.user(t.user.as_deref().unwrap_or("poolwatch"));
            c.dbname(t.dbname.as_deref().unwrap_or("postgres"));
            c
        }
    };
    match resolve_secret(t.password.as_ref(), t.password_file.as_deref(), "password") {
        Ok(Some(pw)) => {
            if pg.get_password().is_some() {
                problems.at(at("password"), "the URL already carries a password");
            }
            pg.password(pw.expose());
        }
        Ok(None) => {}
        // Point at the key the user wrote, as receivers do for `url_file`.
        Err(e) if t.password.is_none() => problems.at(at("password_file"), e),
        Err(e) => problems.at(at("password"), e),
    }
    if pg.get_user().is_none() {
        pg.user("poolwatch");
    }
    if pg.get_dbname().is_none() {
        pg.dbname("postgres");
    }
    if pg.get_hosts().is_empty() {
        pg.host("localhost");
    }
    let sslmode = sslmode.unwrap_or_default();
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
    Some(TargetSettings {
        name: t.name.clone(),
        endpoint: endpoint(&pg),
        pg,
        sslmode,
        sslrootcert,
        interval: t.interval.0,
        connect_timeout: t.connect_timeout.0,
        statement_timeout: t.statement_timeout.0,
        reconnect_max_backoff: t.reconnect_max_backoff.0,
        labels: t.labels.clone(),
    })
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

/// A connection string with `sslmode` and `sslrootcert` taken out.
#[derive(Debug, PartialEq)]
pub struct SplitTls {
    /// The rest, for tokio-postgres.
    pub rest: String,
    /// `sslmode` as written.
    pub sslmode: Option<String>,
    /// `sslrootcert` as written.
    pub sslrootcert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL (`postgres://...?sslmode=...`) or a key/value
/// string (`host=... sslmode=...`).
pub fn split_tls_params(s: &str) -> SplitTls {
    let mut out = SplitTls {
        rest: String::new(),
        sslmode: None,
        sslrootcert: None,
    };
    let s = s.trim();
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        let Some((base, query)) = s.split_once('?') else {
            out.rest = s.to_string();
            return out;
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("sslmode", v)) => out.sslmode = Some(percent_decode(v)),
                Some(("sslrootcert", v)) => out.sslrootcert = Some(percent_decode(v)),
                _ if pair.is_empty() => {}
                _ => kept.push(pair),
            }
        }
        out.rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return out;
    }
    let mut kept = Vec::new();
    for (key, raw, value) in kv_pairs(s) {
        match key.as_str() {
            "sslmode" => out.sslmode = Some(value),
            "sslrootcert" => out.sslrootcert = Some(value),
            _ => kept.push(raw),
        }
    }
    out.rest = kept.join(" ");
    out
}

/// Splits a libpq key/value string into (key, raw text of the pair, unquoted value).
fn kv_pairs(s: &str) -> Vec<(String, String, String)> {
    let mut pairs = Vec::new();
    let mut chars = s.char_indices().peekable();
    loop {
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek().is_some_and(|(_, c)| *c == '=') {
            chars.next();
            while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
                chars.next();
            }
            let quoted = chars.peek().is_some_and(|(_, c)| *c == '\'');
            if quoted {
                chars.next();
            }
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '\'' if quoted => break,
                    c if !quoted && c.is_whitespace() => break,
                    c => value.push(c),
                }
            }
        }
        let end = chars.peek().map_or(s.len(), |(i, _)| *i);
        pairs.push((key, s[start..end].trim().to_string(), value));
    }
    pairs
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_params_are_taken_out_of_urls_and_kv_strings() {
        let cases = [
            (
                "postgres://u@h:5/db?sslmode=verify-full&sslrootcert=%2Fca.pem&connect_timeout=3",
                "postgres://u@h:5/db?connect_timeout=3",
                Some("verify-full"),
                Some("/ca.pem"),
            ),
            (
                "postgres://u@h/db?sslmode=require",
                "postgres://u@h/db",
                Some("require"),
                None,
            ),
            ("postgres://u@h/db", "postgres://u@h/db", None, None),
            (
                "host=h user=u sslmode=verify-ca sslrootcert='/a b.pem' dbname=x",
                "host=h user=u dbname=x",
                Some("verify-ca"),
                Some("/a b.pem"),
            ),
            (
                r"host=h password='it\'s x'",
                r"host=h password='it\'s x'",
                None,
                None,
            ),
        ];
        for (input, rest, mode, cert) in cases {
            let got = split_tls_params(input);
            assert_eq!(got.rest, rest, "{input}");
            assert_eq!(got.sslmode.as_deref(), mode, "{input}");
            assert_eq!(got.sslrootcert.as_deref(), cert, "{input}");
        }
    }
}
