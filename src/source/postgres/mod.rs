//! The PostgreSQL source: one long-lived connection per target, one round trip per poll, and a
//! reconnect loop that tells a saturated server (53300) from a down one.
//!
//! The connection is opened with `application_name = 'poolwatch'`, a `statement_timeout`, and
//! `default_transaction_read_only`. It is not counted as load, but the slot it holds is taken
//! out of the capacity of the pools it belongs to (see [`query::POLL_SQL`]). It is never
//! re-opened per poll: when the server is full, a monitor that needs a new connection for each
//! poll goes blind exactly when it is needed.

pub mod config;
pub mod pools;
pub mod query;

use super::pgwire::{self, classify, TlsSetup, Wire};
use super::{PollFailure, PollingSource, Session};
use crate::model::{ErrorClass, PollData, PollError};
use config::PgSettings;
use std::time::Duration;
use tokio_postgres::Statement;
use tokio_postgres_rustls::MakeRustlsConnect;

/// An open monitoring connection.
pub struct PgConn {
    wire: Wire,
    /// The monitoring query, prepared once per connection: each poll is then one Bind/Execute
    /// round trip with no parsing or planning on the server.
    statement: Statement,
    /// `server_version` as reported at start-up.
    pub server_version: String,
    /// Set once this session has warned that the monitoring role lacks `pg_monitor`.
    warned_visibility: bool,
}

/// The session settings poolwatch adds: a `statement_timeout`, read-only transactions, and a
/// cap on idle-in-transaction time should poolwatch ever leave one open. They come after any
/// `options` from the URL, so they win.
fn session_config(s: &PgSettings) -> tokio_postgres::Config {
    let c = &s.conn;
    let mut cfg = pgwire::base_config(&c.pg, c.sslmode, c.connect_timeout);
    let ours = format!(
        "-c statement_timeout={} -c default_transaction_read_only=on -c idle_in_transaction_session_timeout=60000",
        s.statement_timeout.as_millis().max(1)
    );
    match c.pg.get_options() {
        Some(user) if !user.trim().is_empty() => cfg.options(format!("{user} {ours}")),
        _ => cfg.options(ours),
    };
    cfg
}

/// Opens the monitoring connection and prepares the monitoring query on it.
pub async fn connect(s: &PgSettings, tls: Option<&MakeRustlsConnect>) -> Result<PgConn, PollError> {
    let limit = s.conn.connect_timeout + Duration::from_millis(500);
    let wire = pgwire::open(&session_config(s), tls, limit).await?;
    let setup = async {
        let version = wire.client.simple_query("SHOW server_version").await?;
        let statement = wire.client.prepare(query::POLL_SQL).await?;
        Ok::<_, tokio_postgres::Error>((
            pgwire::first_cell(&version).unwrap_or_default(),
            statement,
        ))
    };
    let (server_version, statement) = match tokio::time::timeout(limit, setup).await {
        Err(_) => return Err(classify::timed_out("preparing the monitoring query", limit)),
        Ok(Err(e)) => return Err(classify::classify(&e)),
        Ok(Ok(ok)) => ok,
    };
    Ok(PgConn {
        wire,
        statement,
        server_version,
        warned_visibility: false,
    })
}

/// Runs the monitoring query once on an open connection.
pub async fn poll(conn: &PgConn, s: &PgSettings) -> Result<PollData, PollError> {
    poll_answered(conn, s)
        .await
        .map(|(data, _)| data)
        .map_err(|(e, _)| e)
}

/// [`poll`], also telling whether the monitoring role sees every session, and on failure
/// whether the server answered at all (`false`: no answer within `statement_timeout` + 500 ms,
/// so the connection itself is suspect).
async fn poll_answered(
    conn: &PgConn,
    s: &PgSettings,
) -> Result<(PollData, bool), (PollError, bool)> {
    let limit = s.statement_timeout + Duration::from_millis(500);
    let query = conn.wire.client.query_opt(&conn.statement, &[]);
    let answered = |e: PollError| (e, true);
    match tokio::time::timeout(limit, query).await {
        Err(_) => Err((classify::timed_out("the monitoring query", limit), false)),
        Ok(Err(e)) => Err(answered(classify::classify(&e))),
        Ok(Ok(row)) => {
            let json: String = row.and_then(|r| r.try_get(0).ok()).ok_or_else(|| {
                answered(PollError {
                    class: ErrorClass::Query,
                    message: "the monitoring query returned no row".into(),
                })
            })?;
            let raw = query::parse(&json).map_err(|message| {
                answered(PollError {
                    class: ErrorClass::Query,
                    message,
                })
            })?;
            Ok((pools::to_poll_data(&s.name, &raw), raw.sees_all_sessions))
        }
    }
}

/// Whether the connection must be dropped and opened again after this error. A server-side
/// timeout keeps it: the session is still usable after `statement_timeout` cancels a slow poll,
/// and giving up the slot on an overloaded server may mean being refused (53300) on the way
/// back in. No answer at all (`answered` false) means the connection itself is suspect.
fn needs_reconnect(conn: &PgConn, err: &PollError, answered: bool) -> bool {
    use crate::model::ErrorClass::*;
    !answered
        || conn.wire.client.is_closed()
        || matches!(err.class, Network | CannotConnectNow | Tls)
}

/// A PostgreSQL target as a [`PollingSource`].
pub struct PgSource {
    settings: PgSettings,
    tls: TlsSetup,
}

impl PgSource {
    /// Prepares the TLS set-up of `settings`; connecting happens in the poll loop.
    pub fn new(settings: PgSettings) -> PgSource {
        let tls = TlsSetup::new(&settings.conn, &settings.name);
        PgSource { settings, tls }
    }
}

impl PollingSource for PgSource {
    type Conn = PgConn;

    async fn connect(&self) -> Result<Session<PgConn>, PollError> {
        let conn = connect(&self.settings, self.tls.connector()?).await?;
        Ok(Session {
            peer: format!("PostgreSQL {}", conn.server_version),
            conn,
        })
    }

    async fn poll(&self, conn: &mut PgConn) -> Result<PollData, PollFailure> {
        match poll_answered(conn, &self.settings).await {
            Ok((data, sees_all_sessions)) => {
                warn_visibility(conn, &self.settings.name, sees_all_sessions);
                Ok(data)
            }
            Err((error, answered)) => Err(PollFailure {
                keep_session: !needs_reconnect(conn, &error, answered),
                error,
            }),
        }
    }
}

/// Warns, once per session, that the monitoring role lacks `pg_monitor`.
fn warn_visibility(conn: &mut PgConn, target: &str, sees_all_sessions: bool) {
    if !sees_all_sessions && !conn.warned_visibility {
        tracing::warn!(
            target_name = target,
            "the monitoring role lacks pg_monitor: other roles' sessions are counted with state \"unknown\" and no ages; GRANT pg_monitor TO it"
        );
    }
    conn.warned_visibility = !sees_all_sessions;
}
