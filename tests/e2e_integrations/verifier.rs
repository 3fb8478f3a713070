//! The signature-verifying receiver (`tests/apps/webhook_verifier/app.py`, with the
//! `standardwebhooks` package from PyPI) as a child process.

use crate::common::apps::{listening_port, python};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
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
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/apps/webhook_verifier/app.py");
        let mut child = Command::new(python())
            .arg(script)
            .env("POOLWATCH_TEST_WHSEC", whsec)
            .env("POOLWATCH_TEST_GITHUB_SECRET", github)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the verifier");
        let port = listening_port(&mut child, "the verifier", Duration::from_secs(30)).await;
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
