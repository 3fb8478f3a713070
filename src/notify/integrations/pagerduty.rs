//! `type = "pagerduty"`: PagerDuty's Events API v2. A firing group triggers an alert, an
//! all-resolved one resolves it; both with a `dedup_key` derived from the receiver and the
//! group key (stable across restarts, never random), so PagerDuty keeps one incident per group.
//! Severity maps critical→critical, warning→warning, info→info (the highest among the firing
//! alerts); `custom_details` carries each alert's numbers and holders. PagerDuty answers 202 when
//! it accepted an event and 429 when rate limiting: [`super::default_class`] handles both.

use super::Context;
use crate::dispatch::{AlertState, Notification};
use crate::notice::Fnv;
use serde_json::{json, Value};

/// Where events go unless the integration's `url` says otherwise.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty's limit on `payload.summary`.
const MAX_SUMMARY: usize = 1024;

/// The dedup key of `receiver`'s group `group_key`: the same for every notification of the
/// group, so that its resolution closes what its trigger opened.
pub fn dedup_key(receiver: &str, group_key: &str) -> String {
    let mut h = Fnv::new();
    h.part(receiver.as_bytes());
    h.part(group_key.as_bytes());
    format!("poolwatch-{}", h.hex())
}

/// The event of `n`, with `routing_key`.
pub fn render(n: &Notification, ctx: &Context<'_>, routing_key: &str) -> Value {
    let firing: Vec<_> = n.alerts.iter().filter(|a| a.is_firing()).collect();
    let action = match n.status() {
        AlertState::Resolved => "resolve",
        _ => "trigger",
    };
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(&n.receiver, &n.group_key),
    });
    if action == "resolve" {
        return event;
    }
    let severity = firing
        .iter()
        .filter_map(|a| a.labels.get("severity"))
        .map(|s| severity(s))
        .max_by_key(|s| rank(s))
        .unwrap_or("warning");
    let common = n.common_labels();
    let keep = match ctx.max_alerts {
        0 => n.alerts.len(),
        m => m.min(n.alerts.len()),
    };
    let details: Vec<Value> = n.alerts[..keep]
        .iter()
        .map(|a| {
            json!({
                "status": if a.is_firing() { "firing" } else { "resolved" },
                "labels": a.labels,
                "summary": a.annotations.get("summary"),
                "description": a.annotations.get("description"),
            })
        })
        .collect();
    event["payload"] = json!({
        "summary": summary(n),
        "source": common.get("target").map_or("poolwatch", String::as_str),
        "severity": severity,
        "component": common.get("pool"),
        "class": common.get("alertname"),
        "custom_details": {
            "firing": firing.len(),
            "alerts": details,
            "truncated_alerts": n.alerts.len() - keep,
            "group_key": n.group_key,
        },
    });
    event["client"] = json!("poolwatch");
    event["client_url"] = json!(format!(
        "{}/api/v1/alerts",
        ctx.external_url.trim_end_matches('/')
    ));
    event
}

/// PagerDuty's severity for a `severity` label: critical, warning and info are theirs too;
/// anything else is a warning.
fn severity(label: &str) -> &'static str {
    match label {
        "critical" => "critical",
        "info" => "info",
        _ => "warning",
    }
}

