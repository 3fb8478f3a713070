//! A parser for the text an application's metrics endpoint serves: the Prometheus text format
//! 0.0.4 and OpenMetrics 1.0 text (`application/openmetrics-text`), as one tolerant grammar.
//!
//! Hand-written rather than taken from crates.io: `prometheus-parse` 0.2.5 splits label values
//! on commas and braces without honouring escapes (a value `"a,b"` or `"x\"}"` comes back
//! wrong, silently), `openmetrics-parser` 0.5.1 is LGPL and refuses Prometheus text that real
//! client libraries serve (no `# EOF`, blank lines), and `prometheus-exposition-format-rs` is
//! unmaintained. The grammar is small; what matters is that it is exact on escapes and bounded
//! on hostile input, and both are easier to guarantee in 300 lines that are tested here than
//! in a dependency.
//!
//! What it accepts: `# HELP`, `# TYPE`, `# UNIT` and other comments; `# EOF` (the end: only
//! blank lines may follow); blank lines; CRLF line ends; a missing final newline; metric and
//! label names as identifiers or, as Prometheus 3 writes UTF-8 names, quoted (`{"a.b",
//! "c.d"="v"}`); label values with `\\`, `\"` and `\n` escapes (any character, commas and
//! braces included, inside the quotes); a trailing comma in a label set; values such as
//! `+Inf`, `-Inf`, `NaN` and exponents; an optional timestamp (integer milliseconds or float
//! seconds; read and dropped); an OpenMetrics exemplar after ` # ` (ignored). A family
//! announced by `# TYPE` alone, with no sample, is fine.
//!
//! Bounded: the body, the line length, the number of series, the labels per series and every
//! label name and value are capped ([`Limits`]); each refusal is a [`ParseError`] with the line
//! number. It never panics (a seeded random test in the normal suite and a cargo-fuzz target in
//! `fuzz/` hold it to that).
//!
//! Cheap: samples borrow their names and label values from the body (only a value with an
//! escape is copied), so a sample costs one allocation, its label list; scanning is by bytes
//! (every delimiter of the grammar is ASCII, lines are found with `memchr`, names are scanned
//! with a table, the body is checked as UTF-8 once). BENCHMARKS.md section 8.3 measures it.
//!
//! Selective: a mapping reads a handful of the hundreds of series an application serves, so
//! [`parse_only`] reads only the samples (and `# TYPE` / `# UNIT` lines) of the names it is
//! given. Every other sample line is skipped at the cost of finding its name: its labels and
//! value are not read, so a malformed line of a family nobody reads is not an error (its bytes
//! are still checked to be UTF-8 text). Skipped lines keep every limit: the body size and line
//! length are checked on every line, and every sample line, read or skipped, counts toward
//! `max_series` (the limits bound time and memory, and counting lines is enough for that).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// The caps that bound what one exposition may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body accepted, bytes.
    pub max_body: usize,
    /// Longest line, bytes.
    pub max_line: usize,
    /// Most samples (series) in one exposition.
    pub max_series: usize,
    /// Most labels on one sample.
    pub max_labels: usize,
    /// Longest metric or label name, bytes.
    pub max_name: usize,
    /// Longest label value, bytes (after unescaping).
    pub max_value: usize,
}

impl Default for Limits {
    /// 16 MiB, 64 KiB lines, 200,000 series, 64 labels, 256-byte names, 4 KiB values: far above
    /// what a pool exporter serves (a JVM with every Micrometer binder is a few thousand series),
    /// far below what would hurt the daemon.
    fn default() -> Self {
        Limits {
            max_body: 16 << 20,
            max_line: 64 << 10,
            max_series: 200_000,
            max_labels: 64,
            max_name: 256,
            max_value: 4096,
        }
    }
}

/// A name or label value: borrowed from the body, or unescaped into a copy.
pub type Text<'a> = Cow<'a, str>;

/// One sample line: a series and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// Metric name as written (`hikaricp_connections_active`, `foo_total`).
    pub name: Text<'a>,
    /// Labels in the order written, values unescaped.
    pub labels: Vec<(Text<'a>, Text<'a>)>,
    /// The value.
    pub value: f64,
}

impl Sample<'_> {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// What an exposition held; its samples borrow from the body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition<'a> {
    /// Every sample read, in order (with [`parse_only`], those of the names asked for).
    pub samples: Vec<Sample<'a>>,
    /// How many sample lines the exposition has, read or skipped.
    pub series: usize,
    /// `# TYPE` of each family that announced one (`counter`, `gauge`, ...).
    pub types: BTreeMap<String, String>,
    /// `# UNIT` of each family that announced one (OpenMetrics).
    pub units: BTreeMap<String, String>,
}

