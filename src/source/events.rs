//! Counting and logging of source events, from one place: every poll, failure and connection
//! bumps one counter, and is logged once per change of condition (configuration problems such
//! as failed authentication are logged on every attempt).

use crate::model::{ErrorClass, PollError};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Counters and histograms of polling, shared by every source task. Created once per process.
#[derive(Clone)]
pub struct SourceMetrics {
    reports: IntCounterVec,
    poll_duration: HistogramVec,
    poll_errors: IntCounterVec,
    connects: IntCounterVec,
}

impl SourceMetrics {
    /// Registers the families in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let poll_duration = HistogramVec::new(
            HistogramOpts::new(
                "poolwatch_poll_duration_seconds",
                "Duration of one poll of a connected target (one query round trip), successful or not; connection attempts are not included.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["target"],
        )?;
        let poll_errors = IntCounterVec::new(
            Opts::new(
                "poolwatch_poll_errors_total",
                "Failed polls and connection attempts, by error class.",
            ),
            &["target", "class"],
        )?;
        let connects = IntCounterVec::new(
            Opts::new(
                "poolwatch_connects_total",
                "Connections poolwatch opened to a target (1 plus reconnects).",
            ),
            &["target"],
        )?;
        let reports = IntCounterVec::new(
            Opts::new(
                "poolwatch_target_reports_total",
                "Reports produced for a target: one per tick of its interval, whether it could be polled or not.",
            ),
            &["target"],
        )?;
        registry.register(Box::new(reports.clone()))?;
        registry.register(Box::new(poll_duration.clone()))?;
        registry.register(Box::new(poll_errors.clone()))?;
        registry.register(Box::new(connects.clone()))?;
        Ok(SourceMetrics {
            reports,
            poll_duration,
            poll_errors,
            connects,
        })
    }

    /// Creates the series of `target` that every target has, so that rates work from the first
    /// scrape. Error series appear with the first error of their class: pre-creating one per
    /// class would export eight always-zero series per target.
    pub fn init_target(&self, target: &str) {
        self.reports.with_label_values(&[target]);
        self.connects.with_label_values(&[target]);
        self.poll_duration.with_label_values(&[target]);
    }

    /// Drops the series of a target removed by a reload.
    pub fn remove_target(&self, target: &str) {
        for class in ErrorClass::ALL {
            let _ = self
                .poll_errors
                .remove_label_values(&[target, class.as_str()]);
        }
        let _ = self.connects.remove_label_values(&[target]);
        let _ = self.reports.remove_label_values(&[target]);
        let _ = self.poll_duration.remove_label_values(&[target]);
    }
}

impl SourceMetrics {
    /// Counts a report sent for `target`.
    pub fn reported(&self, target: &str) {
        self.reports.with_label_values(&[target]).inc();
    }
}

/// Logs and counts source events, once per change of condition (and every time for
/// configuration problems such as failed authentication), from one place.
#[derive(Debug, Default)]
pub struct EventLog {
    /// The class of the last failure, until a poll succeeds: a failure of the same class is
    /// not logged again.
    last_error: Option<ErrorClass>,
    /// Whether a session was ever opened, so that the first one is always logged.
    ever_connected: bool,
}

impl EventLog {
    /// A poll or connection attempt failed.
    pub fn failed(&mut self, metrics: &SourceMetrics, target: &str, err: &PollError) {
        metrics
            .poll_errors
            .with_label_values(&[target, err.class.as_str()])
            .inc();
        let changed = self.last_error != Some(err.class);
        self.last_error = Some(err.class);
        match err.class {
            ErrorClass::Auth => {
                tracing::error!(target_name = target, class = %err.class, error = %err.message, "cannot log in to target: fix the configuration or grants")
            }
            ErrorClass::TooManyConnections if changed => {
                tracing::error!(target_name = target, class = %err.class, error = %err.message, "target is SATURATED: it refuses new connections")
            }
            ErrorClass::Stale if changed => {
                tracing::warn!(target_name = target, class = %err.class, error = %err.message, "push target is STALE: no instance pushed within its ttl")
            }
            _ if changed => {
                tracing::warn!(target_name = target, class = %err.class, error = %err.message, "target unreachable; retrying")
            }
            _ => {}
        }
    }

    /// A session was opened; `peer` says what answered (e.g. `PostgreSQL 16.4`).
    pub fn connected(&mut self, metrics: &SourceMetrics, target: &str, endpoint: &str, peer: &str) {
        metrics.connects.with_label_values(&[target]).inc();
        if self.last_error.is_some() || !self.ever_connected {
            tracing::info!(target_name = target, endpoint, peer, "connected to target");
        }
        self.ever_connected = true;
    }

    /// A poll succeeded.
    pub fn polled(&mut self, metrics: &SourceMetrics, target: &str, seconds: f64) {
        metrics
            .poll_duration
            .with_label_values(&[target])
            .observe(seconds);
        if let Some(class) = self.last_error.take() {
            tracing::info!(target_name = target, previous_error = %class, "target recovered");
        }
    }

    /// Records the duration of a failed poll (connection attempts are not polls).
    pub fn failed_duration(&self, metrics: &SourceMetrics, target: &str, seconds: f64) {
        metrics
            .poll_duration
            .with_label_values(&[target])
            .observe(seconds);
    }
}
