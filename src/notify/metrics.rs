//! Notifier metrics and the one place where every runtime event is both logged and counted.

use super::queue::Item;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use std::sync::Arc;
use std::time::Duration;

/// Why a notification was given up; the `reason` label of
/// `poolwatch_notifications_dropped_total` and the log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The receiver's queue was full; the oldest notification made room for a new one.
    QueueFull,
    /// It waited longer than the receiver's `max_retry_age`.
    Expired,
    /// The receiver answered with a status that retrying cannot fix (4xx other than 408/429).
    PermanentError,
    /// The notifier was shut down before it could be delivered.
    Shutdown,
    /// A newer notification of the same group replaced it before it was delivered.
    Superseded,
    /// Its integration is disabled: the service answered 410 Gone.
    Disabled,
}

impl DropReason {
    /// Every reason, for pre-initialised series.
    pub const ALL: [DropReason; 6] = [
        DropReason::QueueFull,
        DropReason::Expired,
        DropReason::PermanentError,
        DropReason::Shutdown,
        DropReason::Superseded,
        DropReason::Disabled,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Expired => "expired",
            DropReason::PermanentError => "permanent_error",
            DropReason::Shutdown => "shutdown",
            DropReason::Superseded => "superseded",
            DropReason::Disabled => "disabled",
        }
    }
}

/// The log target of every notifier event, whichever file logs it.
const TARGET: &str = "poolwatch::notify";

/// Latency buckets from enqueue to delivery: milliseconds when the receiver is up, up to the
/// default `max_retry_age` of an hour when it was down.
const DELIVERY_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// The notifier's metric families. Create it once per process and pass clones to every
/// [`super::Notifier`] (a reload starts a new notifier with the same metrics).
#[derive(Clone)]
pub struct NotifyMetrics {
    /// `poolwatch_notifications_delivered_total{receiver,integration}`.
    delivered: IntCounterVec,
    /// `poolwatch_notification_failures_total{receiver,integration,class}`.
    failures: IntCounterVec,
    /// `poolwatch_notifications_dropped_total{receiver,integration,reason}`.
    dropped: IntCounterVec,
    /// `poolwatch_notification_queue_length{receiver,integration}`.
    queue_length: IntGaugeVec,
    /// `poolwatch_notification_delivery_seconds{receiver,integration}`.
    delivery_seconds: HistogramVec,
    /// `poolwatch_receiver_reachable{receiver,integration}`, set by the reachability probe.
    reachable: IntGaugeVec,
    /// `poolwatch_notification_decisions_total{receiver,integration,reason}`, counted by the
    /// daemon.
    decisions: IntCounterVec,
    /// The integrations disabled by a 410 Gone, and their gauge.
    disabled: Disabled,
}

