//! The notifier against real HTTP receivers: a small hyper server on 127.0.0.1 that records
//! every request and answers from a script. Waits are bounded polls for expected events; no
//! assertion depends on how fast the machine is.

use poolwatch::config::values::Secret;
use poolwatch::dispatch::{AlertState, Outcome};
use poolwatch::notify::{Notifier, NotifyMetrics, ReceiverSettings, USER_AGENT};
use prometheus::{Registry, TextEncoder};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

mod groups;
mod hook;
mod samples;

use hook::{closed_port, Hook, Received, Reply};
use samples::{alert, eventually, fast, firing, firing_to, group};

const TOKEN: &str = "tok-9f8e7d6c5b4a";

// ---------------------------------------------------------------- helpers

/// A registry with the notifier's metrics, and a buffer that captures this test's log lines.
struct Fixture {
    registry: Registry,
    metrics: NotifyMetrics,
    outcomes: Mutex<mpsc::UnboundedReceiver<Outcome>>,
    outcomes_tx: mpsc::UnboundedSender<Outcome>,
    logs: Arc<Mutex<Vec<u8>>>,
    _log_guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Fixture {
    /// Tests run on a current-thread runtime, so a thread-local subscriber sees the workers.
    fn new() -> Fixture {
        let registry = Registry::new();
        let metrics = NotifyMetrics::new(&registry).expect("metrics");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(Arc::clone(&logs));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _log_guard = tracing::subscriber::set_default(subscriber);
        let (outcomes_tx, outcomes) = mpsc::unbounded_channel();
        Fixture {
            registry,
            metrics,
            outcomes: Mutex::new(outcomes),
            outcomes_tx,
            logs,
            _log_guard,
        }
    }

    fn start(&self, receivers: Vec<ReceiverSettings>) -> Notifier {
        Notifier::start(
            receivers,
            "http://poolwatch.test:9671".into(),
            self.metrics.clone(),
            self.outcomes_tx.clone(),
        )
    }

    /// The outcomes reported since the last call: (id, delivered).
    fn outcomes(&self) -> Vec<(String, bool)> {
        let mut rx = self.outcomes.lock().expect("lock");
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|o| (o.id, o.delivered))
            .collect()
    }

    fn exposition(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .expect("encode")
    }

    /// The value of the series `name{labels}`, `None` if it is not exported.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.exposition().lines().find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            let all = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            (n == name && all).then(|| value.parse().ok())?
        })
    }

    async fn wait_value(&self, name: &str, labels: &[(&str, &str)], want: f64) {
        let what = format!("{name}{labels:?} == {want}");
        eventually(&what, || self.value(name, labels) == Some(want)).await;
    }

    fn logs(&self) -> String {
        String::from_utf8_lossy(&self.logs.lock().expect("lock")).into_owned()
    }
}

const DELIVERED: &str = "poolwatch_notifications_delivered_total";
const FAILURES: &str = "poolwatch_notification_failures_total";
const DROPPED: &str = "poolwatch_notifications_dropped_total";
const QUEUE: &str = "poolwatch_notification_queue_length";
const LATENCY: &str = "poolwatch_notification_delivery_seconds_count";

// ---------------------------------------------------------------- cases

