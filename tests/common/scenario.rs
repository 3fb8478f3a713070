//! Building blocks of end-to-end tests through the binary: the monitoring role, configuration
//! snippets with fast settings, reading the Alertmanager payloads a [`Receiver`] recorded,
//! counting poolwatch's sessions and reports, a TCP server that accepts and never answers, and
//! a port that refuses connections.
//!
//! [`Receiver`]: crate::common::Receiver

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::common::pgbouncer::Database;
use crate::common::{PgBouncer, PgBouncerOptions, PgCluster, Poolwatch, Receiver, RecordedRequest};

/// The login role poolwatch connects as in end-to-end tests.
pub const MONITOR_ROLE: &str = "poolwatch";
/// Its password.
pub const MONITOR_PASSWORD: &str = "monitor-pw";

/// Creates [`MONITOR_ROLE`] with [`MONITOR_PASSWORD`] and `pg_monitor`, as the README asks.
pub async fn create_monitor_role(pg: &PgCluster) {
    pg.create_role(MONITOR_ROLE, MONITOR_PASSWORD, None).await;
    pg.exec(&format!("GRANT pg_monitor TO {MONITOR_ROLE}"))
        .await;
}

/// A cluster (`max_connections` 40) with the login role `app` (password `app-pw`) and the
/// monitoring role, and a PgBouncer in front of it with `databases`, `app` in its `auth_file`
/// and the monitoring role in `stats_users` (as a PgBouncer target connects), `options`
/// otherwise.
pub async fn bouncer_with_cluster(
    app: &str,
    databases: Vec<Database>,
    options: PgBouncerOptions,
) -> (PgCluster, PgBouncer) {
    let pg = PgCluster::start(crate::common::PgOptions {
        max_connections: 40,
        ..Default::default()
    })
    .await;
    pg.create_role(app, "app-pw", None).await;
    create_monitor_role(&pg).await;
    let options = PgBouncerOptions {
        databases,
        users: vec![app.to_owned()],
        stats_users: vec![MONITOR_ROLE.to_owned()],
        ..options
    };
    let pgb = PgBouncer::start(&pg, options).await;
    (pg, pgb)
}

/// A cluster with default options and the monitoring role.
pub async fn monitored_cluster() -> PgCluster {
    let pg = PgCluster::start(crate::common::PgOptions::default()).await;
    create_monitor_role(&pg).await;
    pg
}

/// `[http]` on a free port of 127.0.0.1, then `[alerting]` with `alerting` lines (may be
/// empty). Targets, rules and receivers follow.
pub fn header(alerting: &str) -> String {
    format!("[http]\nlisten = \"127.0.0.1:0\"\n\n[alerting]\n{alerting}\n")
}

/// A `[[targets]]` table for 127.0.0.1:`port` as [`MONITOR_ROLE`], polled every 100 ms,
/// reconnecting quickly. `extra` lines are appended; when they set `password*` or `sslmode`,
/// the defaults ([`MONITOR_PASSWORD`], `disable`) are left out, other keys must not repeat.
pub fn target(name: &str, port: u16, extra: &str) -> String {
    let sslmode = if extra.contains("sslmode") {
        ""
    } else {
        "sslmode = \"disable\"\n"
    };
    format!(
        "[[targets]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         user = \"{MONITOR_ROLE}\"\n{password}interval = \"100ms\"\nconnect_timeout = \"3s\"\n\
         reconnect_max_backoff = \"200ms\"\n{sslmode}{extra}\n",
        password = if extra.contains("password") {
            String::new()
        } else {
            format!("password = \"{MONITOR_PASSWORD}\"\n")
        },
    )
}

/// A `[[receivers]]` table with fast retries (50 ms doubling up to 500 ms) and one webhook
/// integration to `url` with a 5 s timeout (left out when `extra` sets `timeout`); `extra`
/// lines are appended to the integration.
pub fn receiver(name: &str, url: &str, extra: &str) -> String {
    let timeout = if extra.contains("timeout") {
        ""
    } else {
        "timeout = \"5s\"\n"
    };
    format!(
        "[[receivers]]\nname = \"{name}\"\ninitial_backoff = \"50ms\"\nmax_backoff = \"500ms\"\n\
         [[receivers.integrations]]\ntype = \"webhook\"\nurl = \"{url}\"\n{timeout}{extra}\n"
    )
}

/// A threshold rule on the server pool that fires (warning, at once) while at least one session
/// is idle in transaction: tests drive it with `BEGIN` and `COMMIT` on a connection of their own.
pub fn idle_in_transaction_rule(name: &str, threshold: u32) -> String {
    format!(
        "[[rules]]\nname = \"{name}\"\nmetric = \"idle_in_transaction\"\nwarning = {threshold}\n\
         matchers = ['kind=\"server\"']\nsummary = \"{{{{target}}}}: {{{{idle_in_transaction}}}} idle in transaction\"\n\n"
    )
}

/// The alert of one Alertmanager webhook request, as tests compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `firing` or `resolved` (of the payload; its only alert says the same).
    pub status: String,
    /// `alertname` label.
    pub alertname: String,
    /// `target` label.
    pub target: String,
    /// `pool` label (empty for alerts on a target).
    pub pool: String,
    /// `severity` label.
    pub severity: String,
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// `startsAt`.
    pub starts_at: String,
    /// `annotations.summary`.
    pub summary: String,
    /// `annotations.description`.
    pub description: String,
    /// The HTTP status the receiver answered.
    pub answered: u16,
}

