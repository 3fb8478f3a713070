//! Reusable test harness for poolwatch integration tests: real services, no mocks.
//!
//! Include it from a test crate with `mod common;`. Each test binary uses a different part of
//! it, hence the crate-wide `allow(dead_code)` below.
//!
//! # Layout
//!
//! * [`alertmanager`] — [`Alertmanager`]: a real Alertmanager (Debian's
//!   `prometheus-alertmanager`) as a throwaway process, routing everything to one webhook URL
//!   with short timings.
//! * [`apps`] — [`apps::PythonPoolApp`]: a real Python application with a psycopg_pool pool on a
//!   [`PgCluster`], exporting it through prometheus_client; its clients hold, queue and time
//!   out on command, and its metrics endpoint can turn hostile, want a bearer token, or export
//!   the pool under another name.
//! * [`real_apps`] — [`real_apps::RealApp`]: real Go (`database/sql` + client_golang), Node
//!   (`pg` + OpenTelemetry) and SQLAlchemy (+ OpenTelemetry) applications on a [`PgCluster`],
//!   each exported by its own metrics library; requests hold and queue on command.
//! * [`pg`] — [`PgCluster`]: a throwaway PostgreSQL cluster (own data dir, free port, private
//!   socket dir, optional TLS with a throwaway CA), plus [`ConnectionHold`] to occupy slots.
//! * [`pgbouncer`] — [`PgBouncer`]: a real PgBouncer in front of a [`PgCluster`] (own
//!   configuration, SCRAM secrets, settings changed and `RELOAD`ed, stop/start/kill/freeze),
//!   clients holding server connections, and the admin console read by column name.
//! * [`receiver`] — [`Receiver`]: a real HTTP/1.1 server recording webhook deliveries, whose
//!   status can be changed and which can be stopped and restarted on the same port.
//! * [`poolwatch`] — [`Poolwatch`]: the daemon binary as a child process, with its logs,
//!   HTTP address, signals and exit status; [`run_cli`] for one-shot commands.
//! * [`metrics`] — a small Prometheus text-format parser and [`promtool_check_metrics`].
//! * [`push_apps`] — [`push_apps::PushApp`]: real applications (psycopg_pool, node-postgres)
//!   that push their pool's stats to poolwatch, driven into waiting, stopped or killed.
//! * [`scenario`] — for end-to-end tests of the binary: the monitoring role, config snippets
//!   with fast settings, webhook payloads read back, reports counted over time, a TCP server
//!   that never answers and a port that refuses.
//!
//! # Environment
//!
//! * `POOLWATCH_TEST_PG` — the PostgreSQL major, 13 to 18: the build `scripts/test.sh` cached
//!   (see [`pg::install`]), or Debian's for 15. Without it, `POOLWATCH_TEST_PG_BIN` (or `PG_BIN`),
//!   a directory holding `initdb`, `pg_ctl`, `postgres`; else the newest
//!   `/usr/lib/postgresql/*/bin`.
//! * `POOLWATCH_TEST_PGBOUNCER` — the PgBouncer version, `1.18` (Debian's) or `1.24` (cached
//!   build); default Debian's.
//! * `POOLWATCH_CACHE` — where `scripts/install-test-deps.sh` installed them (default
//!   `/var/cache/poolwatch` as root, else `~/.cache/poolwatch`).
//! * `POOLWATCH_TEST_PROMTOOL` — the `promtool` binary; defaults to `promtool` on `PATH`.
//! * `POOLWATCH_TEST_ALERTMANAGER` — the Alertmanager binary; defaults to
//!   `prometheus-alertmanager` (else `alertmanager`) on `PATH`.
//!
//! When the tests run as root, PostgreSQL and PgBouncer are run as the `postgres` system user
//! (they refuse to run as root); its directories live under the system temporary directory and are handed to
//! that user.

#![allow(dead_code)]

pub mod alertmanager;
pub mod apps;
pub mod metrics;
pub mod pg;
pub mod pgbouncer;
pub mod poolwatch;
pub mod push_apps;
pub mod real_apps;
pub mod receiver;
pub mod scenario;

// Re-exports for test files; each uses only some of them.
#[allow(unused_imports)]
pub use alertmanager::{Alertmanager, AlertmanagerOptions};
#[allow(unused_imports)]
pub use metrics::{parse_exposition, promtool_check_metrics, Sample};
#[allow(unused_imports)]
pub use pg::{ConnectionHold, PgCluster, PgOptions};
#[allow(unused_imports)]
pub use pgbouncer::{PgBouncer, PgBouncerOptions};
#[allow(unused_imports)]
pub use poolwatch::{run_cli, ConfigFile, Poolwatch, PoolwatchOptions};
#[allow(unused_imports)]
pub use receiver::{Receiver, RecordedRequest};

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it returns `Some`, or `timeout` passes (then `None`).
///
/// The check runs at least once, even with a zero timeout.
pub async fn poll_until<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether this process runs with effective uid 0.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether process `pid` has exited: absent from `/proc`, or a zombie nobody has reaped yet.
pub fn process_exited(pid: impl std::fmt::Display) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => matches!(
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next()),
            Some('Z' | 'X')
        ),
    }
}
