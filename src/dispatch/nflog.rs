//! The notification log: per receiver, integration and group, what the integration acknowledged
//! last (the fingerprints of the firing and of the resolved alerts, and when), and
//! [`should_notify`], the pure decision that dedups a group's state against it —
//! Alertmanager's `DedupStage`. Each integration of a receiver acknowledges on its own, so that
//! after a restart only the one that had not acknowledged is sent the group again.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

/// What a receiver acknowledged for one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Fingerprints of the alerts that were firing in the acknowledged notification.
    pub firing: BTreeSet<String>,
    /// Fingerprints of the alerts it announced as resolved.
    pub resolved: BTreeSet<String>,
    /// When the receiver acknowledged it.
    pub at: SystemTime,
}

/// Entries by group key.
type ByKey = BTreeMap<String, Entry>;

/// Entries by receiver, integration, then group key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "SavedLog")]
pub struct NotificationLog {
    entries: BTreeMap<String, BTreeMap<String, ByKey>>,
}

/// The log as a state file holds it: by integration, or (written before receivers had
/// integrations) by receiver and key only, which is what their one webhook acknowledged.
#[derive(Deserialize)]
#[serde(untagged)]
enum SavedLog {
    /// The current shape.
    ByIntegration {
        entries: BTreeMap<String, BTreeMap<String, ByKey>>,
    },
    /// Before integrations: each receiver was one webhook, now its integration `webhook`.
    ByReceiver { entries: BTreeMap<String, ByKey> },
}

impl From<SavedLog> for NotificationLog {
    fn from(saved: SavedLog) -> Self {
        let entries = match saved {
            SavedLog::ByIntegration { entries } => entries,
            SavedLog::ByReceiver { entries } => entries
                .into_iter()
                .map(|(r, by_key)| (r, BTreeMap::from([("webhook".to_string(), by_key)])))
                .collect(),
        };
        NotificationLog { entries }
    }
}

impl NotificationLog {
    /// The entry of `receiver`'s `integration` for `group_key`.
    pub fn get(&self, receiver: &str, integration: &str, group_key: &str) -> Option<&Entry> {
        self.entries.get(receiver)?.get(integration)?.get(group_key)
    }

    /// Records an acknowledgement, replacing the previous entry.
    pub fn record(&mut self, receiver: &str, integration: &str, group_key: &str, entry: Entry) {
        self.entries
            .entry(receiver.to_string())
            .or_default()
            .entry(integration.to_string())
            .or_default()
            .insert(group_key.to_string(), entry);
    }

    /// Forgets entries that can no longer change a decision: nothing firing acknowledged (a
    /// group that comes back is new anyway), or older than `max_age` (Alertmanager keeps 120 h).
    /// `live` says whether a group still exists for (receiver, integration, key); its entry is
    /// always kept.
    pub fn prune(
        &mut self,
        now: SystemTime,
        max_age: Duration,
        live: impl Fn(&str, &str, &str) -> bool,
    ) {
        for (receiver, integrations) in &mut self.entries {
            for (integration, groups) in integrations.iter_mut() {
                groups.retain(|key, e| {
                    let old = now.duration_since(e.at).unwrap_or_default() > max_age;
                    live(receiver, integration, key) || (!e.firing.is_empty() && !old)
                });
            }
            integrations.retain(|_, g| !g.is_empty());
        }
        self.entries.retain(|_, g| !g.is_empty());
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries
            .values()
            .flat_map(BTreeMap::values)
            .map(BTreeMap::len)
            .sum()
    }

    /// True without entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a group is (or is not) notified now; a log field and the `reason` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Nothing was acknowledged for this group yet and something fires.
    FirstNotification,
    /// An alert fires that the last acknowledged notification did not list as firing.
    NewFiring,
    /// With `send_resolved`: an alert resolved that the receiver was not told about.
    NewResolved,
    /// Every alert of the group resolved after the receiver was told some fired.
    AllResolved,
    /// Every alert of the group resolved while a notification saying some fire is still being
    /// delivered: the resolution supersedes it, so the receiver ends with the truth.
    ResolvedInFlight,
    /// Unchanged, still firing, and `repeat_interval` passed since the last acknowledgement.
    Repeat,
    /// Unchanged since the last acknowledgement, repeat not due.
    UpToDate,
    /// Only resolved alerts the receiver was never told were firing.
    NeverFired,
    /// The group holds no alert.
    Empty,
}

impl Reason {
    /// Every reason, for pre-initialised metric series.
    pub const ALL: [Reason; 9] = [
        Reason::FirstNotification,
        Reason::NewFiring,
        Reason::NewResolved,
        Reason::AllResolved,
        Reason::ResolvedInFlight,
        Reason::Repeat,
        Reason::UpToDate,
        Reason::NeverFired,
        Reason::Empty,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::FirstNotification => "first_notification",
            Reason::NewFiring => "new_firing",
            Reason::NewResolved => "new_resolved",
            Reason::AllResolved => "all_resolved",
            Reason::ResolvedInFlight => "resolved_in_flight",
            Reason::Repeat => "repeat",
            Reason::UpToDate => "up_to_date",
            Reason::NeverFired => "never_fired",
            Reason::Empty => "empty",
        }
    }
}

/// A group's state at a flush, as the dedup decision needs it.
#[derive(Debug, Clone, Copy)]
pub struct GroupState<'a> {
    /// Fingerprints of its firing alerts.
    pub firing: &'a BTreeSet<String>,
    /// Fingerprints of its resolved alerts not yet acknowledged as resolved.
    pub resolved: &'a BTreeSet<String>,
    /// The route's `repeat_interval`.
    pub repeat_interval: Duration,
    /// The route's `send_resolved`.
    pub send_resolved: bool,
    /// A notification of this group listing firing alerts was handed over and is not settled.
    pub firing_in_flight: bool,
}

/// Whether the group's state is worth a notification at `now`, given what the receiver last
/// acknowledged (`entry`), and why. Alertmanager's rules: a group never notified is notified
/// when something fires; new firing alerts always notify; a group whose alerts all resolved
/// notifies if the receiver was told some fired (whatever `send_resolved`: that clears the
/// log); other resolutions notify only with `send_resolved`; otherwise only the repeat. A
/// group whose alerts all resolved before the receiver acknowledged any is notified only while
/// a notification saying they fire is still on its way (it is superseded).
pub fn should_notify(g: GroupState<'_>, entry: Option<&Entry>, now: SystemTime) -> (bool, Reason) {
    if g.firing.is_empty() && g.resolved.is_empty() {
        return (false, Reason::Empty);
    }
    let never_fired = if g.firing_in_flight {
        (true, Reason::ResolvedInFlight)
    } else {
        (false, Reason::NeverFired)
    };
    let Some(e) = entry else {
        return if g.firing.is_empty() {
            never_fired
        } else {
            (true, Reason::FirstNotification)
        };
    };
    if !g.firing.is_subset(&e.firing) {
        return (true, Reason::NewFiring);
    }
    if g.firing.is_empty() {
        return if e.firing.is_empty() {
            never_fired
        } else {
            (true, Reason::AllResolved)
        };
    }
    if g.send_resolved && !g.resolved.is_subset(&e.resolved) {
        return (true, Reason::NewResolved);
    }
    let since = now.duration_since(e.at).unwrap_or_default();
    if since >= g.repeat_interval {
        (true, Reason::Repeat)
    } else {
        (false, Reason::UpToDate)
    }
}

#[cfg(test)]
#[path = "nflog_tests.rs"]
mod tests;
