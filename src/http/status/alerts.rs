//! The alerts table (firing first, then pending; critical before warning; each with its age,
//! silenced and inhibited ones marked) and the active silences.

use super::html::Html;
use crate::alert::AlertView;
use crate::dispatch::silence::Silence;
use crate::model::Severity;
use std::time::SystemTime;

/// Writes the alerts section.
pub(super) fn section(h: &mut Html, alerts: &[AlertView], now: SystemTime) {
    h.raw("<section id=\"alerts\"><h2>Alerts</h2>");
    if alerts.is_empty() {
        h.raw("<p class=\"empty\">No alert is pending or firing.</p></section>");
        return;
    }
    let mut sorted: Vec<&AlertView> = alerts.iter().collect();
    sorted.sort_by_key(|a| {
        (
            a.state != "firing",
            a.severity != Severity::Critical,
            a.active_at,
        )
    });
    h.raw("<table><thead><tr><th>severity</th><th>alert</th><th>summary</th><th>for</th></tr></thead><tbody>");
    for a in sorted {
        let pending = a.state != "firing";
        h.raw(if pending {
            "<tr class=\"pending\">"
        } else {
            "<tr>"
        });
        h.raw("<td>");
        h.element(
            "span",
            &format!("sev {}", a.severity.as_str()),
            a.severity.as_str(),
        );
        if pending {
            h.raw("<br>pending");
        }
        // Muted alerts stay listed, marked: on-call sees what is known but not sent.
        if !a.silenced_by.is_empty() {
            h.raw("<br>silenced");
        } else if !a.inhibited_by.is_empty() {
            h.raw("<br>inhibited");
        }
        h.raw("</td><td>");
        h.text(a.labels.get("alertname").map_or("", String::as_str));
        h.raw("</td><td>");
        h.text(a.annotations.get("summary").map_or("", String::as_str));
        h.raw("</td><td class=\"nums\">");
        let age = now.duration_since(a.active_at).unwrap_or_default();
        h.text(&crate::timefmt::human(age));
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table></section>");
}

/// Writes the silences section: the active ones, soonest to end first; nothing when none is.
pub(super) fn silences(h: &mut Html, silences: &[Silence], now: SystemTime) {
    let mut active: Vec<&Silence> = silences
        .iter()
        .filter(|s| s.state(now) == "active")
        .collect();
    if active.is_empty() {
        return;
    }
    active.sort_by_key(|s| s.ends_at);
    h.raw("<section id=\"silences\"><h2>Silences</h2><table><thead><tr><th>matchers</th><th>by</th><th>comment</th><th>ends in</th></tr></thead><tbody>");
    for s in active {
        h.raw("<tr><td>");
        h.text(&s.matchers.join(", "));
        h.raw("</td><td>");
        h.text(&s.created_by);
        h.raw("</td><td>");
        h.text(&s.comment);
        h.raw("</td><td class=\"nums\">");
        let left = s.ends_at.duration_since(now).unwrap_or_default();
        h.text(&crate::timefmt::human(left));
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table></section>");
}
