//! Finds where a key path such as `targets[1].interval` stands in the TOML source, so that
//! problems found after deserialisation still point at `file:line:column`.

use toml_edit::{ImDocument, Item, Value};

/// 1-based line and column of byte offset `pos` in `src`.
pub fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let before = &src[..pos];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(pos, |nl| pos - nl - 1) + 1;
    (line, col)
}

/// Splits `a.b[2].c` into `[("a", None), ("b", Some(2)), ("c", None)]`.
fn segments(path: &str) -> Vec<(&str, Option<usize>)> {
    path.split('.')
        .map(|seg| match seg.find('[') {
            Some(open) => {
                let idx = seg[open + 1..].trim_end_matches(']').parse().ok();
                (&seg[..open], idx)
            }
            None => (seg, None),
        })
        .collect()
}

enum Node<'a> {
    Item(&'a Item),
    Value(&'a Value),
    Table(&'a toml_edit::Table),
}

/// The position of the deepest part of `path` that exists in `src`: the key itself when found,
/// else the closest enclosing table. `None` when the source does not parse.
pub fn locate(src: &str, path: &str) -> Option<(usize, usize)> {
    let doc = ImDocument::parse(src).ok()?;
    let mut node = Node::Table(doc.as_table());
    let mut best: Option<usize> = None;
    for (key, index) in segments(path) {
        let table: &dyn toml_edit::TableLike = match &node {
            Node::Table(t) => *t,
            Node::Item(item) => item.as_table_like()?,
            Node::Value(Value::InlineTable(t)) => t,
            Node::Value(_) => break,
        };
        let Some((k, item)) = table.get_key_value(key) else {
            break;
        };
        best = k.span().map(|s| s.start).or(best);
        node = Node::Item(item);
        if let Some(i) = index {
            if let Some(t) = item.as_array_of_tables().and_then(|a| a.get(i)) {
                best = t.span().map(|s| s.start).or(best);
                node = Node::Table(t);
            } else if let Some(v) = item.as_array().and_then(|a| a.get(i)) {
                best = v.span().map(|s| s.start).or(best);
                node = Node::Value(v);
            } else {
                break;
            }
        }
    }
    best.map(|pos| line_col(src, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(locate(SRC, path), want, "{path}");
        }
    }

    #[test]
    fn line_col_is_one_based() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
