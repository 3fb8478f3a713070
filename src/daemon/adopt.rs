//! Applications that push without a target of their own, accepted by the push target that
//! sets `accept_unknown`: the registry creates each on its first push and names it here, and
//! it becomes a push target of its own, with that target's settings and labels.

use super::Daemon;
use crate::source::target::SourceSettings;
use crate::source::TargetSettings;

impl Daemon {
    /// Starts the target of `application`, created by its first push.
    pub(super) fn adopt(&mut self, application: String) {
        if self.sources.contains_key(&application) {
            return;
        }
        let running = self.sources.values().map(|r| &r.settings);
        let Some(target) = adopted_target(running, &application) else {
            return;
        };
        let mut names: Vec<&str> = self.sources.keys().map(String::as_str).collect();
        names.push(&application);
        self.store.set_targets(names);
        if let Some(entry) = self.store.targets().get(&application) {
            self.exposition.set_target(&application, entry);
        }
        self.start_source(target);
    }
}

/// The target of `application`, made from the push target among `targets` that accepts
/// unknown applications; `None` when none does.
pub(super) fn adopted_target<'a>(
    targets: impl IntoIterator<Item = &'a TargetSettings>,
    application: &str,
) -> Option<TargetSettings> {
    targets.into_iter().find_map(|t| match &t.source {
        SourceSettings::Push(s) if s.max_applications > 0 => Some(TargetSettings {
            name: application.to_string(),
            labels: t.labels.clone(),
            cadence: t.cadence,
            source: SourceSettings::Push(s.adopted(application)),
        }),
        _ => None,
    })
}
