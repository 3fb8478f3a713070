//! One integration's worker: delivers its queue front first; a notification whose attempt fails
//! goes to the back and the next one is tried after the backoff, until each is delivered,
//! refused, expired, superseded or evicted. Every delivery (and every notification given up)
//! is reported to the dispatcher. At shutdown it flushes until the deadline.

use super::deliver::{AttemptError, Endpoint};
use super::integrations::{Context, IntegrationSettings};
use super::metrics::{DropReason, Recorder};
use super::queue::{AttemptEnd, Item, Queue};
use super::retry::RetryPolicy;
use crate::dispatch::Outcome;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, sleep_until, Instant};

/// The shutdown signal as a worker sees it: no deadline while running, then the instant by
/// which it must stop. A notifier dropped without `shutdown` means "stop now".
pub(crate) struct Stop {
    rx: watch::Receiver<Option<Instant>>,
    abandoned_at: Option<Instant>,
}

impl Stop {
    /// Wraps the receiving side of the notifier's shutdown channel.
    pub(crate) fn new(rx: watch::Receiver<Option<Instant>>) -> Self {
        Stop {
            rx,
            abandoned_at: None,
        }
    }

    /// The shutdown deadline, once shutdown was requested.
    fn deadline(&mut self) -> Option<Instant> {
        if let Some(deadline) = *self.rx.borrow() {
            return Some(deadline);
        }
        if self.rx.has_changed().is_err() {
            return Some(*self.abandoned_at.get_or_insert_with(Instant::now));
        }
        None
    }

    /// Resolves when shutdown is requested.
    async fn requested(&mut self) -> Instant {
        loop {
            if let Some(deadline) = self.deadline() {
                return deadline;
            }
            // An error means the sender is gone: `deadline` reports that on the next turn.
            let _ = self.rx.changed().await;
        }
    }

    /// Resolves when the shutdown deadline has passed.
    async fn reached(&mut self) {
        let deadline = self.requested().await;
        sleep_until(deadline).await;
    }
}

/// What one turn of the loop did with the head.
enum Turn {
    /// The head is settled (delivered or given up): go on with the next at once.
    Settled,
    /// Nothing was attempted (the item was evicted meanwhile): go on, the receiver's state is
    /// unchanged.
    Skipped,
    /// The attempt failed but its item is gone (superseded or evicted during the attempt,
    /// already reported): back off before trying the next one, the receiver is still failing.
    Backoff {
        /// The receiver's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// The service answered 410 Gone (the item is settled, dropped): the integration is
    /// disabled from now on.
    Gone,
    /// The item failed and is worth retrying (it went to the back of the queue).
    Retry {
        /// What went wrong, redacted.
        message: String,
        /// The receiver's `Retry-After`.
        retry_after: Option<Duration>,
    },
}

/// Delivers one integration's queue.
pub(crate) struct Worker {
    /// The queue shared with [`super::Notifier::notify`].
    pub(crate) queue: Arc<Queue>,
    /// What it delivers through: renders bodies.
    pub(crate) integration: IntegrationSettings,
    /// Where to post; an error (already logged) makes every notice a permanent failure.
    pub(crate) endpoint: Result<Endpoint, String>,
    /// Logs and counts every event.
    pub(crate) recorder: Recorder,
    /// Backoff between failed attempts.
    pub(crate) policy: RetryPolicy,
    /// Age after which a queued notice is given up.
    pub(crate) max_retry_age: Duration,
    /// `externalURL` of bodies.
    pub(crate) external_url: Arc<str>,
    /// At most this many alerts per body (0: all).
    pub(crate) max_alerts: usize,
    /// Where deliveries and give-ups are reported (to the dispatcher).
    pub(crate) outcomes: mpsc::UnboundedSender<Outcome>,
}

impl Worker {
    /// Runs until shutdown: until the queue is empty, or the deadline passes, whichever is
    /// first; what is left then is counted dropped (`shutdown`).
    pub(crate) async fn run(self, mut stop: Stop) {
        // Consecutive failed attempts of this receiver (not of one notice): the backoff
        // exponent. Reset whenever the receiver answers for good.
        let mut failures = 0u32;
        // Attempts made per queued item, for log lines.
        let mut attempts: std::collections::HashMap<u64, u32> = Default::default();
        // Set by a 410 Gone: from then on, every notification is dropped (`disabled`) unsent,
        // until a reload that changes this integration starts a new worker.
        let mut disabled = false;
        loop {
            let Some(item) = self.queue.front() else {
                if stop.deadline().is_some() {
                    break;
                }
                tokio::select! {
                    _ = self.queue.pushed() => {}
                    _ = stop.requested() => {}
                }
                continue;
            };
            if disabled {
                if self.queue.remove(item.seq) {
                    self.recorder.dropped_one(DropReason::Disabled, &item);
                    self.report(&item, false);
                }
                continue;
            }
            if item.enqueued.elapsed() > self.max_retry_age {
                if self.queue.remove(item.seq) {
                    self.recorder.dropped_one(DropReason::Expired, &item);
                    self.report(&item, false);
                }
                continue;
            }
            let count = attempts.entry(item.seq).or_default();
            *count += 1;
            let count = *count;
            let turn = tokio::select! {
                biased;
                _ = stop.reached() => break,
                turn = self.attempt(&item, count) => turn,
            };
            if !matches!(turn, Turn::Retry { .. }) {
                attempts.remove(&item.seq);
            }
            let (retry_after, failure) = match turn {
                Turn::Settled => {
                    failures = 0;
                    continue;
                }
                Turn::Skipped => continue,
                Turn::Gone => {
                    disabled = true;
                    continue;
                }
                Turn::Backoff { retry_after } => (retry_after, None),
                Turn::Retry {
                    message,
                    retry_after,
                } => (retry_after, Some(message)),
            };
            failures = failures.saturating_add(1);
            let delay = self.policy.delay(failures, retry_after, rand::random());
            if let Some(message) = failure {
                self.recorder
                    .retryable_failure(&item, count, &message, Some(delay));
            }
            tokio::select! {
                biased;
                _ = stop.reached() => break,
                _ = sleep(delay) => {}
            }
        }
        self.recorder.dropped_at_shutdown(self.queue.take_all());
    }

