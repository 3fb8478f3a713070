//! A configuration file parsed once, keeping the position of every key and value, and the
//! generic helper that turns any part of it into a typed value: [`Document::get`] deserialises
//! the item at a key path into any `T: DeserializeOwned`, recording each problem as
//! `file:line:column: key.path: message`.
//!
//! So that one problem hides no other, a file is read item by item — each section on its own
//! ([`Document::get_or_default`]), each element of an array on its own ([`Document::elements`])
//! — and an item that fails is deserialised again without the key that failed, until it passes
//! or nothing more can be taken out: every wrong type, bad value and unknown key of an element
//! is listed, not only the first. Section types can live anywhere: all they need is `Deserialize`.

use super::locate::{self, line_col, KeyPath, Node};
use super::message::{describe, missing_field, toml_kind, with_suggestion};
use super::syntax::{self, SyntaxProblem};
use super::values::{Problem, Problems};
use serde::de::{DeserializeOwned, IntoDeserializer};
use std::path::{Path, PathBuf};
use toml_edit::{ImDocument, Item};

/// A parsed configuration file.
pub struct Document {
    file: PathBuf,
    doc: ImDocument<String>,
}

impl Document {
    /// Parses the bytes of `file`: UTF-8 first, then TOML syntax. The error is the one problem
    /// that stopped the parser, located, with its key path where the text shows one.
    pub fn from_bytes(file: &Path, bytes: Vec<u8>) -> Result<Document, Problem> {
        match syntax::utf8(bytes) {
            Ok(src) => Document::parse(file, src),
            Err(p) => Err(syntax_problem(file, p)),
        }
    }

    /// Parses `src` as the content of `file`.
    pub fn parse(file: &Path, src: String) -> Result<Document, Problem> {
        match ImDocument::parse(src.clone()) {
            Ok(doc) => Ok(Document {
                file: file.to_path_buf(),
                doc,
            }),
            Err(e) => {
                let pos = e.span().map_or(src.len(), |s| s.start);
                let p = syntax::syntax_error(&src, pos, e.message());
                Err(syntax_problem(file, p))
            }
        }
    }

    /// The file the document was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Line and column of `key` (a key path such as `targets[1].interval`), or of the closest
    /// enclosing part that exists.
    pub fn position(&self, key: &str) -> Option<(usize, usize)> {
        self.position_of(&KeyPath::parse(key))
    }

    fn position_of(&self, path: &KeyPath) -> Option<(usize, usize)> {
        locate::locate(self.doc.as_table(), path).map(|pos| line_col(self.doc.raw(), pos))
    }