impl NotifyMetrics {
    /// Creates the families and registers them in `registry`; fails if they already are.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let delivered = IntCounterVec::new(
            Opts::new(
                "poolwatch_notifications_delivered_total",
                "Notifications a receiver's integration accepted.",
            ),
            &["receiver", "integration"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "poolwatch_notification_failures_total",
                "Failed delivery attempts, by whether retrying can help (retryable) or not (permanent).",
            ),
            &["receiver", "integration", "class"],
        )?;
        let dropped = IntCounterVec::new(
            Opts::new(
                "poolwatch_notifications_dropped_total",
                "Notifications given up without delivery, by reason (queue_full, expired, permanent_error, shutdown, superseded, disabled).",
            ),
            &["receiver", "integration", "reason"],
        )?;
        let queue_length = IntGaugeVec::new(
            Opts::new(
                "poolwatch_notification_queue_length",
                "Notifications waiting for delivery to a receiver's integration, including the one being retried.",
            ),
            &["receiver", "integration"],
        )?;
        let delivery_seconds = HistogramVec::new(
            HistogramOpts::new(
                "poolwatch_notification_delivery_seconds",
                "Time from queueing a notification to its delivery, retries included.",
            )
            .buckets(DELIVERY_BUCKETS.to_vec()),
            &["receiver", "integration"],
        )?;
        let reachable = IntGaugeVec::new(
            Opts::new(
                "poolwatch_receiver_reachable",
                "1 when the integration's service accepted a TCP connection (and TLS handshake for https) at the last probe (at start, then every 30s), 0 when it could not be reached.",
            ),
            &["receiver", "integration"],
        )?;
        let decisions = IntCounterVec::new(
            Opts::new(
                "poolwatch_notification_decisions_total",
                "Group flushes checked against the notification log, by receiver, integration and the decision's reason (first_notification, new_firing, new_resolved, all_resolved, resolved_in_flight, repeat notify; up_to_date, never_fired, empty do not).",
            ),
            &["receiver", "integration", "reason"],
        )?;
        let disabled_gauge = IntGaugeVec::new(
            Opts::new(
                "poolwatch_integration_disabled",
                "1 while an integration is disabled because its service answered 410 Gone (until a reload changes it), else 0.",
            ),
            &["receiver", "integration"],
        )?;
        registry.register(Box::new(disabled_gauge.clone()))?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(delivered.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(queue_length.clone()))?;
        registry.register(Box::new(delivery_seconds.clone()))?;
        registry.register(Box::new(reachable.clone()))?;
        Ok(NotifyMetrics {
            delivered,
            failures,
            dropped,
            queue_length,
            delivery_seconds,
            reachable,
            decisions,
            disabled: Disabled {
                gauge: disabled_gauge,
                why: Arc::default(),
            },
        })
    }

    /// The integrations disabled by a 410 Gone (shared: `/readyz` lists them).
    pub fn disabled(&self) -> Disabled {
        self.disabled.clone()
    }

    /// Counts one flush decision of a group of `receiver`'s `integration`, by its reason.
    pub fn decided(&self, receiver: &str, integration: &str, reason: crate::dispatch::Reason) {
        self.decisions
            .with_label_values(&[receiver, integration, reason.as_str()])
            .inc();
    }

    /// The reachability gauge of `receiver`'s `integration`.
    pub(crate) fn reachable(&self, receiver: &str, integration: &str) -> ReachableGauge {
        ReachableGauge {
            family: self.reachable.clone(),
            receiver: Arc::from(receiver),
            integration: Arc::from(integration),
        }
    }

    /// Removes the series of an integration that is no longer configured.
    pub(crate) fn forget_reachable(&self, receiver: &str, integration: &str) {
        let _ = self.reachable.remove_label_values(&[receiver, integration]);
        self.disabled.forget(receiver, integration);
    }

    /// The series of one integration of a receiver, created now so that they are exported at
    /// 0 before the first event.
    pub(crate) fn recorder(&self, receiver: &str, integration: &str) -> Recorder {
        let ri = [receiver, integration];
        let dropped = DropReason::ALL.map(|r| {
            self.dropped
                .with_label_values(&[receiver, integration, r.as_str()])
        });
        for r in crate::dispatch::Reason::ALL {
            self.decisions
                .with_label_values(&[receiver, integration, r.as_str()]);
        }
        // A (re)started integration starts enabled.
        self.disabled.set(receiver, integration, None);
        Recorder {
            disabled: self.disabled.clone(),
            receiver: Arc::from(receiver),
            integration: Arc::from(integration),
            delivered: self.delivered.with_label_values(&ri),
            retryable: self
                .failures
                .with_label_values(&[receiver, integration, "retryable"]),
            permanent: self
                .failures
                .with_label_values(&[receiver, integration, "permanent"]),
            dropped,
            queue_length: self.queue_length.with_label_values(&ri),
            delivery_seconds: self.delivery_seconds.with_label_values(&ri),
        }
    }
}

