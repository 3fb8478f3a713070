//! Engine tests with synthetic reports: no database, time driven by hand.

mod lifecycle;
mod reconfigure;
mod scenarios;
mod sources;
mod texts;

use super::*;
use crate::config::values::Problems;
use crate::model::TargetReport;
use crate::notice::Notice;
use crate::rules::config::RuleConfig;

use crate::rules::fixtures::t;
use crate::store::Store;
use std::collections::BTreeSet;

/// The engine as the tests drive it: an alert engine with the store it reads, each report
/// applied to the store first, as the daemon does. Shadows [`super::Engine`] in the tests.
pub(super) struct Bed {
    engine: super::Engine,
    store: Store,
    targets: BTreeSet<String>,
}

type Engine = Bed;

impl Bed {
    fn new(rules: RuleSet) -> Bed {
        let store = Store::new([]);
        let horizon = rules
            .max_window()
            .unwrap_or(crate::store::DEFAULT_CAPACITY_HORIZON);
        store.set_windows(crate::store::DEFAULT_WINDOW, horizon);
        Bed {
            engine: super::Engine::new(rules),
            store,
            targets: BTreeSet::new(),
        }
    }

    /// Applies `report` to the store, then has the engine observe it.
    fn observe(
        &mut self,
        now: std::time::SystemTime,
        report: &TargetReport,
        labels: &Labels,
    ) -> Vec<Notice> {
        if self.targets.insert(report.target.clone()) {
            self.store
                .set_targets(self.targets.iter().map(String::as_str));
        }
        self.store.apply(report);
        let view = self.store.view();
        self.engine.observe(now, report, labels, &view)
    }

    fn export_state(&self) -> PersistedState {
        self.engine.export_state(self.store.export_capacity())
    }

    fn import_state(&mut self, st: PersistedState) -> bool {
        match self.engine.import_state(st) {
            Some(capacity) => {
                let names: Vec<String> = capacity.iter().map(|c| c.pool.target.clone()).collect();
                for n in names {
                    if self.targets.insert(n) {
                        self.store
                            .set_targets(self.targets.iter().map(String::as_str));
                    }
                }
                self.store.import_capacity(capacity);
                true
            }
            None => false,
        }
    }
}

impl std::ops::Deref for Bed {
    type Target = super::Engine;
    fn deref(&self) -> &super::Engine {
        &self.engine
    }
}

impl std::ops::DerefMut for Bed {
    fn deref_mut(&mut self) -> &mut super::Engine {
        &mut self.engine
    }
}

fn rules(extra: &[RuleConfig], builtin: bool) -> RuleSet {
    let mut problems = Problems::new("test.toml");
    let set = RuleSet::build(extra, builtin, &mut problems);
    assert!(problems.is_empty(), "{:?}", problems.into_vec());
    set
}

/// An engine with the built-in rules and a 4h repeat interval.
fn engine() -> Engine {
    Engine::new(rules(&[], true))
}

/// Rule `Busy`: critical as soon as 10 connections are in use.
fn busy() -> RuleConfig {
    RuleConfig {
        name: "Busy".into(),
        metric: Some(crate::rules::config::PoolMetric::InUse),
        critical: Some(crate::rules::config::ThresholdConfig {
            value: 10.0,
            clear: None,
            for_: None,
        }),
        ..RuleConfig::default()
    }
}

/// `fired PoolNearFull/critical@orders-db:server`, `resolved TargetDown/critical@orders-db`.
fn brief(n: &Notice) -> String {
    let l = |k: &str| n.labels.get(k).cloned().unwrap_or_default();
    let pool = match n.labels.get("pool") {
        Some(p) => format!(":{p}"),
        None => String::new(),
    };
    format!(
        "{} {}/{}@{}{pool}",
        n.reason.as_str(),
        l("alertname"),
        l("severity"),
        l("target")
    )
}

/// Observes `report` at `secs` with no target labels; the notices in brief, sorted.
fn observe(e: &mut Engine, secs: u64, report: &TargetReport) -> Vec<String> {
    briefs(&e.observe(t(secs), report, &Labels::new()))
}

fn briefs(notices: &[Notice]) -> Vec<String> {
    let mut v: Vec<String> = notices.iter().map(brief).collect();
    v.sort();
    v
}

/// Runs `(secs, report, expected notices)` rows in order against one engine.
fn run(e: &mut Engine, rows: Vec<(u64, TargetReport, Vec<&str>)>) {
    for (i, (secs, report, want)) in rows.into_iter().enumerate() {
        let got = observe(e, secs, &report);
        assert_eq!(got, want, "row {i} at {secs}s");
    }
}

/// `(alertname@target:pool, state)` of every pending or firing alert.
fn states(e: &Engine) -> Vec<(String, &'static str)> {
    e.alerts()
        .iter()
        .map(|a| {
            let pool = a
                .labels
                .get("pool")
                .map(|p| format!(":{p}"))
                .unwrap_or_default();
            (
                format!("{}@{}{pool}", a.labels["alertname"], a.labels["target"]),
                a.state,
            )
        })
        .collect()
}

/// A `[[rules]]` entry named `name`, with what `f` sets.
fn override_of(name: &str, f: impl FnOnce(&mut RuleConfig)) -> RuleConfig {
    let mut rc = RuleConfig {
        name: name.into(),
        ..RuleConfig::default()
    };
    f(&mut rc);
    rc
}

/// Saves `e`'s state as the daemon would (JSON) and loads it into a fresh engine.
fn restart(e: &Engine) -> Engine {
    let json = serde_json::to_string(&e.export_state()).unwrap();
    let st: PersistedState = serde_json::from_str(&json).unwrap();
    let mut fresh = engine();
    assert!(fresh.import_state(st));
    fresh
}
