//! The poolwatch binary as a child process, for end-to-end tests.
//!
//! Contract with the daemon: `poolwatch run --config FILE` logs a line containing
//! `listening on 127.0.0.1:PORT` once its HTTP server is bound (configs in tests use
//! `listen = "127.0.0.1:0"`); SIGHUP reloads the configuration, SIGTERM shuts down.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::common::metrics::{find_sample, parse_exposition, Sample};
use crate::common::poll_until;

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_poolwatch");

/// How long [`Poolwatch::start`] waits for the `listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A configuration file in a temporary directory of its own (removed on drop).
pub struct ConfigFile {
    dir: TempDir,
    path: PathBuf,
}

impl ConfigFile {
    /// Writes `text` to `poolwatch.toml` in a new temporary directory.
    pub fn new(text: &str) -> ConfigFile {
        let dir = tempfile::Builder::new()
            .prefix("poolwatch-test-")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("poolwatch.toml");
        let file = ConfigFile { dir, path };
        file.write(text);
        file
    }

    /// Replaces the file's contents (e.g. before a SIGHUP).
    pub fn write(&self, text: &str) {
        std::fs::write(&self.path, text)
            .unwrap_or_else(|e| panic!("write {}: {e}", self.path.display()));
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding it, free for other files of the test (state, secrets, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// How to spawn the daemon besides its configuration.
#[derive(Debug, Clone, Default)]
pub struct PoolwatchOptions {
    /// Extra environment variables (e.g. secrets referenced as `${VAR}` in the config).
    pub env: Vec<(String, String)>,
    /// Extra arguments after `run --config FILE`.
    pub args: Vec<String>,
}

/// A running `poolwatch run` process; killed on drop, its logs printed if the test panics.
pub struct Poolwatch {
    child: Child,
    /// Also the home of the captured `stdout.log` / `stderr.log`.
    config: ConfigFile,
    /// The HTTP address from the `listening on` log line, once seen.
    addr: Option<SocketAddr>,
    http: reqwest::Client,
}

impl Poolwatch {
    /// Spawns `poolwatch run` with `config` and waits until it logs its HTTP address;
    /// panics with its logs if it exits or stays silent for [`START_TIMEOUT`].
    pub async fn start(config: &str) -> Poolwatch {
        Self::start_with(config, PoolwatchOptions::default()).await
    }

    /// [`Poolwatch::start`] with extra environment and arguments.
    pub async fn start_with(config: &str, options: PoolwatchOptions) -> Poolwatch {
        Self::spawn(config, options).listening().await
    }

    /// [`Poolwatch::start`] with the open-file limit (`RLIMIT_NOFILE`) at `soft` and `hard`
    /// from the first instruction, as `prlimit --nofile=SOFT:HARD` would.
    pub async fn start_with_nofile(config: &str, soft: u64, hard: u64) -> Poolwatch {
        let options = PoolwatchOptions::default();
        Self::spawn_inner(config, options, &[], Some((soft, hard)))
            .listening()
            .await
    }

    /// Waits for the `listening on` line; panics with the logs if it does not come.
    async fn listening(mut self) -> Poolwatch {
        if let Err(e) = self.wait_listening(START_TIMEOUT).await {
            panic!("{e}\n{}", self.logs());
        }
        self
    }

    /// [`Poolwatch::start_with`] through `wrapper`: a command and its arguments that end up
    /// executing the binary's path and arguments appended to them (e.g. `unshare ... sh -c`), so
    /// that the process id stays the daemon's.
    pub async fn start_wrapped(
        config: &str,
        options: PoolwatchOptions,
        wrapper: &[&str],
    ) -> Poolwatch {
        Self::spawn_wrapped(config, options, wrapper)
            .listening()
            .await
    }

    /// Spawns `poolwatch run` without waiting for anything (for configs it should refuse).
    pub fn spawn(config: &str, options: PoolwatchOptions) -> Poolwatch {
        Self::spawn_inner(config, options, &[], None)
    }

    fn spawn_wrapped(config: &str, options: PoolwatchOptions, wrapper: &[&str]) -> Poolwatch {
        Self::spawn_inner(config, options, wrapper, None)
    }

    /// Spawns the binary, through `wrapper` when not empty, with `nofile` limits when given.
    fn spawn_inner(
        config: &str,
        options: PoolwatchOptions,
        wrapper: &[&str],
        nofile: Option<(u64, u64)>,
    ) -> Poolwatch {
        let config = ConfigFile::new(config);
        let log = |name: &str| std::fs::File::create(config.dir().join(name)).expect("log file");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = std::process::Command::new(program);
                c.args(args).arg(BINARY);
                c
            }
            None => std::process::Command::new(BINARY),
        };
        if let Some((soft, hard)) = nofile {
            limit_open_files(&mut command, soft, hard);
        }
        let child = command
            .arg("run")
            .arg("--config")
            .arg(config.path())
            .args(&options.args)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .env("NO_COLOR", "1")
            .current_dir(config.dir())
            .stdin(Stdio::null())
            .stdout(log("stdout.log"))
            .stderr(log("stderr.log"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {BINARY}: {e}"));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        Poolwatch {
            child,
            config,
            addr: None,
            http,
        }
    }

    /// Waits for the `listening on 127.0.0.1:PORT` line; an error if the process exits first
    /// or `timeout` passes.
    pub async fn wait_listening(&mut self, timeout: Duration) -> Result<SocketAddr, String> {
        let pattern = regex::Regex::new(r"listening on (127\.0\.0\.1:\d+)").expect("regex");
        let ansi = regex::Regex::new(r"\x1b\[[0-9;]*m").expect("regex");
        let found = poll_until(timeout, || {
            let logs = ansi.replace_all(&self.logs(), "").into_owned();
            let found = pattern
                .captures(&logs)
                .and_then(|c| c[1].parse::<SocketAddr>().ok());
            let exited = self.child.try_wait().ok().flatten();
            async move {
                match (found, exited) {
                    (Some(addr), _) => Some(Ok(addr)),
                    (None, Some(status)) => Some(Err(format!(
                        "poolwatch exited with {status} before listening"
                    ))),
                    (None, None) => None,
                }
            }
        })
        .await
        .unwrap_or_else(|| {
            Err(format!(
                "poolwatch did not log `listening on` within {timeout:?}"
            ))
        })?;
        self.addr = Some(found);
        Ok(found)
    }

    /// The HTTP address; panics if it has not been seen yet.
    pub fn addr(&self) -> SocketAddr {
        self.addr
            .expect("poolwatch address not known yet: use start() or wait_listening()")
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The configuration file (rewrite it with [`ConfigFile::write`] before [`Poolwatch::sighup`]).
    pub fn config(&self) -> &ConfigFile {
        &self.config
    }

    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.config.dir().join("stdout.log")).unwrap_or_default()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.config.dir().join("stderr.log")).unwrap_or_default()
    }