/// Why an exposition was refused: the 1-based line and what was wrong there (0 for the body as
/// a whole). The message quotes at most a few characters of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number; 0 when the problem is the body as a whole (its size).
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ParseError {}

/// Which samples a parse reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep<'k> {
    /// Every sample.
    All,
    /// Only samples with one of these names (and `# TYPE` / `# UNIT` of their families).
    Names(&'k [&'k str]),
}

impl Keep<'_> {
    /// Whether samples named `name` are read.
    fn sample(&self, name: &[u8]) -> bool {
        match self {
            Keep::All => true,
            Keep::Names(names) => names.iter().any(|n| n.as_bytes() == name),
        }
    }

    /// Whether the family `name` is read: a name asked for, or one that a name asked for
    /// extends with `_` (family `foo` of sample `foo_total`).
    fn family(&self, name: &str) -> bool {
        match self {
            Keep::All => true,
            Keep::Names(names) => names.iter().any(|n| {
                n.strip_prefix(name)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'))
            }),
        }
    }
}

/// Parses `body` within `limits`, reading every sample.
pub fn parse<'a>(body: &'a [u8], limits: &Limits) -> Result<Exposition<'a>, ParseError> {
    parse_only(body, limits, Keep::All)
}

/// Parses `body` within `limits`, reading only the samples `keep` names; the others are
/// skipped unread (see the module's doc) but counted in [`Exposition::series`].
pub fn parse_only<'a>(
    body: &'a [u8],
    limits: &Limits,
    keep: Keep<'_>,
) -> Result<Exposition<'a>, ParseError> {
    if body.len() > limits.max_body {
        return Err(ParseError {
            line: 0,
            message: format!(
                "body of {} bytes exceeds the limit of {} bytes",
                body.len(),
                limits.max_body
            ),
        });
    }
    let mut out = Exposition::default();
    let mut ended = false;
    // The labels of the sample being read; each sample gets an exact-size copy.
    let mut labels = Vec::new();
    let valid = utf8_prefix(body);
    for (i, (start, raw)) in lines(body).enumerate() {
        let line_no = i + 1;
        let at = |message: String| ParseError {
            line: line_no,
            message,
        };
        if raw.len() > limits.max_line {
            return Err(at(format!(
                "line of {} bytes exceeds the limit of {} bytes",
                raw.len(),
                limits.max_line
            )));
        }
        let line = match valid.get(start..start + raw.len()) {
            Some(line) => line,
            None => std::str::from_utf8(raw).map_err(|_| at("not UTF-8 text".into()))?,
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if ended {
            return Err(at("content after # EOF".into()));
        }
        if let Some(comment) = line.strip_prefix('#') {
            ended = comment_line(comment, &mut out, limits, keep).map_err(at)?;
            continue;
        }
        if out.series >= limits.max_series {
            return Err(at(format!(
                "more than {} series (the limit)",
                limits.max_series
            )));
        }
        out.series += 1;
        if leading_name(line).is_none_or(|name| keep.sample(name)) {
            let sample = sample_line(line, &mut labels, limits).map_err(at)?;
            // A quoted name is known only once read.
            if keep.sample(sample.name.as_bytes()) {
                out.samples.push(sample);
            }
        }
    }
    Ok(out)
}

/// The lines of `body` with the offset each starts at, split at `\n` (a final empty one after
/// a final newline, as `split` gives).
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let at = start?;
        let r = &body[at..];
        match memchr::memchr(b'\n', r) {
            Some(i) => {
                start = Some(at + i + 1);
                Some((at, &r[..i]))
            }
            None => {
                start = None;
                Some((at, r))
            }
        }
    })
}

