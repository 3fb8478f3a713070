//! A real Alertmanager (Debian's `prometheus-alertmanager`) as a throwaway process.
//!
//! Each [`Alertmanager`] has its own temporary directory (configuration, `--storage.path`,
//! log), listens on a free port of 127.0.0.1, gossips with nobody (`--cluster.listen-address=`)
//! and routes every alert to one webhook URL (a [`crate::common::Receiver`]) with short timings,
//! so that a test sees its notifications in about a second. It is killed on drop; its log is
//! printed when the test panics.
//!
//! Alertmanager runs as root without complaint, unlike PostgreSQL: no user switch is needed.
//! The binary is `POOLWATCH_TEST_ALERTMANAGER`, else `prometheus-alertmanager` (Debian's name,
//! installed by `scripts/install-test-deps.sh`), else `alertmanager` on `PATH`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::common::pg::setup::free_port;
use crate::common::poll_until;

/// How long [`Alertmanager::start`] waits for `/-/ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The route of the generated configuration.
#[derive(Debug, Clone)]
pub struct AlertmanagerOptions {
    /// Where every notification goes (`webhook_configs`, `send_resolved: true`).
    pub webhook_url: String,
    /// `group_by` of the root route. Default `["alertname"]`.
    pub group_by: Vec<String>,
    /// `group_wait`. Default 1 s.
    pub group_wait: Duration,
    /// `group_interval`. Default 1 s.
    pub group_interval: Duration,
    /// `repeat_interval`. Default 1 h: a second page in a test is a duplicate, not a repeat.
    pub repeat_interval: Duration,
}

impl AlertmanagerOptions {
    /// The defaults above, notifying `webhook_url`.
    pub fn new(webhook_url: &str) -> AlertmanagerOptions {
        AlertmanagerOptions {
            webhook_url: webhook_url.to_owned(),
            group_by: vec!["alertname".into()],
            group_wait: Duration::from_secs(1),
            group_interval: Duration::from_secs(1),
            repeat_interval: Duration::from_secs(3600),
        }
    }

    /// The `alertmanager.yml` these options describe.
    fn yaml(&self) -> String {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let group_by: Vec<String> = self.group_by.iter().map(|l| format!("'{l}'")).collect();
        format!(
            "route:\n  receiver: hook\n  group_by: [{group_by}]\n  group_wait: {wait}\n  \
             group_interval: {interval}\n  repeat_interval: {repeat}\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: '{url}'\n        \
             send_resolved: true\n",
            group_by = group_by.join(", "),
            wait = ms(self.group_wait),
            interval = ms(self.group_interval),
            repeat = ms(self.repeat_interval),
            url = self.webhook_url,
        )
    }
}

/// A running Alertmanager; killed on drop.
pub struct Alertmanager {
    child: Child,
    /// Configuration, storage and log; removed on drop.
    dir: TempDir,
    port: u16,
    http: reqwest::Client,
}

impl Alertmanager {
    /// Starts one routing everything to `webhook_url` with [`AlertmanagerOptions::new`].
    pub async fn start(webhook_url: &str) -> Alertmanager {
        Self::start_with(AlertmanagerOptions::new(webhook_url)).await
    }

    /// Starts one with `options` and waits until `/-/ready` answers 200; panics with its log
    /// if it exits or is not ready within [`READY_TIMEOUT`].
    pub async fn start_with(options: AlertmanagerOptions) -> Alertmanager {
        let dir = tempfile::Builder::new()
            .prefix("poolwatch-alertmanager-")
            .tempdir()
            .expect("temp dir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, options.yaml()).expect("write alertmanager.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).expect("log file");
        let child = Command::new(binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary().display()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("http client");
        let mut am = Alertmanager {
            child,
            dir,
            port,
            http,
        };
        am.wait_ready().await;
        am
    }

    async fn wait_ready(&mut self) {
        let url = self.url("/-/ready");
        let ready = poll_until(READY_TIMEOUT, || {
            let exited = self.child.try_wait().ok().flatten();
            let request = self.http.get(&url).send();
            async move {
                if let Some(status) = exited {
                    return Some(Err(format!("alertmanager exited with {status}")));
                }
                match request.await {
                    Ok(r) if r.status().is_success() => Some(Ok(())),
                    _ => None,
                }
            }
        })
        .await
        .unwrap_or_else(|| Err(format!("alertmanager not ready within {READY_TIMEOUT:?}")));
        if let Err(e) = ready {
            panic!("{e}\n{}", self.log());
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("alertmanager.log"));
        format!("--- alertmanager log\n{}", text.unwrap_or_default())
    }

    /// `POST /api/v2/alerts` with `alerts` (a JSON array); the status it answered.
    pub async fn post_alerts(&self, alerts: &Value) -> u16 {
        let response = self
            .http
            .post(self.url("/api/v2/alerts"))
            .header("content-type", "application/json")
            .body(alerts.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /api/v2/alerts: {e}\n{}", self.log()));
        response.status().as_u16()
    }

    /// `GET /api/v2/alerts`: the alerts it holds (active, silenced and inhibited; resolved
    /// ones are not listed).
    pub async fn alerts(&self) -> Vec<Value> {
        let response = self
            .http
            .get(self.url("/api/v2/alerts"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /api/v2/alerts: {e}\n{}", self.log()));
        let text = response.text().await.expect("alerts body");
        let json: Value = serde_json::from_str(&text).expect("alerts JSON");
        json.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Alertmanager binary to run.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("POOLWATCH_TEST_ALERTMANAGER") {
        return PathBuf::from(path);
    }
    let on_path = |name: &str| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    };
    on_path("prometheus-alertmanager")
        .or_else(|| on_path("alertmanager"))
        .unwrap_or_else(|| PathBuf::from("prometheus-alertmanager"))
}
