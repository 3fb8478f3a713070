//! Problems of a file that does not parse — bytes that are not UTF-8, TOML syntax errors —
//! with their `line:column` and, where the text allows, the key path they are at.
//!
//! There is no tree to look the key up in, so it is read from the text: the last table header
//! before the problem's line (from the part of the file before it, which must parse, so that a
//! line inside a multi-line string is never mistaken for a key) and the key written at the start
//! of the line. Messages never quote the text: the parser's own messages name what it expected,
//! and the offending bytes of a non-UTF-8 file are not shown (they may belong to a secret).

use super::locate::{line_col, KeyPath};
use toml_edit::{ImDocument, Item, Key, Table};

/// A problem found before the file could be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxProblem {
    /// The key path at the problem, when the text shows one.
    pub key: Option<KeyPath>,
    /// 1-based line and column.
    pub line_col: (usize, usize),
    /// What is wrong.
    pub message: String,
}

/// `bytes` as UTF-8 text, or the position of the first byte that is not.
pub fn utf8(bytes: Vec<u8>) -> Result<String, SyntaxProblem> {
    String::from_utf8(bytes).map_err(|e| {
        let pos = e.utf8_error().valid_up_to();
        let valid = std::str::from_utf8(&e.as_bytes()[..pos]).unwrap_or_default();
        SyntaxProblem {
            key: key_at(valid, pos),
            line_col: line_col(valid, pos),
            message: "not valid UTF-8 here: a configuration file must be UTF-8 text".into(),
        }
    })
}

/// A TOML syntax error at byte `pos` of `src`, with the parser's `message`.
pub fn syntax_error(src: &str, pos: usize, message: &str) -> SyntaxProblem {
    SyntaxProblem {
        key: key_at(src, pos),
        line_col: line_col(src, pos),
        message: message.to_string(),
    }
}

/// How many lines [`key_at`] looks back for the start of the statement holding a problem.
const MAX_LINES_BACK: usize = 64;

/// The key path at byte `pos` of `src`, read from the text (see the module documentation): the
/// statement holding the problem starts at the last line before which the text parses.
fn key_at(src: &str, pos: usize) -> Option<KeyPath> {
    let pos = (0..=pos.min(src.len()))
        .rev()
        .find(|&p| src.is_char_boundary(p))?;
    let mut line_start = src[..pos].rfind('\n').map_or(0, |nl| nl + 1);
    for _ in 0..MAX_LINES_BACK {
        if let Ok(before) = ImDocument::parse(&src[..line_start]) {
            let line = src[line_start..].lines().next().unwrap_or("");
            return key_of_line(before.as_table(), line.trim_start());
        }
        if line_start == 0 {
            break;
        }
        line_start = src[..line_start - 1].rfind('\n').map_or(0, |nl| nl + 1);
    }
    None
}

/// The key path a line starts, after the tables of `before`: a header's table, or the key
/// it assigns under the last header.
fn key_of_line(before: &Table, line: &str) -> Option<KeyPath> {
    if line.starts_with('[') {
        return header_path(before, line);
    }
    let written = line
        .split_once('=')
        .and_then(|(key, _)| Key::parse(key.trim()).ok());
    let mut path = last_header(before).unwrap_or_default();
    for key in written.unwrap_or_default() {
        path = path.key(key.get());
    }
    (!path.is_root()).then_some(path)
}

/// The path a (possibly broken) header line opens: `[[targets]` after two `[[targets]]` is
/// `targets[2]`.
fn header_path(before: &Table, line: &str) -> Option<KeyPath> {
    let name = line.trim_start_matches('[').split(']').next()?.trim();
    let keys = Key::parse(name).ok()?;
    let mut path = KeyPath::default();
    let mut table = Some(before);
    for key in &keys {
        path = path.key(key.get());
        let item = table.and_then(|t| t.get(key.get()));
        table = item.and_then(Item::as_table);
        if let (true, Some(Item::ArrayOfTables(a))) = (line.starts_with("[["), item) {
            path = path.index(a.len());
        }
    }
    Some(path)
}

/// The path of the table whose header comes last in the text.
fn last_header(root: &Table) -> Option<KeyPath> {
    let mut best: Option<(usize, KeyPath)> = None;
    collect_headers(root, &KeyPath::default(), &mut |start, path| {
        if best.as_ref().is_none_or(|(b, _)| start > *b) {
            best = Some((start, path));
        }
    });
    best.map(|(_, path)| path)
}

fn collect_headers(table: &Table, path: &KeyPath, found: &mut dyn FnMut(usize, KeyPath)) {
    for (name, item) in table.iter() {
        let here = path.key(name);
        match item {
            Item::Table(t) => {
                if let Some(span) = t.span() {
                    found(span.start, here.clone());
                }
                collect_headers(t, &here, found);
            }
            Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let element = here.index(i);
                    if let Some(span) = t.span() {
                        found(span.start, element.clone());
                    }
                    collect_headers(t, &element, found);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (source, what the parser or UTF-8 check reports: key path, line:column)
    #[test]
    fn syntax_errors_name_the_key_their_line_writes() {
        let cases: [(&str, Option<&str>, (usize, usize)); 7] = [
            (
                "[[targets]]\nname = \"db\"\ninterval = \n",
                Some("targets[0].interval"),
                (3, 12),
            ),
            (
                "[[targets]]\nname = 'a'\n[[targets]\n",
                Some("targets[1]"),
                (3, 10),
            ),
            ("[http]\nlisten = \"x\n", Some("http.listen"), (2, 12)),
            (
                "[[receivers]]\nheaders = { A = \"B\" \n",
                Some("receivers[0].headers"),
                (2, 21),
            ),
            ("x = 1\n  junk\n", None, (2, 7)),
            ("[a.b]\nc.d = \"\"\"x\n", Some("a.b.c.d"), (3, 1)),
            ("a = \"\"\"\nu=x\n", Some("a"), (3, 1)),
        ];
        for (src, key, at) in cases {
            let err = ImDocument::parse(src).expect_err(src);
            let got = syntax_error(src, err.span().unwrap().start, err.message());
            assert_eq!(got.key.map(|k| k.to_string()).as_deref(), key, "{src:?}");
            assert_eq!(got.line_col, at, "{src:?}");
        }
    }

    #[test]
    fn non_utf8_bytes_are_located_and_not_shown() {
        let mut bytes = b"[[targets]]\nname = \"db\"\npassword = \"p".to_vec();
        bytes.extend([0xE4, b's', b'"', b'\n']);
        let got = utf8(bytes).unwrap_err();
        assert_eq!(got.line_col, (3, 14));
        assert_eq!(got.key.unwrap().to_string(), "targets[0].password");
        assert!(!got.message.contains("E4") && !got.message.contains("228"));
        assert_eq!(utf8(b"a = 1\n".to_vec()).unwrap(), "a = 1\n");
    }
}
