//! [`Notification`]: what one flush of a group sends to one integration of its receiver — the
//! group's current state — with an id that stays the same across retries and restarts.

use super::nflog::{Entry, Reason};
use super::{Alert, AlertState, Labels};
use crate::notice::Fnv;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One group notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The receiver's name.
    pub receiver: String,
    /// The name of the receiver's integration it goes to (each integration has its own groups,
    /// queue and log entries).
    pub integration: String,
    /// The group key.
    pub group_key: String,
    /// Stable id: the same state of the same group, told for the same reason, has the same id,
    /// across retries and restarts; receivers can drop duplicates by it.
    pub id: String,
    /// Why it is sent.
    pub reason: Reason,
    /// The group labels.
    pub group_labels: Labels,
    /// The alerts to send, sorted by labels (resolved ones left out without `send_resolved`).
    pub alerts: Vec<Alert>,
    /// What an acknowledgement records as firing.
    pub firing: BTreeSet<String>,
    /// What an acknowledgement records as resolved, with each alert's end.
    pub resolved: BTreeMap<String, SystemTime>,
}

impl Notification {
    /// `Firing` when any alert fires, else `Resolved`.
    pub fn status(&self) -> AlertState {
        if self.alerts.iter().any(Alert::is_firing) {
            AlertState::Firing
        } else {
            AlertState::Resolved
        }
    }

    /// The labels every alert has, with the same value.
    pub fn common_labels(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.labels))
    }

    /// The annotations every alert has, with the same value.
    pub fn common_annotations(&self) -> Labels {
        common(self.alerts.iter().map(|a| &a.annotations))
    }

    /// The entry that its acknowledgement at `at` records.
    pub fn entry(&self, at: SystemTime) -> Entry {
        Entry {
            firing: self.firing.clone(),
            resolved: self.resolved.keys().cloned().collect(),
            at,
        }
    }
}

fn common<'a>(mut sets: impl Iterator<Item = &'a Labels>) -> Labels {
    let Some(first) = sets.next() else {
        return Labels::new();
    };
    let mut out = first.clone();
    for s in sets {
        out.retain(|k, v| s.get(k) == Some(v));
    }
    out
}

/// The notification id: a hash of the receiver, the integration, the group key, the firing and resolved
/// fingerprints, the previous acknowledgement's time and, for a repeat, which repeat it is
/// (so that a repeat is not taken for a duplicate of the notification it repeats).
pub fn notification_id(
    (receiver, integration): (&str, &str),
    group_key: &str,
    firing: &BTreeSet<String>,
    resolved: &BTreeMap<String, SystemTime>,
    previous: Option<&Entry>,
    repeat: Option<(SystemTime, Duration)>,
) -> String {
    let nanos = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let mut h = Fnv::new();
    h.part(receiver.as_bytes());
    h.part(integration.as_bytes());
    h.part(group_key.as_bytes());
    for fp in firing {
        h.part(fp.as_bytes());
    }
    h.part(b"|");
    for (fp, end) in resolved {
        h.part(fp.as_bytes());
        h.part(&nanos(*end).to_le_bytes());
    }
    h.part(&previous.map_or(0, |e| nanos(e.at)).to_le_bytes());
    let epoch = match (previous, repeat) {
        (Some(e), Some((now, interval))) if !interval.is_zero() => {
            now.duration_since(e.at).unwrap_or_default().as_nanos() / interval.as_nanos()
        }
        _ => 0,
    };
    h.part(&epoch.to_le_bytes());
    h.hex()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::fixtures::{firing, resolved};
    use crate::rules::fixtures::t;

    fn set(s: &[&str]) -> BTreeSet<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn common_labels_and_status() {
        let a = firing("A", &[("target", "db"), ("pool", "p1")], 0);
        let b = resolved(firing("A", &[("target", "db"), ("pool", "p2")], 0), 5);
        let mut n = Notification {
            receiver: "r".into(),
            integration: "webhook".into(),
            group_key: "k".into(),
            id: "x".into(),
            reason: Reason::NewFiring,
            group_labels: Labels::new(),
            alerts: vec![a, b.clone()],
            firing: set(&["a"]),
            resolved: BTreeMap::new(),
        };
        assert_eq!(n.status(), AlertState::Firing);
        let want: Labels = [("alertname", "A"), ("target", "db")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        assert_eq!(n.common_labels(), want);
        assert_eq!(n.common_annotations().len(), 1);
        n.alerts = vec![b];
        assert_eq!(n.status(), AlertState::Resolved);
        n.alerts.clear();
        assert!(n.common_labels().is_empty());
    }

    #[test]
    fn ids_are_stable_and_change_with_what_they_tell() {
        let e = Entry {
            firing: set(&["a"]),
            resolved: set(&[]),
            at: t(0),
        };
        let hour = Duration::from_secs(3600);
        let none = BTreeMap::new();
        let id = |f: &[&str], r: &BTreeMap<String, SystemTime>, p: Option<&Entry>, now: u64| {
            notification_id(("r", "webhook"), "k", &set(f), r, p, Some((t(now), hour)))
        };
        let base = id(&["a"], &none, None, 10);
        assert_eq!(base.len(), 16);
        assert_eq!(base, id(&["a"], &none, None, 20), "same state: same id");
        assert_ne!(base, id(&["a", "b"], &none, None, 10));
        assert_ne!(base, id(&["a"], &none, Some(&e), 10));
        let ended = BTreeMap::from([("b".to_string(), t(5))]);
        let ended_later = BTreeMap::from([("b".to_string(), t(6))]);
        assert_ne!(
            id(&["a"], &ended, None, 10),
            id(&["a"], &ended_later, None, 10)
        );
        // Repeats: the same within one repeat period, another in the next.
        assert_eq!(
            id(&["a"], &none, Some(&e), 3600),
            id(&["a"], &none, Some(&e), 7000)
        );
        assert_ne!(
            id(&["a"], &none, Some(&e), 3600),
            id(&["a"], &none, Some(&e), 7200)
        );
        assert_ne!(
            notification_id(("s", "webhook"), "k", &set(&["a"]), &none, None, None),
            notification_id(("r", "webhook"), "k", &set(&["a"]), &none, None, None)
        );
        assert_ne!(
            notification_id(("r", "slack"), "k", &set(&["a"]), &none, None, None),
            notification_id(("r", "webhook"), "k", &set(&["a"]), &none, None, None),
            "each integration has its own ids"
        );
    }
}
