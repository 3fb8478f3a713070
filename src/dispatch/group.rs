//! One aggregation group: the alerts of one route with the same group labels, held until the
//! receiver acknowledged them (a resolved alert leaves once its resolution is acknowledged or
//! found not worth telling), and when the group is looked at next.

use super::{Alert, AlertState, Labels};
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

/// An aggregation group.
#[derive(Debug, Clone)]
pub struct Group {
    /// The route's receiver.
    pub receiver: String,
    /// The receiver's integration this group notifies.
    pub integration: String,
    /// Alertmanager's group key: the route key, `:`, the group labels.
    pub key: String,
    /// The route (node index in the tree).
    pub route: usize,
    /// The group labels.
    pub labels: Labels,
    /// Held alerts by fingerprint.
    pub alerts: BTreeMap<String, Alert>,
    /// When the group is flushed next.
    pub next_flush: SystemTime,
}

impl Group {
    /// True once `now` reaches the next flush.
    pub fn due(&self, now: SystemTime) -> bool {
        now >= self.next_flush
    }

    /// Fingerprints of the firing alerts.
    pub fn firing(&self) -> BTreeSet<String> {
        self.fingerprints(AlertState::Firing)
    }

    /// Fingerprints of the resolved alerts held.
    pub fn resolved(&self) -> BTreeSet<String> {
        self.fingerprints(AlertState::Resolved)
    }

    fn fingerprints(&self, state: AlertState) -> BTreeSet<String> {
        self.alerts
            .values()
            .filter(|a| a.state == state)
            .map(|a| a.fingerprint.clone())
            .collect()
    }

    /// Removes the resolved alerts that `acknowledged` lists with the same end (Alertmanager's
    /// "delete if not modified": one that fired and resolved again meanwhile stays).
    pub fn remove_resolved(&mut self, acknowledged: &BTreeMap<String, SystemTime>) {
        self.alerts.retain(|fp, a| {
            !(a.state == AlertState::Resolved
                && a.ends_at.is_some()
                && acknowledged.get(fp) == a.ends_at.as_ref())
        });
    }

    /// Removes every resolved alert (after a flush that found nothing to tell about them).
    pub fn drop_resolved(&mut self) {
        self.alerts.retain(|_, a| a.state != AlertState::Resolved);
    }

    /// The resolved alerts held, with their ends.
    pub fn resolved_ends(&self) -> BTreeMap<String, SystemTime> {
        self.alerts
            .values()
            .filter_map(|a| match (a.state, a.ends_at) {
                (AlertState::Resolved, Some(end)) => Some((a.fingerprint.clone(), end)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::fixtures::{firing, resolved};
    use crate::rules::fixtures::t;

    #[test]
    fn resolved_alerts_leave_only_when_acknowledged_unchanged() {
        let a = firing("A", &[], 0);
        let b = resolved(firing("B", &[], 0), 10);
        let mut g = Group {
            receiver: "r".into(),
            integration: "webhook".into(),
            key: "{}:{}".into(),
            route: 0,
            labels: Labels::new(),
            alerts: [a.clone(), b.clone()]
                .into_iter()
                .map(|x| (x.fingerprint.clone(), x))
                .collect(),
            next_flush: t(0),
        };
        assert!(g.due(t(0)) && !g.due(t(0) - std::time::Duration::from_secs(1)));
        assert_eq!(g.firing(), BTreeSet::from([a.fingerprint.clone()]));
        assert_eq!(g.resolved(), BTreeSet::from([b.fingerprint.clone()]));
        // Acknowledged with another end: it resolved again since; stays.
        g.remove_resolved(&BTreeMap::from([(b.fingerprint.clone(), t(5))]));
        assert_eq!(g.alerts.len(), 2);
        g.remove_resolved(&g.resolved_ends());
        assert_eq!(g.alerts.len(), 1);
        g.alerts.insert(b.fingerprint.clone(), b);
        g.drop_resolved();
        assert_eq!(g.alerts.keys().collect::<Vec<_>>(), [&a.fingerprint]);
    }
}