/// One integration's `poolwatch_receiver_reachable` series, created by its first [`set`], so
/// that "not probed yet" (or not probed at all: a proxy) is not exported as "unreachable".
///
/// [`set`]: ReachableGauge::set
#[derive(Clone)]
pub(crate) struct ReachableGauge {
    family: IntGaugeVec,
    receiver: Arc<str>,
    integration: Arc<str>,
}

impl ReachableGauge {
    /// Records a probe's outcome.
    pub(crate) fn set(&self, reachable: bool) {
        self.family
            .with_label_values(&[&*self.receiver, &*self.integration])
            .set(i64::from(reachable));
    }
}

/// One integration's series, and the only place that logs and counts its events. Log lines
/// name the receiver, the integration and the alert, never the URL or a header.
#[derive(Clone)]
pub(crate) struct Recorder {
    /// The receiver name: log field and metric label.
    receiver: Arc<str>,
    /// The integration name: log field and metric label.
    integration: Arc<str>,
    /// Resolved series, so that an event costs no label lookup.
    delivered: IntCounter,
    /// Failures of class `retryable`.
    retryable: IntCounter,
    /// Failures of class `permanent`.
    permanent: IntCounter,
    /// Drops, in the order of [`DropReason::ALL`].
    dropped: [IntCounter; 6],
    /// Where a 410 Gone disables this integration.
    disabled: Disabled,
    /// Shared by every queue of this receiver and integration name: while an old notifier drains after a
    /// reload, both add their own length, so the gauge is the total held.
    pub(crate) queue_length: IntGauge,
    /// Enqueue-to-delivery latency.
    delivery_seconds: Histogram,
}

impl Recorder {
    /// The receiver name.
    pub(crate) fn receiver(&self) -> &str {
        &self.receiver
    }

    /// A notification was queued for this receiver.
    pub(crate) fn enqueued(&self, item: &Item) {
        tracing::debug!(
                target: TARGET,
            receiver = %self.receiver, integration = %self.integration, group_key = item.group_key(), status = item.status(),
            id = %item.notification.id, "notification queued"
        );
    }

    /// The receiver accepted the notification.
    pub(crate) fn delivered(&self, item: &Item, attempts: u32) {
        let latency = item.enqueued.elapsed();
        self.delivered.inc();
        self.delivery_seconds.observe(latency.as_secs_f64());
        tracing::info!(
                target: TARGET,
            receiver = %self.receiver, integration = %self.integration, group_key = item.group_key(), status = item.status(),
            id = %item.notification.id, attempts, latency = ?latency,
            "notification delivered"
        );
    }

    /// An attempt failed in a way a later attempt may not; the next attempt is in `retry_in`,
    /// or there is none because the notification was evicted meanwhile (its drop follows).
    pub(crate) fn retryable_failure(
        &self,
        item: &Item,
        attempts: u32,
        error: &str,
        retry_in: Option<Duration>,
    ) {
        self.retryable.inc();
        match retry_in {
            Some(retry_in) => tracing::warn!(
                target: TARGET,
                receiver = %self.receiver, integration = %self.integration, group_key = item.group_key(), status = item.status(),
                id = %item.notification.id, attempts, error, retry_in = ?retry_in,
                "notification delivery failed, will retry"
            ),
            None => tracing::warn!(
                target: TARGET,
                receiver = %self.receiver, integration = %self.integration, group_key = item.group_key(), status = item.status(),
                id = %item.notification.id, attempts, error,
                "notification delivery failed"
            ),
        }
    }

    /// The receiver refused the notification for good: counted as a permanent failure and as
    /// dropped (`permanent_error`), in one log line.
    pub(crate) fn permanent_failure(&self, item: &Item, attempts: u32, error: &str) {
        self.permanent.inc();
        self.dropped(DropReason::PermanentError).inc();
        tracing::error!(
                target: TARGET,
            receiver = %self.receiver, integration = %self.integration, group_key = item.group_key(), status = item.status(),
            id = %item.notification.id, attempts, error,
            reason = DropReason::PermanentError.as_str(),
            "notification dropped: the receiver rejected it and retrying cannot help"
        );
    }

