//! Key paths and positions in the TOML source, both ways: where a key path such as
//! `targets[1].interval` stands (so that problems found after deserialisation point at
//! `file:line:column`), and which key path a position belongs to (so that a deserialisation
//! error, which only carries a position, names its key).

use std::fmt;
use std::ops::Range;
use toml_edit::{Item, Table, TableLike, Value};

/// One step of a key path: a key of a table, or an index into an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `.name`
    Key(String),
    /// `[2]`
    Index(usize),
}

/// A key path such as `targets[1].labels.env`, as problems name keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Step>);

impl KeyPath {
    /// Parses `a.b[2].c`; the empty string is the document root. Keys holding `.` or `[`
    /// cannot be written this way (use [`KeyPath::key`]).
    pub fn parse(path: &str) -> KeyPath {
        let mut steps = Vec::new();
        for seg in path.split('.').filter(|s| !s.is_empty()) {
            let (key, indices) = seg.split_once('[').unwrap_or((seg, ""));
            steps.push(Step::Key(key.to_string()));
            for index in indices.split('[') {
                if let Ok(i) = index.trim_end_matches(']').parse() {
                    steps.push(Step::Index(i));
                }
            }
        }
        KeyPath(steps)
    }

    /// This path with `.key` added.
    pub fn key(&self, key: &str) -> KeyPath {
        let mut steps = self.0.clone();
        steps.push(Step::Key(key.to_string()));
        KeyPath(steps)
    }

    /// This path with `[index]` added.
    pub fn index(&self, index: usize) -> KeyPath {
        let mut steps = self.0.clone();
        steps.push(Step::Index(index));
        KeyPath(steps)
    }

    /// True for the document root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `self` is `prefix` or lies under it.
    pub fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.len() >= prefix.0.len() && self.0[..prefix.0.len()] == prefix.0[..]
    }

    /// The steps after `prefix` (all of them when `prefix` is not a prefix).
    pub fn after(&self, prefix: &KeyPath) -> &[Step] {
        if self.starts_with(prefix) {
            &self.0[prefix.0.len()..]
        } else {
            &self.0
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(k) if i == 0 => f.write_str(k)?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of byte offset `pos` in `src`.
pub fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(src.len());
    while !src.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &src[..pos];
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    let line = before.matches('\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

/// A node of the TOML tree: what a key path leads to.
#[derive(Clone, Copy)]
pub enum Node<'a> {
    /// A table's entry.
    Item(&'a Item),
    /// An element of an inline array.
    Value(&'a Value),
    /// An element of an array of tables.
    Table(&'a Table),
}

impl<'a> Node<'a> {
    /// The node as an owned item, for deserialising.
    pub fn to_item(self) -> Item {
        match self {
            Node::Item(i) => i.clone(),
            Node::Value(v) => Item::Value(v.clone()),
            Node::Table(t) => Item::Table(t.clone()),
        }
    }

    /// How many elements, when the node is an array or an array of tables.
    pub fn array_len(self) -> Option<usize> {
        match self {
            Node::Item(Item::ArrayOfTables(a)) => Some(a.len()),
            Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)) => {
                Some(a.len())
            }
            _ => None,
        }
    }

    /// The node as a table, when it is one (inline or not).
    pub fn table_like(self) -> Option<&'a dyn TableLike> {
        match self {
            Node::Item(i) => i.as_table_like(),
            Node::Value(v) => v.as_inline_table().map(|t| t as &dyn TableLike),
            Node::Table(t) => Some(t),
        }
    }

    fn element(self, index: usize) -> Option<Node<'a>> {
        match self {
            Node::Item(Item::ArrayOfTables(a)) => a.get(index).map(Node::Table),
            Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)) => {
                a.get(index).map(Node::Value)
            }
            _ => None,
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
            Node::Table(t) => t.span(),
        }
    }
}

