//! Reading Prometheus text exposition in tests, and checking it with the real `promtool`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// One sample line of a text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name, e.g. `poolwatch_pool_in_use_connections`.
    pub name: String,
    /// Label names and (unescaped) values.
    pub labels: BTreeMap<String, String>,
    /// The value; `NaN` and `±Inf` included.
    pub value: f64,
}

impl Sample {
    /// Whether every `(name, value)` pair in `labels` is among this sample's labels.
    pub fn matches(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.name == name
            && labels
                .iter()
                .all(|(k, v)| self.labels.get(*k).map(String::as_str) == Some(*v))
    }
}

/// Parses the sample lines of a Prometheus text exposition (comments are skipped).
///
/// Strict enough for tests: a line it cannot read is an error naming the line.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        samples.push(parse_line(line).map_err(|e| format!("line {}: {e}: {line:?}", number + 1))?);
    }
    Ok(samples)
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value")?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("label without '='")?;
            let key = rest[..eq].trim().to_owned();
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next().ok_or("unterminated label value")? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, c) => value.push(c),
                }
            };
            rest = &rest[end + 1..];
            labels.insert(key, value);
        }
    }
    let value = rest.split_whitespace().next().ok_or("no value")?;
    let value = value
        .parse::<f64>()
        .map_err(|e| format!("value {value:?}: {e}"))?;
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// The value of the one sample named `name` whose labels include `labels`.
///
/// Errors when there is none or more than one, listing the candidates.
pub fn find_sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
    let found: Vec<&Sample> = samples.iter().filter(|s| s.matches(name, labels)).collect();
    match found.as_slice() {
        [one] => Ok(one.value),
        [] => Err(format!(
            "no sample {name}{labels:?}; samples named {name}: {:?}",
            samples
                .iter()
                .filter(|s| s.name == name)
                .collect::<Vec<_>>()
        )),
        many => Err(format!(
            "{} samples match {name}{labels:?}: {many:?}",
            many.len()
        )),
    }
}

/// Runs `promtool check metrics` on `text`: `Ok` only when it exits 0 and prints nothing
/// (lint findings such as a missing HELP or a counter without `_total` are errors).
///
/// The binary is `POOLWATCH_TEST_PROMTOOL` or `promtool` on `PATH`; a missing one panics
/// with install advice rather than passing silently.
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    let program = std::env::var("POOLWATCH_TEST_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let mut child = Command::new(&program)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {program}: {e}; install it (Debian: apt-get install prometheus) or run \
                 scripts/test.sh, which does"
            )
        });
    // Write from a thread so a large input cannot deadlock against promtool's output.
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = text.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("promtool: {e}"))?;
    // A write error (promtool quit early) matters only if promtool then said nothing.
    let written = writer.join().expect("writer thread");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && printed.trim().is_empty() {
        written.map_err(|e| format!("write to promtool: {e}"))
    } else {
        Err(format!(
            "promtool check metrics ({}): {}",
            out.status,
            printed.trim()
        ))
    }
}
