//! A real PgBouncer in front of a [`PgCluster`]: its own configuration file (free port, SCRAM
//! secrets of the cluster's roles in its `auth_file`, pools and limits), settings changed and
//! applied with `RELOAD`, stopped, started again and killed, clients that hold server
//! connections, and the admin console read by column name.
//!
//! The version is `POOLWATCH_TEST_PGBOUNCER` (1.18: Debian's; 1.24: built into the cache by
//! `scripts/install-test-deps.sh`), else Debian's. When the tests run as root, PgBouncer runs as
//! the `postgres` system user (it refuses root).

pub mod auth;
pub mod clients;
pub mod console;
pub mod ini;
pub mod process;

#[allow(unused_imports)]
pub use auth::ADMIN_USER;
#[allow(unused_imports)]
pub use clients::{error_text, ClientHold, ClientState};
pub use console::{Console, ConsoleError, ShowResult, ShowRow};
pub use ini::{Database, PoolMode, Version};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;
use std::time::Duration;

use tempfile::TempDir;

use crate::common::pg::setup::{free_port, hand_over};
use crate::common::pg::{install, percent_encode, ssl, PgCluster, SslFiles};
use crate::common::poll_until;

/// How long PgBouncer may take to start, stop or answer.
const WAIT: Duration = Duration::from_secs(20);

/// How a [`PgBouncer`] is configured when it starts. Every user named here must be a role
/// made with [`PgCluster::create_role`]: its SCRAM secret is read from the cluster.
#[derive(Debug, Clone)]
pub struct PgBouncerOptions {
    /// `[databases]`. Default: `postgres` for the cluster's database `postgres`.
    pub databases: Vec<Database>,
    /// Roles that log in through PgBouncer (written to `auth_file`).
    pub users: Vec<String>,
    /// `stats_users` (may read `SHOW` on the console); also written to `auth_file`.
    pub stats_users: Vec<String>,
    /// `admin_users` besides [`ADMIN_USER`]; also written to `auth_file`.
    pub admin_users: Vec<String>,
    /// `pool_mode`. Default session.
    pub pool_mode: PoolMode,
    /// `default_pool_size`. Default 20 (PgBouncer's).
    pub default_pool_size: u32,
    /// `max_client_conn`. Default 100 (PgBouncer's).
    pub max_client_conn: u32,
    /// The global `reserve_pool_size`. Default 0 (PgBouncer's).
    pub reserve_pool_size: u32,
    /// More `[pgbouncer]` settings, by key; they replace the harness's own.
    pub settings: Vec<(String, String)>,
    /// Accept TLS from clients (`client_tls_sslmode = allow`) with a throwaway CA
    /// ([`PgBouncer::ca_file`]). Default off.
    pub tls: bool,
}

impl Default for PgBouncerOptions {
    fn default() -> Self {
        PgBouncerOptions {
            databases: vec![Database::new("postgres", "postgres")],
            users: Vec::new(),
            stats_users: Vec::new(),
            admin_users: Vec::new(),
            pool_mode: PoolMode::Session,
            default_pool_size: 20,
            max_client_conn: 100,
            reserve_pool_size: 0,
            settings: Vec::new(),
            tls: false,
        }
    }
}

/// A PgBouncer process of its own, listening on 127.0.0.1 only.
///
/// Dropping it kills the process and removes its directory; when the test is panicking, the
/// log's tail is printed first.
pub struct PgBouncer {
    /// Configuration, auth file, logs, TLS files.
    dir: TempDir,
    binary: PathBuf,
    version: Version,
    /// `1.24.1`.
    full_version: String,
    ini: Mutex<ini::Ini>,
    /// Passwords of the users in `auth_file`, for the URLs.
    passwords: HashMap<String, String>,
    child: Mutex<Option<Child>>,
    ssl: Option<SslFiles>,
}

impl PgBouncer {
    /// Writes the configuration and starts PgBouncer in front of `pg`; panics (with the log) if
    /// it cannot start.
    pub async fn start(pg: &PgCluster, options: PgBouncerOptions) -> PgBouncer {
        Self::try_start(pg, options)
            .await
            .unwrap_or_else(|e| panic!("PgBouncer::start: {e}"))
    }

