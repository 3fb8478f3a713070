//! The HTTP server's metric families, and the one place where a connection poolwatch closes
//! itself is both logged and counted.

use super::slots::CloseReason;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often, at most, a crowded server says so at `warn` (every closed connection is logged
/// at `debug`).
const CROWDED_WARN_EVERY: Duration = Duration::from_secs(60);

/// Whether a warning last given at `last` may be repeated at `now`.
pub fn warn_due(now: Instant, last: Option<Instant>, every: Duration) -> bool {
    last.is_none_or(|l| now.saturating_duration_since(l) >= every)
}

/// `poolwatch_http_*`. Registered once per process.
#[derive(Clone)]
pub struct HttpMetrics {
    /// `poolwatch_http_connections`: connections holding a slot.
    pub open: IntGauge,
    /// `poolwatch_http_connection_limit`: the limit in force.
    pub limit: IntGauge,
    /// `poolwatch_http_connections_closed_total{reason}`.
    closed: IntCounterVec,
    /// When the last "limit reached" warning was logged.
    last_warned: Arc<Mutex<Option<Instant>>>,
}

impl HttpMetrics {
    /// Registers the families in `registry`, every `reason` series at 0.
    pub fn new(registry: &Registry) -> prometheus::Result<HttpMetrics> {
        let open = IntGauge::new(
            "poolwatch_http_connections",
            "HTTP connections open now (each holds a slot of the connection limit)",
        )?;
        let limit = IntGauge::new(
            "poolwatch_http_connection_limit",
            "Most HTTP connections open at once: http.max_connections, lowered to fit the open-file limit",
        )?;
        let closed = IntCounterVec::new(
            Opts::new(
                "poolwatch_http_connections_closed_total",
                "HTTP connections poolwatch closed itself, by reason",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(limit.clone()))?;
        registry.register(Box::new(closed.clone()))?;
        for r in CloseReason::ALL {
            closed.with_label_values(&[r.as_str()]);
        }
        Ok(HttpMetrics {
            open,
            limit,
            closed,
            last_warned: Arc::new(Mutex::new(None)),
        })
    }

    /// poolwatch closed a connection for `reason`.
    pub fn closed(&self, reason: CloseReason) {
        self.closed.with_label_values(&[reason.as_str()]).inc();
        tracing::debug!(reason = reason.as_str(), "HTTP connection closed");
        if matches!(reason, CloseReason::Evicted | CloseReason::Refused) {
            self.crowded();
        }
    }

    fn crowded(&self) {
        let now = Instant::now();
        let mut last = self.last_warned.lock().unwrap_or_else(|e| e.into_inner());
        if warn_due(now, *last, CROWDED_WARN_EVERY) {
            *last = Some(now);
            tracing::warn!(
                limit = self.limit.get(),
                "HTTP connection limit reached: closing the connections that wait longest for a \
                 request to admit new ones (see poolwatch_http_connections_closed_total)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crowded_warning_is_repeated_at_most_every_period() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let cases = [
            (t0, None, true),
            (t0 + s(59), Some(t0), false),
            (t0 + s(60), Some(t0), true),
            (t0, Some(t0 + s(5)), false),
        ];
        for (now, last, want) in cases {
            assert_eq!(warn_due(now, last, s(60)), want, "{now:?} {last:?}");
        }
    }
}
