//! What is known of every target and pool, shared between the daemon loop (the only writer) and
//! the HTTP handlers (readers): the latest report of each target, the last pools it showed
//! (kept while it is unreachable, for alert text), each pool's recent history ([`history`]) and
//! its capacity changes ([`capacity`]). Rules that need the past
//! (`capacity_dropped`, trends) read it through a [`StoreView`]; the exporter and
//! `/api/v1/alerts` render from it, so a pool that disappears simply stops being rendered.
//!
//! # Layout
//!
//! * [`history`] — per pool, in use and capacity over a window, folded into slots of time.
//! * [`capacity`] — per pool, changes of the configured capacity within the longest
//!   `capacity_dropped` window, saved with the alert state.
//! * [`rates`] — counter rates since a pool's previous sample (pure).
//! * [`trend`] — the slots of the history: least-squares sums of the in-use count, kept as
//!   samples arrive for fitting a trend cheaply, and the peak in use for drawing one.

pub mod capacity;
pub mod history;
pub mod rates;
pub mod trend;

use crate::model::{PollData, PollError, PoolSnapshot, TargetReport, TargetState};
use capacity::{Change, History, PoolRef};
use history::{PoolHistory, Sample};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

/// Default sample window per pool.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// How long capacity changes are kept when no rule has a `capacity_dropped` window.
pub const DEFAULT_CAPACITY_HORIZON: Duration = Duration::from_secs(3600);

/// What is known of one target.
#[derive(Debug, Clone)]
pub struct TargetEntry {
    /// Current state.
    pub state: TargetState,
    /// The pools of the last poll while the target is up; `None` while it is not, so that stale
    /// numbers are never exported as current.
    pub data: Option<Arc<PollData>>,
    /// The pools of the last successful poll, kept while the target cannot be polled (alert
    /// text says what was last seen).
    pub last_data: Option<Arc<PollData>>,
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
            last_data: None,
            error: None,
            last_success: None,
            polled: false,
        }
    }
}

/// Shared state. Locks are held only to copy in or out, or to evaluate rules; no I/O happens
/// under them.
#[derive(Debug, Default)]
pub struct Store {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    targets: BTreeMap<String, TargetEntry>,
    history: BTreeMap<PoolRef, PoolHistory>,
    capacity: BTreeMap<PoolRef, History>,
    /// How far back pools' history goes.
    window: Duration,
    /// How far back capacity changes go.
    horizon: Duration,
}

/// Capacity history as saved in the state file: one entry per pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedCapacity {
    /// The pool.
    #[serde(flatten)]
    pub pool: PoolRef,
    /// Its changes, oldest first.
    pub changes: Vec<Change>,
}

