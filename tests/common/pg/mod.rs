//! Throwaway PostgreSQL clusters: one data directory, port and socket directory each.

pub mod hold;
pub mod install;
pub mod setup;
pub mod ssl;

// Re-exports for test crates; each uses only some of them.
#[allow(unused_imports)]
pub use hold::{connect, percent_encode, Conn, ConnectionHold, HARNESS_APPLICATION_NAME};
pub use ssl::SslFiles;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio_postgres::{Client, Row};

use setup::{hand_over, pg_command, run, run_async, SUPERUSER};

/// How a [`PgCluster`] is configured when it starts.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `max_connections`. Default 20.
    pub max_connections: u32,
    /// `superuser_reserved_connections`. Default 3 (PostgreSQL's own default).
    pub superuser_reserved_connections: u32,
    /// `reserved_connections` (slots for `pg_use_reserved_connections`). PostgreSQL 16+ only:
    /// on an older server the start fails, so tests check `setup::major_version()` first.
    /// Default `None` (unset).
    pub reserved_connections: Option<u32>,
    /// Serve TLS with a throwaway CA ([`PgCluster::ca_file`]). Default off.
    pub ssl: bool,
    /// Extra `postgresql.conf` lines, written verbatim after the harness's own settings.
    pub extra_conf: Vec<String>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 20,
            superuser_reserved_connections: 3,
            reserved_connections: None,
            ssl: false,
            extra_conf: Vec::new(),
        }
    }
}

/// `pg_hba.conf`: the superuser is trusted, every other role proves a SCRAM password.
const PG_HBA: &str = "\
local all postgres               trust
host  all postgres 127.0.0.1/32  trust
local all all                    scram-sha-256
host  all all      127.0.0.1/32  scram-sha-256
";

/// A PostgreSQL server of its own, listening on 127.0.0.1 and a private socket directory.
///
/// Dropping it stops the server (`pg_ctl stop -m immediate`) and removes its directory; when
/// the test is panicking, the server log's tail is printed first.
pub struct PgCluster {
    /// Holds data, socket dir, log and TLS files; removed on drop.
    dir: TempDir,
    /// The TCP port, kept across [`PgCluster::stop`] / [`PgCluster::start_again`].
    port: u16,
    /// Settings written to `poolwatch.conf` (included by `postgresql.conf`), by name.
    settings: Mutex<BTreeMap<String, String>>,
    /// Verbatim lines from [`PgOptions::extra_conf`].
    extra_conf: Vec<String>,
    /// Passwords of roles made by [`PgCluster::create_role`], used when connecting as them.
    passwords: Mutex<HashMap<String, String>>,
    /// TLS files when started with `ssl: true`.
    ssl: Option<SslFiles>,
}

impl PgCluster {
    /// Copies the `initdb` template, configures and starts a cluster; panics (with the server
    /// log) if it cannot start.
    pub async fn start(options: PgOptions) -> PgCluster {
        Self::try_start(options)
            .await
            .unwrap_or_else(|e| panic!("PgCluster::start: {e}"))
    }

    /// Like [`PgCluster::start`], returning the failure instead of panicking.
    pub async fn try_start(options: PgOptions) -> Result<PgCluster, String> {
        if options.reserved_connections.is_some() && setup::major_version() < 16 {
            return Err(format!(
                "reserved_connections needs PostgreSQL 16+, this is {}",
                setup::major_version()
            ));
        }
        setup::sweep_stale_clusters();
        let template = tokio::task::spawn_blocking(setup::template_data_dir)
            .await
            .map_err(|e| format!("template: {e}"))?;
        let prefix = format!("{}{}-", setup::CLUSTER_DIR_PREFIX, std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        hand_over(dir.path())?;
        let mut copy = Command::new("cp");
        copy.arg("-a").arg(template).arg(dir.path().join("data"));
        run_async(copy, "copy template data dir").await?;
        let socket_dir = dir.path().join("sock");
        std::fs::create_dir(&socket_dir).map_err(|e| format!("mkdir sock: {e}"))?;
        hand_over(&socket_dir)?;
        let ssl = if options.ssl {
            Some(ssl::generate(&dir.path().join("ssl"))?)
        } else {
            None
        };

        let mut settings = BTreeMap::new();
        let mut set = |k: &str, v: String| settings.insert(k.to_owned(), v);
        set("listen_addresses", "127.0.0.1".into());
        set("unix_socket_directories", socket_dir.display().to_string());
        set("max_connections", options.max_connections.to_string());
        set(
            "superuser_reserved_connections",
            options.superuser_reserved_connections.to_string(),
        );
        if let Some(n) = options.reserved_connections {
            set("reserved_connections", n.to_string());
        }
        set("password_encryption", "scram-sha-256".into());
        set("shared_buffers", "16MB".into());
        set("fsync", "off".into());
        set("synchronous_commit", "off".into());
        set("full_page_writes", "off".into());
        set("logging_collector", "off".into());
        set("lc_messages", "C".into());
        set("log_line_prefix", "%m [%p] %q%u@%d/%a ".into());
        if let Some(files) = &ssl {
            set("ssl", "on".into());
            set("ssl_cert_file", files.server_cert.display().to_string());
            set("ssl_key_file", files.server_key.display().to_string());
        }
        let hba = dir.path().join("data/pg_hba.conf");
        std::fs::write(&hba, PG_HBA).map_err(|e| format!("write pg_hba.conf: {e}"))?;
        hand_over(&hba)?;

        let mut cluster = PgCluster {
            dir,
            port: 0,
            settings: Mutex::new(settings),
            extra_conf: options.extra_conf,
            passwords: Mutex::default(),
            ssl,
        };
        // The port was free when chosen, but another process may take it before the server
        // binds it: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            cluster.port = setup::free_port();
            cluster.set_conf("port", cluster.port);
            match cluster.pg_ctl_start().await {
                Ok(()) => return Ok(cluster),
                Err(e) if cluster.server_log().contains("Address already in use") => last_error = e,
                Err(e) => return Err(e),
            }
        }
        Err(last_error)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The name of the superuser (trusted on 127.0.0.1 and the socket, no password).
    pub fn superuser_name(&self) -> &'static str {
        SUPERUSER
    }

