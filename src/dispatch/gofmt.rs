//! Label sets and matchers printed as Alertmanager prints them, so that group keys look like
//! Alertmanager's: `{}/{severity="critical"}:{alertname="PoolNearFull", target="orders-db"}`.

use super::Labels;
use crate::rules::matcher::Matcher;

/// A label set as Prometheus' `LabelSet.String()`: `{a="1", b="2"}`, values Go-quoted.
pub fn label_set(labels: &Labels) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    format!("{{{}}}", pairs.join(", "))
}

/// Matchers as Alertmanager's `Matchers.String()`: `{a="1",b=~"x.*"}`.
pub fn matchers(ms: &[Matcher]) -> String {
    let parts: Vec<String> = ms
        .iter()
        .map(|m| format!("{}{}{}", m.name, m.op.as_str(), go_quote(&m.value)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// Go's `strconv.Quote`: a double-quoted string with Go escapes. Unprintable characters are
/// approximated as control and non-ASCII space characters (Go consults full Unicode tables).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() || (c.is_whitespace() && c != ' ') || c == '\u{feff}' => {
                let n = c as u32;
                if n < 0x1_0000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixtures::labels;

    #[test]
    fn printed_like_go() {
        let l = labels(&[("target", "a\"b"), ("alertname", "X\n")]);
        assert_eq!(label_set(&l), r#"{alertname="X\n", target="a\"b"}"#);
        assert_eq!(label_set(&Labels::new()), "{}");
        let ms = [
            Matcher::parse(r#"severity="critical""#).unwrap(),
            Matcher::parse(r#"pool=~"app_.*""#).unwrap(),
        ];
        assert_eq!(matchers(&ms), r#"{severity="critical",pool=~"app_.*"}"#);
        assert_eq!(matchers(&[]), "{}");
        assert_eq!(go_quote("\u{1}\u{2028}é"), "\"\\x01\\u2028é\"");
    }
}
