//! [`Dispatcher`]: the engine's alert set in, group notifications out, delivery outcomes in.
//!
//! * [`Dispatcher::ingest`] puts every firing and resolved alert into the groups of the routes
//!   that take it: one group per integration of the route's receiver, so that each integration
//!   is notified, acknowledges and is retried on its own (a failing Slack never holds up
//!   PagerDuty, and a restart re-sends only to the integration that had not acknowledged). A resolved alert joins a group only if that group's receiver was told it
//!   fired (or the group already holds it): nobody needs to hear that an unknown alert ended.
//! * [`Dispatcher::flush`] looks at every due group: [`should_notify`] against the notification
//!   log decides; the next look is `group_interval` later. A notification equal to the one
//!   already handed over and not settled is not handed over again. For an integration with a
//!   resend interval of its own (an Alertmanager push), `group_interval` and `repeat_interval`
//!   are at most that interval and the next look is when the repeat falls due
//!   ([`super::RouteTree::timing`]): a firing group is re-sent on time, on the log's schedule.
//! * [`Dispatcher::outcome`]: an acknowledged notification is recorded in the log and the
//!   resolved alerts it told about leave their group; a dropped one is not retried until the
//!   group's state changes (or poolwatch restarts). While a notification listing firing alerts
//!   is in flight, a group whose alerts all resolved is notified (`resolved_in_flight`): the
//!   resolution supersedes it in the receiver's queue.
//!
//! What survives a restart ([`SavedDispatch`]) is the log and the alerts groups hold; restored
//! groups are due at once, so an unacknowledged state is sent again with the same id, and an
//! acknowledged one waits for its repeat.

use super::group::Group;
use super::inhibit::{inhibited, InhibitRule};
use super::nflog::{should_notify, GroupState, NotificationLog, Reason};
use super::notification::{notification_id, Notification};
use super::route::RouteTree;
use super::silence::Silences;
use super::{gofmt, Alert, AlertState};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a log entry without a group is kept (Alertmanager's default retention).
const LOG_RETENTION: Duration = Duration::from_secs(120 * 3600);

/// A group's identity: receiver, integration and group key.
type GroupId = (String, String, String);

/// How a notification handed to [`crate::notify`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Its receiver.
    pub receiver: String,
    /// The receiver's integration it went to.
    pub integration: String,
    /// Its group key.
    pub group_key: String,
    /// Its id.
    pub id: String,
    /// True when the receiver accepted it (2xx); false when it was given up.
    pub delivered: bool,
    /// When.
    pub at: SystemTime,
}

impl Outcome {
    /// How `n` ended: `delivered` or given up, at `at`.
    pub fn of(n: &Notification, delivered: bool, at: SystemTime) -> Outcome {
        Outcome {
            receiver: n.receiver.clone(),
            integration: n.integration.clone(),
            group_key: n.group_key.clone(),
            id: n.id.clone(),
            delivered,
            at,
        }
    }
}

/// One flush decision about one group, for logs and metrics.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The receiver.
    pub receiver: String,
    /// The receiver's integration.
    pub integration: String,
    /// The group key.
    pub group_key: String,
    /// What [`should_notify`] said.
    pub notify: bool,
    /// Why.
    pub reason: Reason,
    /// The notification to hand over, if any (none when nothing is left to send after
    /// `send_resolved`, or when it equals the one already handed over).
    pub notification: Option<Notification>,
}

/// What the dispatcher saves in the state file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedDispatch {
    /// The notification log.
    pub log: NotificationLog,
    /// Every alert some group holds.
    pub alerts: Vec<Alert>,
}

/// Routes, aggregation groups and the notification log. See the module documentation.
#[derive(Debug)]
pub struct Dispatcher {
    routes: RouteTree,
    groups: BTreeMap<GroupId, Group>,
    log: NotificationLog,
    /// Per group, the last notification handed over and not acknowledged, and whether it is
    /// still in flight (not given up).
    offered: BTreeMap<GroupId, (Notification, bool)>,
    /// Inhibition rules.
    inhibit: Vec<InhibitRule>,
    /// Firing alerts muted at the last ingest, each with the fingerprint of what mutes it.
    muted: BTreeMap<String, String>,
    /// The silences in force.
    silences: Silences,
    /// Firing alerts silenced at the last ingest, with the silences' ids.
    silenced: BTreeMap<String, Vec<String>>,
}

impl Dispatcher {
    /// A dispatcher with no groups and an empty log.
    pub fn new(routes: RouteTree) -> Dispatcher {
        Dispatcher {
            routes,
            groups: BTreeMap::new(),
            log: NotificationLog::default(),
            offered: BTreeMap::new(),
            inhibit: Vec::new(),
            muted: BTreeMap::new(),
            silences: Silences::default(),
            silenced: BTreeMap::new(),
        }
    }

