//! The state file: alert state, capacity history and the dispatcher's state (notification log,
//! alerts held by groups), saved atomically (a temporary file renamed over the old one) with
//! every alert transition, every acknowledged notification, every 30 seconds and at shutdown,
//! and read back at start-up: after a restart (SIGTERM or `kill -9`) nothing acknowledged is
//! sent again, nothing unacknowledged is forgotten, and firing alerts keep their repeat
//! schedule.

use super::Daemon;
use crate::alert::Engine;
use crate::config::files::{read_limited, MAX_STATE_BYTES};
use crate::dispatch::silence::SilenceStore;
use crate::dispatch::Dispatcher;
use crate::store::Store;
use std::path::Path;

impl Daemon {
    pub(super) fn save_state(&self) {
        let Some(file) = &self.state_file else { return };
        let mut state = self.engine.export_state(self.store.export_capacity());
        state.dispatch = self.dispatcher.export();
        state.silences = self.silences.get().0;
        let result = serde_json::to_vec(&state)
            .map_err(|e| e.to_string())
            .and_then(|bytes| write_atomically(file, &bytes).map_err(|e| e.to_string()));
        if let Err(e) = result {
            tracing::warn!(file = %file.display(), error = %e, "cannot save alert state");
        }
    }
}

pub(super) fn load_state(
    engine: &mut Engine,
    dispatcher: &mut Dispatcher,
    silences: &SilenceStore,
    store: &Store,
    file: &Path,
) {
    match read_limited(file, MAX_STATE_BYTES) {
        Ok(bytes) => match serde_json::from_slice::<crate::alert::PersistedState>(&bytes) {
            Ok(mut state) => {
                let dispatch = std::mem::take(&mut state.dispatch);
                let saved_silences = std::mem::take(&mut state.silences);
                if let Some(capacity) = engine.import_state(state) {
                    store.import_capacity(capacity);
                    dispatcher.import(dispatch, std::time::SystemTime::now());
                    silences.update(|s| *s = saved_silences);
                    tracing::info!(file = %file.display(), "alert state restored");
                } else {
                    tracing::warn!(file = %file.display(), "alert state file is from another poolwatch version; starting fresh");
                }
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "alert state file unreadable; starting fresh")
            }
        },
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot read alert state file; starting fresh")
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
