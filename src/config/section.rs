//! Deserializing one part of the file into the type of the component that owns it, with each
//! problem recorded under its key path (so `check-config` can point at it), and the field names
//! of such a type, for "unknown key" messages that suggest the right one.

use super::values::Problems;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::Deserialize;

/// Deserializes `value` (found at key path `path`) as `T`; on failure records the problem
/// under the deepest key the error names and returns `None`.
pub fn section<T: DeserializeOwned>(
    value: toml::Value,
    path: &str,
    problems: &mut Problems,
) -> Option<T> {
    match T::deserialize(value) {
        Ok(t) => Some(t),
        Err(e) => {
            let (key, message) = located(path, &e);
            problems.at(key, super::load::with_suggestion(&message));
            None
        }
    }
}

/// The key path and message of a deserialization error: toml appends "in `a.b`" to say where
/// inside the value the error is.
fn located(path: &str, e: &toml::de::Error) -> (String, String) {
    let message = e.message().trim().to_string();
    let text = e.to_string();
    let inner = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("in `")?.strip_suffix('`'))
        .map(str::to_string);
    // An unknown field is a problem of the key that was written.
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(k, _)| k.to_string());
    let mut key = path.to_string();
    for part in [inner, unknown].into_iter().flatten() {
        if !part.is_empty() {
            key.push('.');
            key.push_str(&part);
        }
    }
    (key, message)
}

/// The field names of struct `T`, as its `Deserialize` implementation declares them.
pub fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Names(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> de::Deserializer<'de> for &mut Names {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut names = Names(None);
    let _ = T::deserialize(&mut names);
    names.0.unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        port: u16,
    }

    fn problems_of(src: &str) -> Vec<String> {
        let value: toml::Value = toml::from_str(src).expect("valid TOML");
        let mut problems = Problems::new(Path::new("x.toml"));
        let got: Option<Sample> = section(value, "targets[2]", &mut problems);
        assert!(got.is_none());
        problems
            .into_vec()
            .into_iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn problems_name_the_deepest_key() {
        // (source, want)
        let cases = [
            (
                "name = 5",
                "x.toml: targets[2].name: invalid type: integer `5`, expected a string",
            ),
            (
                "name = \"a\"\ninner = { port = \"x\" }",
                "x.toml: targets[2].inner.port: invalid type: string \"x\", expected u16",
            ),
            (
                "name = \"a\"\nnmae = 1",
                "x.toml: targets[2].nmae: unknown field `nmae`, expected `name` or `inner` (did you mean `name`?)",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(problems_of(src), vec![want.to_string()], "{src}");
        }
    }

    #[test]
    fn field_names_of_a_struct() {
        assert_eq!(field_names::<Sample>(), ["name", "inner"]);
        assert_eq!(field_names::<Inner>(), ["port"]);
        assert!(field_names::<String>().is_empty());
    }
}