    /// The server's major version, e.g. 15.
    pub fn major_version(&self) -> u32 {
        setup::major_version()
    }

    /// `postgresql://USER@127.0.0.1:PORT/DB`, no password.
    pub fn url(&self, user: &str, db: &str) -> String {
        format!(
            "postgresql://{}@127.0.0.1:{}/{}",
            percent_encode(user),
            self.port,
            percent_encode(db)
        )
    }

    /// `postgresql://USER:PASSWORD@127.0.0.1:PORT/DB`.
    pub fn url_with_password(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "postgresql://{}:{}@127.0.0.1:{}/{}",
            percent_encode(user),
            percent_encode(password),
            self.port,
            percent_encode(db)
        )
    }

    /// The URL [`PgCluster::connect`] uses: with the password of a role made by
    /// [`PgCluster::create_role`], otherwise without one.
    pub fn url_for(&self, user: &str, db: &str) -> String {
        match self.passwords.lock().expect("passwords").get(user) {
            Some(password) => self.url_with_password(user, password, db),
            None => self.url(user, db),
        }
    }

    /// The password of a role made by [`PgCluster::create_role`].
    pub fn password_of(&self, user: &str) -> Option<String> {
        self.passwords.lock().expect("passwords").get(user).cloned()
    }

    /// The private directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The CA certificate to verify the server with (`sslrootcert`), when started with TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ssl.as_ref().map(|files| files.ca_cert.as_path())
    }

    /// Everything the server has logged so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Connects as `user` to `db` (with the password of a role made by
    /// [`PgCluster::create_role`]), as application `poolwatch-test-harness`.
    ///
    /// The session occupies a slot until the client is dropped, and for a few milliseconds
    /// after: use [`PgCluster::open`] and [`Conn::close`] where that matters.
    pub async fn connect(&self, user: &str, db: &str) -> Result<Client, tokio_postgres::Error> {
        Ok(self.open(user, db).await?.client)
    }

    /// Like [`PgCluster::connect`], returning a [`Conn`] whose `close` waits for the server
    /// to give the slot back.
    pub async fn open(&self, user: &str, db: &str) -> Result<Conn, tokio_postgres::Error> {
        Conn::open(
            &hold::with_application_name(&self.url_for(user, db), HARNESS_APPLICATION_NAME),
            true,
        )
        .await
    }

    /// A fresh superuser connection to database `postgres`; panics if refused.
    pub async fn superuser_client(&self) -> Client {
        self.connect(SUPERUSER, "postgres")
            .await
            .unwrap_or_else(|e| panic!("superuser connection to port {}: {e:?}", self.port))
    }

    /// Runs `sql` (one or more statements) as the superuser on a connection of its own, and
    /// returns once that connection's slot is free again.
    pub async fn try_exec(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        let conn = self.open(SUPERUSER, "postgres").await?;
        let result = conn.client.batch_execute(sql).await;
        conn.close().await;
        result
    }

    /// Runs `sql` as the superuser; panics with the statement and error if it fails.
    pub async fn exec(&self, sql: &str) {
        if let Err(e) = self.try_exec(sql).await {
            panic!("exec {sql:?} on port {}: {e:?}", self.port);
        }
    }

    /// Runs a query as the superuser and returns its rows (slot freed as with `exec`);
    /// panics if it fails.
    pub async fn query(&self, sql: &str) -> Vec<Row> {
        let conn = self
            .open(SUPERUSER, "postgres")
            .await
            .unwrap_or_else(|e| panic!("connect: {e:?}"));
        let rows = conn
            .client
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("query {sql:?}: {e:?}"));
        conn.close().await;
        rows
    }

    /// Creates a login role with a SCRAM password and an optional `CONNECTION LIMIT`; the
    /// password is remembered for [`PgCluster::connect`] and [`PgCluster::hold_connections`].
    pub async fn create_role(&self, name: &str, password: &str, connection_limit: Option<i32>) {
        let limit = connection_limit
            .map(|n| format!(" CONNECTION LIMIT {n}"))
            .unwrap_or_default();
        let sql = format!(
            "CREATE ROLE {} LOGIN PASSWORD {}{limit}",
            quote_ident(name),
            quote_literal(password)
        );
        self.exec(&sql).await;
        self.passwords
            .lock()
            .expect("passwords")
            .insert(name.to_owned(), password.to_owned());
    }

    /// Creates a database with an optional `CONNECTION LIMIT`, owned by the superuser.
    pub async fn create_database(&self, name: &str, connection_limit: Option<i32>) {
        let limit = connection_limit
            .map(|n| format!(" CONNECTION LIMIT {n}"))
            .unwrap_or_default();
        self.exec(&format!("CREATE DATABASE {}{limit}", quote_ident(name)))
            .await;
    }

    /// Opens `n` connections as `user` to database `postgres` and keeps them open until the
    /// hold is dropped. Fails with the first refused connection (e.g. SQLSTATE 53300).
    pub async fn hold_connections(
        &self,
        user: &str,
        n: usize,
        application_name: &str,
    ) -> Result<ConnectionHold, tokio_postgres::Error> {
        self.hold_connections_in(user, "postgres", n, application_name)
            .await
    }

    /// Like [`PgCluster::hold_connections`], to database `db`.
    pub async fn hold_connections_in(
        &self,
        user: &str,
        db: &str,
        n: usize,
        application_name: &str,
    ) -> Result<ConnectionHold, tokio_postgres::Error> {
        ConnectionHold::open(&self.url_for(user, db), n, application_name, true).await
    }

    /// Sets `key = 'value'` in the cluster's configuration file (quoted and escaped here).
    /// Takes effect on [`PgCluster::restart`] (or [`PgCluster::reload`] for reloadable keys).
    pub fn set_conf(&self, key: &str, value: impl std::fmt::Display) {
        let mut settings = self.settings.lock().expect("settings");
        settings.insert(key.to_owned(), value.to_string());
        let mut text = String::from("# Written by the poolwatch test harness.\n");
        for (k, v) in settings.iter() {
            text.push_str(&format!("{k} = {}\n", quote_literal(v)));
        }
        for line in &self.extra_conf {
            text.push_str(line);
            text.push('\n');
        }
        let path = self.data_dir().join("poolwatch.conf");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        hand_over(&path).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Stops the server (`-m fast`: sessions are disconnected) and starts it again on the same
    /// port with the current configuration. Panics with the server log on failure.
    pub async fn restart(&self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Re-reads the configuration files without a restart (`pg_ctl reload`).
    pub async fn reload(&self) {
        let mut reload = pg_command("pg_ctl", self.dir.path());
        reload.arg("-D").arg(self.data_dir()).arg("reload");
        run_async(reload, "pg_ctl reload")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Stops the server with `pg_ctl stop -m fast` and waits until it is down.
    pub async fn stop(&self) {
        let mut stop = pg_command("pg_ctl", self.dir.path());
        stop.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        if let Err(e) = run_async(stop, "pg_ctl stop").await {
            panic!("{e}\n--- server log\n{}", self.server_log());
        }
    }

    /// Starts a stopped server again: same data, same port. Panics with the log on failure.
    pub async fn start_again(&self) {
        if let Err(e) = self.pg_ctl_start().await {
            panic!("{e}");
        }
    }

    async fn pg_ctl_start(&self) -> Result<(), String> {
        let started = Instant::now();
        let mut start = pg_command("pg_ctl", self.dir.path());
        start
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path());
        start.args(["-w", "-t", "60", "start"]);
        run_async(start, "pg_ctl start")
            .await
            .map_err(|e| format!("{e}\n--- server log\n{}", self.server_log()))?;
        // pg_ctl -w waits for the socket; make sure TCP answers too before handing it over.
        let ready = crate::common::poll_until(Duration::from_secs(20), || async {
            self.open(SUPERUSER, "postgres").await.ok()
        })
        .await;
        match ready {
            Some(probe) => {
                probe.close().await;
                Ok(())
            }
            None => Err(format!(
                "server on port {} not accepting TCP connections {:?} after start\n--- server log\n{}",
                self.port,
                started.elapsed(),
                self.server_log()
            )),
        }
    }

    /// Whether the server is running (`pg_ctl status`).
    pub async fn is_running(&self) -> bool {
        let mut status = pg_command("pg_ctl", self.dir.path());
        status.arg("-D").arg(self.data_dir()).arg("status");
        run_async(status, "pg_ctl status").await.is_ok()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.server_log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- PostgreSQL log tail (port {})", self.port);
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
        if self.data_dir().join("postmaster.pid").exists() {
            let mut stop = pg_command("pg_ctl", self.dir.path());
            stop.arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "-t", "30", "stop"]);
            if let Err(e) = run(&mut stop, "pg_ctl stop -m immediate") {
                eprintln!("dropping PgCluster: {e}");
            }
        }
    }
}

/// Quotes an SQL identifier: `"name"` with inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL (and `postgresql.conf`) string literal: `'text'` with inner quotes doubled.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
