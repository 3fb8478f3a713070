//! Real client connections held open to occupy connection slots.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use crate::common::{poll_until, process_exited};

/// The `application_name` of the harness's own superuser connections, so tests can tell them
/// apart from the connections they count.
pub const HARNESS_APPLICATION_NAME: &str = "poolwatch-test-harness";

/// Connects to `url` without TLS; the connection runs on a spawned task that ends when the
/// returned client is dropped.
pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    Ok(Conn::open(url, false).await?.client)
}

/// A client, the task driving its connection and, when tracked, the server process serving it.
pub struct Conn {
    /// The client; dropping it ends the session.
    pub client: Client,
    task: JoinHandle<()>,
    /// `pg_backend_pid()`, so [`Conn::close`] can wait for the server process to exit.
    backend_pid: Option<i32>,
}

impl Conn {
    /// Connects to `url` without TLS; with `track_backend`, asks for the backend's pid (needs
    /// a direct connection to PostgreSQL on this machine: not through PgBouncer).
    pub async fn open(url: &str, track_backend: bool) -> Result<Conn, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        let task = tokio::spawn(async move {
            // An error here is the server going away, which tests provoke on purpose.
            let _ = connection.await;
        });
        let backend_pid = if track_backend {
            Some(
                client
                    .query_one("SELECT pg_backend_pid()", &[])
                    .await?
                    .get(0),
            )
        } else {
            None
        };
        Ok(Conn {
            client,
            task,
            backend_pid,
        })
    }

    /// Ends the session and, when tracked, waits until its server process has exited, which
    /// is when PostgreSQL gives the connection slot back. A backend lingers a few
    /// milliseconds after the client leaves; without this wait a test that fills a server
    /// right after `exec` would race with it.
    pub async fn close(self) {
        drop(self.client);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        if let Some(pid) = self.backend_pid {
            let gone = poll_until(Duration::from_secs(10), || async move {
                process_exited(pid).then_some(())
            })
            .await;
            assert!(
                gone.is_some(),
                "PostgreSQL backend {pid} still running 10s after its client left"
            );
        }
    }
}

/// Appends `application_name` to a `postgresql://` URL.
pub fn with_application_name(url: &str, application_name: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}application_name={}",
        percent_encode(application_name)
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `n` open client connections sharing one `application_name`; dropping it closes them all
/// (without waiting; use [`ConnectionHold::close`] to know when the server let them go).
///
/// The connections are idle; run `BEGIN` through [`ConnectionHold::client`] to make some of
/// them idle in a transaction.
pub struct ConnectionHold {
    held: Vec<Conn>,
    /// Identifies these connections in `pg_stat_activity`.
    application_name: String,
}

impl ConnectionHold {
    /// Opens `n` connections to `url` (a `postgresql://` URL without `application_name`).
    /// `track_backends`: see [`Conn::open`].
    ///
    /// Fails with the first refused connection; those opened before it are closed again.
    pub async fn open(
        url: &str,
        n: usize,
        application_name: &str,
        track_backends: bool,
    ) -> Result<ConnectionHold, tokio_postgres::Error> {
        let url = with_application_name(url, application_name);
        let mut hold = ConnectionHold {
            held: Vec::with_capacity(n),
            application_name: application_name.to_owned(),
        };
        for _ in 0..n {
            match Conn::open(&url, track_backends).await {
                Ok(conn) => hold.held.push(conn),
                Err(e) => {
                    hold.close_all().await;
                    return Err(e);
                }
            }
        }
        Ok(hold)
    }

    /// How many connections are still open.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether every connection has been closed.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The `application_name` these connections use.
    pub fn application_name(&self) -> &str {
        &self.application_name
    }

    /// The `i`th open connection, e.g. to run `BEGIN` on it.
    pub fn client(&self, i: usize) -> &Client {
        &self.held[i].client
    }

    /// Closes the `n` most recently opened connections (all, if fewer are open); when the
    /// backends are tracked, returns once their server processes have exited.
    pub async fn close(&mut self, n: usize) {
        let keep = self.held.len().saturating_sub(n);
        for conn in self.held.drain(keep..) {
            conn.close().await;
        }
    }

    /// Closes every connection as [`ConnectionHold::close`] does.
    pub async fn close_all(mut self) {
        let n = self.held.len();
        self.close(n).await;
    }
}