    /// Stdout and stderr, labelled, for messages.
    pub fn logs(&self) -> String {
        format!(
            "--- poolwatch stdout\n{}--- poolwatch stderr\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    /// Polls until stdout or stderr contains `needle`.
    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        poll_until(timeout, || async {
            self.logs().contains(needle).then_some(())
        })
        .await
        .is_some()
    }

    /// GETs `path`; returns status and body. Panics if the request itself fails.
    pub async fn get(&self, path: &str) -> (u16, String) {
        self.try_get(path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.logs()))
    }

    /// GETs `path`; the transport error as text when there is no response.
    pub async fn try_get(&self, path: &str) -> Result<(u16, String), String> {
        let response = self
            .http
            .get(self.url(path))
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| format!("{e:?}"))?;
        Ok((status, body))
    }

    /// Scrapes `/metrics` and parses it.
    pub async fn metrics(&self) -> Result<Vec<Sample>, String> {
        let (status, body) = self.try_get("/metrics").await?;
        if status != 200 {
            return Err(format!("/metrics answered {status}: {body}"));
        }
        parse_exposition(&body)
    }

    /// Scrapes `/metrics` until the one sample `name` with (at least) `labels` satisfies
    /// `predicate`; returns its value, or after `timeout` an error with the last attempt.
    pub async fn wait_for_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        predicate: impl Fn(f64) -> bool,
        timeout: Duration,
    ) -> Result<f64, String> {
        let last = std::cell::RefCell::new(String::from("no scrape finished"));
        let found = poll_until(timeout, || {
            let (last, predicate) = (&last, &predicate);
            async move {
                let value = self
                    .metrics()
                    .await
                    .and_then(|samples| find_sample(&samples, name, labels));
                match value {
                    Ok(v) if predicate(v) => Some(v),
                    Ok(v) => {
                        *last.borrow_mut() = format!("{name}{labels:?} = {v}");
                        None
                    }
                    Err(e) => {
                        *last.borrow_mut() = e;
                        None
                    }
                }
            }
        })
        .await;
        found.ok_or_else(|| {
            format!(
                "metric condition not met within {timeout:?}; last: {}",
                last.borrow()
            )
        })
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`) to the process.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits i32");
        // SAFETY: kill has no memory-safety preconditions; pid is our own child.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}): {}",
            std::io::Error::last_os_error()
        );
    }

    /// Asks the daemon to reload its configuration.
    pub fn sighup(&self) {
        self.signal(libc::SIGHUP);
    }

    /// Asks the daemon to shut down.
    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Waits for the process to exit; panics with its logs after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let status = poll_until(timeout, || {
            let status = self.child.try_wait().expect("try_wait");
            async move { status }
        })
        .await;
        status
            .unwrap_or_else(|| panic!("poolwatch still running after {timeout:?}\n{}", self.logs()))
    }
}

impl Drop for Poolwatch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Makes the process `command` starts begin with an `RLIMIT_NOFILE` of `soft` and `hard`.
fn limit_open_files(command: &mut std::process::Command, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt;
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: between fork and exec the closure only calls setrlimit, which is
    // async-signal-safe, and reads the errno it leaves.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// Runs `poolwatch ARGS...` to completion (e.g. `check-config`, `snapshot`), stdin closed.
pub async fn run_cli(args: &[&str]) -> Output {
    run_cli_with_env(args, &[]).await
}

/// [`run_cli`] with extra environment variables.
pub async fn run_cli_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(BINARY)
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {BINARY} {args:?}: {e}"))
}
