//! Just enough of PromQL to say which series an expression reads: every selector's metric
//! name and the label names its matchers use. Parsing proper is left to the real tools
//! (`promtool`, Prometheus); this only finds names, and fails on what it cannot read rather
//! than guessing.

use std::collections::BTreeMap;

/// One series selector of an expression: `name{label="..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The metric name (or the `__name__` matcher's value).
    pub name: String,
    /// The label names its matchers use, `__name__` left out.
    pub labels: Vec<String>,
}

/// Operators and modifiers that look like names but are not metrics.
const KEYWORDS: [&str; 5] = ["and", "or", "unless", "bool", "offset"];
/// Modifiers followed by a parenthesised list of label names.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    /// The text between `{` and `}`.
    Braces(String),
    Open,
    Close,
    Other,
}

/// The selectors of `expr`, in order.
pub fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    let tokens = tokenize(expr)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Name(name) if LABEL_LISTS.contains(&name.as_str()) => {
                i += 1;
                if tokens.get(i) == Some(&Token::Open) {
                    i = skip_group(&tokens, i)?;
                }
                continue;
            }
            Token::Name(name)
                if KEYWORDS.contains(&name.as_str())
                    || name.eq_ignore_ascii_case("inf")
                    || name.eq_ignore_ascii_case("nan") => {}
            // A function or an aggregation (`sum(...)`, `sum by (l) (...)`).
            Token::Name(_)
                if matches!(tokens.get(i + 1), Some(Token::Open))
                    || matches!(tokens.get(i + 1), Some(Token::Name(n)) if n == "by" || n == "without") =>
                {}
            Token::Name(name) => {
                let mut labels = Vec::new();
                if let Some(Token::Braces(inside)) = tokens.get(i + 1) {
                    labels = matcher_labels(inside)?.into_keys().collect();
                    i += 1;
                }
                out.push(Selector {
                    name: name.clone(),
                    labels,
                });
            }
            Token::Braces(inside) => {
                let matchers = matcher_labels(inside)?;
                let name = matchers
                    .get("__name__")
                    .cloned()
                    .ok_or_else(|| format!("a selector without a metric name: {{{inside}}}"))?;
                out.push(Selector {
                    name,
                    labels: matchers.into_keys().filter(|l| l != "__name__").collect(),
                });
            }
            _ => {}
        }
        i += 1;
    }
    Ok(out)
}

/// The index after the `)` closing the `(` at `open`.
fn skip_group(tokens: &[Token], open: usize) -> Result<usize, String> {
    let mut depth = 0;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t {
            Token::Open => depth += 1,
            Token::Close => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i + 1);
                }
            }
            _ => {}
        }
    }
    Err("unbalanced parentheses".into())
}

fn tokenize(expr: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i)?;
            tokens.push(Token::Other);
        } else if c == '{' {
            let start = i + 1;
            i = start;
            while i < chars.len() && chars[i] != '}' {
                if matches!(chars[i], '"' | '\'' | '`') {
                    i = skip_string(&chars, i)?;
                } else {
                    i += 1;
                }
            }
            if i >= chars.len() {
                return Err(format!("unclosed {{ in {expr:?}"));
            }
            tokens.push(Token::Braces(chars[start..i].iter().collect()));
            i += 1;
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
            tokens.push(Token::Other);
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            tokens.push(Token::Name(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() || c == '.' {
            // Numbers and durations: 0.8, 1e3, 0x1F, 5m, 1h30m.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Token::Other);
        } else {
            tokens.push(match c {
                '(' => Token::Open,
                ')' => Token::Close,
                _ => Token::Other,
            });
            i += 1;
        }
    }
    Ok(tokens)
}

/// The index after the string literal starting at `start`.
fn skip_string(chars: &[char], start: usize) -> Result<usize, String> {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if chars[i] == '\\' && quote != '`' {
            i += 2;
        } else if chars[i] == quote {
            return Ok(i + 1);
        } else {
            i += 1;
        }
    }
    Err("unterminated string".into())
}

/// Label name → value of the matchers between braces (`target=~"a", kind="b"`).
fn matcher_labels(inside: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let chars: Vec<char> = inside.chars().collect();
    let mut i = 0;
    loop {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        if i >= chars.len() {
            return Ok(out);
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        while i < chars.len() && (chars[i].is_whitespace() || "=!~".contains(chars[i])) {
            i += 1;
        }
        if name.is_empty() || i >= chars.len() || !matches!(chars[i], '"' | '\'' | '`') {
            return Err(format!("cannot read the matchers {{{inside}}}"));
        }
        let end = skip_string(&chars, i)?;
        out.insert(name, chars[i + 1..end - 1].iter().collect());
        i = end;
    }
}

/// `expr` with Grafana's variables replaced by values PromQL accepts: label variables by
/// `.*` (they are used in `=~` matchers), interval variables by `1m`. An unknown variable is
/// an error, so that a new one is given a value here rather than passed through.
pub fn substitute_grafana(expr: &str) -> Result<String, String> {
    let pattern = regex::Regex::new(r"\$\{?(\w+)\}?").expect("regex");
    let mut unknown = Vec::new();
    let out = pattern.replace_all(expr, |c: &regex::Captures| match &c[1] {
        "target" | "kind" | "pool" => ".*".to_string(),
        "__rate_interval" | "__interval" | "__range" => "1m".to_string(),
        other => {
            unknown.push(other.to_string());
            String::new()
        }
    });
    if unknown.is_empty() {
        Ok(out.into_owned())
    } else {
        Err(format!("unknown Grafana variables {unknown:?} in {expr:?}"))
    }
}

#[test]
fn selectors_are_found_and_everything_else_left_out() {
    let sel = |name: &str, labels: &[&str]| Selector {
        name: name.into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
    };
    let cases: &[(&str, Vec<Selector>)] = &[
        (
            "poolwatch_pool_waiting > 0",
            vec![sel("poolwatch_pool_waiting", &[])],
        ),
        (
            r#"sum by (target, le) (rate(poolwatch_poll_duration_seconds_bucket{target=~".*"}[1m]))"#,
            vec![sel("poolwatch_poll_duration_seconds_bucket", &["target"])],
        ),
        (
            r#"a >= 0.8 or (a >= 0.75 and ignoring (alertname, severity) ALERTS{alertname="X",severity="warning"})"#,
            vec![
                sel("a", &[]),
                sel("a", &[]),
                sel("ALERTS", &["alertname", "severity"]),
            ],
        ),
        ("x - x offset 1m != 0", vec![sel("x", &[]), sel("x", &[])]),
        ("count(m == 1) or vector(0)", vec![sel("m", &[])]),
        (
            r#"{__name__="m", kind="server"}"#,
            vec![sel("m", &["kind"])],
        ),
        (
            "rec:a_b:max5m{pool=~'p,}'} > Inf",
            vec![sel("rec:a_b:max5m", &["pool"])],
        ),
        (
            "histogram_quantile(0.99, b) * on (t) group_left (v) c",
            vec![sel("b", &[]), sel("c", &[])],
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(&selectors(expr).unwrap(), want, "{expr}");
    }
    assert!(selectors(r#"m{target=~"a"#).is_err());
    assert!(selectors(r#"{kind="server"}"#).is_err());
}

#[test]
fn grafana_variables_become_promql() {
    assert_eq!(
        substitute_grafana(r#"rate(m{target=~"$target", pool=~"${pool}"}[$__rate_interval])"#)
            .unwrap(),
        r#"rate(m{target=~".*", pool=~".*"}[1m])"#
    );
    assert!(substitute_grafana("m{x=~\"$nope\"}").is_err());
}
