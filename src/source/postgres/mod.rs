//! The PostgreSQL source: one long-lived connection per target, one round trip per poll, and a
//! reconnect loop that tells a saturated server (53300) from a down one.
//!
//! The connection is opened with `application_name = 'poolwatch'`, a `statement_timeout`, and
//! `default_transaction_read_only`. It is not counted as load, but the slot it holds is taken
//! out of the capacity of the pools it belongs to (see [`query::POLL_SQL`]). It is never
//! re-opened per poll: when the server is full, a monitor that needs a new connection for each
//! poll goes blind exactly when it is needed.

pub mod backoff;
pub mod classify;
pub mod query;
pub mod tls;

use super::{EventLog, SourceMetrics};
use crate::config::target::TargetSettings;
use crate::model::{PollData, PollError, TargetReport};
use backoff::Backoff;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

/// An open monitoring connection.
pub struct PgConn {
    client: Client,
    /// The monitoring query, prepared once per connection: each poll is then one Bind/Execute
    /// round trip with no parsing or planning on the server.
    statement: Statement,
    driver: JoinHandle<()>,
    /// `server_version` as reported at start-up.
    pub server_version: String,
}

impl Drop for PgConn {
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

fn session_config(s: &TargetSettings) -> tokio_postgres::Config {
    let mut cfg = s.pg.clone();
    cfg.application_name("poolwatch");
    cfg.connect_timeout(s.connect_timeout);
    // A long-lived connection must notice a peer that vanished without a reset.
    cfg.keepalives(true);
    cfg.keepalives_idle(Duration::from_secs(30));
    // poolwatch's session settings come after any `options` from the URL, so they win.
    let ours = format!(
        "-c statement_timeout={} -c default_transaction_read_only=on -c idle_in_transaction_session_timeout=60000",
        s.statement_timeout.as_millis().max(1)
    );
    match s.pg.get_options() {
        Some(user) if !user.trim().is_empty() => cfg.options(format!("{user} {ours}")),
        _ => cfg.options(ours),
    };
    cfg.ssl_mode(match s.sslmode {
        crate::config::schema::SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        crate::config::schema::SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    cfg
}

/// Opens the monitoring connection.
pub async fn connect(
    s: &TargetSettings,
    tls: Option<&MakeRustlsConnect>,
) -> Result<PgConn, PollError> {
    let cfg = session_config(s);
    // tokio-postgres applies connect_timeout per host; this bounds the whole start-up too.
    let limit = s.connect_timeout + Duration::from_millis(500);
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
        Ok(Ok((client, driver))) => {
            let setup = async {
                let version = client.simple_query("SHOW server_version").await?;
                let statement = client.prepare(query::POLL_SQL).await?;
                Ok::<_, tokio_postgres::Error>((
                    first_cell(&version).unwrap_or_default(),
                    statement,
                ))
            };
            let (server_version, statement) = match tokio::time::timeout(limit, setup).await {
                Err(_) => return Err(classify::timed_out("preparing the monitoring query", limit)),
                Ok(Err(e)) => return Err(classify::classify(&e)),
                Ok(Ok(ok)) => ok,
            };
            Ok(PgConn {
                client,
                statement,
                driver,
                server_version,
            })
        }
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

fn first_cell(msgs: &[SimpleQueryMessage]) -> Option<String> {
    msgs.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    })
}

/// Runs the monitoring query once on an open connection.
pub async fn poll(conn: &PgConn, s: &TargetSettings) -> Result<PollData, PollError> {
    poll_answered(conn, s).await.map_err(|(e, _)| e)
}

/// [`poll`], also telling whether the server answered at all (`false`: no answer within
/// `statement_timeout` + 500 ms, so the connection itself is suspect).
async fn poll_answered(conn: &PgConn, s: &TargetSettings) -> Result<PollData, (PollError, bool)> {
    let limit = s.statement_timeout + Duration::from_millis(500);
    let query = conn.client.query_opt(&conn.statement, &[]);
    let answered = |e: PollError| (e, true);
    match tokio::time::timeout(limit, query).await {
        Err(_) => Err((classify::timed_out("the monitoring query", limit), false)),
        Ok(Err(e)) => Err(answered(classify::classify(&e))),
        Ok(Ok(row)) => {
            let json: String = row.and_then(|r| r.try_get(0).ok()).ok_or_else(|| {
                answered(PollError {
                    class: crate::model::ErrorClass::Query,
                    message: "the monitoring query returned no row".into(),
                })
            })?;
            query::parse(&s.name, &json).map_err(|message| {
                answered(PollError {
                    class: crate::model::ErrorClass::Query,
                    message,
                })
            })
        }
    }
}

/// Connects, polls once and disconnects: for `poolwatch snapshot`.
pub async fn poll_once(s: &TargetSettings) -> TargetReport {
    let at = SystemTime::now();
    let started = Instant::now();
    let outcome = async {
        let tls =
            tls::connector(s.sslmode, s.sslrootcert.as_deref()).map_err(|message| PollError {
                class: crate::model::ErrorClass::Tls,
                message,
            })?;
        let conn = connect(s, tls.as_ref()).await?;
        poll(&conn, s).await
    }
    .await;
    TargetReport {
        target: s.name.clone(),
        at,
        duration: started.elapsed(),
        outcome,
    }
}

/// Whether the connection must be dropped and opened again after this error. A server-side
/// timeout keeps it: the session is still usable after `statement_timeout` cancels a slow poll,
/// and giving up the slot on an overloaded server may mean being refused (53300) on the way
/// back in. No answer at all (`answered` false) means the connection itself is suspect.
fn needs_reconnect(conn: &PgConn, err: &PollError, answered: bool) -> bool {
    use crate::model::ErrorClass::*;
    !answered || conn.client.is_closed() || matches!(err.class, Network | CannotConnectNow | Tls)
}

/// The polling loop of one target: sends one report per interval until `shutdown` turns true.
pub async fn run(
    s: TargetSettings,
    metrics: SourceMetrics,
    reports: mpsc::Sender<TargetReport>,
    mut shutdown: watch::Receiver<bool>,
) {
    let tls = match tls::connector(s.sslmode, s.sslrootcert.as_deref()) {
        Ok(t) => t,
        Err(message) => {
            // Validation checked the file exists; it may still be unparsable.
            let err = PollError {
                class: crate::model::ErrorClass::Tls,
                message,
            };
            tracing::error!(target_name = %s.name, error = %err.message, "TLS set-up failed; target will report down");
            return report_forever(&s, err, reports, shutdown).await;
        }
    };
    let mut events = EventLog::default();
    let mut backoff = Backoff::new(
        s.interval.min(Duration::from_secs(1)),
        s.reconnect_max_backoff,
    );
    let mut conn: Option<PgConn> = None;
    let mut next_attempt = Instant::now();
    let mut last_error: Option<PollError> = None;
    let mut ticker = tokio::time::interval(s.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        let at = SystemTime::now();
        let started = Instant::now();
        // Connecting and polling give way to shutdown: a server that accepts and never answers
        // would otherwise hold up the daemon's exit for the whole connect_timeout.
        if conn.is_none() && Instant::now() >= next_attempt {
            let attempt = tokio::select! {
                r = connect(&s, tls.as_ref()) => r,
                _ = shutdown.changed() => break,
            };
            match attempt {
                Ok(c) => {
                    events.connected(&metrics, &s.name, &s.endpoint, &c.server_version);
                    backoff.reset();
                    conn = Some(c);
                }
                Err(e) => {
                    events.failed(&metrics, &s.name, &e);
                    next_attempt = Instant::now() + backoff.next(rand::random::<f64>());
                    last_error = Some(e);
                }
            }
        }
        let outcome = match &conn {
            Some(c) => match tokio::select! {
                r = poll_answered(c, &s) => r,
                _ = shutdown.changed() => break,
            } {
                Ok(data) => {
                    events.polled(&metrics, &s.name, started.elapsed().as_secs_f64());
                    events.check_visibility(&s.name, data.server.sees_all_sessions);
                    last_error = None;
                    Ok(data)
                }
                Err((e, answered)) => {
                    events.failed(&metrics, &s.name, &e);
                    events.failed_duration(&metrics, &s.name, started.elapsed().as_secs_f64());
                    if needs_reconnect(c, &e, answered) {
                        conn = None;
                        // Try again at the next tick: a dropped connection is usually a restart.
                        next_attempt = Instant::now();
                    }
                    last_error = Some(e.clone());
                    Err(e)
                }
            },
            None => Err(last_error.clone().unwrap_or_else(|| PollError {
                class: crate::model::ErrorClass::Network,
                message: "not connected yet".into(),
            })),
        };
        let report = TargetReport {
            target: s.name.clone(),
            at,
            duration: started.elapsed(),
            outcome,
        };
        if reports.send(report).await.is_err() {
            break;
        }
    }
}

/// For a target that can never be polled (unusable TLS material): keep reporting the error so
/// that it shows as down in metrics and alerts, until shutdown.
async fn report_forever(
    s: &TargetSettings,
    err: PollError,
    reports: mpsc::Sender<TargetReport>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(s.interval);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => return,
        }
        let report = TargetReport {
            target: s.name.clone(),
            at: SystemTime::now(),
            duration: Duration::ZERO,
            outcome: Err(err.clone()),
        };
        if reports.send(report).await.is_err() {
            return;
        }
    }
}
