//! The notifier: delivers group [`Notification`]s from the dispatcher through each receiver's
//! integrations (webhook, ...), and reports each delivery back ([`Outcome`]).
//!
//! # Layout
//!
//! * `config` — `[[receivers]]` resolved and validated: [`settings_from_config`] gives
//!   [`ReceiverSettings`].
//! * [`integrations`] — `[[receivers.integrations]]`: one module per kind, each turning a group
//!   notification into a request body and classifying the answer; their shared settings.
//! * `queue` — one bounded queue per integration: one notification per group (a newer one
//!   supersedes), failed ones go to the back, drop-oldest when full, never blocking.
//! * `deliver` — one HTTP attempt, classified by the integration's kind, errors redacted.
//! * `retry` — capped exponential backoff with jitter, honouring `Retry-After` (pure).
//! * `worker` — one task per integration: delivery, retry with backoff, outcome reports,
//!   shutdown flush.
//! * `metrics` — [`NotifyMetrics`], and the one place that logs and counts each event.
//! * `probe` — the reachability probe of each integration: at start, then every 30 s; a TCP
//!   connection (and TLS handshake), nothing posted; `poolwatch_receiver_reachable`.
//! * `set` — [`ReceiverSet`], the daemon's integrations, replaced one by one on reload.
//! * [`test_receiver`] — `poolwatch test-receiver`: a sample firing and resolved notification
//!   through every integration of one receiver, and what each answered.
//!
//! # Guarantees and bounds
//!
//! [`Notifier::notify`] never blocks or awaits: polling never waits on a receiver. Each
//! integration of a receiver has its own queue and worker, so a failing one delays no other.
//! An integration holds at most one notification per group, the newest (an older one still waiting is dropped,
//! reason `superseded`): a receiver that is down for minutes gets each group's current state
//! once it is back, not a backlog. A failed attempt sends its notification to the back of the
//! queue, so one group's retries hold up no other group beyond one backoff. Bounds:
//! `queue_capacity` (beyond it the oldest is dropped, reason `queue_full`) and `max_retry_age`
//! (a notification queued longer is dropped, reason `expired`). Delivery is at least once with a
//! stable id (`Idempotency-Key`): a receiver that times out after accepting a request gets it
//! again, with the same id. URLs and header values are secrets: they never appear in logs,
//! errors or metrics; log lines name the receiver and the integration.

mod config;
mod deliver;
pub mod integrations;
mod metrics;
mod probe;
mod queue;
mod retry;
mod set;
pub mod test_receiver;
mod worker;

pub use config::{settings_from_config, ReceiverConfig, ReceiverSettings};
pub use deliver::{IDEMPOTENCY_KEY, USER_AGENT};
pub use integrations::{IntegrationSettings, IntegrationType, Kind};
pub use metrics::{Disabled, NotifyMetrics};
pub use set::ReceiverSet;

use crate::dispatch::{Notification, Outcome};
use metrics::Recorder;
use queue::Queue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use worker::{Stop, Worker};

/// The smallest retry delay used, whatever the settings say.
const MIN_BACKOFF: Duration = Duration::from_millis(1);

/// Delivers notifications to a fixed set of receivers, each integration through its own queue
/// and worker task.
///
/// A configuration reload starts a new `Notifier` and shuts the old one down in the background,
/// so that the old queues still drain. Dropping a `Notifier` without [`Notifier::shutdown`]
/// stops its workers at once and counts what they held as dropped (`shutdown`).
pub struct Notifier {
    /// Where [`Notifier::notify`] fans out to, in configuration order.
    receivers: Vec<Receiver>,
    /// The worker tasks with their receiver and integration names, awaited by
    /// [`Notifier::shutdown`].
    workers: Vec<(String, String, JoinHandle<()>)>,
    /// `Some(deadline)` once shutdown is requested; dropping it stops the workers at once.
    stop: watch::Sender<Option<Instant>>,
    /// Where notifications dropped for a full queue are reported.
    outcomes: mpsc::UnboundedSender<Outcome>,
}

