//! Real applications in three more ecosystems, each with its library's own pool and its own
//! metrics library, for end-to-end tests of the `app_metrics` presets: [`RealApp`] runs one of
//! [`AppKind`]'s programs against a [`PgCluster`]:
//!
//! * [`AppKind::GoSql`] — `tests/apps/go_sql`: Go `database/sql` (lib/pq) exported by
//!   client_golang's `collectors.NewDBStatsCollector` (preset `go_sql`), the binary
//!   `scripts/install-test-deps.sh` built into the cache;
//! * [`AppKind::NodeOtel`] — `tests/apps/node_otel`: node-postgres's `pg.Pool` with
//!   `@opentelemetry/instrumentation-pg` and the OpenTelemetry Prometheus exporter (preset
//!   `otel`), its packages in the cache;
//! * [`AppKind::SqlalchemyOtel`] — `tests/apps/sqlalchemy_otel`: SQLAlchemy's `QueuePool`
//!   with `opentelemetry-instrumentation-sqlalchemy` (preset `otel_legacy`), in the cache's
//!   virtualenv (`venv`).
//!
//! Every program takes `--dsn --port --size --timeout --name`, prints `listening on PORT` once
//! it serves, and answers `POST /hold?n=N` (N requests each take a connection and keep it,
//! waiting when the pool is full, giving up after the timeout), `POST /release` and
//! `GET /metrics`. A missing program panics with the install command (never skips).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use poolwatch::model::PoolSnapshot;
use poolwatch::source::app_metrics::{exposition, map, presets};
use tokio::process::{Child, Command};

use crate::common::pg::install::cache_dir;
use crate::common::PgCluster;

/// One of the real applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// Go `database/sql` + client_golang's DB stats collector.
    GoSql,
    /// Node `pg.Pool` + `@opentelemetry/instrumentation-pg`.
    NodeOtel,
    /// SQLAlchemy `QueuePool` + `opentelemetry-instrumentation-sqlalchemy`.
    SqlalchemyOtel,
}

impl AppKind {
    /// Every kind, for tests that run them all.
    pub const ALL: [AppKind; 3] = [AppKind::GoSql, AppKind::NodeOtel, AppKind::SqlalchemyOtel];

    /// The folder under `tests/apps/` (also the fixture's name under
    /// `tests/fixtures/exposition/`).
    pub fn dir(self) -> &'static str {
        match self {
            AppKind::GoSql => "go_sql",
            AppKind::NodeOtel => "node_otel",
            AppKind::SqlalchemyOtel => "sqlalchemy_otel",
        }
    }

    /// The poolwatch preset that reads its metrics.
    pub fn preset(self) -> &'static str {
        match self {
            AppKind::GoSql => "go_sql",
            AppKind::NodeOtel => "otel",
            AppKind::SqlalchemyOtel => "otel_legacy",
        }
    }

    /// Whether the library reports how many clients wait now (`database/sql` only counts
    /// waits that began).
    pub fn reports_waiting(self) -> bool {
        self != AppKind::GoSql
    }

    /// Whether the library (or, for SQLAlchemy, the application around it) counts acquires
    /// that gave up: node-postgres's instrumentation and `sql.DBStats` do not.
    pub fn counts_timeouts(self) -> bool {
        self == AppKind::SqlalchemyOtel
    }

    /// The program and its leading arguments.
    fn command(self) -> Command {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let cache = cache_dir();
        let need = |p: PathBuf| {
            assert!(
                p.exists(),
                "{} is missing: run scripts/install-test-deps.sh",
                p.display()
            );
            p
        };
        match self {
            AppKind::GoSql => Command::new(need(cache.join("apps/go_sql/go_sql"))),
            AppKind::NodeOtel => {
                let modules = need(cache.join("apps/node_otel/node_modules"));
                let mut c = Command::new("node");
                c.env("NODE_PATH", modules)
                    .arg(repo.join("tests/apps/node_otel/app.js"));
                c
            }
            AppKind::SqlalchemyOtel => {
                let mut c = Command::new(need(cache.join("venv/bin/python")));
                c.arg(repo.join("tests/apps/sqlalchemy_otel/app.py"));
                c
            }
        }
    }
}

