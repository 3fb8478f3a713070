//! (shim until the rules branch lands)
use crate::config::schema::RuleConfig;
use crate::config::values::Problems;

/// Rules.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {}

impl RuleSet {
    /// Build.
    pub fn build(_c: &[RuleConfig], _b: bool, _p: &mut Problems) -> RuleSet {
        RuleSet {}
    }
    /// Summary.
    pub fn summary(&self) -> Vec<String> {
        Vec::new()
    }
}