/// `body` as text up to its first byte that is not UTF-8: checked once for the whole body,
/// which costs a fraction of a check per line. A line within it needs no check of its own (it
/// starts and ends at a `\n` or an end, so on character boundaries); the lines from the first
/// bad byte on are checked one by one, so the error names the first line at fault in order.
fn utf8_prefix(body: &[u8]) -> &str {
    match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&body[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// The metric name a sample line starts with, as bytes; `None` when it does not start with
/// one (a quoted name inside the braces, or no name: the line is read in full to know).
fn leading_name(line: &str) -> Option<&[u8]> {
    let bytes = line.trim_start_matches([' ', '\t']).as_bytes();
    let end = bytes
        .iter()
        .position(|&b| !is_name_byte(b))
        .unwrap_or(bytes.len());
    (end > 0).then(|| &bytes[..end])
}

/// Reads a comment line (without its `#`); returns whether it was `# EOF`. `# TYPE` and
/// `# UNIT` are read (a metric name, quoted or not, then the rest of the line) and kept for the
/// families `keep` names, at most as many as there may be series; `# HELP` and other comments
/// are skipped.
fn comment_line(
    comment: &str,
    out: &mut Exposition,
    limits: &Limits,
    keep: Keep<'_>,
) -> Result<bool, String> {
    let mut cur = Cursor::new(comment);
    cur.skip_space();
    let keyword = cur.identifier().unwrap_or("");
    let target = match keyword {
        "EOF" if comment.trim() == "EOF" => return Ok(true),
        "TYPE" => &mut out.types,
        "UNIT" => &mut out.units,
        _ => return Ok(false),
    };
    cur.skip_space();
    let name = match cur.peek() {
        Some(b'"') => cur.quoted(limits.max_name)?,
        _ => {
            let n = cur
                .identifier()
                .ok_or_else(|| format!("# {keyword} without a valid metric name"))?;
            check_name_len(n, limits)?;
            Text::Borrowed(n)
        }
    };
    let value = cur.rest.trim();
    if keyword == "TYPE" && value.is_empty() {
        return Err(format!("# TYPE {} without a type", quote(&name)));
    }
    if target.len() >= limits.max_series {
        return Err(format!("more than {} # {keyword} lines", limits.max_series));
    }
    if keep.family(&name) {
        target.insert(name.into_owned(), value.to_string());
    }
    Ok(false)
}

/// Reads a sample line: `name{labels} value [timestamp] [# exemplar]`. `labels` is scratch
/// space, left empty.
fn sample_line<'a>(
    line: &'a str,
    labels: &mut Vec<(Text<'a>, Text<'a>)>,
    limits: &Limits,
) -> Result<Sample<'a>, String> {
    let mut cur = Cursor::new(line);
    cur.skip_space();
    let mut name = if cur.peek() == Some(b'{') {
        Text::Borrowed("")
    } else {
        let n = cur.identifier().ok_or("expected a metric name")?;
        check_name_len(n, limits)?;
        Text::Borrowed(n)
    };
    labels.clear();
    if cur.eat(b'{') {
        label_set(&mut cur, &mut name, labels, limits)?;
    }
    // Drained, not taken: the scratch keeps its capacity, the sample gets an exact-size list.
    #[allow(clippy::drain_collect)]
    let labels: Vec<_> = labels.drain(..).collect();
    if name.is_empty() {
        return Err("sample without a metric name".into());
    }
    let value = number(cur.word(), "value")?;
    if let Some(ts) = cur.word() {
        if ts != "#" {
            number(Some(ts), "timestamp")?;
            let rest = cur.word();
            if rest.is_some_and(|w| w != "#") {
                return Err(format!(
                    "unexpected {} after the timestamp",
                    quote(rest.unwrap_or(""))
                ));
            }
        }
        // An exemplar (`# {trace_id="..."} 1`) follows `#`: ignored.
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Reads labels up to and including `}` into `labels`. A quoted string without `=` is the
/// metric name (Prometheus 3's UTF-8 names).
fn label_set<'a>(
    cur: &mut Cursor<'a>,
    name: &mut Text<'a>,
    labels: &mut Vec<(Text<'a>, Text<'a>)>,
    limits: &Limits,
) -> Result<(), String> {
    loop {
        cur.skip_space();
        if cur.eat(b'}') {
            return Ok(());
        }
        let (label, quoted) = match cur.peek() {
            Some(b'"') => (cur.quoted(limits.max_name)?, true),
            _ => match cur.identifier() {
                Some(n) => (Text::Borrowed(n), false),
                None => return Err(unexpected(cur, "a label name")),
            },
        };
        check_name_len(&label, limits)?;
        cur.skip_space();
        if quoted && name.is_empty() && labels.is_empty() && cur.peek() != Some(b'=') {
            *name = label;
        } else {
            if !cur.eat(b'=') {
                return Err(unexpected(cur, "'=' after a label name"));
            }
            cur.skip_space();
            if cur.peek() != Some(b'"') {
                return Err(unexpected(cur, "a quoted label value"));
            }
            let value = cur.quoted(limits.max_value)?;
            if labels.iter().any(|(n, _)| *n == label) {
                return Err(format!("label {} appears twice", quote(&label)));
            }
            if labels.len() >= limits.max_labels {
                return Err(format!("more than {} labels", limits.max_labels));
            }
            labels.push((label, value));
        }
        cur.skip_space();
        if !cur.eat(b',') && cur.peek() != Some(b'}') {
            return Err(unexpected(cur, "',' or '}'"));
        }
    }
}

fn number(word: Option<&str>, what: &str) -> Result<f64, String> {
    let word = word.ok_or_else(|| format!("missing {what}"))?;
    word.parse::<f64>()
        .map_err(|_| format!("{what} {} is not a number", quote(word)))
}

fn check_name_len(name: &str, limits: &Limits) -> Result<(), String> {
    if name.len() > limits.max_name {
        return Err(format!(
            "name of {} bytes exceeds the limit of {} bytes",
            name.len(),
            limits.max_name
        ));
    }
    Ok(())
}

fn unexpected(cur: &Cursor<'_>, wanted: &str) -> String {
    match cur.rest.chars().next() {
        None => format!("line ends where {wanted} was expected"),
        Some(c) => format!(
            "found {} where {wanted} was expected",
            quote(&c.to_string())
        ),
    }
}

/// Quotes at most 40 characters of `s`, so that an error never carries a huge input.
fn quote(s: &str) -> String {
    let mut q: String = s.chars().take(40).collect();
    if q.len() < s.len() {
        q.push('…');
    }
    format!("{q:?}")
}

/// Whether `b` may continue a metric or label name (`[a-zA-Z0-9_:]`): one look-up, as every
/// name of every line is scanned with it.
fn is_name_byte(b: u8) -> bool {
    NAME_BYTES[usize::from(b)]
}

/// [`is_name_byte`] for each byte value.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b':';
        b += 1;
    }
    table
};

