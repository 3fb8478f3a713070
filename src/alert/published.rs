//! [`Engine::alert_set`]: the alerts the engine publishes for the dispatcher — pending, firing,
//! and those resolved within [`RESOLVED_RETENTION`] (as Prometheus keeps sending resolved
//! alerts for 15 minutes), each with its start and, once resolved, its end.

use super::state::State;
use super::Engine;
use crate::dispatch::{Alert, AlertState};
use crate::notice::{fingerprint, Notice, NoticeStatus};
use std::time::{Duration, SystemTime};

/// How long a resolved alert stays in the published set.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

impl Engine {
    /// Keeps the resolved alerts of `notices` and forgets the resolutions of alerts that fire
    /// again.
    pub(super) fn remember(&mut self, notices: &[Notice]) {
        for n in notices {
            match (n.status, n.ends_at) {
                (NoticeStatus::Resolved, Some(end)) => {
                    let alert = Alert {
                        labels: n.labels.clone(),
                        annotations: n.annotations.clone(),
                        state: AlertState::Resolved,
                        starts_at: n.starts_at,
                        ends_at: Some(end),
                        fingerprint: n.fingerprint.clone(),
                    };
                    self.resolved.insert(n.labels.clone(), alert);
                }
                _ => {
                    self.resolved.remove(&n.labels);
                }
            }
        }
    }

    /// The current alert set at `now`: pending and firing instances, then the resolved alerts
    /// of the last [`RESOLVED_RETENTION`] (older ones are forgotten here).
    pub fn alert_set(&mut self, now: SystemTime) -> Vec<Alert> {
        self.resolved.retain(|_, a| {
            a.ends_at
                .is_some_and(|end| now.duration_since(end).unwrap_or_default() < RESOLVED_RETENTION)
        });
        let active = self.instances.iter().filter_map(|(labels, i)| {
            let state = match i.state {
                State::Inactive => return None,
                State::Pending { .. } => AlertState::Pending,
                State::Firing { .. } => AlertState::Firing,
            };
            Some(Alert {
                labels: labels.clone(),
                annotations: i.annotations.clone(),
                state,
                starts_at: i.state.active_at()?,
                ends_at: None,
                fingerprint: fingerprint(labels),
            })
        });
        let resolved = self
            .resolved
            .values()
            .filter(|a| !self.instances.contains_key(&a.labels))
            .cloned();
        active.chain(resolved).collect()
    }
}