fn rank(severity: &str) -> u8 {
    match severity {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}

/// The first firing alert's summary, with how many more fire; at most [`MAX_SUMMARY`] bytes.
fn summary(n: &Notification) -> String {
    let firing: Vec<_> = n.alerts.iter().filter(|a| a.is_firing()).collect();
    let first = firing.first().map(|a| {
        a.annotations
            .get("summary")
            .or_else(|| a.labels.get("alertname"))
            .cloned()
            .unwrap_or_default()
    });
    let mut s = match (first, firing.len()) {
        (Some(s), 1) => s,
        (Some(s), k) => format!("{s} (+{} more firing)", k - 1),
        (None, _) => "poolwatch alert".to_string(),
    };
    if s.len() > MAX_SUMMARY {
        let mut end = MAX_SUMMARY - 3;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::fixtures::{firing, notification, resolved};
    use crate::dispatch::Alert;

    fn group(receiver: &str, key: &str, alerts: Vec<Alert>) -> Notification {
        notification(receiver, "pagerduty", key, alerts)
    }

    fn alert(severity: &str, pool: &str) -> Alert {
        let mut a = firing(
            "PoolNearFull",
            &[
                ("target", "orders-db"),
                ("pool", pool),
                ("severity", severity),
            ],
            0,
        );
        a.annotations.insert(
            "summary".into(),
            format!("orders-db: 96/97 in use on {pool}, 3 waiting"),
        );
        a
    }

    const CTX: Context<'static> = Context {
        receiver: "pager",
        external_url: "http://pw:9671",
        max_alerts: 0,
    };

    #[test]
    fn severity_action_and_summary() {
        // (case, alerts, action, severity, summary)
        type Row = (
            &'static str,
            Vec<Alert>,
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: Vec<Row> = vec![
            (
                "critical",
                vec![alert("critical", "p")],
                "trigger",
                Some("critical"),
                Some("orders-db: 96/97 in use on p, 3 waiting"),
            ),
            (
                "warning",
                vec![alert("warning", "p")],
                "trigger",
                Some("warning"),
                None,
            ),
            (
                "info",
                vec![alert("info", "p")],
                "trigger",
                Some("info"),
                None,
            ),
            (
                "unknown label",
                vec![alert("page", "p")],
                "trigger",
                Some("warning"),
                None,
            ),
            (
                "highest wins",
                vec![alert("warning", "a"), alert("critical", "b")],
                "trigger",
                Some("critical"),
                Some("orders-db: 96/97 in use on a, 3 waiting (+1 more firing)"),
            ),
            (
                "resolved ones do not count",
                vec![resolved(alert("critical", "a"), 5), alert("warning", "b")],
                "trigger",
                Some("warning"),
                None,
            ),
            (
                "all resolved",
                vec![resolved(alert("critical", "a"), 5)],
                "resolve",
                None,
                None,
            ),
        ];
        for (case, alerts, action, sev, summary) in cases {
            let e = render(&group("pager", "{}:{}", alerts), &CTX, "R0UT1NG");
            assert_eq!(e["event_action"], action, "{case}");
            assert_eq!(e["routing_key"], "R0UT1NG", "{case}");
            assert_eq!(e["payload"]["severity"].as_str(), sev, "{case}");
            if let Some(s) = summary {
                assert_eq!(e["payload"]["summary"], s, "{case}");
            }
        }
        let e = render(
            &group("pager", "{}:{}", vec![alert("critical", "p")]),
            &CTX,
            "k",
        );
        assert_eq!(e["payload"]["source"], "orders-db");
        assert_eq!(e["payload"]["component"], "p");
        assert_eq!(e["payload"]["class"], "PoolNearFull");
        assert_eq!(e["payload"]["custom_details"]["firing"], 1);
        assert_eq!(
            e["payload"]["custom_details"]["alerts"][0]["summary"],
            "orders-db: 96/97 in use on p, 3 waiting"
        );
        assert_eq!(e["client_url"], "http://pw:9671/api/v1/alerts");
    }

    #[test]
    fn dedup_keys_are_stable_per_group_and_receiver() {
        let a = dedup_key("pager", "{}:{target=\"db\"}");
        assert_eq!(a, dedup_key("pager", "{}:{target=\"db\"}"));
        assert!(a.starts_with("poolwatch-") && a.len() == "poolwatch-".len() + 16);
        assert_ne!(a, dedup_key("pager", "{}:{target=\"web\"}"));
        assert_ne!(a, dedup_key("other", "{}:{target=\"db\"}"));
        let trigger = render(
            &group("pager", "k", vec![alert("critical", "p")]),
            &CTX,
            "r",
        );
        let resolve = render(
            &group("pager", "k", vec![resolved(alert("critical", "p"), 5)]),
            &CTX,
            "r",
        );
        assert_eq!(trigger["dedup_key"], resolve["dedup_key"]);
    }

    #[test]
    fn summaries_are_bounded() {
        let mut a = alert("critical", "p");
        a.annotations.insert("summary".into(), "é".repeat(1000));
        let e = render(&group("pager", "k", vec![a]), &CTX, "r");
        let s = e["payload"]["summary"].as_str().unwrap_or_default();
        assert!(s.len() <= MAX_SUMMARY && s.ends_with("..."), "{}", s.len());
    }
}
