//! The signature-verifying receiver (`tests/apps/webhook_verifier/app.py`, with the
//! `standardwebhooks` package from PyPI) as a child process.

use crate::common::pg::install::cache_dir;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running verifier; killed on drop.
pub struct Verifier {
    _child: Child,
    port: u16,
    http: reqwest::Client,
}

impl Verifier {
    /// Starts it with the Standard Webhooks secret `whsec` and the GitHub-style `github`
    /// secret; returns once it serves.
    pub async fn start(whsec: &str, github: &str) -> Verifier {
        let python = cache_dir().join("venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/install-test-deps.sh",
            python.display()
        );
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/apps/webhook_verifier/app.py");
        let mut child = Command::new(python)
            .arg(script)
            .env("POOLWATCH_TEST_WHSEC", whsec)
            .env("POOLWATCH_TEST_GITHUB_SECRET", github)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the verifier");
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).lines().next_line(),
        )
        .await
        .expect("the verifier did not start within 30 s")
        .expect("read its stdout")
        .expect("it exited before serving");
        let port = line
            .strip_prefix("listening on ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Verifier {
            _child: child,
            port,
            http: reqwest::Client::new(),
        }
    }

    /// `http://127.0.0.1:PORT/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// Every request it received, with its verdicts.
    pub async fn results(&self) -> Vec<Value> {
        let body = self
            .http
            .get(self.url("/results"))
            .send()
            .await
            .expect("GET /results")
            .bytes()
            .await
            .expect("body");
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        body.as_array().cloned().unwrap_or_default()
    }

    /// Waits until it received at least `n` requests; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let got = crate::common::poll_until(crate::common::scenario::WAIT, || async {
            let r = self.results().await;
            (r.len() >= n).then_some(r)
        })
        .await;
        got.unwrap_or_else(|| panic!("fewer than {n} requests arrived"))
    }

    /// Posts `body` with `headers` (a recorded request's, replayed); returns the status.
    pub async fn replay(&self, headers: &Value, body: &[u8]) -> u16 {
        let mut request = self.http.post(self.url("/replayed")).body(body.to_vec());
        for (k, v) in headers.as_object().into_iter().flatten() {
            request = request.header(k.as_str(), v.as_str().unwrap_or_default());
        }
        request.send().await.expect("replay").status().as_u16()
    }
}