/// A position in one line. Every byte it stops at is ASCII (a delimiter, a name byte, a space),
/// so each split falls on a character boundary.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(line: &'a str) -> Self {
        Cursor { rest: line }
    }

    /// The next byte, if any (compared only with ASCII delimiters).
    fn peek(&self) -> Option<u8> {
        self.rest.as_bytes().first().copied()
    }

    /// Consumes `c` (ASCII) if it comes next.
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.rest = &self.rest[1..];
            true
        } else {
            false
        }
    }

    fn skip_space(&mut self) {
        let n = self
            .rest
            .bytes()
            .position(|b| b != b' ' && b != b'\t')
            .unwrap_or(self.rest.len());
        self.rest = &self.rest[n..];
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`, if one starts here.
    fn identifier(&mut self) -> Option<&'a str> {
        let first = self.peek()?;
        if first.is_ascii_digit() || !is_name_byte(first) {
            return None;
        }
        let end = self
            .rest
            .bytes()
            .position(|b| !is_name_byte(b))
            .unwrap_or(self.rest.len());
        let (id, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(id)
    }

    /// The next space-separated word, if any.
    fn word(&mut self) -> Option<&'a str> {
        self.skip_space();
        if self.rest.is_empty() {
            return None;
        }
        let end = self
            .rest
            .bytes()
            .position(|b| b == b' ' || b == b'\t')
            .unwrap_or(self.rest.len());
        let (w, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(w)
    }

    /// A `"..."` string with `\\`, `\"` and `\n` escapes, at most `max` bytes unescaped;
    /// borrowed unless it has an escape.
    fn quoted(&mut self, max: usize) -> Result<Text<'a>, String> {
        // The common case, no escape before the closing quote: the slice itself.
        let body = self.rest.get(1..).unwrap_or_default();
        if let Some(end) = body.bytes().position(|b| b == b'"' || b == b'\\') {
            if body.as_bytes()[end] == b'"' {
                if end > max {
                    return Err(format!("quoted string longer than {max} bytes"));
                }
                self.rest = &body[end + 1..];
                return Ok(Text::Borrowed(&body[..end]));
            }
        }
        let mut chars = self.rest.char_indices();
        chars.next(); // the opening quote
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(Text::Owned(out));
                }
                '\\' => match chars.next().map(|(_, e)| e) {
                    Some('\\') => out.push('\\'),
                    Some('"') => out.push('"'),
                    Some('n') => out.push('\n'),
                    Some(e) => return Err(format!("invalid escape {}", quote(&format!("\\{e}")))),
                    None => break,
                },
                c => out.push(c),
            }
            if out.len() > max {
                return Err(format!("quoted string longer than {max} bytes"));
            }
        }
        Err("unterminated quoted string".into())
    }
}

#[cfg(test)]
#[path = "exposition_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "exposition_keep_tests.rs"]
mod keep_tests;