/// The node at `path` under `root`, if it exists.
pub fn node<'a>(root: &'a Table, path: &KeyPath) -> Option<Node<'a>> {
    let mut node = Node::Table(root);
    for step in &path.0 {
        node = match step {
            Step::Key(k) => Node::Item(node.table_like()?.get(k)?),
            Step::Index(i) => node.element(*i)?,
        };
    }
    Some(node)
}

/// The position of the deepest part of `path` that exists under `root`: the key itself when
/// found (an array element: the element), else the closest enclosing key or table.
pub fn locate(root: &Table, path: &KeyPath) -> Option<usize> {
    let mut node = Node::Table(root);
    let mut best = None;
    for step in &path.0 {
        node = match step {
            Step::Key(k) => {
                let Some((key, item)) = node.table_like().and_then(|t| t.get_key_value(k)) else {
                    break;
                };
                best = key.span().map(|s| s.start).or(best);
                Node::Item(item)
            }
            Step::Index(i) => {
                let Some(element) = node.element(*i) else {
                    break;
                };
                best = element.span().map(|s| s.start).or(best);
                element
            }
        };
    }
    best
}

/// The key path of the deepest key or value whose text covers byte offset `pos`: the key of an
/// unknown field, the value of a wrong type, the inline table missing a field, the header of a
/// table. `None` when nothing covers it.
pub fn path_at(root: &Table, pos: usize) -> Option<KeyPath> {
    let mut path = Vec::new();
    in_table(root, pos, &mut path).then_some(KeyPath(path))
}

fn covers(span: Option<Range<usize>>, pos: usize) -> bool {
    span.is_some_and(|s| s.start <= pos && pos < s.end.max(s.start + 1))
}

