//! The latest view of every target and of the alerts, shared between the daemon loop (the only
//! writer) and the HTTP handlers (readers). Exporter output and `/api/v1/alerts` are rendered
//! from here at request time, so a pool that disappears simply stops being rendered.

use crate::alert::AlertView;
use crate::model::{PollData, PollError, TargetReport, TargetState};
use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::SystemTime;

/// What is known of one target.
#[derive(Debug, Clone)]
pub struct TargetEntry {
    /// Current state.
    pub state: TargetState,
    /// The pools of the last successful poll; cleared while the target is not up, so that stale
    /// numbers are never exported as current.
    pub data: Option<PollData>,
    /// The error of the last failed poll, while the target is not up.
    pub error: Option<PollError>,
    /// When a poll last succeeded.
    pub last_success: Option<SystemTime>,
    /// Whether at least one poll has completed (for `/readyz`).
    pub polled: bool,
}

impl Default for TargetEntry {
    fn default() -> Self {
        TargetEntry {
            state: TargetState::Unknown,
            data: None,
            error: None,
            last_success: None,
            polled: false,
        }
    }
}

/// Shared state. Locks are held only to copy in or out; no I/O happens under them.
#[derive(Debug, Default)]
pub struct Store {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    targets: BTreeMap<String, TargetEntry>,
    alerts: Vec<AlertView>,
}

impl Store {
    /// A store expecting `targets` (all unknown, not yet polled).
    pub fn new<'a>(targets: impl IntoIterator<Item = &'a str>) -> Store {
        let store = Store::default();
        store.set_targets(targets);
        store
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// After a reload: keeps entries of targets that remain, adds new ones, drops removed ones.
    pub fn set_targets<'a>(&self, targets: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.write();
        let mut next = BTreeMap::new();
        for name in targets {
            let entry = inner.targets.remove(name).unwrap_or_default();
            next.insert(name.to_string(), entry);
        }
        inner.targets = next;
    }

    /// Records a poll report; returns the target's updated entry (`None` for a target that is
    /// not expected: a report from a source stopped by a reload).
    pub fn apply(&self, report: &TargetReport) -> Option<TargetEntry> {
        let mut inner = self.write();
        let entry = inner.targets.get_mut(&report.target)?;
        entry.polled = true;
        match &report.outcome {
            Ok(data) => {
                entry.state = TargetState::Up;
                entry.data = Some(data.clone());
                entry.error = None;
                entry.last_success = Some(report.at);
            }
            Err(e) => {
                entry.state = TargetState::from_error(e.class);
                entry.data = None;
                entry.error = Some(e.clone());
            }
        }
        Some(entry.clone())
    }

    /// Replaces the alert list.
    pub fn set_alerts(&self, alerts: Vec<AlertView>) {
        self.write().alerts = alerts;
    }

    /// A copy of every target's entry.
    pub fn targets(&self) -> BTreeMap<String, TargetEntry> {
        self.read().targets.clone()
    }

    /// A copy of the current alerts.
    pub fn alerts(&self) -> Vec<AlertView> {
        self.read().alerts.clone()
    }

    /// Names of targets not polled yet; empty once the daemon is ready.
    pub fn not_polled(&self) -> Vec<String> {
        self.read()
            .targets
            .iter()
            .filter(|(_, e)| !e.polled)
            .map(|(n, _)| n.clone())
            .collect()
    }
}
