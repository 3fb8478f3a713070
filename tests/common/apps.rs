//! Real applications with real connection pools, for end-to-end tests of the `app_metrics`
//! source: [`PythonPoolApp`] runs `tests/apps/python_pool/app.py` (psycopg_pool against a
//! [`PgCluster`], exporting through prometheus_client in OpenTelemetry's names) with the
//! virtualenv `scripts/install-test-deps.sh` makes in the cache.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::pg::install::cache_dir;
use crate::common::PgCluster;

/// How the application's pool is set up.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Pool size (min and max).
    pub size: u32,
    /// How long a client waits for a connection before giving up, seconds.
    pub acquire_timeout: f64,
    /// The pool's name (the `db_client_connection_pool_name` label, and its connections'
    /// `application_name`).
    pub name: String,
    /// The bearer token `/metrics` requires; none: `/metrics` is open.
    pub token: Option<String>,
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            size: 5,
            acquire_timeout: 2.0,
            name: "checkout".into(),
            token: None,
        }
    }
}

/// The Python application as a child process.
pub struct PythonPoolApp {
    child: Option<Child>,
    port: u16,
    dsn: String,
    options: AppOptions,
    http: reqwest::Client,
}

/// The port of a child process that prints `listening on PORT` as its first line of standard
/// output (piped); panics naming `what` when it does not within `within`.
pub async fn listening_port(child: &mut Child, what: &str, within: Duration) -> u16 {
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::time::timeout(within, BufReader::new(stdout).lines().next_line())
        .await
        .unwrap_or_else(|_| panic!("{what} did not start within {within:?}"))
        .expect("read its stdout")
        .unwrap_or_else(|| panic!("{what} exited before serving"));
    line.strip_prefix("listening on ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("{what}: unexpected first line {line:?}"))
}

/// The virtualenv's python; panics (never skips) when the install script has not made it.
pub fn python() -> PathBuf {
    let python = cache_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-test-deps.sh",
        python.display()
    );
    python
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/apps/python_pool/app.py")
}

impl PythonPoolApp {
    /// Starts the application with a pool on `pg` (as its superuser, database `postgres`),
    /// on a free port; returns once it serves.
    pub async fn start(pg: &PgCluster, options: AppOptions) -> PythonPoolApp {
        let dsn = pg.url_for(pg.superuser_name(), "postgres");
        let mut app = PythonPoolApp {
            child: None,
            port: 0,
            dsn,
            options,
            http: reqwest::Client::new(),
        };
        app.spawn().await;
        app
    }

    async fn spawn(&mut self) {
        let mut child = Command::new(python())
            .arg(script())
            .args(["--dsn", &self.dsn, "--port", &self.port.to_string()])
            .args(["--size", &self.options.size.to_string()])
            .args(["--timeout", &self.options.acquire_timeout.to_string()])
            .args(["--name", &self.options.name])
            .args(
                self.options
                    .token
                    .iter()
                    .flat_map(|t| ["--token", t.as_str()]),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the Python application");
        let port = listening_port(
            &mut child,
            "the Python application",
            Duration::from_secs(60),
        )
        .await;
        self.port = port;
        self.child = Some(child);
    }

    /// The port it serves on (the same after [`PythonPoolApp::start_again`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    async fn post(&self, path: &str) {
        let r = self
            .http
            .post(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
    }

    /// `n` more clients take a connection each and keep it (waiting first when the pool is full).
    pub async fn hold(&self, n: u32) {
        self.post(&format!("hold?n={n}")).await;
    }

    /// Every held connection goes back to the pool.
    pub async fn release(&self) {
        self.post("release").await;
    }

    /// Makes `/metrics` hostile (`huge`, `slow`, `garbage`), exports the pool under another
    /// name (`renamed`), or `normal` again.
    pub async fn misbehave(&self, mode: &str) {
        self.post(&format!("misbehave?mode={mode}")).await;
    }

    /// psycopg_pool's own stats, as JSON.
    pub async fn stats(&self) -> serde_json::Value {
        let r = self
            .http
            .get(self.url("stats"))
            .send()
            .await
            .expect("GET /stats");
        let text = r.text().await.expect("stats body");
        serde_json::from_str(&text).expect("stats JSON")
    }

    /// Kills the application: its endpoint goes away.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts it again on the same port, with a fresh pool.
    pub async fn start_again(&mut self) {
        self.stop().await;
        self.spawn().await;
    }
}
