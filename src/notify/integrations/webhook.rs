//! `type = "webhook"`: the Alertmanager webhook payload, version 4, byte for byte as
//! Alertmanager's `notify/webhook` sends it, so that every receiver built for Alertmanager works
//! unchanged.
//!
//! One payload is one group notification ([`Notification`]): the group's alerts (at most the
//! receiver's `max_alerts`, the rest counted in `truncatedAlerts`), its `groupLabels`, the
//! labels and annotations all its alerts share (`commonLabels`, `commonAnnotations`), and its
//! `groupKey` (route key, `:`, group labels, as Alertmanager prints them).
//!
//! Details copied from Alertmanager so that byte-level consumers see no difference: field
//! order (the embedded `template.Data` first, then `version`, `groupKey`, `truncatedAlerts`),
//! `receiver` passed through `regexp.QuoteMeta`, a firing alert's `endsAt` as Go's zero time,
//! times in Go's RFC 3339 with trimmed nanoseconds, `<`, `>` and `&` escaped as Go's JSON
//! encoder does, and a trailing newline.

use crate::dispatch::{AlertState, Notification};
use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};
use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What Go's `time.Time{}` marshals to: Alertmanager's `endsAt` of a firing alert.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The webhook body, in Alertmanager's field order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    receiver: String,
    status: &'static str,
    alerts: Vec<Alert<'a>>,
    group_labels: &'a BTreeMap<String, String>,
    common_labels: BTreeMap<String, String>,
    common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: u64,
}

/// One alert of the payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Alert<'a> {
    status: &'static str,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: String,
    fingerprint: &'a str,
}

/// `firing` or `resolved`.
fn status(state: AlertState) -> &'static str {
    match state {
        AlertState::Resolved => "resolved",
        AlertState::Firing | AlertState::Pending => "firing",
    }
}

/// Renders the webhook body of `n` for `receiver`, with at most `max_alerts` alerts (0: all).
/// `external_url` is the base URL of this poolwatch; `generatorURL` points at its
/// `/api/v1/alerts`.
pub fn render(
    n: &Notification,
    receiver: &str,
    external_url: &str,
    max_alerts: usize,
) -> serde_json::Result<Vec<u8>> {
    let generator_url = format!("{}/api/v1/alerts", external_url.trim_end_matches('/'));
    let keep = if max_alerts == 0 {
        n.alerts.len()
    } else {
        max_alerts.min(n.alerts.len())
    };
    let alerts = n.alerts[..keep]
        .iter()
        .map(|a| Alert {
            status: status(a.state),
            labels: &a.labels,
            annotations: &a.annotations,
            starts_at: go_time(a.starts_at),
            // Alertmanager hides the end of an alert that has not ended yet.
            ends_at: match (a.state, a.ends_at) {
                (AlertState::Resolved, Some(t)) => go_time(t),
                _ => GO_ZERO_TIME.to_string(),
            },
            generator_url: generator_url.clone(),
            fingerprint: &a.fingerprint,
        })
        .collect();
    let message = Message {
        receiver: quote_meta(receiver),
        status: status(n.status()),
        alerts,
        group_labels: &n.group_labels,
        common_labels: n.common_labels(),
        common_annotations: n.common_annotations(),
        external_url,
        version: "4",
        group_key: &n.group_key,
        truncated_alerts: (n.alerts.len() - keep) as u64,
    };
    let mut out = Vec::with_capacity(1024);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoJsonFormatter);
    message.serialize(&mut ser)?;
    out.push(b'\n');
    Ok(out)
}

/// Go's `regexp.QuoteMeta`, which Alertmanager applies to the receiver name.
fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A time as Go's `time.Time` marshals to JSON in UTC: RFC 3339 with the nanoseconds' trailing
/// zeros trimmed (`2024-05-01T10:00:00.5Z`, `2024-05-01T10:00:00Z`). Times outside 1970..9999
/// are clamped rather than allowed to panic the formatter.
pub fn go_time(t: SystemTime) -> String {
    const LATEST: Duration = Duration::new(253_402_300_799, 999_999_999);
    let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or_default().min(LATEST);
    let full = humantime::format_rfc3339_nanos(UNIX_EPOCH + since_epoch).to_string();
    // `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: trim the fraction's zeros, then a bare dot.
    let body = full.trim_end_matches('Z').trim_end_matches('0');
    format!("{}Z", body.trim_end_matches('.'))
}

/// serde_json's compact output plus the escaping of Go's `json.Encoder` (`SetEscapeHTML(true)`,
/// its default): `<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX`.
struct GoJsonFormatter;

impl Formatter for GoJsonFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        CompactFormatter.write_string_fragment(writer, &fragment[start..])
    }
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