/// A running application.
pub struct RealApp {
    /// Which one.
    pub kind: AppKind,
    child: Child,
    port: u16,
    /// The pool's name as its metrics label it.
    pub pool: String,
    http: reqwest::Client,
}

impl RealApp {
    /// Starts `kind` with a pool of `size` on `pg` (superuser, database `postgres`) whose
    /// clients give up after `timeout`; returns once it serves, with how long that took.
    pub async fn start(
        kind: AppKind,
        pg: &PgCluster,
        size: u32,
        timeout: Duration,
    ) -> (RealApp, Duration) {
        let started = Instant::now();
        // lib/pq requires TLS unless told otherwise; the others accept the parameter.
        let dsn = format!(
            "{}?sslmode=disable",
            pg.url_for(pg.superuser_name(), "postgres")
        );
        let name = "checkout";
        let mut child = kind
            .command()
            .args(["--dsn", &dsn, "--port", "0", "--size", &size.to_string()])
            .args(["--timeout", &timeout.as_secs_f64().to_string()])
            .args(["--name", name])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {kind:?}: {e}"));
        let what = format!("{kind:?}");
        let port =
            crate::common::apps::listening_port(&mut child, &what, Duration::from_secs(60)).await;
        // instrumentation-pg names the pool itself, "host:port/database".
        let pool = match kind {
            AppKind::NodeOtel => format!("127.0.0.1:{}/postgres", pg.port()),
            _ => name.to_string(),
        };
        let app = RealApp {
            kind,
            child,
            port,
            pool,
            http: reqwest::Client::new(),
        };
        (app, started.elapsed())
    }

    /// `http://127.0.0.1:PORT/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }

    async fn post(&self, path: &str) {
        let url = format!("http://127.0.0.1:{}/{path}", self.port);
        let r = self
            .http
            .post(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert!(r.status().is_success(), "POST {url}: {}", r.status());
    }

    /// `n` requests each take a connection and keep it (waiting first when the pool is full).
    pub async fn hold(&self, n: u32) {
        self.post(&format!("hold?n={n}")).await;
    }

    /// Every held connection goes back to the pool.
    pub async fn release(&self) {
        self.post("release").await;
    }

    /// The exposition now, as the application serves it.
    pub async fn exposition(&self) -> String {
        let r = self
            .http
            .get(self.metrics_url())
            .send()
            .await
            .expect("GET /metrics");
        r.text().await.expect("metrics body")
    }

    /// `GET /stats` as JSON (Node only: `pg.Pool`'s own `totalCount`, `idleCount`,
    /// `waitingCount`).
    pub async fn stats(&self) -> serde_json::Value {
        let url = format!("http://127.0.0.1:{}/stats", self.port);
        let r = self.http.get(&url).send().await.expect("GET /stats");
        serde_json::from_str(&r.text().await.expect("body")).expect("stats JSON")
    }

    /// The application's pool now, read from its exposition with its preset (the library's
    /// own parser and mapping, as the daemon reads it).
    pub async fn pool_now(&self) -> PoolSnapshot {
        map_pool(self.kind.preset(), &self.exposition().await, &self.pool)
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// The pool `pool` that preset `preset` finds in `text`; panics saying what went wrong.
pub fn map_pool(preset: &str, text: &str, pool: &str) -> PoolSnapshot {
    let mapping = presets::preset(preset).unwrap_or_else(|| panic!("no preset {preset}"));
    let expo = exposition::parse(text.as_bytes(), &exposition::Limits::default())
        .unwrap_or_else(|e| panic!("{preset}: unreadable exposition: {e}\n{text}"));
    let mapped = map::map(&expo, &mapping, &[], "t")
        .unwrap_or_else(|e| panic!("{preset}: no pools: {e}\n{text}"));
    let names: Vec<&str> = mapped.pools.iter().map(|p| p.id.name.as_str()).collect();
    mapped
        .pools
        .iter()
        .find(|p| p.id.name == pool)
        .cloned()
        .unwrap_or_else(|| panic!("{preset}: no pool {pool:?} among {names:?}"))
}