    /// The service answered 410 Gone: the integration is disabled (logged at error, the gauge
    /// at 1, listed on `/readyz`) and `item` dropped (`disabled`).
    pub(crate) fn gone(&self, item: &Item, attempts: u32, error: &str) {
        self.permanent.inc();
        self.dropped(DropReason::Disabled).inc();
        self.disabled.set(
            &self.receiver,
            &self.integration,
            Some("its service answered 410 Gone"),
        );
        tracing::error!(
            target: TARGET,
            receiver = %self.receiver, integration = %self.integration,
            group_key = item.group_key(), status = item.status(),
            id = %item.notification.id, attempts, error,
            reason = DropReason::Disabled.as_str(),
            "integration disabled: its service answered 410 Gone; its notifications are dropped \
             until a reload changes it"
        );
    }

    /// The notification was given up for `reason` (not a receiver's rejection).
    pub(crate) fn dropped_one(&self, reason: DropReason, item: &Item) {
        self.dropped(reason).inc();
        tracing::warn!(
                target: TARGET,
            receiver = %self.receiver, integration = %self.integration, group_key = item.group_key(), status = item.status(),
            id = %item.notification.id, reason = reason.as_str(),
            age = ?item.enqueued.elapsed(), "notification dropped"
        );
    }

    /// Shutdown left `count` notifications undelivered: one line, one counter.
    pub(crate) fn dropped_at_shutdown(&self, count: usize) {
        if count == 0 {
            return;
        }
        self.dropped(DropReason::Shutdown).inc_by(count as u64);
        tracing::warn!(
                target: TARGET,
            receiver = %self.receiver, integration = %self.integration, count, reason = DropReason::Shutdown.as_str(),
            "notifications dropped: shutdown deadline reached before delivery"
        );
    }

    /// The counter of `reason`, in the order of [`DropReason::ALL`].
    fn dropped(&self, reason: DropReason) -> &IntCounter {
        let index = match reason {
            DropReason::QueueFull => 0,
            DropReason::Expired => 1,
            DropReason::PermanentError => 2,
            DropReason::Shutdown => 3,
            DropReason::Superseded => 4,
            DropReason::Disabled => 5,
        };
        &self.dropped[index]
    }
}

/// The integrations disabled by a 410 Gone, with why: `poolwatch_integration_disabled` and the
/// list `/readyz` shows. Shared by every notifier and the HTTP handlers.
#[derive(Clone)]
pub struct Disabled {
    /// `poolwatch_integration_disabled{receiver,integration}`.
    gauge: IntGaugeVec,
    /// (receiver, integration) → why, for the disabled ones.
    why: Arc<std::sync::Mutex<std::collections::BTreeMap<(String, String), String>>>,
}

impl Disabled {
    /// Marks the integration disabled (`Some(why)`) or enabled (`None`).
    fn set(&self, receiver: &str, integration: &str, why: Option<&str>) {
        self.gauge
            .with_label_values(&[receiver, integration])
            .set(i64::from(why.is_some()));
        let mut map = self.why.lock().unwrap_or_else(|e| e.into_inner());
        let key = (receiver.to_string(), integration.to_string());
        match why {
            Some(why) => map.insert(key, why.to_string()),
            None => map.remove(&key),
        };
    }

    /// Forgets an integration that is no longer configured.
    fn forget(&self, receiver: &str, integration: &str) {
        let _ = self.gauge.remove_label_values(&[receiver, integration]);
        let mut map = self.why.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&(receiver.to_string(), integration.to_string()));
    }

    /// The disabled integrations: (receiver, integration, why), sorted.
    pub fn list(&self) -> Vec<(String, String, String)> {
        let map = self.why.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .map(|((r, i), why)| (r.clone(), i.clone(), why.clone()))
            .collect()
    }
}
