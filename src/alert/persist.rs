//! [`PersistedState`]: what the engine saves so that a restart neither forgets a firing alert
//! nor pages again for it. The daemon writes it (JSON) and reads it back at start-up.

use super::{Engine, Instance, Labels};
use crate::store::SavedCapacity;
use serde::{Deserialize, Serialize};

/// Format version, bumped on an incompatible change; a file of another version is ignored.
pub const STATE_VERSION: u32 = 1;

/// What the state file holds: the engine's alert state — every pending and firing instance
/// (with `activeAt`) and the recently resolved alerts —, the store's capacity history (a drop
/// made while poolwatch restarts must still be seen), and the dispatcher's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersistedState {
    /// [`STATE_VERSION`] when written.
    pub version: u32,
    alerts: Vec<SavedAlert>,
    /// The store's capacity history ([`crate::store::Store::export_capacity`]).
    #[serde(default)]
    pub capacity: Vec<SavedCapacity>,
    /// Alerts resolved within [`super::RESOLVED_RETENTION`].
    #[serde(default)]
    resolved: Vec<crate::dispatch::Alert>,
    /// The dispatcher's notification log and the alerts its groups hold; set by the daemon.
    #[serde(default)]
    pub dispatch: crate::dispatch::SavedDispatch,
    /// The silences; set by the daemon.
    #[serde(default)]
    pub silences: crate::dispatch::silence::Silences,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SavedAlert {
    labels: Labels,
    alert: Instance,
}

impl PersistedState {
    /// How many alert instances are saved.
    pub fn alert_count(&self) -> usize {
        self.alerts.len()
    }
}

impl Engine {
    /// The alert state to save, with `capacity` (the store's) alongside.
    pub fn export_state(&self, capacity: Vec<SavedCapacity>) -> PersistedState {
        PersistedState {
            version: STATE_VERSION,
            alerts: self
                .instances
                .iter()
                .map(|(labels, alert)| SavedAlert {
                    labels: labels.clone(),
                    alert: alert.clone(),
                })
                .collect(),
            capacity,
            resolved: self.resolved.values().cloned().collect(),
            dispatch: Default::default(),
            silences: Default::default(),
        }
    }

    /// Restores saved alert state, replacing the engine's own; call it before the first
    /// [`Engine::observe`]. A restored firing alert that still holds is not announced again
    /// (the dispatcher's notification log decides about repeats); one that no longer holds resolves at its
    /// target's next observation, and one whose rule is gone resolves then too. Returns the
    /// capacity history for the store, or `None` (restoring nothing) when the state has another
    /// [`STATE_VERSION`].
    pub fn import_state(&mut self, st: PersistedState) -> Option<Vec<SavedCapacity>> {
        if st.version != STATE_VERSION {
            return None;
        }
        self.instances = st.alerts.into_iter().map(|a| (a.labels, a.alert)).collect();
        self.resolved = st
            .resolved
            .into_iter()
            .map(|a| (a.labels.clone(), a))
            .collect();
        Some(st.capacity)
    }
}

/// Serde for an instance's `cause`: a [`PollError`] as `{"class": "network", "message": ...}`.
/// A class this version does not know reads as no cause.
///
/// [`PollError`]: crate::model::PollError
pub(super) mod cause {
    use crate::model::{ErrorClass, PollError};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    struct Saved {
        class: String,
        message: String,
    }

    pub(in crate::alert) fn serialize<S: Serializer>(
        cause: &Option<PollError>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        cause.serialize(s)
    }

    pub(in crate::alert) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<PollError>, D::Error> {
        let saved = Option::<Saved>::deserialize(d)?;
        Ok(saved.and_then(|s| {
            let class = ErrorClass::ALL
                .into_iter()
                .find(|c| c.as_str() == s.class)?;
            Some(PollError {
                class,
                message: s.message,
            })
        }))
    }
}
