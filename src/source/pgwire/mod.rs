//! What the PostgreSQL and PgBouncer sources share: a session over the PostgreSQL wire protocol
//! (libpq connection settings, TLS with libpq's `sslmode` meanings, keepalives, a bounded
//! start-up), and the classification of what went wrong.
//!
//! * [`tls`] — rustls set-up for `sslmode` `require` / `verify-ca` / `verify-full`.
//! * [`config`] — the connection keys of a target, resolved into [`ConnSettings`].
//! * [`url`] — libpq URLs and key/value strings.
//! * [`classify`] — errors into [`crate::model::ErrorClass`]es (53300 means *saturated*).

pub mod classify;
pub mod config;
pub mod tls;
pub mod url;

use crate::model::PollError;
pub use config::{ConnConfig, ConnSettings, SslMode};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The `application_name` of every poolwatch session, by which poolwatch recognises its own
/// sessions (and other instances') on the server.
pub const APPLICATION_NAME: &str = "poolwatch";

/// An open session: the client, and the task that drives its connection.
pub struct Wire {
    /// The client side of the session.
    pub client: Client,
    driver: JoinHandle<()>,
}

impl Drop for Wire {
    fn drop(&mut self) {
        // Dropping the client makes the driver send Terminate and finish, so the server sees a
        // clean goodbye; a driver stuck on a dead peer is aborted a little later.
        let abort = self.driver.abort_handle();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                abort.abort();
            });
        } else {
            abort.abort();
        }
    }
}

/// `pg` with what every poolwatch session sets: `application_name = 'poolwatch'`, the connect
/// timeout, TCP keepalives (a long-lived connection must notice a peer that vanished without a
/// reset), and the TLS mode tokio-postgres itself knows (verification is [`tls`]'s).
pub fn base_config(
    pg: &tokio_postgres::Config,
    sslmode: SslMode,
    connect_timeout: Duration,
) -> tokio_postgres::Config {
    let mut cfg = pg.clone();
    cfg.application_name(APPLICATION_NAME);
    cfg.connect_timeout(connect_timeout);
    cfg.keepalives(true);
    cfg.keepalives_idle(Duration::from_secs(30));
    cfg.ssl_mode(match sslmode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    cfg
}

/// Opens a session; the whole start-up (TCP, TLS, authentication) is bounded by `limit`.
pub async fn open(
    cfg: &tokio_postgres::Config,
    tls: Option<&MakeRustlsConnect>,
    limit: Duration,
) -> Result<Wire, PollError> {
    let attempt = async {
        match tls {
            Some(tls) => {
                let (client, conn) = cfg.connect(tls.clone()).await?;
                Ok::<_, tokio_postgres::Error>((client, spawn_driver(conn)))
            }
            None => {
                let (client, conn) = cfg.connect(NoTls).await?;
                Ok((client, spawn_driver(conn)))
            }
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Err(_) => Err(classify::timed_out("connecting", limit)),
        Ok(Err(e)) => Err(classify::classify(&e)),
        Ok(Ok((client, driver))) => Ok(Wire { client, driver }),
    }
}

fn spawn_driver<S, T>(conn: tokio_postgres::Connection<S, T>) -> JoinHandle<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio_postgres::tls::TlsStream + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        // The error, if any, surfaces on the next query as a closed connection.
        let _ = conn.await;
    })
}

/// A target's TLS set-up, made once: the connector, or why it could not be built (an
/// unparsable `sslrootcert`) — then every connection attempt fails with that reason (class
/// `tls`), and the target reports down.
pub struct TlsSetup(Result<Option<MakeRustlsConnect>, String>);

impl TlsSetup {
    /// Builds the connector for `conn` of target `target` (logging a failure once).
    pub fn new(conn: &ConnSettings, target: &str) -> TlsSetup {
        let tls = tls::connector(conn.sslmode, conn.sslrootcert.as_deref());
        if let Err(e) = &tls {
            tracing::error!(target_name = %target, error = %e, "TLS set-up failed; target will report down");
        }
        TlsSetup(tls)
    }

    /// The connector to connect with (`None`: no TLS), or the set-up's failure.
    pub fn connector(&self) -> Result<Option<&MakeRustlsConnect>, PollError> {
        match &self.0 {
            Ok(tls) => Ok(tls.as_ref()),
            Err(message) => Err(PollError {
                class: crate::model::ErrorClass::Tls,
                message: message.clone(),
            }),
        }
    }
}

/// The first column of the first row of a simple-query answer.
pub fn first_cell(msgs: &[SimpleQueryMessage]) -> Option<String> {
    msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    })
}
