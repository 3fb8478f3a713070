//! `poolwatch test-receiver NAME --config FILE`: sends a sample firing notification and then
//! its resolution, clearly marked as a test (alert `PoolwatchTestNotification`, target
//! `poolwatch-test-receiver`), through every integration of one receiver, once each (no
//! retries), and prints what each answered: the status, or the error (redacted: no URL, token or
//! key). Exit 0 when every integration accepted both, 1 when any refused or failed, 2 for an
//! unknown receiver (and, before this runs, an invalid configuration).

use super::deliver::{AttemptError, Endpoint};
use super::integrations::{Context, IntegrationSettings};
use super::ReceiverSettings;
use crate::dispatch::{gofmt, Alert, AlertState, Labels, Notification, Reason};
use crate::notice::{fingerprint, Fnv};
use std::time::{SystemTime, UNIX_EPOCH};

/// The alert name of test notifications.
pub const TEST_ALERTNAME: &str = "PoolwatchTestNotification";

/// The sample notification to `receiver`'s `integration`: firing, or resolved one second
/// after `now`. Its id is unique per run (`now`), so that a receiver dropping duplicates by id
/// does not drop a second test.
pub fn sample(
    receiver: &str,
    integration: &str,
    state: AlertState,
    now: SystemTime,
) -> Notification {
    let labels: Labels = [
        ("alertname", TEST_ALERTNAME),
        ("severity", "warning"),
        ("target", "poolwatch-test-receiver"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let annotations: Labels = [
        (
            "summary",
            "Test notification from poolwatch test-receiver: no pool is affected",
        ),
        (
            "description",
            "Sent by `poolwatch test-receiver` to check this receiver; a resolved one follows.",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let resolved = state == AlertState::Resolved;
    let alert = Alert {
        fingerprint: fingerprint(&labels),
        labels: labels.clone(),
        annotations,
        state: if resolved {
            AlertState::Resolved
        } else {
            AlertState::Firing
        },
        starts_at: now,
        ends_at: resolved.then(|| now + std::time::Duration::from_secs(1)),
    };
    let nanos = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut id = Fnv::new();
    id.part(receiver.as_bytes());
    id.part(integration.as_bytes());
    id.part(&nanos.to_le_bytes());
    id.part(&[u8::from(resolved)]);
    Notification {
        receiver: receiver.to_string(),
        integration: integration.to_string(),
        group_key: format!("{{}}:{}", gofmt::label_set(&labels)),
        id: id.hex(),
        reason: if resolved {
            Reason::AllResolved
        } else {
            Reason::FirstNotification
        },
        group_labels: labels,
        alerts: vec![alert],
        firing: Default::default(),
        resolved: Default::default(),
    }
}

/// Sends the samples through every integration of `receiver`; prints one line per
/// integration and notification; returns the exit code (0 all accepted, 1 otherwise).
pub async fn run(receiver: &ReceiverSettings, external_url: &str) -> i32 {
    let now = SystemTime::now();
    let mut all_ok = true;
    for integration in &receiver.integrations {
        for state in [AlertState::Firing, AlertState::Resolved] {
            let n = sample(&receiver.name, &integration.name, state, now);
            let answer = send(receiver, integration, &n, external_url).await;
            all_ok &= answer.is_ok();
            let what = if state == AlertState::Resolved {
                "resolved"
            } else {
                "firing"
            };
            let (verdict, detail) = match answer {
                Ok(status) => ("accepted", status),
                Err(e) => ("failed", e),
            };
            println!(
                "{}/{} ({}): {what}: {verdict}: {detail}",
                receiver.name,
                integration.name,
                integration.kind.integration_type().as_str()
            );
        }
    }
    if all_ok {
        0
    } else {
        1
    }
}

/// One attempt: `Ok("HTTP 200 OK")`, or the redacted error.
async fn send(
    receiver: &ReceiverSettings,
    integration: &IntegrationSettings,
    n: &Notification,
    external_url: &str,
) -> Result<String, String> {
    let endpoint = Endpoint::new(integration)?;
    let ctx = Context {
        receiver: &receiver.name,
        external_url,
        max_alerts: receiver.max_alerts,
    };
    let body = integration.render(n, &ctx)?;
    match endpoint.attempt(body, &n.id).await {
        Ok(status) => Ok(format!("HTTP {status}")),
        Err(AttemptError::Retryable { message, .. }) => Err(format!("{message} (retryable)")),
        Err(AttemptError::Permanent { message }) => Err(message),
        Err(AttemptError::Gone { message }) => Err(format!(
            "{message} (the running daemon disables an integration answering this)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_marked_as_tests_and_unique_per_run() {
        let t0 = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let firing = sample("oncall", "webhook", AlertState::Firing, t0);
        let resolved = sample("oncall", "webhook", AlertState::Resolved, t0);
        assert_eq!(firing.alerts[0].labels["alertname"], TEST_ALERTNAME);
        assert!(firing.alerts[0].annotations["summary"].contains("Test notification"));
        assert_eq!(firing.status(), AlertState::Firing);
        assert_eq!(resolved.status(), AlertState::Resolved);
        assert_eq!(
            firing.group_key, resolved.group_key,
            "one group: resolve closes it"
        );
        assert_ne!(firing.id, resolved.id);
        let later = sample(
            "oncall",
            "webhook",
            AlertState::Firing,
            t0 + std::time::Duration::from_secs(1),
        );
        assert_ne!(firing.id, later.id, "a second run is not a duplicate");
        assert_ne!(
            firing.id,
            sample("oncall", "slack", AlertState::Firing, t0).id
        );
    }
}
