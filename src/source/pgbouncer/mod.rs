//! The PgBouncer source: one long-lived session with PgBouncer's admin console (the virtual
//! database `pgbouncer`, as a user in `admin_users` or `stats_users`), speaking only what the
//! console understands: the simple query protocol and no startup options beyond the user,
//! database, `application_name` and `client_encoding`. Each poll sends `SHOW POOLS`,
//! `SHOW DATABASES`, `SHOW CONFIG`, `SHOW LISTS` and `SHOW USERS` pipelined (one round trip),
//! and reads their answers by column name ([`columns`]) into pools ([`pools`]).
//!
//! When PgBouncer is full it refuses new clients with `no more connections allowed
//! (max_client_conn)`: poolwatch then reports it *saturated*, not down; and since it keeps its
//! session, it still sees PgBouncer while it is full.

pub mod columns;
pub mod config;
pub mod pools;

use super::pgwire::{self, classify, TlsSetup, Wire};
use super::{PollFailure, PollingSource, Session};
use crate::model::{ErrorClass, PollData, PollError};
use columns::Table;
use config::BouncerSettings;
use pools::Answers;
use std::time::Duration;
use tokio_postgres_rustls::MakeRustlsConnect;

/// An open console session.
pub struct Console {
    wire: Wire,
    /// `SHOW VERSION` as answered at start-up, e.g. `PgBouncer 1.24.1`.
    version: String,
}

/// A PgBouncer target as a [`PollingSource`].
pub struct BouncerSource {
    settings: BouncerSettings,
    tls: TlsSetup,
}

impl BouncerSource {
    /// Prepares the TLS set-up of `settings`; connecting happens in the poll loop.
    pub fn new(settings: BouncerSettings) -> BouncerSource {
        let tls = TlsSetup::new(&settings.conn, &settings.name);
        BouncerSource { settings, tls }
    }
}

impl BouncerSettings {
    /// How `check-config` shows the target.
    pub fn describe(&self) -> String {
        format!(
            "{} (admin console), sslmode {}, poll_timeout {}",
            self.conn.endpoint,
            self.conn.sslmode.as_str(),
            crate::timefmt::human(self.poll_timeout)
        )
    }
}

/// Opens a console session and reads PgBouncer's version.
pub async fn connect(
    s: &BouncerSettings,
    tls: Option<&MakeRustlsConnect>,
) -> Result<Console, PollError> {
    let c = &s.conn;
    let limit = c.connect_timeout + Duration::from_millis(500);
    let cfg = pgwire::base_config(&c.pg, c.sslmode, c.connect_timeout);
    let wire = pgwire::open(&cfg, tls, limit).await?;
    let version = match tokio::time::timeout(limit, wire.client.simple_query("SHOW VERSION")).await
    {
        Err(_) => return Err(classify::timed_out("SHOW VERSION", limit)),
        Ok(Err(e)) => return Err(classify::classify(&e)),
        Ok(Ok(msgs)) => pgwire::first_cell(&msgs).unwrap_or_else(|| "PgBouncer".into()),
    };
    Ok(Console { wire, version })
}

/// Reads every `SHOW` answer a poll needs, pipelined on the one session.
async fn read(console: &Console) -> Result<Answers, tokio_postgres::Error> {
    let c = &console.wire.client;
    let (pools, databases, config, lists, users) = tokio::try_join!(
        c.simple_query("SHOW POOLS"),
        c.simple_query("SHOW DATABASES"),
        c.simple_query("SHOW CONFIG"),
        c.simple_query("SHOW LISTS"),
        c.simple_query("SHOW USERS"),
    )?;
    Ok(Answers {
        version: console.version.clone(),
        pools: Table::from_messages("SHOW POOLS", &pools),
        databases: Table::from_messages("SHOW DATABASES", &databases),
        config: Table::from_messages("SHOW CONFIG", &config),
        lists: Table::from_messages("SHOW LISTS", &lists),
        users: Table::from_messages("SHOW USERS", &users),
    })
}

/// Polls once on an open session; on failure also says whether the session is still usable.
pub async fn poll(console: &Console, s: &BouncerSettings) -> Result<PollData, PollFailure> {
    let limit = s.poll_timeout;
    let answers = match tokio::time::timeout(limit, read(console)).await {
        // No answer: the session itself is suspect.
        Err(_) => {
            return Err(PollFailure {
                error: classify::timed_out("the SHOW commands", limit),
                keep_session: false,
            })
        }
        Ok(Err(e)) => {
            let error = classify::classify(&e);
            let keep_session = !console.wire.client.is_closed()
                && !matches!(error.class, ErrorClass::Network | ErrorClass::Tls);
            return Err(PollFailure {
                error,
                keep_session,
            });
        }
        Ok(Ok(a)) => a,
    };
    pools::to_poll_data(&s.name, &answers).map_err(|message| PollFailure {
        error: PollError {
            class: ErrorClass::Query,
            message,
        },
        keep_session: true,
    })
}

impl PollingSource for BouncerSource {
    type Conn = Console;

    async fn connect(&self) -> Result<Session<Console>, PollError> {
        let console = connect(&self.settings, self.tls.connector()?).await?;
        Ok(Session {
            peer: console.version.clone(),
            conn: console,
        })
    }

    async fn poll(&self, console: &mut Console) -> Result<PollData, PollFailure> {
        poll(console, &self.settings).await
    }
}