    /// Replaces the silences (they apply from the next ingest).
    pub fn set_silences(&mut self, silences: Silences) {
        self.silences = silences;
    }

    /// The firing alerts muted by silences, with the silences' ids.
    pub fn silenced(&self) -> &BTreeMap<String, Vec<String>> {
        &self.silenced
    }

    /// Replaces the inhibition rules (they apply from the next ingest).
    pub fn set_inhibit_rules(&mut self, rules: Vec<InhibitRule>) {
        self.inhibit = rules;
    }

    /// The firing alerts muted by inhibition, each with the fingerprint of an alert muting it.
    pub fn muted(&self) -> &BTreeMap<String, String> {
        &self.muted
    }

    /// The groups, by receiver and key.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// The notification log.
    pub fn log(&self) -> &NotificationLog {
        &self.log
    }

    /// Takes in the current alert set (see the module documentation). A firing alert a group
    /// holds that the set no longer has is taken as resolved now. Muted (inhibited) firing
    /// alerts are held but left out of notifications.
    pub fn ingest(&mut self, alerts: &[Alert], now: SystemTime) {
        self.muted = inhibited(alerts, &self.inhibit);
        self.silenced = self.silences.silenced(alerts, now);
        for a in alerts.iter().filter(|a| a.state != AlertState::Pending) {
            self.insert(a, now);
        }
        let present: BTreeSet<&str> = alerts.iter().map(|a| a.fingerprint.as_str()).collect();
        for g in self.groups.values_mut() {
            for a in g.alerts.values_mut() {
                if a.is_firing() && !present.contains(a.fingerprint.as_str()) {
                    a.state = AlertState::Resolved;
                    a.ends_at = Some(now);
                }
            }
        }
    }

    fn insert(&mut self, alert: &Alert, now: SystemTime) {
        for index in self.routes.matching(&alert.labels) {
            let node = &self.routes.nodes()[index];
            let Some(receiver) = node.route.receiver.clone() else {
                continue;
            };
            let labels = node.route.group_by.group_labels(&alert.labels);
            let key = format!("{}:{}", node.key, gofmt::label_set(&labels));
            for integration in self.routes.integrations(&receiver) {
                let id = (receiver.clone(), integration.clone(), key.clone());
                let holds = self
                    .groups
                    .get(&id)
                    .is_some_and(|g| g.alerts.contains_key(&alert.fingerprint));
                let told_firing = self
                    .log
                    .get(&id.0, &id.1, &id.2)
                    .is_some_and(|e| e.firing.contains(&alert.fingerprint));
                if alert.state == AlertState::Resolved && !holds && !told_firing {
                    continue;
                }
                let wait = node.route.timing.group_wait;
                let g = self.groups.entry(id.clone()).or_insert_with(|| Group {
                    receiver: id.0.clone(),
                    integration: id.1.clone(),
                    key: id.2.clone(),
                    route: index,
                    labels: labels.clone(),
                    alerts: BTreeMap::new(),
                    next_flush: now + wait,
                });
                g.alerts.insert(alert.fingerprint.clone(), alert.clone());
            }
        }
    }