impl Notification {
    /// Reads a recorded webhook request; panics if it is not an Alertmanager v4 payload with
    /// one alert whose status agrees with the payload's.
    pub fn from_request(r: &RecordedRequest) -> Notification {
        let json = r
            .json
            .as_ref()
            .unwrap_or_else(|| panic!("not JSON: {}", r.body_text()));
        assert_eq!(json["version"], "4", "{json}");
        let alerts = json["alerts"].as_array().expect("alerts array");
        assert_eq!(alerts.len(), 1, "{json}");
        let alert = &alerts[0];
        assert_eq!(alert["status"], json["status"], "{json}");
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Notification {
            status: text(&json["status"]),
            alertname: text(&alert["labels"]["alertname"]),
            target: text(&alert["labels"]["target"]),
            pool: text(&alert["labels"]["pool"]),
            severity: text(&alert["labels"]["severity"]),
            fingerprint: text(&alert["fingerprint"]),
            starts_at: text(&alert["startsAt"]),
            summary: text(&alert["annotations"]["summary"]),
            description: text(&alert["annotations"]["description"]),
            answered: r.answered,
        }
    }

    /// `"firing TargetDown db1"`: short enough to compare sequences in assertions.
    pub fn brief(&self) -> String {
        format!("{} {} {}", self.status, self.alertname, self.target)
    }
}

/// Every recorded request as a [`Notification`], oldest first.
pub fn notifications(requests: &[RecordedRequest]) -> Vec<Notification> {
    requests.iter().map(Notification::from_request).collect()
}

/// The requests the receiver answered with 2xx, as [`Notification::brief`]s, oldest first.
pub fn accepted(requests: &[RecordedRequest]) -> Vec<String> {
    notifications(requests)
        .into_iter()
        .filter(|n| (200..300).contains(&n.answered))
        .map(|n| n.brief())
        .collect()
}

/// How many sessions with `application_name = 'poolwatch'` the server has.
pub async fn poolwatch_sessions(pg: &PgCluster) -> i64 {
    pg.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'poolwatch'")
        .await[0]
        .get(0)
}

/// A TCP server on 127.0.0.1 that accepts connections and never sends a byte: a PostgreSQL
/// client connecting to it waits until its timeout, or until [`SilentServer::close`].
pub struct SilentServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
}

impl SilentServer {
    /// Listens on a free port.
    pub async fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        SilentServer {
            addr,
            task,
            accepted,
        }
    }

    /// How many connections it has accepted so far (a client's attempt is in flight once it
    /// has been accepted).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Closes the listener and every accepted connection: clients see the connection end.
    pub async fn close(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A port of 127.0.0.1 that refuses connections for as long as this lives: bound but not
/// listening, so no other process (a cluster another test starts) can take it meanwhile, as it
/// could a port merely found free.
pub struct ClosedPort {
    socket: tokio::net::TcpSocket,
}

impl ClosedPort {
    /// Binds a free port without listening on it.
    pub fn new() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(([127, 0, 0, 1], 0).into()).expect("bind");
        ClosedPort { socket }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.socket.local_addr().expect("local address").port()
    }
}

/// How long tests wait for an event they expect; generous, as only a failure waits this long.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until the one sample `name{labels}` equals `want`; panics (poolwatch's logs are
/// printed as it is dropped) after [`WAIT`].
pub async fn expect_metric(pw: &Poolwatch, name: &str, labels: &[(&str, &str)], want: f64) {
    if let Err(e) = pw.wait_for_metric(name, labels, |v| v == want, WAIT).await {
        panic!("waiting for {name}{labels:?} == {want}: {e}");
    }
}

/// The value of the one sample `name{labels}` now; panics if there is none or several.
pub async fn metric(pw: &Poolwatch, name: &str, labels: &[(&str, &str)]) -> f64 {
    let samples = pw.metrics().await.unwrap_or_else(|e| panic!("scrape: {e}"));
    crate::common::metrics::find_sample(&samples, name, labels).unwrap_or_else(|e| panic!("{e}"))
}

/// Counts the reports poolwatch makes for `target` (`poolwatch_target_reports_total`) over
/// `span`; returns them with the number of `interval`s that passed meanwhile.
pub async fn reports_over(
    pw: &Poolwatch,
    target: &str,
    interval: std::time::Duration,
    span: std::time::Duration,
) -> (f64, f64) {
    let name = "poolwatch_target_reports_total";
    let labels = [("target", target)];
    let (from, started) = (metric(pw, name, &labels).await, std::time::Instant::now());
    tokio::time::sleep(span).await;
    let made = metric(pw, name, &labels).await - from;
    (
        made,
        started.elapsed().as_secs_f64() / interval.as_secs_f64(),
    )
}

/// Waits until the receiver's 2xx-answered requests, as [`Notification::brief`]s, are exactly
/// `want`; panics with what arrived after [`WAIT`].
pub async fn expect_accepted(receiver: &Receiver, want: &[&str]) {
    let arrived = receiver
        .wait_for(|requests| accepted(requests) == want, WAIT)
        .await;
    assert!(
        arrived,
        "expected deliveries {want:?}, receiver accepted {:?}",
        accepted(&receiver.requests())
    );
}

/// Waits until the receiver has accepted exactly `before + want.len()` requests and the ones
/// after the first `before` are `want` in some order (for notices of independent targets,
/// whose order is not defined); panics with what arrived after [`WAIT`].
pub async fn expect_accepted_unordered(receiver: &Receiver, before: usize, want: &[&str]) {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    let arrived = receiver
        .wait_for(
            |requests| {
                let all = accepted(requests);
                let mut new = all.get(before..).unwrap_or_default().to_vec();
                new.sort();
                all.len() == before + want.len() && new == want
            },
            WAIT,
        )
        .await;
    assert!(
        arrived,
        "expected {want:?} after {before} deliveries, receiver accepted {:?}",
        accepted(&receiver.requests())
    );
}
