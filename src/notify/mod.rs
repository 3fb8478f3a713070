//! The notifier: delivers [`Notice`]s to webhook receivers in Alertmanager's format.
//!
//! # Layout
//!
//! * `config` — `[[receivers]]` resolved and validated: [`settings_from_config`] gives
//!   [`ReceiverSettings`].
//! * `payload` — the Alertmanager webhook body (version 4), one notice per payload.
//! * `queue` — one bounded FIFO per receiver, drop-oldest when full, never blocking.
//! * `deliver` — one HTTP attempt, classified retryable or permanent, errors redacted.
//! * `retry` — capped exponential backoff with jitter, honouring `Retry-After` (pure).
//! * `worker` — one task per receiver: in-order delivery, head-of-line retry, shutdown flush.
//! * `metrics` — [`NotifyMetrics`], and the one place that logs and counts each event.
//! * `probe` — the reachability probe of each receiver: at start, then every 30 s; a TCP
//!   connection (and TLS handshake), nothing posted; `poolwatch_receiver_reachable`.
//! * `set` — [`ReceiverSet`], the daemon's receivers, replaced one by one on reload.
//!
//! # Guarantees and bounds
//!
//! [`Notifier::notify`] never blocks or awaits: polling never waits on a receiver. Each receiver
//! gets its notices in order; while it fails, the head is retried and the rest wait, so a
//! receiver that is down for minutes gets every notice once it is back, within two documented
//! bounds: `queue_capacity` (beyond it the oldest is dropped, reason `queue_full`) and
//! `max_retry_age` (a notice queued longer is dropped, reason `expired`). Delivery is at least
//! once: a receiver that times out after accepting a request gets it again. URLs and header
//! values are secrets: they never appear in logs, errors or metrics; log lines name the receiver.

mod config;
mod deliver;
mod metrics;
mod payload;
mod probe;
mod queue;
mod retry;
mod set;
mod worker;

pub use config::{settings_from_config, ReceiverConfig, ReceiverSettings};
pub use deliver::USER_AGENT;
pub use metrics::NotifyMetrics;
pub use set::ReceiverSet;

use crate::model::Severity;
use crate::notice::{Notice, NoticeStatus};
use metrics::{DropReason, Recorder};
use queue::Queue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use worker::{Stop, Worker};

/// The smallest retry delay used, whatever the settings say.
const MIN_BACKOFF: Duration = Duration::from_millis(1);

/// Delivers notices to a fixed set of receivers, each through its own queue and worker task.
///
/// A configuration reload starts a new `Notifier` and shuts the old one down in the background,
/// so that the old queues still drain. Dropping a `Notifier` without [`Notifier::shutdown`]
/// stops its workers at once and counts what they held as dropped (`shutdown`).
pub struct Notifier {
    /// Where [`Notifier::notify`] fans out to, in configuration order.
    receivers: Vec<Receiver>,
    /// The worker tasks with their receiver names, awaited by [`Notifier::shutdown`].
    workers: Vec<(String, JoinHandle<()>)>,
    /// `Some(deadline)` once shutdown is requested; dropping it stops the workers at once.
    stop: watch::Sender<Option<Instant>>,
}

/// The notifier's side of one receiver: what it wants and where to queue it.
struct Receiver {
    /// For [`Notifier::receiver_names`].
    name: String,
    /// Filter: only these severities are queued.
    severities: Vec<Severity>,
    /// Filter: resolved notices are queued only if set.
    send_resolved: bool,
    /// Shared with the worker, which drains it.
    queue: Arc<Queue>,
    /// Logs and counts `queue_full` drops, which happen on this side.
    recorder: Recorder,
}

impl Receiver {
    fn wants(&self, notice: &Notice) -> bool {
        self.severities.contains(&notice.severity)
            && (notice.status == NoticeStatus::Firing || self.send_resolved)
    }
}

impl Notifier {
    /// Starts one worker per receiver. `external_url` is this poolwatch's base URL, used for
    /// `externalURL` and `generatorURL` in payloads. Every receiver's metric series are created
    /// here, at 0.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (it spawns the workers).
    pub fn start(
        receivers: Vec<ReceiverSettings>,
        external_url: String,
        metrics: NotifyMetrics,
    ) -> Notifier {
        let (stop, stop_rx) = watch::channel(None);
        let external_url: Arc<str> = Arc::from(external_url);
        let mut handles = Vec::with_capacity(receivers.len());
        let mut workers = Vec::with_capacity(receivers.len());
        for settings in receivers {
            let recorder = metrics.recorder(&settings.name);
            let queue = Arc::new(Queue::new(
                settings.queue_capacity,
                recorder.queue_length.clone(),
            ));
            let endpoint = deliver::Endpoint::new(&settings);
            if let Err(e) = &endpoint {
                tracing::error!(
                    receiver = %settings.name, error = %e,
                    "receiver cannot be used: its notifications will be dropped"
                );
            }
            let worker = Worker {
                queue: Arc::clone(&queue),
                endpoint,
                recorder: recorder.clone(),
                // Never a zero backoff, even for hand-built settings: that would hammer a
                // failing receiver in a tight loop.
                policy: retry::RetryPolicy {
                    initial: settings.initial_backoff.max(MIN_BACKOFF),
                    max: settings.max_backoff.max(MIN_BACKOFF),
                },
                max_retry_age: settings.max_retry_age,
                external_url: Arc::clone(&external_url),
            };
            let handle = tokio::spawn(worker.run(Stop::new(stop_rx.clone())));
            workers.push((settings.name.clone(), handle));
            handles.push(Receiver {
                name: settings.name,
                severities: settings.severities,
                send_resolved: settings.send_resolved,
                queue,
                recorder,
            });
        }
        Notifier {
            receivers: handles,
            workers,
            stop,
        }
    }

    /// Queues `notice` for every receiver that wants it: its severity is among the receiver's
    /// `severities`, and a resolved notice only where `send_resolved`. Never blocks or awaits;
    /// a full queue drops its oldest notice (counted `queue_full`).
    pub fn notify(&self, notice: &Notice) {
        let mut shared: Option<Arc<Notice>> = None;
        for receiver in self.receivers.iter().filter(|r| r.wants(notice)) {
            let notice = Arc::clone(shared.get_or_insert_with(|| Arc::new(notice.clone())));
            let (item, evicted) = receiver.queue.push(notice);
            receiver.recorder.enqueued(&item);
            if let Some(evicted) = evicted {
                receiver
                    .recorder
                    .dropped_one(DropReason::QueueFull, &evicted);
            }
        }
    }

    /// Stops accepting notices and lets the workers deliver what they hold until `deadline`
    /// from now; what is left then is counted dropped (`shutdown`) and logged. Returns when every
    /// worker has stopped, which is by the deadline (plus the time to cancel an attempt).
    pub async fn shutdown(self, deadline: Duration) {
        let now = Instant::now();
        let until = now
            .checked_add(deadline)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        self.stop.send_replace(Some(until));
        for (name, handle) in self.workers {
            if let Err(e) = handle.await {
                tracing::error!(receiver = %name, error = %e, "notification worker failed");
            }
        }
    }

    /// The receivers' names, in configuration order.
    pub fn receiver_names(&self) -> Vec<String> {
        self.receivers.iter().map(|r| r.name.clone()).collect()
    }
}
