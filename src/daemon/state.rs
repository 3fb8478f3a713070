//! The state file: alert state, capacity history and the dispatcher's state (notification log,
//! alerts held by groups), saved atomically (a temporary file renamed over the old one) with
//! every alert transition, every acknowledged notification, every 30 seconds and at shutdown,
//! and read back at start-up: after a restart (SIGTERM or `kill -9`) nothing acknowledged is
//! sent again, nothing unacknowledged is forgotten, and firing alerts keep their repeat
//! schedule.
//!
//! Saving never holds up the daemon loop (and so never the evaluation of reports): the loop
//! takes a snapshot (a clone of the state) and hands it to [`StateWriter`], whose thread
//! serialises and writes it. A snapshot handed over while an older one still waits replaces
//! it: only the newest state is written, however often the loop saves. A `kill -9` during a
//! write leaves the previous file whole (the rename has not happened).

use super::Daemon;
use crate::alert::{Engine, PersistedState};
use crate::config::files::{read_limited, MAX_STATE_BYTES};
use crate::dispatch::silence::SilenceStore;
use crate::dispatch::Dispatcher;
use crate::store::Store;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

impl Daemon {
    /// Hands the current state to the writer, when there is a state file.
    pub(super) fn save_state(&self) {
        let Some(file) = &self.state_file else { return };
        let mut state = self.engine.export_state(self.store.export_capacity());
        state.dispatch = self.dispatcher.export();
        state.silences = self.silences.get().0;
        self.state_writer.save(file.clone(), state);
    }
}

/// What waits for the writer thread.
#[derive(Default)]
struct Slot {
    /// The newest snapshot not yet taken by the writer, and where it goes.
    next: Option<(PathBuf, PersistedState)>,
    /// Set by [`StateWriter::finish`]: write what waits, then end.
    stop: bool,
}

/// A thread that writes state snapshots, newest first and only the newest.
pub(super) struct StateWriter {
    shared: Arc<(Mutex<Slot>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StateWriter {
    /// Starts the writer thread.
    pub(super) fn start() -> std::io::Result<StateWriter> {
        let shared = Arc::new((Mutex::new(Slot::default()), Condvar::new()));
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("poolwatch-state".into())
            .spawn(move || write_loop(&theirs))?;
        Ok(StateWriter {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `state` for `file`, replacing a snapshot that still waits. Never waits for a write.
    pub(super) fn save(&self, file: PathBuf, state: PersistedState) {
        let (slot, wake) = &*self.shared;
        slot.lock().unwrap_or_else(|e| e.into_inner()).next = Some((file, state));
        wake.notify_one();
    }

    /// Writes what waits and stops the thread; returns when the last write is done. Blocks.
    pub(super) fn finish(mut self) {
        let thread = self.thread.take();
        drop(self);
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("the state file writer failed");
            }
        }
    }
}

impl Drop for StateWriter {
    /// Tells the thread to write what waits and end (without waiting for it).
    fn drop(&mut self) {
        let (slot, wake) = &*self.shared;
        slot.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
        wake.notify_one();
    }
}

/// The writer thread: takes the newest snapshot, serialises and writes it, until told to stop
/// with nothing left.
fn write_loop(shared: &(Mutex<Slot>, Condvar)) {
    let (slot, wake) = shared;
    loop {
        let next = {
            let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
            while s.next.is_none() && !s.stop {
                s = wake.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            s.next.take()
        };
        let Some((file, state)) = next else { return };
        let result = serde_json::to_vec(&state)
            .map_err(|e| e.to_string())
            .and_then(|bytes| write_atomically(&file, &bytes).map_err(|e| e.to_string()));
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
        Ok(bytes) => match serde_json::from_slice::<PersistedState>(&bytes) {
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
