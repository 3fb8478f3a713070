//! Client connections through PgBouncer that hold server connections, so that further clients
//! have to wait for one (`cl_waiting` in `SHOW POOLS`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

use crate::common::poll_until;

/// Where one held client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientState {
    /// Logging in to PgBouncer.
    Connecting,
    /// Logged in; its first statement waits for a server connection.
    Waiting,
    /// Holds a server connection (its statement ran; in transaction mode its transaction stays
    /// open).
    Served,
    /// Refused or failed: the error's text (for a server error, its message).
    Failed(String),
}

/// `n` clients, each logging in and then running a statement that needs a server connection
/// and keeping it: in session mode `SELECT 1` (the server stays with the session), otherwise
/// `BEGIN; SELECT 1` (the open transaction keeps it). Clients beyond the pool's size wait in
/// PgBouncer's queue. Dropping the hold, or [`ClientHold::release`], disconnects them.
pub struct ClientHold {
    clients: Vec<(JoinHandle<()>, Arc<Mutex<ClientState>>)>,
}

impl ClientHold {
    /// Starts `n` clients on `url` at once (each on a task of its own); returns without
    /// waiting for them: see [`ClientHold::wait_for`].
    pub fn start(url: &str, n: usize, keep_transaction_open: bool) -> ClientHold {
        let statement = if keep_transaction_open {
            "BEGIN; SELECT 1"
        } else {
            "SELECT 1"
        };
        let clients = (0..n)
            .map(|_| {
                let state = Arc::new(Mutex::new(ClientState::Connecting));
                let task = tokio::spawn(hold_one(url.to_owned(), statement, state.clone()));
                (task, state)
            })
            .collect();
        ClientHold { clients }
    }

    /// Every client's state, in the order they were started.
    pub fn states(&self) -> Vec<ClientState> {
        self.clients
            .iter()
            .map(|(_, state)| state.lock().expect("client state").clone())
            .collect()
    }

    /// How many clients are in `state`.
    pub fn count(&self, state: &ClientState) -> usize {
        self.states().iter().filter(|s| *s == state).count()
    }

    /// The error texts of the clients that failed.
    pub fn failures(&self) -> Vec<String> {
        self.states()
            .into_iter()
            .filter_map(|s| match s {
                ClientState::Failed(text) => Some(text),
                _ => None,
            })
            .collect()
    }

    /// Waits until `served` clients hold a server connection and `waiting` wait for one (none
    /// failed, none still logging in); panics with every state after `timeout`.
    pub async fn wait_for(&self, served: usize, waiting: usize, timeout: Duration) {
        let reached = poll_until(timeout, || async {
            (self.count(&ClientState::Served) == served
                && self.count(&ClientState::Waiting) == waiting
                && self.count(&ClientState::Connecting) == 0
                && self.failures().is_empty())
            .then_some(())
        })
        .await;
        assert!(
            reached.is_some(),
            "expected {served} served and {waiting} waiting clients within {timeout:?}, got {:?}",
            self.states()
        );
    }

    /// Disconnects the `n` clients started last (all, if fewer are left).
    pub fn release(&mut self, n: usize) {
        let keep = self.clients.len().saturating_sub(n);
        for (task, _) in self.clients.drain(keep..) {
            task.abort();
        }
    }

    /// How many clients are left (in any state).
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether every client was released.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

impl Drop for ClientHold {
    fn drop(&mut self) {
        self.release(self.clients.len());
    }
}

/// One client: logs in, runs `statement`, then holds the session until its task is aborted
/// (which drops the client: the session ends with a Terminate message).
async fn hold_one(url: String, statement: &'static str, state: Arc<Mutex<ClientState>>) {
    let set = |s: ClientState| *state.lock().expect("client state") = s;
    let (client, connection) = match tokio_postgres::connect(&url, NoTls).await {
        Ok(pair) => pair,
        Err(e) => return set(ClientState::Failed(error_text(&e))),
    };
    // Ends once the client is dropped: the session then closes with a Terminate message.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    set(ClientState::Waiting);
    match client.batch_execute(statement).await {
        Ok(()) => set(ClientState::Served),
        Err(e) => set(ClientState::Failed(error_text(&e))),
    }
    // Keeps the session (and the server connection it holds) until the task is aborted.
    let _session = client;
    std::future::pending::<()>().await;
}

/// A server error's message, else the error's own text.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|db| db.message().to_owned())
        .unwrap_or_else(|| e.to_string())
}
