//! (shim until the alert branch lands)
use crate::model::TargetReport;
use crate::notice::Notice;
use crate::rules::RuleSet;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// View.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AlertView {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// State.
    pub state: String,
    /// Value.
    pub value: String,
    /// Fingerprint.
    pub fingerprint: String,
}

/// Persisted.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PersistedState {}

/// Engine.
pub struct Engine {}
impl Engine {
    /// New.
    pub fn new(_r: RuleSet, _ri: Duration) -> Engine {
        Engine {}
    }
    /// Observe.
    pub fn observe(
        &mut self,
        _now: SystemTime,
        _r: &TargetReport,
        _l: &BTreeMap<String, String>,
    ) -> Vec<Notice> {
        Vec::new()
    }
    /// Set rules.
    pub fn set_rules(&mut self, _now: SystemTime, _r: RuleSet, _ri: Duration) -> Vec<Notice> {
        Vec::new()
    }
    /// Remove target.
    pub fn remove_target(&mut self, _now: SystemTime, _t: &str) -> Vec<Notice> {
        Vec::new()
    }
    /// Alerts.
    pub fn alerts(&self) -> Vec<AlertView> {
        Vec::new()
    }
    /// Export.
    pub fn export_state(&self) -> PersistedState {
        PersistedState {}
    }
    /// Import.
    pub fn import_state(&mut self, _s: PersistedState) {}
}
