//! Sample alerts, group notifications and receiver settings of the notifier tests.

use poolwatch::config::values::Secret;
use poolwatch::dispatch::{gofmt, Alert, AlertState, Notification, Reason};
use poolwatch::notice::fingerprint;
use poolwatch::notify::{IntegrationSettings, ReceiverSettings};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Polls `ok` until it holds; fails the test after a generous bound.
pub async fn eventually(what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One alert named `alertname` on orders-db.
pub fn alert(alertname: &str, state: AlertState) -> Alert {
    let labels: BTreeMap<String, String> = [
        ("alertname", alertname),
        ("severity", "critical"),
        ("target", "orders-db"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let starts_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    Alert {
        fingerprint: fingerprint(&labels),
        labels,
        annotations: BTreeMap::from([("summary".to_string(), format!("{alertname} happened"))]),
        state,
        starts_at,
        ends_at: (state == AlertState::Resolved).then_some(starts_at + Duration::from_secs(60)),
    }
}

/// A notification to `receiver` of the group of `alerts` (grouped by every label of the first).
pub fn group(receiver: &str, alerts: Vec<Alert>) -> Notification {
    let labels = alerts[0].labels.clone();
    let states: Vec<String> = alerts.iter().map(|a| format!("{:?}", a.state)).collect();
    Notification {
        receiver: receiver.into(),
        integration: "webhook".into(),
        group_key: format!("{{}}:{}", gofmt::label_set(&labels)),
        id: fingerprint(&BTreeMap::from([("states".to_string(), states.join(","))]))
            + &alerts[0].fingerprint,
        reason: Reason::FirstNotification,
        group_labels: labels,
        alerts,
        firing: Default::default(),
        resolved: Default::default(),
    }
}

pub fn firing_to(receiver: &str, alertname: &str) -> Notification {
    group(receiver, vec![alert(alertname, AlertState::Firing)])
}

pub fn firing(alertname: &str) -> Notification {
    firing_to("ops", alertname)
}

/// Settings of one webhook integration with millisecond backoffs so that retries are quick.
pub fn fast(name: &str, url: String) -> ReceiverSettings {
    let mut hook = IntegrationSettings::webhook(Secret::new(url));
    hook.timeout = Duration::from_secs(5);
    let mut s = ReceiverSettings::new(name, vec![hook]);
    s.initial_backoff = Duration::from_millis(5);
    s.max_backoff = Duration::from_millis(50);
    s
}