#[tokio::test]
async fn delivers_the_alertmanager_payload_with_headers_and_metrics() {
    let fx = Fixture::new();
    let hook = Hook::start(0, vec![]).await;
    let mut settings = fast("ops", hook.url("/hooks/ops"));
    settings.integrations[0]
        .headers
        .push(("x-team".parse().expect("name"), Secret::new("dba")));
    let notifier = fx.start(vec![settings]);
    assert_eq!(notifier.receiver_names(), ["ops"]);
    // Every series exists at 0 before the first event.
    for reason in ["queue_full", "expired", "permanent_error", "shutdown"] {
        assert_eq!(
            fx.value(DROPPED, &[("receiver", "ops"), ("reason", reason)]),
            Some(0.0)
        );
    }
    for class in ["retryable", "permanent"] {
        assert_eq!(
            fx.value(FAILURES, &[("receiver", "ops"), ("class", class)]),
            Some(0.0)
        );
    }
    assert_eq!(fx.value(DELIVERED, &[("receiver", "ops")]), Some(0.0));
    assert_eq!(fx.value(LATENCY, &[("receiver", "ops")]), Some(0.0));
    let text = fx.exposition();
    for family in [
        DELIVERED,
        FAILURES,
        DROPPED,
        QUEUE,
        "poolwatch_notification_delivery_seconds",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no HELP"
        );
    }

    let n = firing("PoolExhausted");
    notifier.notify(&n);
    let got = hook.wait_for_requests(1).await;
    let req = &got[0];
    assert_eq!(req.path, "/hooks/ops");
    assert_eq!(req.headers["idempotency-key"], n.id.as_str());
    assert_eq!(req.headers["content-type"], "application/json");
    assert_eq!(req.headers["user-agent"], USER_AGENT);
    assert!(USER_AGENT.starts_with("poolwatch/"));
    assert_eq!(req.headers["x-team"], "dba");
    let body = &req.json;
    assert_eq!(body["version"], "4");
    assert_eq!(body["receiver"], "ops");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["truncatedAlerts"], 0);
    assert_eq!(body["externalURL"], "http://poolwatch.test:9671");
    assert_eq!(
        body["groupKey"],
        "{}:{alertname=\"PoolExhausted\", severity=\"critical\", target=\"orders-db\"}"
    );
    assert_eq!(body["groupLabels"], body["alerts"][0]["labels"]);
    assert_eq!(body["commonLabels"], body["alerts"][0]["labels"]);
    assert_eq!(
        body["commonAnnotations"]["summary"],
        "PoolExhausted happened"
    );
    let alert = &body["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["startsAt"], "2023-11-14T22:13:20Z");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        alert["generatorURL"],
        "http://poolwatch.test:9671/api/v1/alerts"
    );
    assert_eq!(alert["fingerprint"].as_str().map(str::len), Some(16));

    fx.wait_value(DELIVERED, &[("receiver", "ops")], 1.0).await;
    assert_eq!(fx.value(LATENCY, &[("receiver", "ops")]), Some(1.0));
    assert_eq!(fx.value(QUEUE, &[("receiver", "ops")]), Some(0.0));
    notifier.shutdown(Duration::from_secs(5)).await;
    assert_eq!(fx.outcomes(), [(n.id.clone(), true)]);
    promtool_check(&fx.exposition());
}

/// `promtool check metrics` prints nothing for a clean exposition. Skipped (loudly) where
/// promtool is not installed.
fn promtool_check(exposition: &str) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("promtool not installed: metric lint skipped");
            return;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(exposition.as_bytes()).expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect("promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool: {report}"
    );
}

#[test]
fn the_notifier_can_be_shared_between_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Notifier>();
    assert_send_sync::<NotifyMetrics>();
    assert_send_sync::<ReceiverSettings>();
}

