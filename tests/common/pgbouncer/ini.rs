//! PgBouncer's configuration file, written the way each version wants it: the per-database
//! reserve pool is `reserve_pool` in 1.18 and `reserve_pool_size` in 1.24, while the global key
//! is `reserve_pool_size` in both (a global `reserve_pool` is a fatal error).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

/// A PgBouncer version, major and minor (1.18, 1.24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// 1.
    pub major: u32,
    /// 18, 24.
    pub minor: u32,
}

impl Version {
    /// Parses the first line of `pgbouncer --version`: `PgBouncer 1.24.1`.
    pub fn parse(version_output: &str) -> Option<(Version, String)> {
        let full = version_output
            .lines()
            .next()?
            .strip_prefix("PgBouncer ")?
            .trim()
            .to_owned();
        let mut parts = full.split('.').map(str::parse::<u32>);
        let major = parts.next()?.ok()?;
        let minor = parts.next()?.ok()?;
        Some((Version { major, minor }, full))
    }

    /// The key of a database entry's reserve pool: `reserve_pool` before 1.24 (which rejects
    /// `reserve_pool_size` there), `reserve_pool_size` from 1.24 on.
    pub fn database_reserve_key(self) -> &'static str {
        if self
            >= (Version {
                major: 1,
                minor: 24,
            })
        {
            "reserve_pool_size"
        } else {
            "reserve_pool"
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One entry of `[databases]`: a name clients connect to, served by a database of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// The name clients use (and `SHOW POOLS` shows).
    pub name: String,
    /// The database on the PostgreSQL cluster.
    pub dbname: String,
    /// `pool_size` (else `default_pool_size` applies).
    pub pool_size: Option<u32>,
    /// The per-database reserve pool (`reserve_pool` / `reserve_pool_size` by version).
    pub reserve_pool: Option<u32>,
    /// `max_db_connections`.
    pub max_db_connections: Option<u32>,
    /// `pool_mode` for this database (else the global one).
    pub pool_mode: Option<PoolMode>,
}

impl Database {
    /// An entry `name` for the cluster's database `dbname`, everything else from the globals.
    pub fn new(name: &str, dbname: &str) -> Database {
        Database {
            name: name.to_owned(),
            dbname: dbname.to_owned(),
            pool_size: None,
            reserve_pool: None,
            max_db_connections: None,
            pool_mode: None,
        }
    }

    /// With `pool_size`.
    pub fn pool_size(mut self, n: u32) -> Database {
        self.pool_size = Some(n);
        self
    }

    /// With a reserve pool of `n`.
    pub fn reserve_pool(mut self, n: u32) -> Database {
        self.reserve_pool = Some(n);
        self
    }

    /// With `max_db_connections`.
    pub fn max_db_connections(mut self, n: u32) -> Database {
        self.max_db_connections = Some(n);
        self
    }

    /// With its own `pool_mode`.
    pub fn pool_mode(mut self, mode: PoolMode) -> Database {
        self.pool_mode = Some(mode);
        self
    }
}

/// `pool_mode`: when a server connection goes back to the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolMode {
    /// When the client disconnects (PgBouncer's default).
    #[default]
    Session,
    /// When the transaction ends.
    Transaction,
    /// After each statement.
    Statement,
}

impl PoolMode {
    /// The value in the configuration file and `SHOW POOLS`.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        }
    }
}

/// Everything in one PgBouncer configuration file, rendered by [`Ini::render`].
#[derive(Debug, Clone)]
pub struct Ini {
    /// The PostgreSQL cluster's TCP port (on 127.0.0.1).
    pub server_port: u16,
    /// The port PgBouncer listens on (127.0.0.1).
    pub listen_port: u16,
    /// `[databases]`.
    pub databases: Vec<Database>,
    /// `[pgbouncer]` settings by key, written after the fixed ones (listen address and port,
    /// no Unix socket, SCRAM auth with `auth_file`, `logfile`); a key here replaces the fixed
    /// one of the same name.
    pub settings: BTreeMap<String, String>,
    /// `auth_file`.
    pub auth_file: PathBuf,
    /// `logfile`.
    pub logfile: PathBuf,
}

impl Ini {
    /// The file's text for PgBouncer `version`.
    pub fn render(&self, version: Version) -> String {
        let mut text = String::from("; Written by the poolwatch test harness.\n[databases]\n");
        for db in &self.databases {
            let _ = write!(
                text,
                "{} = host=127.0.0.1 port={} dbname={}",
                db.name, self.server_port, db.dbname
            );
            let optional = [
                ("pool_size", db.pool_size),
                (version.database_reserve_key(), db.reserve_pool),
                ("max_db_connections", db.max_db_connections),
            ];
            for (key, value) in optional {
                if let Some(value) = value {
                    let _ = write!(text, " {key}={value}");
                }
            }
            if let Some(mode) = db.pool_mode {
                let _ = write!(text, " pool_mode={}", mode.as_str());
            }
            text.push('\n');
        }
        let mut settings: BTreeMap<&str, String> = BTreeMap::from([
            ("listen_addr", "127.0.0.1".to_owned()),
            ("listen_port", self.listen_port.to_string()),
            ("unix_socket_dir", String::new()),
            ("auth_type", "scram-sha-256".to_owned()),
            ("auth_file", self.auth_file.display().to_string()),
            ("logfile", self.logfile.display().to_string()),
        ]);
        for (key, value) in &self.settings {
            settings.insert(key, value.clone());
        }
        text.push_str("\n[pgbouncer]\n");
        for (key, value) in settings {
            let _ = writeln!(text, "{key} = {value}");
        }
        text
    }
}
