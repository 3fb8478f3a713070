//! The daemon's receivers as a set of independent notifiers, one per integration of each
//! receiver, so that a configuration reload replaces only the integrations whose settings
//! changed (theirs or their receiver's): an unchanged one keeps its queue (and what is waiting
//! in it while its service is down). Each integration started here is also probed for
//! reachability ([`super::probe`]).

use super::probe::{self, Probe};
use super::{Notifier, NotifyMetrics, ReceiverSettings};
use crate::dispatch::{Notification, Outcome};
use std::time::Duration;
use tokio::sync::mpsc;

/// One integration of a receiver: the receiver's settings with only that integration, its
/// notifier, and its reachability probe (stopped on drop).
struct Lane {
    settings: ReceiverSettings,
    notifier: Notifier,
    _probe: Probe,
}

impl Lane {
    /// Starts the notifier and the probe of one integration (`settings` has only that one);
    /// returns at once.
    fn start(
        settings: ReceiverSettings,
        external_url: &str,
        metrics: &NotifyMetrics,
        outcomes: &mpsc::UnboundedSender<Outcome>,
    ) -> Lane {
        let notifier = Notifier::start(
            vec![settings.clone()],
            external_url.to_string(),
            metrics.clone(),
            outcomes.clone(),
        );
        let probe = match settings.integrations.first() {
            Some(i) => probe::start(
                &settings.name,
                i,
                metrics.reachable(&settings.name, &i.name),
            ),
            None => probe::Probe::none(),
        };
        Lane {
            settings,
            notifier,
            _probe: probe,
        }
    }
}

/// Every configured receiver, each integration with its own notifier (queue and worker).
pub struct ReceiverSet {
    /// In configuration order.
    lanes: Vec<Lane>,
    /// The `externalURL` the lanes were started with; a change restarts them all.
    external_url: String,
    /// Shared by every lane; created once per process.
    metrics: NotifyMetrics,
    /// Where every lane reports deliveries.
    outcomes: mpsc::UnboundedSender<Outcome>,
}

impl ReceiverSet {
    /// Starts one notifier and one reachability probe per integration; returns at once. Deliveries
    /// are reported on `outcomes`.
    pub fn start(
        receivers: Vec<ReceiverSettings>,
        external_url: String,
        metrics: NotifyMetrics,
        outcomes: mpsc::UnboundedSender<Outcome>,
    ) -> Self {
        let lanes = lanes(&receivers)
            .map(|r| Lane::start(r, &external_url, &metrics, &outcomes))
            .collect();
        ReceiverSet {
            lanes,
            external_url,
            metrics,
            outcomes,
        }
    }

    /// Queues `n` for its receiver's integration; never blocks.
    pub fn notify(&self, n: &Notification) {
        let lane = self.lanes.iter().find(|l| {
            l.settings.name == n.receiver
                && l.settings.integrations.first().map(|i| i.name.as_str())
                    == Some(n.integration.as_str())
        });
        if let Some(lane) = lane {
            lane.notifier.notify(n);
        }
    }

    /// The notifier metrics, to count dispatch decisions with.
    pub fn metrics(&self) -> &NotifyMetrics {
        &self.metrics
    }

    /// Applies a reloaded receiver list: unchanged integrations keep their notifier (and
    /// probe); removed and changed ones get `drain` to deliver what they hold, in the
    /// background, while changed ones start afresh, probed at once. Returns how many
    /// integrations were (re)started.
    pub fn reconfigure(
        &mut self,
        receivers: Vec<ReceiverSettings>,
        external_url: String,
        drain: Duration,
    ) -> usize {
        let url_changed = external_url != self.external_url;
        let mut old: Vec<Lane> = std::mem::take(&mut self.lanes);
        let mut started = 0;
        for settings in lanes(&receivers) {
            let kept = (!url_changed)
                .then(|| old.iter().position(|l| l.settings == settings))
                .flatten()
                .map(|i| old.remove(i));
            let lane = kept.unwrap_or_else(|| {
                started += 1;
                Lane::start(settings, &external_url, &self.metrics, &self.outcomes)
            });
            self.lanes.push(lane);
        }
        for lane in old {
            let (name, integration) = lane_id(&lane.settings);
            if !self
                .lanes
                .iter()
                .any(|l| lane_id(&l.settings) == (name, integration))
            {
                self.metrics.forget_reachable(name, integration);
            }
            tokio::spawn(lane.notifier.shutdown(drain));
        }
        self.external_url = external_url;
        started
    }

    /// Stops every notifier, letting each deliver what it holds until `deadline`; the set is
    /// empty afterwards.
    pub async fn shutdown(&mut self, deadline: Duration) {
        futures_util::future::join_all(
            std::mem::take(&mut self.lanes)
                .into_iter()
                .map(|lane| lane.notifier.shutdown(deadline)),
        )
        .await;
    }
}

/// Each integration of each receiver, as a receiver with only that integration.
fn lanes(receivers: &[ReceiverSettings]) -> impl Iterator<Item = ReceiverSettings> + '_ {
    receivers
        .iter()
        .flat_map(|r| (0..r.integrations.len()).map(move |i| r.only(i)))
}

/// The receiver and integration names of a lane.
fn lane_id(settings: &ReceiverSettings) -> (&str, &str) {
    let integration = settings
        .integrations
        .first()
        .map_or("", |i| i.name.as_str());
    (&settings.name, integration)
}