impl Store {
    /// A store expecting `targets` (all unknown, not yet polled), with the default windows.
    pub fn new<'a>(targets: impl IntoIterator<Item = &'a str>) -> Store {
        let store = Store::default();
        store.set_windows(DEFAULT_WINDOW, DEFAULT_CAPACITY_HORIZON);
        store.set_targets(targets);
        store
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets how far back pools' history (`window`) and capacity changes (`horizon`: the longest
    /// `capacity_dropped` window) go.
    pub fn set_windows(&self, window: Duration, horizon: Duration) {
        let mut inner = self.write();
        inner.window = window;
        inner.horizon = horizon;
    }

    /// After a reload: keeps what is known of targets that remain, adds new ones, forgets
    /// removed ones (their pools' history and capacity changes too).
    pub fn set_targets<'a>(&self, targets: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.write();
        let mut next = BTreeMap::new();
        for name in targets {
            let entry = inner.targets.remove(name).unwrap_or_default();
            next.insert(name.to_string(), entry);
        }
        inner.targets = next;
        let Inner {
            targets,
            history,
            capacity,
            ..
        } = &mut *inner;
        history.retain(|p, _| targets.contains_key(&p.target));
        capacity.retain(|p, _| targets.contains_key(&p.target));
    }

    /// Records a poll report; returns the target's updated entry (`None` for a target that is
    /// not expected: a report from a source stopped by a reload).
    pub fn apply(&self, report: &TargetReport) -> Option<TargetEntry> {
        let mut inner = self.write();
        let inner = &mut *inner;
        let entry = inner.targets.get_mut(&report.target)?;
        entry.polled = true;
        match &report.outcome {
            Ok(data) => {
                let data = Arc::clone(data);
                entry.state = TargetState::polled(&data);
                entry.data = Some(data.clone());
                entry.last_data = Some(data.clone());
                entry.error = data.refusing.clone();
                entry.last_success = Some(report.at);
                let (window, horizon) = (inner.window, inner.horizon);
                for p in &data.pools {
                    inner
                        .history
                        .entry(PoolRef::of(&p.id))
                        .or_default()
                        .record(Sample::new(report.at, p.in_use, p.capacity), window);
                }
                record_capacity(&mut inner.capacity, report, &data.pools, horizon);
                forget_vanished(&mut inner.history, &report.target, report.at, window);
            }
            Err(e) => {
                entry.state = TargetState::from_error(e.class);
                entry.data = None;
                entry.error = Some(e.clone());
            }
        }
        Some(entry.clone())
    }

    /// Fills in the counter rates ([`PoolSnapshot::rates`]) of `report`'s pools against the
    /// same pools in the target's last successful report, so that rules, `/metrics` and alert
    /// text all see them. Called before [`Store::apply`] records the report.
    pub fn fill_rates(&self, report: &mut TargetReport) {
        let Ok(data) = &mut report.outcome else {
            return;
        };
        let data = Arc::make_mut(data);
        let counted = |p: &PoolSnapshot| p.counters != Default::default();
        if !data.pools.iter().any(counted) {
            return;
        }
        let inner = self.read();
        let Some(entry) = inner.targets.get(&report.target) else {
            return;
        };
        let (Some(last), Some(then)) = (entry.last_data.as_deref(), entry.last_success) else {
            return;
        };
        let before: BTreeMap<&crate::model::PoolId, &crate::model::Counters> = last
            .pools
            .iter()
            .filter(|p| counted(p))
            .map(|p| (&p.id, &p.counters))
            .collect();
        for p in data.pools.iter_mut().filter(|p| counted(p)) {
            let previous = before.get(&p.id).map(|c| (*c, then));
            p.rates = rates::rates(previous, &p.counters, report.at);
        }
    }

    /// A copy of every target's entry.
    pub fn targets(&self) -> BTreeMap<String, TargetEntry> {
        self.read().targets.clone()
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

    /// A consistent view for reading several things at once (rule evaluation).
    pub fn view(&self) -> StoreView<'_> {
        StoreView(self.read())
    }

    /// The capacity history, to save with the alert state.
    pub fn export_capacity(&self) -> Vec<SavedCapacity> {
        self.read()
            .capacity
            .iter()
            .map(|(pool, h)| SavedCapacity {
                pool: pool.clone(),
                changes: h.changes().to_vec(),
            })
            .collect()
    }

    /// Restores saved capacity history (at start-up, before the first report), for the
    /// targets the store expects.
    pub fn import_capacity(&self, saved: Vec<SavedCapacity>) {
        let mut inner = self.write();
        let inner = &mut *inner;
        inner.capacity = saved
            .into_iter()
            .filter(|c| inner.targets.contains_key(&c.pool.target))
            .map(|c| (c.pool, History::from_changes(c.changes)))
            .collect();
    }
}

/// Records the configured capacity of every pool of a successful report.
fn record_capacity(
    capacity: &mut BTreeMap<PoolRef, History>,
    report: &TargetReport,
    pools: &[PoolSnapshot],
    horizon: Duration,
) {
    let (now, target) = (report.at, report.target.as_str());
    // Each pool's capacity as of the previous poll of this target.
    let before: BTreeMap<PoolRef, u64> = of_target(capacity, target)
        .filter_map(|(key, h)| h.changes().last().map(|c| (key.clone(), c.capacity)))
        .collect();
    let mut present = BTreeSet::new();
    for p in pools {
        let key = PoolRef::of(&p.id);
        let history = capacity.entry(key.clone()).or_default();
        if history.changes().is_empty() {
            // A pool bounded until now by its parent (a PostgreSQL role or database by the
            // server) shows a limit of its own for the first time while in use
            // (`ALTER ROLE app CONNECTION LIMIT 10` by a deployment): it dropped from the
            // parent's capacity. A brand-new pool (nothing in use yet) has no "before".
            let parent = p
                .parent
                .as_ref()
                .and_then(|(kind, name)| before.get(&PoolRef::new(target, kind.as_str(), name)));
            if let (Some(before), true) = (parent, p.in_use > 0) {
                if let Some(just_before) = now.checked_sub(Duration::from_millis(1)) {
                    history.record(just_before, *before);
                }
            }
        }
        history.record(now, p.configured_capacity);
        present.insert(key);
    }
    retain_of_target(capacity, target, |key, h| {
        h.prune(now, horizon);
        // A vanished pool's history only matters while it could still show a drop.
        present.contains(key)
            || h.last_change()
                .is_some_and(|t| now.duration_since(t).unwrap_or_default() < horizon)
    });
}