/// The notifier's side of one integration of a receiver: where to queue its notifications.
struct Receiver {
    /// The receiver's name: notifications for it are queued here.
    name: String,
    /// The integration's name: notifications for it are queued here.
    integration: String,
    /// Shared with the worker, which drains it.
    queue: Arc<Queue>,
    /// Logs and counts `queue_full` and `superseded` drops, which happen on this side.
    recorder: Recorder,
}

impl Notifier {
    /// Starts one worker per integration of each receiver. `external_url` is this poolwatch's base URL, used for
    /// `externalURL` and `generatorURL` in payloads. Every delivery, and every notification
    /// given up, is reported on `outcomes`. Every receiver's metric series are created here,
    /// at 0.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (it spawns the workers).
    pub fn start(
        receivers: Vec<ReceiverSettings>,
        external_url: String,
        metrics: NotifyMetrics,
        outcomes: mpsc::UnboundedSender<Outcome>,
    ) -> Notifier {
        let (stop, stop_rx) = watch::channel(None);
        let external_url: Arc<str> = Arc::from(external_url);
        let mut handles = Vec::new();
        let mut workers = Vec::new();
        let lanes = receivers
            .iter()
            .flat_map(|r| r.integrations.iter().map(move |i| (r, i)));
        for (settings, integration) in lanes {
            let recorder = metrics.recorder(&settings.name, &integration.name);
            let queue = Arc::new(Queue::new(
                settings.queue_capacity,
                recorder.queue_length.clone(),
            ));
            let endpoint = deliver::Endpoint::new(integration);
            if let Err(e) = &endpoint {
                tracing::error!(
                    receiver = %settings.name, integration = %integration.name, error = %e,
                    "integration cannot be used: its notifications will be dropped"
                );
            }
            let worker = Worker {
                queue: Arc::clone(&queue),
                integration: integration.clone(),
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
                max_alerts: settings.max_alerts,
                outcomes: outcomes.clone(),
            };
            let handle = tokio::spawn(worker.run(Stop::new(stop_rx.clone())));
            workers.push((settings.name.clone(), integration.name.clone(), handle));
            handles.push(Receiver {
                name: settings.name.clone(),
                integration: integration.name.clone(),
                queue,
                recorder,
            });
        }
        Notifier {
            receivers: handles,
            workers,
            stop,
            outcomes,
        }
    }

    /// Queues `n` for its receiver's integration (none if this notifier does not have it). Never blocks or
    /// awaits; it supersedes a waiting notification of the same group (counted `superseded`),
    /// and a full queue drops its oldest (counted `queue_full`).
    pub fn notify(&self, n: &Notification) {
        let Some(receiver) = self
            .receivers
            .iter()
            .find(|r| r.name == n.receiver && r.integration == n.integration)
        else {
            return;
        };
        let (item, out) = receiver.queue.push(Arc::new(n.clone()));
        receiver.recorder.enqueued(&item);
        for (why, old) in out {
            receiver.recorder.dropped_one(why, &old);
            if why == metrics::DropReason::QueueFull {
                // Given up: the dispatcher may hand the group's state over again once it
                // changes. (A superseded one needs no report: its successor is on its way.)
                let now = std::time::SystemTime::now();
                let _ = self
                    .outcomes
                    .send(Outcome::of(&old.notification, false, now));
            }
        }
    }

    /// Stops accepting notifications and lets the workers deliver what they hold until `deadline`
    /// from now; what is left then is counted dropped (`shutdown`) and logged. Returns when every
    /// worker has stopped, which is by the deadline (plus the time to cancel an attempt).
    pub async fn shutdown(self, deadline: Duration) {
        let now = Instant::now();
        let until = now
            .checked_add(deadline)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        self.stop.send_replace(Some(until));
        for (name, integration, handle) in self.workers {
            if let Err(e) = handle.await {
                tracing::error!(receiver = %name, integration = %integration, error = %e, "notification worker failed");
            }
        }
    }

    /// The receivers' names, in configuration order, once each.
    pub fn receiver_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for r in &self.receivers {
            if !names.contains(&r.name) {
                names.push(r.name.clone());
            }
        }
        names
    }
}
