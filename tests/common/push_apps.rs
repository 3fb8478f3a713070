//! Real applications that push their real connection pool's stats to poolwatch
//! (`POST /api/v1/pools`): `tests/apps/python_push/app.py` (psycopg_pool) and
//! `tests/apps/node_push/app.js` (node-postgres), run from the packages
//! `scripts/install-test-deps.sh` puts in the cache (`venv`, `push-apps/node`). Each holds a pool
//! against a [`crate::common::PgCluster`], pushes every `every`, and takes commands on stdin:
//! [`PushApp::load`] makes clients hold connections (and queue in the pool when it is full),
//! [`PushApp::quit`] pushes `"final": true` and exits, [`PushApp::kill`] just dies.

use super::pg::install::cache_dir;
use super::scenario::{accepted, notifications, Notification, WAIT};
use super::{Receiver, RecordedRequest};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

/// Which application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// `tests/apps/python_push/app.py`: psycopg_pool's `get_stats()`.
    Python,
    /// `tests/apps/node_push/app.js`: node-postgres' `totalCount`/`idleCount`/`waitingCount`.
    Node,
    /// `tests/apps/python_push/app.py --django`: Django's built-in pool (a psycopg_pool).
    Django,
}

/// How an application is started.
#[derive(Debug, Clone)]
pub struct PushAppOptions {
    /// The application's PostgreSQL URL.
    pub dsn: String,
    /// poolwatch's `/api/v1/pools` URL.
    pub url: String,
    /// The push target's name.
    pub application: String,
    /// This process's instance name.
    pub instance: String,
    /// Bearer token to send, if any.
    pub token: Option<String>,
    /// The pool's `max_size` / `max`.
    pub max_size: u32,
    /// Seconds between pushes.
    pub every: f64,
}

/// A running application; killed on drop, its output printed if the test panics.
pub struct PushApp {
    lang: Lang,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<String>>>,
}

fn apps_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/apps")
}

fn installed(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps.sh to install the push applications' packages",
        path.display()
    );
    path
}

impl PushApp {
    /// Starts the application and waits until its pool is open and it pushes.
    pub async fn start(lang: Lang, o: &PushAppOptions) -> PushApp {
        let cache = cache_dir().join("push-apps");
        let mut command = match lang {
            Lang::Python | Lang::Django => {
                let mut c = Command::new(installed(cache_dir().join("venv/bin/python")));
                c.arg(apps_dir().join("python_push/app.py"));
                if lang == Lang::Django {
                    c.arg("--django");
                }
                c
            }
            Lang::Node => {
                let mut c = Command::new("node");
                c.env(
                    "NODE_PATH",
                    installed(cache.join("node/node_modules/pg")).join(".."),
                );
                c.arg(apps_dir().join("node_push/app.js"));
                c
            }
        };
        let mut args = vec![
            ("--dsn", o.dsn.clone()),
            ("--url", o.url.clone()),
            ("--application", o.application.clone()),
            ("--instance", o.instance.clone()),
            ("--max-size", o.max_size.to_string()),
            ("--every", o.every.to_string()),
        ];
        if let Some(t) = &o.token {
            args.push(("--token", t.clone()));
        }
        for (k, v) in args {
            command.arg(k).arg(v);
        }
        let mut child = command
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {lang:?} push app: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        for out in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(out).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    lines.lock().expect("lines").push(line);
                }
            });
        }
        let stdin = child.stdin.take();
        let app = PushApp {
            lang,
            child,
            stdin,
            lines,
        };
        if !app.wait_for_line("ready", Duration::from_secs(60)).await {
            panic!("the {lang:?} push app did not start:\n{}", app.output());
        }
        app
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Waits until a printed line contains `needle`.
    pub async fn wait_for_line(&self, needle: &str, timeout: Duration) -> bool {
        super::poll_until(timeout, || async {
            let found = self
                .lines
                .lock()
                .expect("lines")
                .iter()
                .any(|l| l.contains(needle));
            found.then_some(())
        })
        .await
        .is_some()
    }

    async fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("write to the push app");
        stdin.flush().await.expect("flush");
    }

    /// `clients` clients each take a connection and hold it for `hold`; beyond the pool's
    /// size they wait in its queue.
    pub async fn load(&mut self, clients: u32, hold: Duration) {
        self.send(&format!("load {clients} {}", hold.as_secs_f64()))
            .await;
        assert!(
            self.wait_for_line(&format!("loaded {clients}"), Duration::from_secs(10))
                .await,
            "the {:?} push app did not take the load:\n{}",
            self.lang,
            self.output()
        );
    }

    /// Pushes `"final": true` and exits; returns whether poolwatch accepted that last push.
    pub async fn quit(mut self) -> bool {
        self.send("quit").await;
        assert!(
            self.wait_for_line("stopped", Duration::from_secs(10)).await,
            "the {:?} push app did not stop cleanly:\n{}",
            self.lang,
            self.output()
        );
        self.stdin = None;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        !self.output().contains("final push failed")
    }

    /// Dies at once (SIGKILL), without a last push: a crash.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

impl Drop for PushApp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {:?} push app output ---\n{}", self.lang, self.output());
        }
    }
}

/// Panics unless README.md shows `lang`'s example (the lines between its `README example:
/// start` and `end` markers) verbatim: the README's examples are the code the tests run.
pub fn assert_readme_shows_example(lang: Lang) {
    let readme = include_str!("../../README.md");
    let (app, comment) = match lang {
        Lang::Python | Lang::Django => (include_str!("../apps/python_push/app.py"), "#"),
        Lang::Node => (include_str!("../apps/node_push/app.js"), "//"),
    };
    let example = app
        .split(&format!("{comment} --- README example: start ---\n"))
        .nth(1)
        .and_then(|rest| {
            rest.split(&format!("{comment} --- README example: end ---"))
                .next()
        })
        .unwrap_or_else(|| panic!("no README example markers in the {lang:?} app"));
    assert!(
        readme.contains(example),
        "README.md does not show the {lang:?} app's example verbatim:\n{example}"
    );
}

/// Waits until `hook` has accepted a notification `brief` (`firing TargetDown checkout`)
/// among the requests after the first `since`; returns it.
pub async fn expect_notified(hook: &Receiver, since: usize, brief: &str) -> Notification {
    let find = |requests: &[RecordedRequest]| {
        notifications(requests.get(since..).unwrap_or_default())
            .into_iter()
            .find(|n| (200..300).contains(&n.answered) && n.brief() == brief)
    };
    let arrived = hook.wait_for(|r| find(r).is_some(), WAIT).await;
    assert!(
        arrived,
        "no {brief:?}; got {:?}",
        accepted(&hook.requests())
    );
    find(&hook.requests()).expect("found")
}