/// Forgets the history of `target`'s pools that have not been seen for a whole window.
fn forget_vanished(
    history: &mut BTreeMap<PoolRef, PoolHistory>,
    target: &str,
    now: SystemTime,
    window: Duration,
) {
    retain_of_target(history, target, |_, s| {
        s.last_at()
            .is_some_and(|t| now.duration_since(t).unwrap_or_default() < window)
    });
}

/// The entries of `target`'s pools: a range of the map, whose keys order by target first, and
/// not a scan of every target's pools (each report touches only its own target's, and with 100
/// targets reporting every second the scans were most of the store's work).
fn of_target<'a, V>(
    map: &'a BTreeMap<PoolRef, V>,
    target: &'a str,
) -> impl Iterator<Item = (&'a PoolRef, &'a V)> + 'a {
    // The empty kind and pool name make the smallest key of the target.
    map.range(PoolRef::new(target, "", "")..)
        .take_while(move |(key, _)| key.target == target)
}

/// [`BTreeMap::retain`] over `target`'s pools only; the other targets' are not visited.
fn retain_of_target<V>(
    map: &mut BTreeMap<PoolRef, V>,
    target: &str,
    mut keep: impl FnMut(&PoolRef, &mut V) -> bool,
) {
    let gone: Vec<PoolRef> = map
        .range_mut(PoolRef::new(target, "", "")..)
        .take_while(|(key, _)| key.target == target)
        .filter_map(|(key, v)| (!keep(key, v)).then(|| key.clone()))
        .collect();
    for key in gone {
        map.remove(&key);
    }
}

/// A read-locked view of the store, for evaluating rules against what is known.
pub struct StoreView<'a>(RwLockReadGuard<'a, Inner>);

impl StoreView<'_> {
    /// What is known of `target`.
    pub fn target(&self, target: &str) -> Option<&TargetEntry> {
        self.0.targets.get(target)
    }

    /// The last pools `target` showed (while it is unreachable too).
    pub fn last_pools(&self, target: &str) -> &[PoolSnapshot] {
        self.target(target)
            .and_then(|e| e.last_data.as_deref())
            .map_or(&[], |d| d.pools.as_slice())
    }

    /// Why the last poll of `target` failed; `None` while it is up or unknown.
    pub fn last_error(&self, target: &str) -> Option<&PollError> {
        self.target(target).and_then(|e| e.error.as_ref())
    }

    /// Whether `target` has been polled (successfully or not) at least once.
    pub fn polled(&self, target: &str) -> bool {
        self.target(target).is_some_and(|e| e.polled)
    }

    /// The highest configured capacity of `pool` within `window` before `now`.
    pub fn highest_capacity(
        &self,
        pool: &PoolRef,
        now: SystemTime,
        window: Duration,
    ) -> Option<u64> {
        self.0.capacity.get(pool)?.highest_within(now, window)
    }

    /// The recent history of `pool`.
    pub fn history(&self, pool: &PoolRef) -> Option<&PoolHistory> {
        self.0.history.get(pool)
    }

    /// The recent history of every pool of `target`, in key order: one range of the map, no
    /// look-up per pool.
    pub fn target_history<'v>(
        &'v self,
        target: &'v str,
    ) -> impl Iterator<Item = (&'v PoolRef, &'v PoolHistory)> + 'v {
        of_target(&self.0.history, target)
    }
}

#[cfg(test)]
mod tests;
