//! Value types shared by every config section: durations written as `"15s"`, secrets that come
//! from `${ENV}` or a file and never print themselves, and the located problems validation reports.

use super::document::Document;
use super::files::{read_limited, MAX_SECRET_BYTES};
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A duration written the human way in TOML: `"100ms"`, `"15s"`, `"5m"`, `"1h 30m"`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Shorthand for a whole number of seconds.
    pub const fn secs(s: u64) -> Self {
        HumanDuration(Duration::from_secs(s))
    }
    /// Shorthand for milliseconds.
    pub const fn millis(ms: u64) -> Self {
        HumanDuration(Duration::from_millis(ms))
    }
}

impl fmt::Debug for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// The longest duration accepted anywhere in the file: longer values are typos, and would
/// overflow time arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses `"15s"`-style durations, with a message that says what is accepted.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err("empty duration: write e.g. \"15s\", \"500ms\" or \"5m\"".into());
    }
    if trimmed.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "duration \"{s}\" has no unit: write e.g. \"{trimmed}s\" or \"{trimmed}ms\""
        ));
    }
    let d = humantime::parse_duration(trimmed).map_err(|e| {
        format!("invalid duration \"{s}\" ({e}): write e.g. \"15s\", \"500ms\", \"5m\" or \"1h\"")
    })?;
    if d > MAX_DURATION {
        return Err(format!("duration \"{s}\" is too long: at most 30 days"));
    }
    Ok(d)
}

/// A configured secret (password, token, URL with a token). Its `Debug` and `Display` never show
/// the value, so it cannot leak through a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps an already resolved value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must use it (a connection, an HTTP request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A secret as written in the file: a literal, or `${ENV_VAR}` references expanded at load time.
///
/// Only a string is accepted, and a value of another type is refused without being quoted
/// (`invalid type: integer, expected a string`): whatever was written at a secret key may be
/// the secret itself.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRef(String);

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_string(SecretVisitor)
    }
}

/// Accepts a string; names the type of anything else, never its value.
struct SecretVisitor;

impl SecretVisitor {
    fn refuse<E: serde::de::Error>(&self, kind: &str) -> Result<SecretRef, E> {
        Err(E::invalid_type(serde::de::Unexpected::Other(kind), self))
    }
}

impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretRef, E> {
        Ok(SecretRef(v.to_string()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SecretRef, E> {
        Ok(SecretRef(v))
    }
    // Serde's defaults for these quote the value (`invalid type: integer `4242``).
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretRef, E> {
        self.refuse("boolean")
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretRef, E> {
        self.refuse("integer")
    }
    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<SecretRef, E> {
        self.refuse("integer")
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretRef, E> {
        self.refuse("integer")
    }
    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<SecretRef, E> {
        self.refuse("integer")
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretRef, E> {
        self.refuse("float")
    }
    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<SecretRef, E> {
        self.refuse("bytes")
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretRef(<redacted>)")
    }
}

impl SecretRef {
    /// Builds a reference from text as it would appear in the file (used by tests and defaults).
    pub fn literal(s: impl Into<String>) -> Self {
        SecretRef(s.into())
    }

    /// Expands `${VAR}` references from the environment. An unset or empty variable is an error
    /// naming the variable (never the value).
    pub fn resolve(&self) -> Result<Secret, String> {
        expand_env(&self.0, |name| std::env::var(name).ok()).map(Secret)
    }
}

/// Expands `${NAME}` in `s` using `lookup`; `$$` is a literal `$`. Pure, for testing.
pub fn expand_env(s: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| "unterminated ${...} reference".to_string())?;
            let name = &body[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "invalid environment variable name \"{name}\" in ${{...}}"
                ));
            }
            match lookup(name) {
                Some(v) if !v.is_empty() => out.push_str(&v),
                _ => return Err(format!("environment variable {name} is not set or empty")),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Resolves a secret given either inline (with `${ENV}` expansion) or as a `*_file` path, the
/// two being mutually exclusive. The file's content is trimmed of trailing newlines.
pub fn resolve_secret(
    inline: Option<&SecretRef>,
    file: Option<&Path>,
    key: &str,
) -> Result<Option<Secret>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!("set either `{key}` or `{key}_file`, not both")),
        (Some(r), None) => r.resolve().map(Some).map_err(|e| format!("`{key}`: {e}")),
        (None, Some(path)) => read_secret_file(path)
            .map(Some)
            .map_err(|e| format!("`{key}_file`: {e}")),
        (None, None) => Ok(None),
    }
}

/// Reads a `*_file` secret: a regular file of at most [`MAX_SECRET_BYTES`], UTF-8, trimmed of
/// trailing newlines. Errors name the file and the reason, never its content.
fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let cannot =
        |reason: &dyn fmt::Display| format!("cannot read secret file {}: {reason}", path.display());
    let bytes = read_limited(path, MAX_SECRET_BYTES).map_err(|e| cannot(&e))?;
    let text = String::from_utf8(bytes).map_err(|_| cannot(&"it is not UTF-8 text"))?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(format!("secret file {} is empty", path.display()));
    }
    Ok(Secret(value.to_string()))
}

