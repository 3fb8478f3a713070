//! The daemon's receivers as a set of independent notifiers, one per receiver, so that a
//! configuration reload replaces only the receivers whose settings changed: an unchanged
//! receiver keeps its queue (and what is waiting in it while the receiver is down).

use super::{Notifier, NotifyMetrics, ReceiverSettings};
use crate::notice::Notice;
use std::time::Duration;

/// Every configured receiver, each with its own notifier (queue and worker).
pub struct ReceiverSet {
    /// In configuration order.
    lanes: Vec<(ReceiverSettings, Notifier)>,
    /// The `externalURL` the lanes were started with; a change restarts them all.
    external_url: String,
    /// Shared by every lane; created once per process.
    metrics: NotifyMetrics,
}

impl ReceiverSet {
    /// Starts one notifier per receiver.
    pub fn start(
        receivers: Vec<ReceiverSettings>,
        external_url: String,
        metrics: NotifyMetrics,
    ) -> Self {
        let lanes = receivers
            .into_iter()
            .map(|r| {
                let n = Notifier::start(vec![r.clone()], external_url.clone(), metrics.clone());
                (r, n)
            })
            .collect();
        ReceiverSet {
            lanes,
            external_url,
            metrics,
        }
    }

    /// Queues `notice` for every receiver that wants it; never blocks.
    pub fn notify(&self, notice: &Notice) {
        for (_, n) in &self.lanes {
            n.notify(notice);
        }
    }

    /// Applies a reloaded receiver list: unchanged receivers keep their notifier; removed and
    /// changed ones get `drain` to deliver what they hold, in the background, while changed ones
    /// start afresh. Returns how many receivers were (re)started.
    pub fn reconfigure(
        &mut self,
        receivers: Vec<ReceiverSettings>,
        external_url: String,
        drain: Duration,
    ) -> usize {
        let url_changed = external_url != self.external_url;
        let mut old: Vec<(ReceiverSettings, Notifier)> = std::mem::take(&mut self.lanes);
        let mut started = 0;
        for settings in receivers {
            let kept = (!url_changed)
                .then(|| old.iter().position(|(s, _)| *s == settings))
                .flatten()
                .map(|i| old.remove(i));
            let lane = match kept {
                Some(lane) => lane,
                None => {
                    started += 1;
                    let n = Notifier::start(
                        vec![settings.clone()],
                        external_url.clone(),
                        self.metrics.clone(),
                    );
                    (settings, n)
                }
            };
            self.lanes.push(lane);
        }
        for (_, n) in old {
            tokio::spawn(n.shutdown(drain));
        }
        self.external_url = external_url;
        started
    }

    /// Stops every notifier, letting each deliver what it holds until `deadline`.
    pub async fn shutdown(self, deadline: Duration) {
        futures_util::future::join_all(self.lanes.into_iter().map(|(_, n)| n.shutdown(deadline)))
            .await;
    }
}
