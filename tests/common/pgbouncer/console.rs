//! PgBouncer's admin console (the virtual database `pgbouncer`): `SHOW` results read by column
//! name over the simple query protocol, the only one the console speaks.

use std::collections::BTreeMap;

use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

/// One row of a `SHOW` result: column name to text value (`None` for SQL NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowRow(pub BTreeMap<String, Option<String>>);

impl ShowRow {
    /// The text of `column`; panics naming the columns there are when it is missing.
    pub fn text(&self, column: &str) -> &str {
        match self.0.get(column) {
            Some(value) => value.as_deref().unwrap_or(""),
            None => panic!(
                "no column {column:?}; the columns are {:?}",
                self.0.keys().collect::<Vec<_>>()
            ),
        }
    }

    /// The integer in `column`; panics when it is missing or not an integer.
    pub fn int(&self, column: &str) -> i64 {
        let text = self.text(column);
        text.parse()
            .unwrap_or_else(|e| panic!("column {column:?} = {text:?}: {e}"))
    }

    /// Whether the row has `column`.
    pub fn has(&self, column: &str) -> bool {
        self.0.contains_key(column)
    }
}

/// A `SHOW` result: its column names in order, and its rows.
#[derive(Debug, Clone, Default)]
pub struct ShowResult {
    /// Column names as the console sent them.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<ShowRow>,
}

impl ShowResult {
    /// The first row whose `column` equals `value`.
    pub fn find(&self, column: &str, value: &str) -> Option<&ShowRow> {
        self.rows.iter().find(|row| row.text(column) == value)
    }
}

/// A session on the admin console.
pub struct Console {
    client: Client,
    /// Drives the connection; ends once the client is dropped and the socket closed.
    driver: JoinHandle<()>,
    /// The session's local TCP port, which PgBouncer's log names it by.
    local_port: u16,
}

impl Console {
    /// Connects to `url` (a `postgresql://USER:PASSWORD@127.0.0.1:PORT/pgbouncer` URL).
    pub async fn connect(url: &str) -> Result<Console, ConsoleError> {
        let config: Config = url.parse()?;
        let port = config.get_ports().first().copied().unwrap_or(5432);
        // A socket of our own (rather than `tokio_postgres::connect`) to know its local port.
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let local_port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
        let (client, connection) = config.connect_raw(stream, NoTls).await?;
        let driver = tokio::spawn(async move {
            // Ends with the session; an error here is PgBouncer going away, which tests provoke.
            let _ = connection.await;
        });
        Ok(Console {
            client,
            driver,
            local_port,
        })
    }

    /// The session's local TCP port (PgBouncer's log shows the client as `user@127.0.0.1:PORT`).
    pub fn local_port(&self) -> u16 {
        self.local_port
    }

    /// Ends the session (Terminate) and returns once its socket is closed on this side.
    pub async fn close(self) {
        drop(self.client);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.driver).await;
    }

    /// Runs one console command (`SHOW POOLS`, `RELOAD`, ...) and returns what it answered.
    pub async fn query(&self, command: &str) -> Result<ShowResult, ConsoleError> {
        let messages = self.client.simple_query(command).await?;
        let mut result = ShowResult::default();
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(columns) => {
                    result.columns = columns.iter().map(|c| c.name().to_owned()).collect();
                }
                SimpleQueryMessage::Row(row) => {
                    let values = row
                        .columns()
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.name().to_owned(), row.get(i).map(str::to_owned)))
                        .collect();
                    result.rows.push(ShowRow(values));
                }
                _ => {}
            }
        }
        Ok(result)
    }
}

/// Why a console session or command failed.
#[derive(Debug)]
pub enum ConsoleError {
    /// No TCP connection (PgBouncer not running, port closed).
    Connect(std::io::Error),
    /// PgBouncer refused the login or the command, or the session broke.
    Postgres(tokio_postgres::Error),
}

impl ConsoleError {
    /// PgBouncer's message for a refusal (e.g. `admin access needed`), else the error's text.
    pub fn message(&self) -> String {
        match self {
            ConsoleError::Connect(e) => e.to_string(),
            ConsoleError::Postgres(e) => super::error_text(e),
        }
    }
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl From<std::io::Error> for ConsoleError {
    fn from(e: std::io::Error) -> Self {
        ConsoleError::Connect(e)
    }
}

impl From<tokio_postgres::Error> for ConsoleError {
    fn from(e: tokio_postgres::Error) -> Self {
        ConsoleError::Postgres(e)
    }
}