    /// Like [`PgBouncer::start`], returning the failure instead of panicking.
    pub async fn try_start(pg: &PgCluster, options: PgBouncerOptions) -> Result<PgBouncer, String> {
        let binary = install::pgbouncer_binary();
        let (version, full_version) = process::binary_version(&binary)?;
        install::check_pgbouncer_version(&binary, &full_version);
        process::sweep_stale();
        let prefix = format!("{}{}-", process::DIR_PREFIX, std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        hand_over(dir.path())?;
        let passwords = auth::write_auth_file(pg, &options, &dir.path().join("users.txt")).await?;
        let ssl = if options.tls {
            Some(ssl::generate(&dir.path().join("ssl"))?)
        } else {
            None
        };
        let ini = ini::Ini {
            server_port: pg.port(),
            listen_port: 0,
            databases: options.databases.clone(),
            settings: settings(&options, ssl.as_ref()),
            auth_file: dir.path().join("users.txt"),
            logfile: dir.path().join("pgbouncer.log"),
        };
        let bouncer = PgBouncer {
            dir,
            binary,
            version,
            full_version,
            ini: Mutex::new(ini),
            passwords,
            child: Mutex::new(None),
            ssl,
        };
        // The port was free when chosen; another process may take it first: try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            bouncer.ini.lock().expect("ini").listen_port = free_port();
            bouncer.write_ini()?;
            match bouncer.spawn_and_wait().await {
                Ok(()) => return Ok(bouncer),
                Err(e) if bouncer.log().contains("Address already in use") => last_error = e,
                Err(e) => return Err(e),
            }
        }
        Err(last_error)
    }

    /// The version, e.g. 1.24.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The full version, e.g. `1.24.1`.
    pub fn full_version(&self) -> &str {
        &self.full_version
    }

    /// The TCP port on 127.0.0.1 (kept across stop and start).
    pub fn port(&self) -> u16 {
        self.ini.lock().expect("ini").listen_port
    }

    /// `postgresql://USER:PASSWORD@127.0.0.1:PORT/DB` for a user of `auth_file`.
    pub fn url(&self, user: &str, db: &str) -> String {
        let password = self
            .passwords
            .get(user)
            .unwrap_or_else(|| panic!("{user} is not a PgBouncer user of this harness"));
        format!(
            "postgresql://{}:{}@127.0.0.1:{}/{}",
            percent_encode(user),
            percent_encode(password),
            self.port(),
            percent_encode(db)
        )
    }

    /// The admin console's URL (database `pgbouncer`) for `user`.
    pub fn console_url(&self, user: &str) -> String {
        self.url(user, "pgbouncer")
    }

    /// The password of a user of `auth_file`.
    pub fn password(&self, user: &str) -> Option<&str> {
        self.passwords.get(user).map(String::as_str)
    }

