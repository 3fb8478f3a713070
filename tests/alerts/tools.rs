//! The real Prometheus tooling the tests run: `promtool`, `amtool`, and a Prometheus server
//! (Debian's `prometheus` and `prometheus-alertmanager` packages, installed by
//! `scripts/install-test-deps.sh`). A missing tool fails the test with install advice.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::common::pg::setup::free_port;
use crate::common::poll_until;

/// A file of the repository, by its path from the top.
pub fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The Prometheus rule files of `alerts/`.
pub const RULE_FILES: [&str; 2] = ["alerts/poolwatch.rules.yml", "alerts/recording.rules.yml"];

/// Runs `tool args`; the binary is `$env_var`, else `tool` on `PATH`.
pub fn run_tool(tool: &str, env_var: &str, args: &[&str]) -> Output {
    let program = std::env::var(env_var).unwrap_or_else(|_| tool.to_owned());
    Command::new(&program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {program}: {e}; run scripts/install-test-deps.sh (Debian packages \
                 prometheus and prometheus-alertmanager)"
            )
        })
}

/// `promtool args`, which must succeed; its output.
pub fn promtool(args: &[&str]) -> String {
    let out = run_tool("promtool", "POOLWATCH_TEST_PROMTOOL", args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {args:?}: {}\n{text}",
        out.status
    );
    text
}

/// A Prometheus server of its own on 127.0.0.1 (scraping and evaluating every second), with a
/// data directory that is removed with it; killed on drop.
pub struct Prometheus {
    child: Child,
    dir: TempDir,
    addr: SocketAddr,
    http: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus with `rule_files` (paths from the repository's top), scraping
    /// `scrape` (job `poolwatch`) when given; waits until it is ready.
    pub async fn start(rule_files: &[&str], scrape: Option<SocketAddr>) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("poolwatch-prometheus-")
            .tempdir()
            .expect("temp dir");
        let rules: Vec<String> = rule_files
            .iter()
            .map(|f| format!("{:?}", repo_file(f).display().to_string()))
            .collect();
        let scrape_configs = scrape.map_or(String::new(), |addr| {
            format!(
                "scrape_configs:\n  - job_name: poolwatch\n    static_configs:\n      \
                 - targets: [\"{addr}\"]\n"
            )
        });
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [{}]\n{scrape_configs}",
            rules.join(", ")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write prometheus.yml");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let program =
            std::env::var("POOLWATCH_TEST_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(&program)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {program}: {e}; run scripts/install-test-deps.sh (Debian package prometheus)")
            });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        let mut prometheus = Prometheus {
            child,
            dir,
            addr,
            http,
        };
        prometheus.wait_ready().await;
        prometheus
    }

    async fn wait_ready(&mut self) {
        let url = format!("http://{}/-/ready", self.addr);
        let ready = poll_until(Duration::from_secs(30), || {
            let request = self.http.get(&url).send();
            async move { request.await.ok().filter(|r| r.status().is_success()) }
        })
        .await;
        if ready.is_none() {
            let exited = self.child.try_wait().ok().flatten();
            panic!(
                "Prometheus not ready within 30 s (exited: {exited:?}); its log:\n{}",
                self.log()
            );
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/{path}` with `query` parameters: the answer's `data`, or the error it gave.
    pub async fn api(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let url = format!("http://{}/api/v1/{path}", self.addr);
        let response = self
            .http
            .get(&url)
            .query(query)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let text = response
            .text()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let body: Value =
            serde_json::from_str(&text).map_err(|e| format!("GET {url}: not JSON: {e}"))?;
        match body["status"].as_str() {
            Some("success") => Ok(body["data"].clone()),
            _ => Err(format!("{}: {}", body["errorType"], body["error"])),
        }
    }

    /// Every rule Prometheus loaded, as `/api/v1/rules` describes it (normalised queries,
    /// `duration` and `keepFiringFor` in seconds, labels, annotations, health).
    pub async fn rules(&self) -> Vec<Value> {
        let data = self.api("rules", &[]).await.expect("GET /api/v1/rules");
        data["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- Prometheus log ---\n{}", self.log());
        }
    }
}