#[tokio::test]
async fn server_errors_are_retried_without_holding_up_other_groups() {
    let fx = Fixture::new();
    let hook = Hook::start(
        0,
        vec![Reply::status(500), Reply::status(502), Reply::status(503)],
    )
    .await;
    let notifier = fx.start(vec![fast("ops", hook.url("/"))]);
    for name in ["A", "B", "C"] {
        notifier.notify(&firing(name));
    }
    let got = hook.wait_for_requests(6).await;
    let sent: Vec<String> = got.iter().map(Received::alertname).collect();
    // A failed group goes to the back: the others are tried before it again.
    assert_eq!(sent, ["A", "B", "C", "A", "B", "C"]);
    assert_eq!(hook.accepted(), ["A", "B", "C"]);
    fx.wait_value(DELIVERED, &[("receiver", "ops")], 3.0).await;
    assert_eq!(fx.value(FAILURES, &[("class", "retryable")]), Some(3.0));
    notifier.shutdown(Duration::from_secs(5)).await;
    // Nothing else was sent: each notification was delivered exactly once.
    assert_eq!(hook.received().len(), 6);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_are_counted_dropped() {
    let fx = Fixture::new();
    let hook = Hook::start(0, vec![Reply::status(400)]).await;
    let notifier = fx.start(vec![fast("ops", hook.url("/"))]);
    notifier.notify(&firing("Rejected"));
    notifier.notify(&firing("Accepted"));
    fx.wait_value(DELIVERED, &[("receiver", "ops")], 1.0).await;
    let sent: Vec<String> = hook.received().iter().map(Received::alertname).collect();
    assert_eq!(sent, ["Rejected", "Accepted"]);
    assert_eq!(fx.value(FAILURES, &[("class", "permanent")]), Some(1.0));
    assert_eq!(fx.value(FAILURES, &[("class", "retryable")]), Some(0.0));
    assert_eq!(
        fx.value(DROPPED, &[("reason", "permanent_error")]),
        Some(1.0)
    );
    assert!(fx.logs().contains("HTTP 400 Bad Request"), "{}", fx.logs());
    notifier.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn retry_after_is_honoured_and_capped_at_max_backoff() {
    let fx = Fixture::new();
    let wait_1s = Reply {
        headers: vec![("retry-after", "1".into())],
        ..Reply::status(429)
    };
    let wait_1h = Reply {
        headers: vec![("retry-after", "3600".into())],
        ..Reply::status(503)
    };
    let polite = Hook::start(0, vec![wait_1s]).await;
    let capped = Hook::start(0, vec![wait_1h]).await;
    let mut honoured = fast("polite", polite.url("/"));
    honoured.max_backoff = Duration::from_secs(30);
    let notifier = fx.start(vec![honoured, fast("capped", capped.url("/"))]);
    notifier.notify(&firing_to("polite", "Slow"));
    notifier.notify(&firing_to("capped", "Slow"));
    let got = polite.wait_for_requests(2).await;
    // A lower bound only: the receiver asked for one second, our backoff alone is 5ms.
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(950),
        "{:?}",
        got[1].at - got[0].at
    );
    // An hour is capped at max_backoff (50ms): the retry arrives within the bounded wait.
    capped.wait_for_requests(2).await;
    assert_eq!(capped.accepted(), ["Slow"]);
    notifier.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts_it() {
    let fx = Fixture::new();
    let port = closed_port();
    let mut settings = fast("ops", format!("http://127.0.0.1:{port}/"));
    settings.queue_capacity = 3;
    let notifier = fx.start(vec![settings]);
    notifier.notify(&firing("N1"));
    let retryable = [("receiver", "ops"), ("class", "retryable")];
    eventually("a failed attempt", || {
        fx.value(FAILURES, &retryable) >= Some(1.0)
    })
    .await;
    for name in ["N2", "N3", "N4", "N5", "N6"] {
        notifier.notify(&firing(name));
    }
    // N1 may be evicted mid-attempt; then its drop is counted when that attempt fails.
    fx.wait_value(DROPPED, &[("reason", "queue_full")], 3.0)
        .await;
    assert_eq!(fx.value(QUEUE, &[("receiver", "ops")]), Some(3.0));
    let hook = Hook::start(port, vec![]).await;
    hook.wait_for_requests(3).await;
    let mut accepted = hook.accepted();
    accepted.sort();
    assert_eq!(accepted, ["N4", "N5", "N6"]);
    assert!(fx.logs().contains("reason=\"queue_full\""), "{}", fx.logs());
    // The dispatcher hears of each: given up, not delivered.
    let outcomes = fx.outcomes();
    let given_up = outcomes.iter().filter(|(_, ok)| !ok).count();
    assert_eq!(given_up, 3, "{outcomes:?}");
    notifier.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_notice_evicted_mid_attempt_is_settled_by_that_attempt() {
    let fx = Fixture::new();
    let gate = Arc::new(tokio::sync::Notify::new());
    let held = |status| Reply {
        hold: Some(Arc::clone(&gate)),
        ..Reply::status(status)
    };
    let hook = Hook::start(0, vec![held(200), Reply::status(200), held(500)]).await;
    let mut settings = fast("ops", hook.url("/"));
    settings.queue_capacity = 1;
    let notifier = fx.start(vec![settings]);
    // Accepted after eviction: delivered, not dropped.
    notifier.notify(&firing("H1"));
    hook.wait_for_requests(1).await;
    notifier.notify(&firing("X1"));
    gate.notify_one();
    fx.wait_value(DELIVERED, &[("receiver", "ops")], 2.0).await;
    assert_eq!(fx.value(DROPPED, &[("reason", "queue_full")]), Some(0.0));
    // Failed after eviction: dropped (queue_full), never retried.
    notifier.notify(&firing("H2"));
    hook.wait_for_requests(3).await;
    notifier.notify(&firing("X2"));
    gate.notify_one();
    fx.wait_value(DELIVERED, &[("receiver", "ops")], 3.0).await;
    assert_eq!(fx.value(DROPPED, &[("reason", "queue_full")]), Some(1.0));
    assert_eq!(fx.value(FAILURES, &[("class", "retryable")]), Some(1.0));
    let sent: Vec<String> = hook.received().iter().map(Received::alertname).collect();
    assert_eq!(sent, ["H1", "X1", "H2", "X2"]);
    assert_eq!(hook.accepted(), ["H1", "X1", "X2"]);
    notifier.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn notices_older_than_max_retry_age_are_given_up() {
    let fx = Fixture::new();
    let mut settings = fast("ops", format!("http://127.0.0.1:{}/", closed_port()));
    settings.max_retry_age = Duration::from_millis(200);
    let notifier = fx.start(vec![settings]);
    notifier.notify(&firing("Stale"));
    fx.wait_value(DROPPED, &[("reason", "expired")], 1.0).await;
    assert_eq!(fx.value(QUEUE, &[("receiver", "ops")]), Some(0.0));
    notifier.shutdown(Duration::from_secs(5)).await;
    assert_eq!(fx.value(DROPPED, &[("reason", "shutdown")]), Some(0.0));
}

#[tokio::test]
async fn shutdown_flushes_what_it_can_and_counts_the_rest() {
    let fx = Fixture::new();
    let hook = Hook::start(0, vec![]).await;
    let up = fast("up", hook.url("/"));
    let down = fast("down", format!("http://127.0.0.1:{}/", closed_port()));
    let notifier = fx.start(vec![up, down]);
    for name in ["S1", "S2", "S3"] {
        notifier.notify(&firing_to("up", name));
        notifier.notify(&firing_to("down", name));
    }
    let bounded = Duration::from_secs(20);
    let stopped =
        tokio::time::timeout(bounded, notifier.shutdown(Duration::from_millis(300))).await;
    assert!(stopped.is_ok(), "shutdown did not return");
    // The live receiver got everything; the dead one's are counted, not lost silently.
    assert_eq!(hook.accepted(), ["S1", "S2", "S3"]);
    assert_eq!(fx.value(DELIVERED, &[("receiver", "up")]), Some(3.0));
    assert_eq!(
        fx.value(DROPPED, &[("receiver", "down"), ("reason", "shutdown")]),
        Some(3.0)
    );
    assert_eq!(
        fx.value(DROPPED, &[("receiver", "up"), ("reason", "shutdown")]),
        Some(0.0)
    );
    assert_eq!(fx.value(QUEUE, &[("receiver", "down")]), Some(0.0));
    assert!(
        fx.logs().contains("shutdown deadline reached"),
        "{}",
        fx.logs()
    );
}

#[tokio::test]
async fn dropping_a_notifier_without_shutdown_stops_its_workers_and_counts_the_loss() {
    let fx = Fixture::new();
    let notifier = fx.start(vec![fast(
        "ops",
        format!("http://127.0.0.1:{}/", closed_port()),
    )]);
    notifier.notify(&firing("Orphan"));
    drop(notifier);
    fx.wait_value(DROPPED, &[("reason", "shutdown")], 1.0).await;
    assert_eq!(fx.value(QUEUE, &[("receiver", "ops")]), Some(0.0));
}

#[tokio::test]
async fn secrets_never_reach_logs_errors_or_metrics() {
    let fx = Fixture::new();
    let echo = |status| Reply {
        echo: true,
        ..Reply::status(status)
    };
    let hook = Hook::start(0, vec![echo(500), echo(404)]).await;
    let mut echoed = fast("echoed", hook.url(&format!("/hooks/{TOKEN}")));
    echoed.integrations[0].headers.push((
        "authorization".parse().expect("name"),
        Secret::new(format!("Bearer {TOKEN}")),
    ));
    let refused = fast(
        "refused",
        format!("http://u:{TOKEN}@127.0.0.1:{}/{TOKEN}", closed_port()),
    );
    let notifier = fx.start(vec![echoed, refused]);
    notifier.notify(&firing_to("echoed", "Leaky"));
    notifier.notify(&firing_to("refused", "Leaky"));
    let got = hook.wait_for_requests(2).await;
    // The receiver really did echo the secrets back...
    assert_eq!(got[0].headers["authorization"], format!("Bearer {TOKEN}"));
    fx.wait_value(
        DROPPED,
        &[("receiver", "echoed"), ("reason", "permanent_error")],
        1.0,
    )
    .await;
    let retryable = [("receiver", "refused"), ("class", "retryable")];
    eventually("refused attempts", || {
        fx.value(FAILURES, &retryable) >= Some(2.0)
    })
    .await;
    notifier.shutdown(Duration::from_millis(100)).await;
    // ...and yet no log line, error text or metric carries them.
    let logs = fx.logs();
    assert!(
        logs.contains("receiver=echoed") && logs.contains("receiver=refused"),
        "{logs}"
    );
    assert!(
        logs.contains("HTTP 500") && logs.contains("<redacted>"),
        "{logs}"
    );
    assert!(!logs.contains(TOKEN), "secret in logs:\n{logs}");
    assert!(!fx.exposition().contains(TOKEN));
}

#[tokio::test]
async fn a_redirect_is_a_permanent_error_and_is_not_followed() {
    let fx = Fixture::new();
    let elsewhere = Hook::start(0, vec![]).await;
    let moved = Reply {
        headers: vec![("location", elsewhere.url("/stolen"))],
        ..Reply::status(302)
    };
    let hook = Hook::start(0, vec![moved]).await;
    let mut settings = fast("ops", hook.url("/"));
    settings.integrations[0]
        .headers
        .push(("x-api-key".parse().expect("name"), Secret::new(TOKEN)));
    let notifier = fx.start(vec![settings]);
    notifier.notify(&firing("Redirected"));
    notifier.notify(&firing("After"));
    // Once the next notice is delivered, the redirected one has been settled.
    eventually("the next notice delivered", || {
        hook.received().len() >= 2 && fx.value(DELIVERED, &[("receiver", "ops")]) >= Some(1.0)
    })
    .await;
    // Neither the payload nor the secret header went to the redirect's target.
    let leaked: Vec<_> = elsewhere
        .received()
        .into_iter()
        .map(|r| (r.path, r.headers))
        .collect();
    assert!(leaked.is_empty(), "the redirect was followed: {leaked:?}");
    let sent: Vec<String> = hook.received().iter().map(Received::alertname).collect();
    assert_eq!(sent, ["Redirected", "After"]);
    assert_eq!(hook.received()[0].headers["x-api-key"], TOKEN);
    assert_eq!(fx.value(DELIVERED, &[("receiver", "ops")]), Some(1.0));
    assert_eq!(fx.value(FAILURES, &[("class", "permanent")]), Some(1.0));
    assert_eq!(fx.value(FAILURES, &[("class", "retryable")]), Some(0.0));
    assert_eq!(
        fx.value(DROPPED, &[("reason", "permanent_error")]),
        Some(1.0)
    );
    assert!(fx.logs().contains("HTTP 302"), "{}", fx.logs());
    notifier.shutdown(Duration::from_secs(5)).await;
    assert!(elsewhere.received().is_empty());
    assert!(!fx.logs().contains(TOKEN), "{}", fx.logs());
}