    /// Flushes every group due at `now`; returns a decision per flushed group.
    pub fn flush(&mut self, now: SystemTime) -> Vec<Decision> {
        let due: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, g)| g.due(now))
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        for id in due {
            if let Some(d) = self.flush_group(&id, now) {
                out.push(d);
            }
        }
        self.groups.retain(|_, g| !g.alerts.is_empty());
        // A notification given up for a group that is gone no longer stands for anything: the
        // group's next episode (the same alerts firing again) is news, not a repeat of it.
        let groups = &self.groups;
        self.offered
            .retain(|id, (_, in_flight)| *in_flight || groups.contains_key(id));
        self.log.prune(now, LOG_RETENTION, |r, i, k| {
            groups.contains_key(&(r.to_string(), i.to_string(), k.to_string()))
        });
        out
    }

    fn flush_group(&mut self, id: &GroupId, now: SystemTime) -> Option<Decision> {
        let g = self.groups.get_mut(id)?;
        let route = &self.routes.nodes().get(g.route)?.route;
        let timing = self.routes.timing(g.route, &id.0, &id.1)?;
        g.next_flush = now + timing.group_interval;
        if let Some(last) = self.log.get(&id.0, &id.1, &id.2) {
            let due = last.at + timing.repeat_interval;
            if self.routes.resends(&id.0, &id.1) && !last.firing.is_empty() && due > now {
                // Re-sent on time (an Alertmanager resolves what is not): looked at again
                // when the repeat is due, not up to a group_interval later.
                g.next_flush = g.next_flush.min(due);
            }
        }
        let (muted, silenced) = (&self.muted, &self.silenced);
        let mut firing = g.firing();
        firing.retain(|fp| !muted.contains_key(fp) && !silenced.contains_key(fp));
        let resolved = g.resolved();
        let entry = self.log.get(&id.0, &id.1, &id.2);
        let state = GroupState {
            firing: &firing,
            resolved: &resolved,
            repeat_interval: timing.repeat_interval,
            send_resolved: route.send_resolved,
            firing_in_flight: self
                .offered
                .get(id)
                .is_some_and(|(o, in_flight)| *in_flight && !o.firing.is_empty()),
        };
        let (notify, reason) = should_notify(state, entry, now);
        let mut decision = Decision {
            receiver: id.0.clone(),
            integration: id.1.clone(),
            group_key: id.2.clone(),
            notify,
            reason,
            notification: None,
        };
        if !notify {
            g.drop_resolved();
            return Some(decision);
        }
        let resolved_ends = g.resolved_ends();
        let mut alerts: Vec<Alert> = g
            .alerts
            .values()
            .filter(|a| firing.contains(&a.fingerprint) || (!a.is_firing() && route.send_resolved))
            .cloned()
            .collect();
        alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
        let repeat = (reason == Reason::Repeat).then_some((now, timing.repeat_interval));
        let n = Notification {
            receiver: id.0.clone(),
            integration: id.1.clone(),
            group_key: id.2.clone(),
            id: notification_id(
                (&id.0, &id.1),
                &id.2,
                &firing,
                &resolved_ends,
                entry,
                repeat,
            ),
            reason,
            group_labels: g.labels.clone(),
            alerts,
            firing,
            resolved: resolved_ends,
        };
        if n.alerts.is_empty() {
            // Everything resolved and the route does not send resolutions: recorded as told.
            self.log.record(&id.0, &id.1, &id.2, n.entry(now));
            g.drop_resolved();
            return Some(decision);
        }
        if self.offered.get(id).is_some_and(|(o, _)| o.id == n.id) {
            return None;
        }
        self.offered.insert(id.clone(), (n.clone(), true));
        decision.notification = Some(n);
        Some(decision)
    }

    /// Records how a notification ended (see the module documentation).
    pub fn outcome(&mut self, o: &Outcome) {
        let id = (
            o.receiver.clone(),
            o.integration.clone(),
            o.group_key.clone(),
        );
        let Some((n, in_flight)) = self.offered.get_mut(&id).filter(|(n, _)| n.id == o.id) else {
            return;
        };
        if !o.delivered {
            // Kept, so that the same notification is not handed over again.
            *in_flight = false;
            return;
        }
        self.log.record(&id.0, &id.1, &id.2, n.entry(o.at));
        if let Some(g) = self.groups.get_mut(&id) {
            g.remove_resolved(&n.resolved);
            if g.alerts.is_empty() {
                self.groups.remove(&id);
            }
        }
        self.offered.remove(&id);
    }

    /// Replaces the routes: the alerts the groups hold are routed again into new groups, due at
    /// once (the log decides what is worth sending). Notifications handed over and not settled
    /// stay known: their outcomes still arrive (a changed receiver drains its queue), and a
    /// group that is the same under the new routes does not hand the same one over twice.
    pub fn set_routes(&mut self, routes: RouteTree, now: SystemTime) {
        let held = self.held();
        self.routes = routes;
        self.groups.clear();
        self.restore_groups(&held, now);
    }

    /// Every alert some group holds, once each (the newest state of each).
    fn held(&self) -> Vec<Alert> {
        let mut by_fp: BTreeMap<&str, &Alert> = BTreeMap::new();
        for a in self.groups.values().flat_map(|g| g.alerts.values()) {
            let newer = by_fp
                .get(a.fingerprint.as_str())
                .is_none_or(|b| a.ends_at.unwrap_or(UNIX_EPOCH) > b.ends_at.unwrap_or(UNIX_EPOCH));
            if newer {
                by_fp.insert(&a.fingerprint, a);
            }
        }
        by_fp.into_values().cloned().collect()
    }

    fn restore_groups(&mut self, alerts: &[Alert], now: SystemTime) {
        for a in alerts {
            self.insert(a, now);
        }
        for g in self.groups.values_mut() {
            g.next_flush = now;
        }
    }

    /// What to save.
    pub fn export(&self) -> SavedDispatch {
        SavedDispatch {
            log: self.log.clone(),
            alerts: self.held(),
        }
    }

    /// Restores saved state (before the first [`Dispatcher::ingest`]); restored groups are due
    /// at once.
    pub fn import(&mut self, saved: SavedDispatch, now: SystemTime) {
        self.log = saved.log;
        self.groups.clear();
        self.offered.clear();
        self.restore_groups(&saved.alerts, now);
    }
}

#[cfg(test)]
#[path = "dispatcher_tests.rs"]
mod tests;