/// One thing wrong with a configuration, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line and column when known (TOML syntax and type errors carry them).
    pub line_col: Option<(usize, usize)>,
    /// The dotted key path, e.g. `targets[1].interval`, when known.
    pub key: Option<String>,
    /// What is wrong and, where cheap, how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, col)) = self.line_col {
            write!(f, ":{line}:{col}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Collects problems while validating one section, so that every problem is reported at once.
#[derive(Debug, Default)]
pub struct Problems {
    file: PathBuf,
    items: Vec<Problem>,
}

impl Problems {
    /// An empty collector for `file`.
    pub fn new(file: impl Into<PathBuf>) -> Self {
        Problems {
            file: file.into(),
            items: Vec::new(),
        }
    }

    /// Records a problem at key path `key`; its line and column are filled in later from the
    /// source text where the key can be found.
    pub fn at(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.items.push(Problem {
            file: self.file.clone(),
            line_col: None,
            key: Some(key.into()),
            message: message.into(),
        });
    }

    /// Records a problem whose position is known (syntax and type errors), with its key path
    /// when known.
    pub fn located(
        &mut self,
        key: Option<String>,
        line_col: Option<(usize, usize)>,
        message: impl Into<String>,
    ) {
        self.items.push(Problem {
            file: self.file.clone(),
            line_col,
            key,
            message: message.into(),
        });
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many problems were recorded.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Fills in line and column for every problem that has a key path, from the document, and
    /// puts the problems in file order (those without a position last).
    pub fn locate_in(&mut self, doc: &Document) {
        for p in &mut self.items {
            if p.line_col.is_none() {
                if let Some(key) = &p.key {
                    p.line_col = doc.position(key);
                }
            }
        }
        self.items
            .sort_by_key(|p| p.line_col.map_or((usize::MAX, 0), |lc| lc));
    }

    /// The problems recorded so far.
    pub fn into_vec(self) -> Vec<Problem> {
        self.items
    }

    /// The file the problems are about.
    pub fn file(&self) -> &Path {
        &self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("100ms", Duration::from_millis(100)),
            ("15s", Duration::from_secs(15)),
            ("5m", Duration::from_secs(300)),
            ("1h 30m", Duration::from_secs(5400)),
            (" 2s ", Duration::from_secs(2)),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for bad in ["", "15", "fast", "5 parsecs", "-1s"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("15s") || err.contains("ms"), "{bad}: {err}");
        }
    }

    #[test]
    fn env_expansion() {
        let env = |k: &str| match k {
            "PW" => Some("s3cret".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(expand_env("plain", env).unwrap(), "plain");
        assert_eq!(expand_env("${PW}", env).unwrap(), "s3cret");
        assert_eq!(expand_env("a${PW}b$$c$d", env).unwrap(), "as3cretb$c$d");
        let missing = expand_env("x${NOPE}", env).unwrap_err();
        assert!(missing.contains("NOPE"), "{missing}");
        assert!(expand_env("${EMPTY}", env).is_err());
        assert!(expand_env("${PW", env).is_err());
        assert!(expand_env("${bad-name}", env).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s} {s:?}").contains("hunter2"));
        let r = SecretRef::literal("hunter2");
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn secret_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "from-file\n").unwrap();
        let got = resolve_secret(None, Some(&path), "password")
            .unwrap()
            .unwrap();
        assert_eq!(got.expose(), "from-file");
        let both = resolve_secret(Some(&SecretRef::literal("x")), Some(&path), "password");
        assert!(both.unwrap_err().contains("not both"));
        let missing = resolve_secret(None, Some(&dir.path().join("nope")), "password").unwrap_err();
        assert!(
            missing.contains("password_file") && missing.contains("nope"),
            "{missing}"
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(resolve_secret(None, Some(&path), "password")
            .unwrap_err()
            .contains("empty"));
    }
}