    /// The CA certificate clients verify PgBouncer with, when started with `tls`.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ssl.as_ref().map(|files| files.ca_cert.as_path())
    }

    /// Everything PgBouncer has logged so far (its log file, then its standard error).
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name));
        let mut text = read("pgbouncer.log").unwrap_or_default();
        text.push_str(&read("stderr.log").unwrap_or_default());
        text
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        let mut child = self.child.lock().expect("child");
        let running = matches!(child.as_mut().map(Child::try_wait), Some(Ok(None)));
        running.then(|| child.as_ref().map(Child::id)).flatten()
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// Sets a `[pgbouncer]` setting in the file; applied by [`PgBouncer::reload`] (or a start).
    pub fn set(&self, key: &str, value: impl std::fmt::Display) {
        self.ini
            .lock()
            .expect("ini")
            .settings
            .insert(key.to_owned(), value.to_string());
        self.write_ini().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Adds or replaces (by name) a `[databases]` entry in the file; applied by
    /// [`PgBouncer::reload`].
    pub fn set_database(&self, database: Database) {
        {
            let mut ini = self.ini.lock().expect("ini");
            match ini.databases.iter_mut().find(|d| d.name == database.name) {
                Some(entry) => *entry = database,
                None => ini.databases.push(database),
            }
        }
        self.write_ini().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Removes the `[databases]` entry `name` from the file (panics if there is none); applied
    /// by [`PgBouncer::reload`].
    pub fn remove_database(&self, name: &str) {
        {
            let mut ini = self.ini.lock().expect("ini");
            let before = ini.databases.len();
            ini.databases.retain(|d| d.name != name);
            assert!(ini.databases.len() < before, "no database entry {name}");
        }
        self.write_ini().unwrap_or_else(|e| panic!("{e}"));
    }

    /// How many client sessions of the admin console (database `pgbouncer`) have
    /// `application_name` `name`, by `SHOW CLIENTS` (the harness's own session has none).
    pub async fn console_clients(&self, application_name: &str) -> usize {
        let clients = self.show("CLIENTS").await;
        clients
            .rows
            .iter()
            .filter(|c| {
                c.text("database") == "pgbouncer" && c.text("application_name") == application_name
            })
            .count()
    }

    /// Applies the file with the console's `RELOAD`; panics if refused.
    pub async fn reload(&self) {
        self.admin("RELOAD").await;
    }

    /// Runs a console command as [`ADMIN_USER`]; panics with the log if it fails.
    pub async fn admin(&self, command: &str) -> ShowResult {
        self.try_console(ADMIN_USER, command)
            .await
            .unwrap_or_else(|e| panic!("{command} on PgBouncer: {e}\n{}", self.log()))
    }

    /// Runs a console command as `user` on a session of its own, and returns once PgBouncer
    /// has logged that session's end: until then it would count it against `max_client_conn`.
    pub async fn try_console(&self, user: &str, command: &str) -> Result<ShowResult, ConsoleError> {
        let console = Console::connect(&self.console_url(user)).await?;
        let port = console.local_port();
        let result = console.query(command).await;
        console.close().await;
        self.wait_client_closed(port).await;
        result
    }

    /// Waits (up to 5 s, and only while PgBouncer runs) for its log line saying the client on
    /// local port `port` is closed.
    async fn wait_client_closed(&self, port: u16) {
        let needle = format!("@127.0.0.1:{port} closing because");
        let _ = poll_until(Duration::from_secs(5), || async {
            (!self.is_running() || self.log().contains(&needle)).then_some(())
        })
        .await;
    }

    /// `SHOW what` (e.g. `POOLS`) as [`ADMIN_USER`].
    pub async fn show(&self, what: &str) -> ShowResult {
        self.admin(&format!("SHOW {what}")).await
    }

    /// The `SHOW POOLS` row of database `db` and user `user`; panics when there is none.
    pub async fn pool(&self, db: &str, user: &str) -> ShowRow {
        let pools = self.show("POOLS").await;
        pools
            .rows
            .iter()
            .find(|row| row.text("database") == db && row.text("user") == user)
            .cloned()
            .unwrap_or_else(|| panic!("no pool {db}/{user} in SHOW POOLS: {:?}", pools.rows))
    }

    /// The value of `key` in `SHOW CONFIG`; panics when there is no such key.
    pub async fn config_value(&self, key: &str) -> String {
        let config = self.show("CONFIG").await;
        config
            .find("key", key)
            .map(|row| row.text("value").to_owned())
            .unwrap_or_else(|| panic!("no {key} in SHOW CONFIG"))
    }

    /// A client session as `user` on database entry `db` (panics if the user is unknown).
    pub async fn connect(
        &self,
        user: &str,
        db: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        crate::common::pg::connect(&self.url(user, db)).await
    }

    /// Starts `n` clients as `user` on `db` that each take and keep a server connection (see
    /// [`ClientHold`]); those beyond the pool's size wait. Returns at once.
    pub fn hold_clients(&self, user: &str, db: &str, n: usize) -> ClientHold {
        let mode = {
            let ini = self.ini.lock().expect("ini");
            let global = ini.settings.get("pool_mode").cloned();
            ini.databases
                .iter()
                .find(|d| d.name == db)
                .and_then(|d| d.pool_mode)
                .map(|m| m.as_str().to_owned())
                .or(global)
        };
        let session = mode.is_none_or(|m| m == PoolMode::Session.as_str());
        ClientHold::start(&self.url(user, db), n, !session)
    }

    /// Stops PgBouncer with the console's `SHUTDOWN` and waits until the process has exited.
    pub async fn stop(&self) {
        // The console session ends with the process, so the command's own answer may be lost.
        let _ = self.try_console(ADMIN_USER, "SHUTDOWN").await;
        if !self.wait_exit(WAIT).await {
            panic!(
                "PgBouncer still running {WAIT:?} after SHUTDOWN\n{}",
                self.log()
            );
        }
    }

    /// Kills PgBouncer (SIGKILL): clients and servers lose their connections at once.
    pub async fn kill(&self) {
        if let Some(child) = self.child.lock().expect("child").as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the process (SIGSTOP): its sockets stay open and the kernel still completes TCP
    /// handshakes, but nothing is answered, as by a hung PgBouncer. [`PgBouncer::thaw`] ends it;
    /// console commands of the harness wait until then.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a [`PgBouncer::freeze`]d process run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: i32) {
        let pid = self.pid().expect("PgBouncer is not running");
        let pid = i32::try_from(pid).expect("pid fits i32");
        // SAFETY: kill has no memory-safety preconditions; pid is our own child.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}): {}",
            std::io::Error::last_os_error()
        );
    }

    /// Starts a stopped or killed PgBouncer again: same file, same port. Panics with the log
    /// on failure.
    pub async fn start_again(&self) {
        if let Err(e) = self.spawn_and_wait().await {
            panic!("{e}");
        }
    }

    /// [`PgBouncer::stop`], then [`PgBouncer::start_again`].
    pub async fn restart(&self) {
        self.stop().await;
        self.start_again().await;
    }

    fn ini_path(&self) -> PathBuf {
        self.dir.path().join("pgbouncer.ini")
    }

    fn write_ini(&self) -> Result<(), String> {
        let text = self.ini.lock().expect("ini").render(self.version);
        let path = self.ini_path();
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
        hand_over(&path)
    }

    /// Starts the process (as `postgres` when root) and waits until the console answers.
    async fn spawn_and_wait(&self) -> Result<(), String> {
        let child = process::spawn(&self.binary, &self.ini_path(), self.dir.path())?;
        *self.child.lock().expect("child") = Some(child);
        let ready = poll_until(WAIT, || async {
            if !self.is_running() {
                return Some(Err("exited".to_owned()));
            }
            match self.try_console(ADMIN_USER, "SHOW VERSION").await {
                Ok(_) => Some(Ok(())),
                Err(_) => None,
            }
        })
        .await;
        match ready {
            Some(Ok(())) => Ok(()),
            outcome => Err(format!(
                "PgBouncer {} on port {} {} \n--- PgBouncer log\n{}",
                self.full_version,
                self.port(),
                match outcome {
                    Some(Err(e)) => e,
                    _ => format!("not answering on its console after {WAIT:?}"),
                },
                self.log()
            )),
        }
    }

    /// Waits up to `timeout` for the process to exit; whether it did.
    async fn wait_exit(&self, timeout: Duration) -> bool {
        poll_until(timeout, || async { (!self.is_running()).then_some(()) })
            .await
            .is_some()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- PgBouncer {} log tail (port {})",
                self.full_version,
                self.port()
            );
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
        if let Some(child) = self.child.lock().expect("child").as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `[pgbouncer]` settings of `options` (the fixed ones come from [`ini::Ini::render`]).
fn settings(options: &PgBouncerOptions, ssl: Option<&SslFiles>) -> BTreeMap<String, String> {
    let mut admins = vec![ADMIN_USER.to_owned()];
    admins.extend(options.admin_users.iter().cloned());
    let mut settings: BTreeMap<String, String> = [
        ("admin_users", admins.join(",")),
        ("stats_users", options.stats_users.join(",")),
        ("pool_mode", options.pool_mode.as_str().to_owned()),
        ("default_pool_size", options.default_pool_size.to_string()),
        ("max_client_conn", options.max_client_conn.to_string()),
        ("reserve_pool_size", options.reserve_pool_size.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(files) = ssl {
        for (key, path) in [
            ("client_tls_key_file", &files.server_key),
            ("client_tls_cert_file", &files.server_cert),
            ("client_tls_ca_file", &files.ca_cert),
        ] {
            settings.insert(key.to_owned(), path.display().to_string());
        }
        settings.insert("client_tls_sslmode".to_owned(), "allow".to_owned());
    }
    for (key, value) in &options.settings {
        settings.insert(key.clone(), value.clone());
    }
    settings
}