    fn node(&self, path: &KeyPath) -> Option<Node<'_>> {
        locate::node(self.doc.as_table(), path)
    }

    /// Deserialises the item at `path` into `T`. Every problem is recorded in `problems` with
    /// its key path and position; the value comes back only when there was none. An absent
    /// item gives `None` and no problem.
    pub fn get<T: DeserializeOwned>(&self, path: &str, problems: &mut Problems) -> Option<T> {
        let path = KeyPath::parse(path);
        let item = self.node(&path)?.to_item();
        self.get_item(path, item, problems)
    }

    /// [`Document::get`] of only the keys `keys` of the table at `path`: for a table whose keys
    /// belong to several parts of the program (a target's own keys, its connection keys, the
    /// poll loop's), each taking its share.
    pub fn get_keys<T: DeserializeOwned>(
        &self,
        path: &str,
        keys: &[&str],
        problems: &mut Problems,
    ) -> Option<T> {
        let path = KeyPath::parse(path);
        let mut item = self.node(&path)?.to_item();
        if let Some(table) = item.as_table_like_mut() {
            let others: Vec<String> = table
                .iter()
                .map(|(k, _)| k.to_string())
                .filter(|k| !keys.contains(&k.as_str()))
                .collect();
            for k in others {
                table.remove(&k);
            }
        }
        self.get_item(path, item, problems)
    }

    fn get_item<T: DeserializeOwned>(
        &self,
        path: KeyPath,
        mut item: Item,
        problems: &mut Problems,
    ) -> Option<T> {
        let mut removed: Vec<KeyPath> = Vec::new();
        loop {
            let error = match deserialize::<T>(item.clone()) {
                Ok(value) if removed.is_empty() => return Some(value),
                Ok(_) => return None,
                Err(e) => e,
            };
            let (key, line_col) = self.place(&error, &path);
            let message = error.message();
            if missing_field(message).is_some_and(|f| removed.contains(&key.key(f))) {
                return None; // a required key taken out below, already reported
            }
            let found = self.node(&key).map(toml_kind);
            problems.located(
                (!key.is_root()).then(|| key.to_string()),
                line_col,
                describe(message, found),
            );
            let taken = locate::remove(&mut item, key.after(&path))?;
            removed.push(KeyPath([path.0.clone(), taken].concat()));
        }
    }

    /// The key path and position of a deserialisation `error` in the item at `item`: those of
    /// the key or value its span points at, else the item's own.
    fn place(
        &self,
        error: &toml_edit::de::Error,
        item: &KeyPath,
    ) -> (KeyPath, Option<(usize, usize)>) {
        let at = error
            .span()
            .and_then(|s| Some((locate::path_at(self.doc.as_table(), s.start)?, s.start)))
            .filter(|(key, _)| key.starts_with(item));
        match at {
            Some((key, pos)) => (key, Some(line_col(self.doc.raw(), pos))),
            None => (item.clone(), self.position_of(item)),
        }
    }

    /// [`Document::get`], with `T::default()` for an absent item (an optional section).
    pub fn get_or_default<T: DeserializeOwned + Default>(
        &self,
        path: &str,
        problems: &mut Problems,
    ) -> Option<T> {
        match self.node(&KeyPath::parse(path)) {
            None => Some(T::default()),
            Some(_) => self.get(path, problems),
        }
    }

    /// The elements of the array at `path`, each deserialised on its own ([`Document::get`]),
    /// in order: `None` where an element has problems, so that indices keep matching the file.
    /// Empty when the array is absent; something else than an array is a problem, and counts as
    /// one element that failed.
    pub fn elements<T: DeserializeOwned>(
        &self,
        path: &str,
        problems: &mut Problems,
    ) -> Vec<Option<T>> {
        let Some(node) = self.node(&KeyPath::parse(path)) else {
            return Vec::new();
        };
        match node.array_len() {
            Some(len) => (0..len)
                .map(|i| self.get(&format!("{path}[{i}]"), problems))
                .collect(),
            None => {
                // Not an array: the deserialiser says what it is and what is expected.
                self.get::<Vec<T>>(path, problems);
                vec![None]
            }
        }
    }

    /// Records every key of the table at `path` that is not in `known` (with "did you mean"),
    /// the way serde reports unknown fields of a struct.
    pub fn deny_unknown_keys(&self, path: &str, known: &[&str], problems: &mut Problems) {
        let path = KeyPath::parse(path);
        let Some(table) = self.node(&path).and_then(Node::table_like) else {
            return;
        };
        for (key, _) in table.iter().filter(|(k, _)| !known.contains(k)) {
            let message = unknown_field(key, known);
            let key = path.key(key);
            problems.located(
                Some(key.to_string()),
                self.position_of(&key),
                with_suggestion(&message),
            );
        }
    }

    /// The number of elements of the array at `path` (0 when absent or not an array).
    pub fn array_len(&self, path: &str) -> usize {
        self.node(&KeyPath::parse(path))
            .and_then(|n| n.array_len())
            .unwrap_or(0)
    }
}

/// Serde's wording for an unknown field, for any list of known fields.
fn unknown_field(key: &str, known: &[&str]) -> String {
    let quoted: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
    match quoted.as_slice() {
        [] => format!("unknown field `{key}`, there are no fields"),
        [one] => format!("unknown field `{key}`, expected {one}"),
        [a, b] => format!("unknown field `{key}`, expected {a} or {b}"),
        all => format!("unknown field `{key}`, expected one of {}", all.join(", ")),
    }
}

fn deserialize<T: DeserializeOwned>(item: Item) -> Result<T, toml_edit::de::Error> {
    match item.into_value() {
        Ok(value) => T::deserialize(value.into_deserializer()),
        Err(_) => Err(serde::de::Error::custom("no value")),
    }
}

fn syntax_problem(file: &Path, p: SyntaxProblem) -> Problem {
    Problem {
        file: file.to_path_buf(),
        line_col: Some(p.line_col),
        key: p.key.map(|k| k.to_string()),
        message: p.message,
    }
}

/// The field names a struct deriving `Deserialize` accepts (its `deny_unknown_fields` list),
/// for [`Document::deny_unknown_keys`]; empty for anything else.
pub fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(FieldProbe) {
        Err(Fields(Some(fields))) => fields,
        _ => &[],
    }
}

/// A deserialiser that only answers the question "which fields?".
struct FieldProbe;

/// The answer, carried as the error that ends deserialisation.
#[derive(Debug)]
struct Fields(Option<&'static [&'static str]>);

impl std::fmt::Display for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for Fields {}

impl serde::de::Error for Fields {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Fields(None)
    }
}

impl<'de> serde::Deserializer<'de> for FieldProbe {
    type Error = Fields;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
        Err(Fields(None))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Fields> {
        Err(Fields(Some(fields)))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
#[path = "document_tests.rs"]
mod tests;
