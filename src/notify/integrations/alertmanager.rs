//! The `alertmanager` integration: alerts pushed to an Alertmanager's `POST /api/v2/alerts`, a
//! JSON array of alerts (`labels`, `annotations`, `startsAt`, `endsAt`, `generatorURL`), with
//! Prometheus's policy for the end of an alert. The body is pure: the time is an argument.
//!
//! Each URL of `urls` is an integration of its own (queue, retries, acknowledgements), so every
//! Alertmanager of a cluster gets every alert and one that is down delays no other. A route
//! chooses which alerts go there; its groups decide when. Every alert of the group is pushed
//! (`max_alerts` does not apply: an Alertmanager told of only some would resolve the others).
//!
//! Re-sending is the dispatcher's repeat: for these integrations a group's `group_interval` and
//! `repeat_interval` are at most `resend_interval` ([`crate::dispatch::RouteTree::timing`]), so
//! a still-firing group is pushed again every `resend_interval` after its last acknowledgement.
//! That schedule lives in the notification log, which the state file keeps: it holds across
//! restarts (a restarted daemon pushes again when the last push is `resend_interval` old, not
//! `resend_interval` after it started) and reloads (the log outlives the routes). A timer in
//! the worker would forget it at every restart, and a reload restarting the worker would lose
//! what it had to re-send.
//!
//! * A firing alert is sent with `endsAt` in the future, [`PushPolicy::horizon`] from now:
//!   4 × max(`resend_interval`, evaluation interval), as Prometheus does. It is sent again
//!   every `resend_interval`, which pushes its end further out; if poolwatch dies, the
//!   Alertmanager resolves the alert by itself once that end passes.
//! * A resolved alert is sent with its real end (never later than now): the Alertmanager
//!   resolves it at once.
//! * Pending alerts are not sent (Prometheus sends only firing and resolved ones).
//!
//! The labels are the alert's labels and nothing else: two poolwatch replicas watching the
//! same targets with the same configuration push identical label sets, so the Alertmanager
//! holds one alert (one fingerprint) for both and pages once.

use super::webhook::go_time;
use crate::dispatch::{Alert, AlertState};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// How often a firing alert is pushed again when the configuration says nothing; Prometheus's
/// `--rules.alert.resend-delay` default.
pub const DEFAULT_RESEND_INTERVAL: Duration = Duration::from_secs(60);

/// How far ahead a firing alert's end is put, in re-sends (Prometheus's factor).
const HORIZON_FACTOR: u32 = 4;

/// When firing alerts are pushed again and how far ahead their end lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPolicy {
    /// How often a firing alert is pushed again.
    pub resend_interval: Duration,
    /// How often alerts are evaluated (the longest poll interval of the targets): an alert is
    /// not known to be firing more often than that.
    pub evaluation_interval: Duration,
}

impl PushPolicy {
    /// How long after a push a firing alert stays firing in the Alertmanager without another:
    /// 4 × max(`resend_interval`, `evaluation_interval`).
    pub fn horizon(&self) -> Duration {
        self.resend_interval
            .max(self.evaluation_interval)
            .saturating_mul(HORIZON_FACTOR)
    }

    /// The `endsAt` of `alert` pushed at `now`: `now` + [`PushPolicy::horizon`] while it fires,
    /// its own end (at most `now`) once resolved; never before its start, which the
    /// Alertmanager would refuse. `None` for a pending alert, which is not pushed.
    pub fn ends_at(&self, alert: &Alert, now: SystemTime) -> Option<SystemTime> {
        let end = match alert.state {
            AlertState::Pending => return None,
            AlertState::Firing => now
                .checked_add(self.horizon())
                .unwrap_or(now + Duration::from_secs(86_400)),
            AlertState::Resolved => alert.ends_at.map_or(now, |end| end.min(now)),
        };
        Some(end.max(alert.starts_at))
    }
}

/// Gives every `alertmanager` integration of `receivers` the evaluation interval of this
/// configuration: `interval`, the longest poll interval of its targets.
pub fn set_evaluation_interval(
    receivers: &mut [crate::notify::ReceiverSettings],
    interval: Duration,
) {
    for i in receivers.iter_mut().flat_map(|r| r.integrations.iter_mut()) {
        if let super::Kind::Alertmanager(policy) = &mut i.kind {
            policy.evaluation_interval = interval;
        }
    }
}

/// One alert of the body, as the Alertmanager's `postableAlert` names its fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
}

/// The `POST /api/v2/alerts` body for `alerts` pushed at `now`: firing and resolved ones, in
/// the given order, each with `generatorURL` pointing at this poolwatch's `/api/v1/alerts`
/// under `external_url`. Pending alerts are left out; with none left the body is `[]`.
pub fn render(
    alerts: &[Alert],
    external_url: &str,
    policy: &PushPolicy,
    now: SystemTime,
) -> serde_json::Result<Vec<u8>> {
    let generator_url = format!("{}/api/v1/alerts", external_url.trim_end_matches('/'));
    let body: Vec<PostableAlert<'_>> = alerts
        .iter()
        .filter_map(|a| {
            let ends_at = policy.ends_at(a, now)?;
            Some(PostableAlert {
                labels: &a.labels,
                annotations: &a.annotations,
                starts_at: go_time(a.starts_at),
                ends_at: go_time(ends_at),
                generator_url: &generator_url,
            })
        })
        .collect();
    serde_json::to_vec(&body)
}

#[cfg(test)]
#[path = "alertmanager_tests.rs"]
mod tests;
