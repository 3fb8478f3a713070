//! (shim until the notify branch lands)
use crate::config::schema::ReceiverConfig;
use crate::config::values::Problems;
use crate::notice::Notice;
use std::time::Duration;

/// Settings.
#[derive(Debug, Clone)]
pub struct ReceiverSettings {}
impl ReceiverSettings {
    /// Summary.
    pub fn summary(&self) -> String {
        String::new()
    }
}

/// Validate.
pub fn settings_from_config(_c: &[ReceiverConfig], _p: &mut Problems) -> Vec<ReceiverSettings> {
    Vec::new()
}

/// Metrics.
#[derive(Clone)]
pub struct NotifyMetrics;
impl NotifyMetrics {
    /// New.
    pub fn new(_r: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        Ok(NotifyMetrics)
    }
}

/// Notifier.
pub struct Notifier;
impl Notifier {
    /// Start.
    pub fn start(_r: Vec<ReceiverSettings>, _u: String, _m: NotifyMetrics) -> Notifier {
        Notifier
    }
    /// Notify.
    pub fn notify(&self, _n: &Notice) {}
    /// Shutdown.
    pub async fn shutdown(self, _d: Duration) {}
}