/// Searches the entries of `table`; on a hit, `path` holds the path found and true is returned.
fn in_table(table: &dyn TableLike, pos: usize, path: &mut Vec<Step>) -> bool {
    for (name, item) in table.iter() {
        path.push(Step::Key(name.to_string()));
        let key_span = table.get_key_value(name).and_then(|(k, _)| k.span());
        if covers(key_span, pos) || in_item(item, pos, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn in_item(item: &Item, pos: usize, path: &mut Vec<Step>) -> bool {
    match item {
        Item::None => false,
        Item::Value(v) => in_value(v, pos, path),
        // A table's own span is its header; its entries may stand anywhere after it.
        Item::Table(t) => in_table(t, pos, path) || covers(t.span(), pos),
        Item::ArrayOfTables(a) => a.iter().enumerate().any(|(i, t)| {
            path.push(Step::Index(i));
            let hit = in_table(t, pos, path) || covers(t.span(), pos);
            if !hit {
                path.pop();
            }
            hit
        }),
    }
}

fn in_value(value: &Value, pos: usize, path: &mut Vec<Step>) -> bool {
    if !covers(value.span(), pos) {
        return false;
    }
    match value {
        Value::InlineTable(t) => {
            in_table(t, pos, path);
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(Step::Index(i));
                if in_value(v, pos, path) {
                    return true;
                }
                path.pop();
            }
        }
        _ => {}
    }
    true
}

/// Removes the key that `path` (relative to `item`) ends in, or the key holding the array
/// that it indexes: array elements are never removed, so that the indices of their siblings
/// keep matching the source. Returns the path of what was removed.
pub fn remove(item: &mut Item, path: &[Step]) -> Option<Vec<Step>> {
    let last_key = path.iter().rposition(|s| matches!(s, Step::Key(_)))?;
    let target = &path[..=last_key];
    remove_item(item, target).then(|| target.to_vec())
}

fn remove_item(item: &mut Item, path: &[Step]) -> bool {
    match path {
        [] => false,
        [Step::Key(k), rest @ ..] => item
            .as_table_like_mut()
            .is_some_and(|t| remove_in(t, k, rest)),
        [Step::Index(i), rest @ ..] => match item {
            Item::ArrayOfTables(a) => match (a.get_mut(*i), rest) {
                (Some(t), [Step::Key(k), rest @ ..]) => remove_in(t, k, rest),
                _ => false,
            },
            Item::Value(v) => remove_in_value(v, path),
            _ => false,
        },
    }
}

fn remove_in(table: &mut dyn TableLike, key: &str, rest: &[Step]) -> bool {
    if rest.is_empty() {
        table.remove(key).is_some()
    } else {
        table.get_mut(key).is_some_and(|i| remove_item(i, rest))
    }
}

fn remove_in_value(value: &mut Value, path: &[Step]) -> bool {
    match (value, path) {
        (Value::InlineTable(t), [Step::Key(k), rest @ ..]) => remove_in(t, k, rest),
        (Value::Array(a), [Step::Index(i), rest @ ..]) => {
            a.get_mut(*i).is_some_and(|v| remove_in_value(v, rest))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml_edit::ImDocument;

    const SRC: &str = r#"[http]
listen = "x"

[[targets]]
name = "a"

[[targets]]
name = "b"
interval = "5"

[[rules]]
name = "r"
warning = { value = 1, clear = 2 }
matchers = ['a="b"', 'c=~"d"']
"#;

    fn doc() -> ImDocument<&'static str> {
        ImDocument::parse(SRC).unwrap()
    }

    #[test]
    fn finds_keys_tables_and_elements() {
        let cases = [
            ("http.listen", Some((2, 1))),
            ("targets[1].interval", Some((9, 1))),
            ("targets[1]", Some((7, 1))),
            ("targets[1].missing", Some((7, 1))),
            ("rules[0].warning.clear", Some((13, 24))),
            ("rules[0].matchers[1]", Some((14, 22))),
            ("nothing", None),
        ];
        for (path, want) in cases {
            let got = locate(doc().as_table(), &KeyPath::parse(path)).map(|p| line_col(SRC, p));
            assert_eq!(got, want, "{path}");
        }
    }

    #[test]
    fn positions_name_their_key_paths() {
        let cases = [
            ((2, 1), Some("http.listen")),
            ((2, 10), Some("http.listen")),
            ((1, 2), Some("http")),
            ((7, 3), Some("targets[1]")),
            ((9, 13), Some("targets[1].interval")),
            ((13, 11), Some("rules[0].warning")),
            ((13, 21), Some("rules[0].warning.value")),
            ((13, 32), Some("rules[0].warning.clear")),
            ((14, 23), Some("rules[0].matchers[1]")),
            ((3, 1), None),
        ];
        for ((line, col), want) in cases {
            let pos = SRC
                .split_inclusive('\n')
                .take(line - 1)
                .map(str::len)
                .sum::<usize>()
                + col
                - 1;
            let got = path_at(doc().as_table(), pos).map(|p| p.to_string());
            assert_eq!(got.as_deref(), want, "{line}:{col}");
        }
    }

    #[test]
    fn key_paths_parse_and_print() {
        for path in ["", "http", "targets[1].labels.env", "a[1][2].b"] {
            assert_eq!(KeyPath::parse(path).to_string(), path);
        }
        assert_eq!(
            KeyPath::parse("a[1]").0,
            [Step::Key("a".into()), Step::Index(1)]
        );
    }

    #[test]
    fn removal_keeps_array_indices() {
        let d = doc();
        let mut rule = node(d.as_table(), &KeyPath::parse("rules[0]"))
            .unwrap()
            .to_item();
        let clear = KeyPath::parse("warning.clear").0;
        assert_eq!(remove(&mut rule, &clear), Some(clear.clone()));
        assert!(rule["warning"].get("clear").is_none());
        let matcher = KeyPath::parse("matchers[1]").0;
        assert_eq!(
            remove(&mut rule, &matcher),
            Some(KeyPath::parse("matchers").0)
        );
        assert!(rule.get("matchers").is_none());
        assert_eq!(remove(&mut rule, &[]), None);
    }

    #[test]
    fn line_col_is_one_based_and_counts_characters() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é = 1", 3), (1, 3));
    }
}
