//! `type = "slack"`: a Slack incoming webhook. The body has a `text` that reads on its own (in
//! notifications, and wherever attachments are not shown) and one attachment per alert,
//! coloured by state and severity. The numbers (in use / capacity, waiting, longest wait) and
//! the top holders come from the alerts' `summary` and `description`, which the rules render
//! with them.

use super::Context;
use crate::dispatch::{Alert, AlertState, Notification};
use serde_json::{json, Value};

/// Attachments beyond this many are summed up in one line (Slack shows at most 100).
const MAX_ATTACHMENTS: usize = 20;

/// The body of `n` for a Slack incoming webhook.
pub fn render(n: &Notification, ctx: &Context<'_>) -> Value {
    let keep = match ctx.max_alerts {
        0 => n.alerts.len(),
        m => m.min(n.alerts.len()),
    }
    .min(MAX_ATTACHMENTS);
    let mut attachments: Vec<Value> = n.alerts[..keep].iter().map(attachment).collect();
    let left = n.alerts.len() - keep;
    if left > 0 {
        attachments.push(json!({ "text": format!("… and {left} more alert(s)") }));
    }
    json!({
        "text": text(n, ctx.external_url),
        "attachments": attachments,
    })
}

/// `[FIRING:2] IdleTx on db` then one line per alert: its severity and summary.
fn text(n: &Notification, external_url: &str) -> String {
    let firing = n.alerts.iter().filter(|a| a.is_firing()).count();
    let head = match n.status() {
        AlertState::Resolved => "[RESOLVED]".to_string(),
        _ => format!("[FIRING:{firing}]"),
    };
    let common = n.common_labels();
    let name = common.get("alertname").map_or("alerts", String::as_str);
    let target = common
        .get("target")
        .map(|t| format!(" on {t}"))
        .unwrap_or_default();
    let mut out = format!("{head} {name}{target}");
    for a in &n.alerts {
        out.push_str(&format!("\n• {}", line(a)));
    }
    out.push_str(&format!(
        "\n<{}/api/v1/alerts|poolwatch>",
        external_url.trim_end_matches('/')
    ));
    out
}

/// `critical PoolExhausted: orders-db: 97/97 in use` (`resolved` instead of the severity).
fn line(a: &Alert) -> String {
    let state = match a.state {
        AlertState::Resolved => "resolved",
        _ => a.labels.get("severity").map_or("firing", String::as_str),
    };
    let name = a.labels.get("alertname").map_or("", String::as_str);
    match a.annotations.get("summary") {
        Some(s) => format!("{state} {name}: {s}"),
        None => format!("{state} {name}"),
    }
}

/// One alert: its summary as title, its description (the holders) as text, its labels.
fn attachment(a: &Alert) -> Value {
    let color = match (a.state, a.labels.get("severity").map(String::as_str)) {
        (AlertState::Resolved, _) => "good",
        (_, Some("critical")) => "danger",
        _ => "warning",
    };
    let labels: Vec<String> = a
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    json!({
        "color": color,
        "title": line(a),
        "text": a.annotations.get("description").cloned().unwrap_or_default(),
        "footer": labels.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::fixtures::notification;
    use crate::dispatch::fixtures::{firing, resolved};

    fn group(alerts: Vec<Alert>) -> Notification {
        notification("ops", "slack", "{}:{}", alerts)
    }

    fn exhausted(pool: &str) -> Alert {
        let mut a = firing(
            "PoolExhausted",
            &[
                ("target", "orders-db"),
                ("pool", pool),
                ("severity", "critical"),
            ],
            0,
        );
        a.annotations.insert(
            "summary".into(),
            format!(
                "orders-db: 97/97 usable connections in use, 12 waiting (longest 4s) on {pool}"
            ),
        );
        a.annotations.insert(
            "description".into(),
            "app=django holds 90 (12 idle in transaction), app=celery holds 4".into(),
        );
        a
    }

    const CTX: Context<'static> = Context {
        receiver: "ops",
        external_url: "http://pw:9671/",
        max_alerts: 0,
    };

    #[test]
    fn text_and_attachments_carry_the_numbers_and_the_holders() {
        // (case, alerts, want in text, want colours)
        type Row = (
            &'static str,
            Vec<Alert>,
            Vec<&'static str>,
            Vec<&'static str>,
        );
        let cases: Vec<Row> = vec![
            (
                "one firing",
                vec![exhausted("server")],
                vec![
                    "[FIRING:1] PoolExhausted on orders-db",
                    "• critical PoolExhausted: orders-db: 97/97 usable connections in use, 12 waiting (longest 4s) on server",
                    "<http://pw:9671/api/v1/alerts|poolwatch>",
                ],
                vec!["danger"],
            ),
            (
                "one of two resolved",
                vec![exhausted("a"), resolved(exhausted("b"), 5)],
                vec!["[FIRING:1] PoolExhausted on orders-db", "• resolved PoolExhausted:"],
                vec!["danger", "good"],
            ),
            (
                "all resolved",
                vec![resolved(exhausted("a"), 5)],
                vec!["[RESOLVED] PoolExhausted on orders-db"],
                vec!["good"],
            ),
        ];
        for (case, alerts, want, colours) in cases {
            let body = render(&group(alerts), &CTX);
            let text = body["text"].as_str().unwrap_or_default();
            for w in want {
                assert!(text.contains(w), "{case}: {w:?} not in {text:?}");
            }
            let got: Vec<&str> = body["attachments"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x["color"].as_str()).collect())
                .unwrap_or_default();
            assert_eq!(got, colours, "{case}");
            assert_eq!(
                body["attachments"][0]["text"],
                "app=django holds 90 (12 idle in transaction), app=celery holds 4",
                "{case}"
            );
        }
    }

    #[test]
    fn attachments_are_bounded() {
        let alerts: Vec<Alert> = (0..30).map(|i| exhausted(&format!("p{i}"))).collect();
        let body = render(&group(alerts), &CTX);
        let attachments = body["attachments"].as_array().expect("array");
        assert_eq!(attachments.len(), MAX_ATTACHMENTS + 1);
        assert_eq!(
            attachments[MAX_ATTACHMENTS]["text"],
            "… and 10 more alert(s)"
        );
        let ctx = Context {
            max_alerts: 2,
            ..CTX
        };
        let alerts: Vec<Alert> = (0..3).map(|i| exhausted(&format!("p{i}"))).collect();
        let body = render(&group(alerts), &ctx);
        assert_eq!(body["attachments"].as_array().map(Vec::len), Some(3));
    }
}