    /// Tells the dispatcher how `item` ended.
    fn report(&self, item: &Item, delivered: bool) {
        // The dispatcher is gone only at shutdown, when nothing is listening any more.
        let _ = self.outcomes.send(Outcome::of(
            &item.notification,
            delivered,
            SystemTime::now(),
        ));
    }

    /// One attempt on `item`, settled with the queue, logged, counted and reported.
    async fn attempt(&self, item: &Item, attempts: u32) -> Turn {
        let result = match &self.endpoint {
            Err(e) => Err(AttemptError::Permanent { message: e.clone() }),
            Ok(endpoint) => {
                let ctx = Context {
                    receiver: self.recorder.receiver(),
                    external_url: &self.external_url,
                    max_alerts: self.max_alerts,
                };
                match self.integration.render(&item.notification, &ctx) {
                    Err(message) => Err(AttemptError::Permanent { message }),
                    Ok(body) => {
                        if !self.queue.begin_attempt(item.seq) {
                            // Evicted (and reported) since we looked at the queue.
                            return Turn::Skipped;
                        }
                        let result = endpoint.attempt(body, &item.notification.id).await;
                        let settled = !matches!(result, Err(AttemptError::Retryable { .. }));
                        if let AttemptEnd::Removed(why) = self.queue.end_attempt(item.seq, settled)
                        {
                            return self.settle_removed(item, attempts, result, why);
                        }
                        result
                    }
                }
            }
        };
        match result {
            Ok(_) => {
                self.recorder.delivered(item, attempts);
                self.report(item, true);
                Turn::Settled
            }
            Err(AttemptError::Permanent { message }) => {
                // Not attempted over HTTP if the endpoint or payload failed: remove it here.
                self.queue.remove(item.seq);
                self.recorder.permanent_failure(item, attempts, &message);
                self.report(item, false);
                Turn::Settled
            }
            Err(AttemptError::Gone { message }) => {
                self.queue.remove(item.seq);
                self.recorder.gone(item, attempts, &message);
                self.report(item, false);
                Turn::Gone
            }
            Err(AttemptError::Retryable {
                message,
                retry_after,
            }) => Turn::Retry {
                message,
                retry_after,
            },
        }
    }

    /// `item` was superseded or evicted (`why`) while in flight: the attempt decides its fate.
    fn settle_removed(
        &self,
        item: &Item,
        attempts: u32,
        result: Result<reqwest::StatusCode, AttemptError>,
        why: DropReason,
    ) -> Turn {
        match result {
            Ok(_) => {
                self.recorder.delivered(item, attempts);
                self.report(item, true);
                Turn::Settled
            }
            Err(AttemptError::Permanent { message }) => {
                self.recorder.permanent_failure(item, attempts, &message);
                self.report(item, false);
                Turn::Settled
            }
            Err(AttemptError::Gone { message }) => {
                self.recorder.gone(item, attempts, &message);
                self.report(item, false);
                Turn::Gone
            }
            Err(AttemptError::Retryable {
                message,
                retry_after,
            }) => {
                self.recorder
                    .retryable_failure(item, attempts, &message, None);
                self.recorder.dropped_one(why, item);
                if why == DropReason::QueueFull {
                    self.report(item, false);
                }
                Turn::Backoff { retry_after }
            }
        }
    }
}
