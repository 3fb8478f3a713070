//! The text of deserialisation problems: serde's messages, made to name the TOML type that was
//! found instead of quoting the value (a value written at a secret key may be the secret), to
//! say what is expected in TOML's words, and to add "did you mean" to unknown keys and variants.

use super::locate::Node;
use toml_edit::{Item, Value};

/// The TOML type of `node`, as the TOML specification names it.
pub fn toml_kind(node: Node<'_>) -> &'static str {
    match node {
        Node::Item(Item::None) => "nothing",
        Node::Item(Item::Value(v)) | Node::Value(v) => value_kind(v),
        Node::Item(Item::Table(_)) | Node::Table(_) => "table",
        Node::Item(Item::ArrayOfTables(_)) => "array of tables",
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Integer(_) => "integer",
        Value::Float(_) => "float",
        Value::Boolean(_) => "boolean",
        Value::Datetime(_) => "date-time",
        Value::Array(_) => "array",
        Value::InlineTable(_) => "table",
    }
}

/// Rewrites one message of a deserialiser. `found` is the TOML type of the value the message is
/// about, when known.
///
/// * `invalid type: integer `4242`, expected a string` becomes
///   `invalid type: integer, expected a string` (likewise `invalid value`): type errors never
///   quote a value, whichever key it is at.
/// * `unknown field` and `unknown variant` get a "did you mean" when a candidate is close.
pub fn describe(message: &str, found: Option<&str>) -> String {
    if message == "wanted string or table" {
        // toml_edit's words for an enum given another type; every enum here is a name.
        return format!(
            "invalid type: {}, expected a string",
            found.unwrap_or("value")
        );
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        // The expectation comes last and never holds ", expected "; the value may.
        let Some((unexpected, expected)) = rest.rsplit_once(", expected ") else {
            continue;
        };
        let kind = found.unwrap_or_else(|| serde_kind(unexpected));
        return format!("{prefix}{kind}, expected {}", plain_expected(expected));
    }
    with_suggestion(message)
}

/// The type part of serde's description of an unexpected value (`integer `5`` → `integer`),
/// in TOML's words.
fn serde_kind(unexpected: &str) -> &str {
    let kind = unexpected
        .split(['`', '"'])
        .next()
        .unwrap_or(unexpected)
        .trim();
    match kind {
        "map" => "table",
        "sequence" => "array",
        "floating point" => "float",
        _ => kind,
    }
}

/// Serde's and Rust's names of expected types (`a sequence`, `u16`), in TOML's words.
fn plain_expected(expected: &str) -> &str {
    match expected {
        "a sequence" => "an array",
        "a map" => "a table",
        "path string" => "a string (a path)",
        "u8" => "an integer from 0 to 255",
        "u16" => "an integer from 0 to 65535",
        "u32" => "an integer from 0 to 4294967295",
        "u64" | "usize" => "an integer of at least 0",
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        other => other,
    }
}

/// Adds "did you mean" to serde's unknown-field and unknown-variant messages.
pub fn with_suggestion(message: &str) -> String {
    let Some(rest) = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))
    else {
        return message.to_string();
    };
    let Some((got, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    match did_you_mean(got, expected.split('`').skip(1).step_by(2)) {
        Some(cand) => format!("{message} (did you mean `{cand}`?)"),
        None => message.to_string(),
    }
}

/// The field that a `missing field `name`` message is about.
pub fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}

/// The candidate closest to `word`, if it is close enough to be a likely misspelling.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word_lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&word_lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_name_the_type_and_never_the_value() {
        let cases = [
            (
                "invalid type: integer `424242424242`, expected a string",
                None,
                "invalid type: integer, expected a string",
            ),
            (
                "invalid type: string \"Bearer x, expected y\", expected a map",
                Some("string"),
                "invalid type: string, expected a table",
            ),
            (
                "invalid type: map, expected a string",
                Some("date-time"),
                "invalid type: date-time, expected a string",
            ),
            (
                "invalid value: integer `70000`, expected u16",
                None,
                "invalid value: integer, expected an integer from 0 to 65535",
            ),
            (
                "invalid type: floating point `1.5`, expected a sequence",
                None,
                "invalid type: float, expected an array",
            ),
            (
                "wanted string or table",
                Some("integer"),
                "invalid type: integer, expected a string",
            ),
            (
                "invalid type: integer `5`, expected path string",
                None,
                "invalid type: integer, expected a string (a path)",
            ),
            (
                "duration \"15\" has no unit",
                None,
                "duration \"15\" has no unit",
            ),
        ];
        for (message, found, want) in cases {
            assert_eq!(describe(message, found), want, "{message}");
        }
    }

    #[test]
    fn suggestions() {
        let m = "unknown field `intervall`, expected one of `name`, `url`, `interval`";
        assert!(describe(m, None).ends_with("(did you mean `interval`?)"));
        let m = "unknown variant `verify`, expected one of `verify-ca`, `disable`";
        assert!(describe(m, None).ends_with("(did you mean `verify-ca`?)"));
        let m = "unknown field `zzz`, expected one of `name`, `url`";
        assert_eq!(with_suggestion(m), m);
        assert_eq!(with_suggestion("other"), "other");
    }

    #[test]
    fn missing_fields() {
        assert_eq!(missing_field("missing field `name`"), Some("name"));
        assert_eq!(missing_field("other"), None);
    }
}
