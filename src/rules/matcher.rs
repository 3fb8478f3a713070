//! Prometheus label matchers: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`. Regexes are
//! fully anchored, as in Prometheus, and a missing label matches as the empty string.

use regex::Regex;
use std::collections::BTreeMap;
use std::fmt;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    /// `=`, `!=`, `=~` or `!~`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One parsed matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or regex as written (unescaped).
    pub value: String,
    /// The anchored regex for `=~` and `!~`.
    regex: Option<Regex>,
}

/// Whether `s` is a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

const EXAMPLE: &str = "write e.g. kind=\"role\", pool=~\"app_.*\" or target!=\"dev\"";

impl Matcher {
    /// Parses one matcher; the error says what is wrong and shows the accepted form.
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let s = text.trim();
        let name_len = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        let name = &s[..name_len];
        if name.is_empty() {
            return Err(format!(
                "matcher `{text}` does not start with a label name; {EXAMPLE}"
            ));
        }
        if !is_valid_label_name(name) {
            return Err(format!(
                "`{name}` is not a valid label name (letters, digits and _, not starting with a digit)"
            ));
        }
        let rest = s[name_len..].trim_start();
        let op = [
            MatchOp::Regex,
            MatchOp::NotRegex,
            MatchOp::NotEqual,
            MatchOp::Equal,
        ]
        .into_iter()
        .find(|op| rest.starts_with(op.as_str()))
        .ok_or_else(|| {
            format!("matcher `{text}` has no operator (=, !=, =~ or !~) after `{name}`; {EXAMPLE}")
        })?;
        let quoted = rest[op.as_str().len()..].trim_start();
        let (value, tail) = unquote(quoted)
            .ok_or_else(|| format!("the value in matcher `{text}` must be quoted; {EXAMPLE}"))?;
        if !tail.trim().is_empty() {
            return Err(format!(
                "unexpected `{}` after the value in matcher `{text}`: give one matcher per list entry",
                tail.trim()
            ));
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("invalid regex in matcher `{text}`: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value,
            regex,
        })
    }

    /// Whether `labels` satisfy the matcher; a missing label is the empty string.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_value(labels.get(&self.name).map_or("", String::as_str))
    }

    /// Whether the label's value `v` (the empty string when missing) satisfies the matcher.
    pub fn matches_value(&self, v: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            // Parsing always compiles the regex of a regex matcher.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// Reads a `"..."`, `'...'` or `` `...` `` string at the start of `s` (backslash escapes in the
/// first two, none in backticks, as in PromQL); returns it and what follows.
fn unquote(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|c| matches!(c, '"' | '\'' | '`'))?;
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some((out, &s[i + 1..]));
        }
        if c == '\\' && quote != '`' {
            let (_, e) = chars.next()?;
            out.push(match e {
                'n' => '\n',
                't' => '\t',
                other => other,
            });
        } else {
            out.push(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixtures::labels;

    #[test]
    fn matching_table() {
        let role_app = labels(&[
            ("target", "orders-db"),
            ("kind", "role"),
            ("pool", "app_web"),
        ]);
        let target_only = labels(&[("target", "orders-db"), ("env", "prod")]);
        let cases: &[(&str, &BTreeMap<String, String>, bool)] = &[
            (r#"kind="role""#, &role_app, true),
            (r#"kind = "role""#, &role_app, true),
            (r#"kind="server""#, &role_app, false),
            (r#"kind!="server""#, &role_app, true),
            (r#"pool=~"app_.*""#, &role_app, true),
            // Anchored: a substring match is not enough.
            (r#"pool=~"app""#, &role_app, false),
            (r#"pool=~"web""#, &role_app, false),
            (r#"pool!~"app_.*""#, &role_app, false),
            (r#"pool=~'app_(web|api)'"#, &role_app, true),
            (r#"target!="dev""#, &role_app, true),
            // Missing labels are the empty string.
            (r#"kind="""#, &target_only, true),
            (r#"kind!="role""#, &target_only, true),
            (r#"kind=~"role|""#, &target_only, true),
            (r#"pool=~".+""#, &target_only, false),
            (r#"env="prod""#, &target_only, true),
            (r#"env="prod""#, &role_app, false),
            ("env=`pr.d`", &target_only, false),
            ("env=~`pr.d`", &target_only, true),
        ];
        for (text, set, want) in cases {
            let m = Matcher::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(m.matches(set), *want, "{text} against {set:?}");
        }
    }

    #[test]
    fn escapes() {
        let m = Matcher::parse(r#"pool="a\"b\\c""#).unwrap();
        assert_eq!(m.value, "a\"b\\c");
        assert_eq!(m.to_string(), r#"pool="a\"b\\c""#);
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("", "label name"),
            (r#"="x""#, "label name"),
            (r#"1kind="x""#, "not a valid label name"),
            ("kind", "no operator"),
            (r#"kind=="x""#, "quoted"),
            ("kind=role", "quoted"),
            (r#"kind="role"#, "quoted"),
            (r#"kind="role", pool="x""#, "one matcher per list entry"),
            (r#"pool=~"(""#, "invalid regex"),
            (r#"{kind="role"}"#, "label name"),
        ];
        for (text, want) in cases {
            let err = Matcher::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn label_names() {
        for ok in ["a", "_x", "team_1", "A9"] {
            assert!(is_valid_label_name(ok), "{ok}");
        }
        for bad in ["", "9a", "a-b", "a.b", "é"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }
}
