//! [`PersistedState`]: what the engine saves so that a restart neither forgets a firing alert
//! nor pages again for it. The daemon writes it (JSON) and reads it back at start-up.

use super::capacity::{Change, History, PoolRef};
use super::{Engine, Instance, Labels};
use serde::{Deserialize, Serialize};

/// Format version, bumped on an incompatible change; a file of another version is ignored.
pub const STATE_VERSION: u32 = 1;

/// The engine's alert state: every pending and firing instance (with `activeAt` and when it was
/// last notified) and the capacity history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersistedState {
    /// [`STATE_VERSION`] when written.
    pub version: u32,
    alerts: Vec<SavedAlert>,
    capacity: Vec<SavedCapacity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SavedAlert {
    labels: Labels,
    alert: Instance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SavedCapacity {
    #[serde(flatten)]
    pool: PoolRef,
    changes: Vec<Change>,
}

impl PersistedState {
    /// How many alert instances are saved.
    pub fn alert_count(&self) -> usize {
        self.alerts.len()
    }
}

impl Engine {
    /// The state to save.
    pub fn export_state(&self) -> PersistedState {
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
            capacity: self
                .known
                .capacity
                .iter()
                .map(|(pool, h)| SavedCapacity {
                    pool: pool.clone(),
                    changes: h.changes().to_vec(),
                })
                .collect(),
        }
    }

    /// Restores saved state, replacing the engine's own; call it before the first
    /// [`Engine::observe`]. A restored firing alert that still holds is not announced again
    /// (only repeated when `repeat_interval` is due); one that no longer holds resolves at its
    /// target's next observation, and one whose rule is gone resolves then too. Returns false
    /// (and restores nothing) when the state has another [`STATE_VERSION`].
    pub fn import_state(&mut self, st: PersistedState) -> bool {
        if st.version != STATE_VERSION {
            return false;
        }
        self.instances = st.alerts.into_iter().map(|a| (a.labels, a.alert)).collect();
        self.known.capacity = st
            .capacity
            .into_iter()
            .map(|c| (c.pool, History::from_changes(c.changes)))
            .collect();
        true
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
