//! One integration's bounded queue of group notifications, never blocking the producer.
//!
//! * At most one notification per group: a newer one **supersedes** an older one still waiting
//!   (the receiver gets the group's current state, not a backlog).
//! * A retryable failure moves the notification to the back, so that other groups are tried
//!   before it again: nothing waits behind another group's retries.
//! * When full, the oldest notification (first queued) is dropped.
//!
//! The notification being attempted stays in the queue, so the capacity bounds everything held.
//! If it is superseded or evicted during its HTTP attempt, its fate is settled by that attempt:
//! delivered if the receiver accepted it, dropped otherwise.

use super::metrics::DropReason;
use crate::dispatch::Notification;
use prometheus::IntGauge;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A queued notification.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// Position in the queue's history: the oldest has the lowest.
    pub(crate) seq: u64,
    /// The notification.
    pub(crate) notification: Arc<Notification>,
    /// When it was queued: the start of `max_retry_age` and of the delivery latency.
    pub(crate) enqueued: Instant,
}

impl Item {
    /// The group key, for log lines.
    pub(crate) fn group_key(&self) -> &str {
        &self.notification.group_key
    }

    /// `firing` or `resolved`, for log lines.
    pub(crate) fn status(&self) -> &'static str {
        match self.notification.status() {
            crate::dispatch::AlertState::Resolved => "resolved",
            _ => "firing",
        }
    }
}

/// How an attempt ended, as far as the queue is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptEnd {
    /// The item was still queued; it was removed if the attempt settled it, else moved back.
    Queued,
    /// The item was superseded or evicted during the attempt (for this reason); gone either way.
    Removed(DropReason),
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Item>,
    next_seq: u64,
    /// The `seq` of the item in an HTTP attempt.
    attempting: Option<u64>,
    /// Why the item in the attempt was taken out meanwhile.
    removed_attempt: Option<DropReason>,
}

/// A bounded queue of notifications for one integration of a receiver.
#[derive(Debug)]
pub(crate) struct Queue {
    inner: Mutex<Inner>,
    wake: Notify,
    capacity: usize,
    /// `poolwatch_notification_queue_length{receiver,integration}`: increased and decreased (not set) so that
    /// an old notifier draining after a reload adds to the new one's count.
    length: IntGauge,
}

impl Queue {
    /// An empty queue holding at most `capacity` (at least 1) notifications.
    pub(crate) fn new(capacity: usize, length: IntGauge) -> Self {
        Queue {
            inner: Mutex::new(Inner::default()),
            wake: Notify::new(),
            capacity: capacity.max(1),
            length,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while the lock is held; a poisoned queue is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes out the item at `index`, flagging it when it is in an attempt (its attempt
    /// settles it); returns it otherwise.
    fn take(&self, inner: &mut Inner, index: usize, why: DropReason) -> Option<Item> {
        let item = inner.items.remove(index)?;
        self.length.dec();
        if inner.attempting == Some(item.seq) {
            inner.removed_attempt = Some(why);
            return None;
        }
        Some(item)
    }

    /// Queues `notification` (unless it is already queued) and wakes the worker. Returns its
    /// item and what it pushed out:
    /// the older notification of the same group (superseded), the oldest one when full
    /// (queue full); not one in an attempt, which its attempt reports.
    pub(crate) fn push(&self, notification: Arc<Notification>) -> (Item, Vec<(DropReason, Item)>) {
        let mut inner = self.lock();
        let mut out = Vec::new();
        let queued = inner
            .items
            .iter()
            .find(|i| i.notification.id == notification.id);
        if let Some(item) = queued {
            // Handed over again (after a reload): already here.
            return (item.clone(), out);
        }
        let same = inner
            .items
            .iter()
            .position(|i| i.notification.group_key == notification.group_key);
        if let Some(index) = same {
            out.extend(
                self.take(&mut inner, index, DropReason::Superseded)
                    .map(|i| (DropReason::Superseded, i)),
            );
        }
        if inner.items.len() >= self.capacity {
            let oldest = (0..inner.items.len()).min_by_key(|&i| inner.items[i].seq);
            if let Some(index) = oldest {
                out.extend(
                    self.take(&mut inner, index, DropReason::QueueFull)
                        .map(|i| (DropReason::QueueFull, i)),
                );
            }
        }
        let item = Item {
            seq: inner.next_seq,
            notification,
            enqueued: Instant::now(),
        };
        inner.next_seq += 1;
        inner.items.push_back(item.clone());
        self.length.inc();
        drop(inner);
        self.wake.notify_one();
        (item, out)
    }

    /// The item to attempt next, if any.
    pub(crate) fn front(&self) -> Option<Item> {
        self.lock().items.front().cloned()
    }

    /// Resolves after a [`Queue::push`]; a push made before the call is not missed.
    pub(crate) fn pushed(&self) -> Notified<'_> {
        self.wake.notified()
    }

    /// Marks item `seq` as in an attempt; false if it is no longer queued.
    pub(crate) fn begin_attempt(&self, seq: u64) -> bool {
        let mut inner = self.lock();
        if !inner.items.iter().any(|i| i.seq == seq) {
            return false;
        }
        inner.attempting = Some(seq);
        inner.removed_attempt = None;
        true
    }

    /// Ends the attempt on `seq`: with `settled` the item is removed (delivered or refused),
    /// otherwise it goes to the back of the queue.
    pub(crate) fn end_attempt(&self, seq: u64, settled: bool) -> AttemptEnd {
        let mut inner = self.lock();
        inner.attempting = None;
        if let Some(why) = inner.removed_attempt.take() {
            return AttemptEnd::Removed(why);
        }
        if let Some(index) = inner.items.iter().position(|i| i.seq == seq) {
            if let Some(item) = inner.items.remove(index) {
                if settled {
                    self.length.dec();
                } else {
                    inner.items.push_back(item);
                }
            }
        }
        AttemptEnd::Queued
    }

    /// Removes item `seq` (an expired or refused one); false if it was already gone.
    pub(crate) fn remove(&self, seq: u64) -> bool {
        let mut inner = self.lock();
        match inner.items.iter().position(|i| i.seq == seq) {
            Some(index) => {
                inner.items.remove(index);
                self.length.dec();
                true
            }
            None => false,
        }
    }

    /// Empties the queue (at shutdown) and returns how many items it held.
    pub(crate) fn take_all(&self) -> usize {
        let mut inner = self.lock();
        let n = inner.items.len();
        inner.items.clear();
        inner.attempting = None;
        self.length.sub(n as i64);
        n
    }

    /// Items held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::fixtures::firing;
    use crate::dispatch::Reason;

    /// A notification of group `group` whose one alert is named `name`.
    fn note(group: &str, name: &str) -> Arc<Notification> {
        Arc::new(Notification {
            receiver: "r".into(),
            integration: "webhook".into(),
            group_key: group.into(),
            id: format!("{group}-{name}"),
            reason: Reason::FirstNotification,
            group_labels: Default::default(),
            alerts: vec![firing(name, &[], 0)],
            firing: Default::default(),
            resolved: Default::default(),
        })
    }

    fn ids(q: &Queue) -> Vec<String> {
        q.lock()
            .items
            .iter()
            .map(|i| i.notification.id.clone())
            .collect()
    }

    fn queue(capacity: usize) -> (Queue, IntGauge) {
        let gauge = IntGauge::new("q", "test").expect("gauge");
        (Queue::new(capacity, gauge.clone()), gauge)
    }

    fn pushed_out(out: Vec<(DropReason, Item)>) -> Vec<(DropReason, String)> {
        out.into_iter()
            .map(|(r, i)| (r, i.notification.id.clone()))
            .collect()
    }

    #[test]
    fn a_newer_state_supersedes_and_a_full_queue_drops_the_oldest() {
        let (q, gauge) = queue(2);
        assert!(q.push(note("g1", "A")).1.is_empty());
        assert!(q.push(note("g2", "A")).1.is_empty());
        let (_, out) = q.push(note("g1", "B"));
        assert_eq!(pushed_out(out), [(DropReason::Superseded, "g1-A".into())]);
        assert_eq!(ids(&q), ["g2-A", "g1-B"]);
        // The same notification again changes nothing.
        assert!(q.push(note("g1", "B")).1.is_empty());
        assert_eq!(ids(&q), ["g2-A", "g1-B"]);
        let (_, out) = q.push(note("g3", "A"));
        assert_eq!(pushed_out(out), [(DropReason::QueueFull, "g2-A".into())]);
        assert_eq!((q.len(), gauge.get()), (2, 2));
    }

    #[test]
    fn a_failed_attempt_goes_to_the_back_and_a_settled_one_leaves() {
        let (q, gauge) = queue(5);
        for g in ["g1", "g2", "g3"] {
            q.push(note(g, "A"));
        }
        let head = q.front().expect("head");
        assert!(q.begin_attempt(head.seq));
        assert_eq!(q.end_attempt(head.seq, false), AttemptEnd::Queued);
        assert_eq!(ids(&q), ["g2-A", "g3-A", "g1-A"]);
        let head = q.front().expect("head");
        assert!(q.begin_attempt(head.seq));
        assert_eq!(q.end_attempt(head.seq, true), AttemptEnd::Queued);
        assert_eq!(ids(&q), ["g3-A", "g1-A"]);
        assert_eq!(gauge.get(), 2);
        // The oldest is the first queued, wherever retries moved it.
        let (q, _) = queue(2);
        q.push(note("g1", "A"));
        q.push(note("g2", "A"));
        let head = q.front().expect("head");
        q.begin_attempt(head.seq);
        q.end_attempt(head.seq, false);
        let (_, out) = q.push(note("g3", "A"));
        assert_eq!(pushed_out(out), [(DropReason::QueueFull, "g1-A".into())]);
    }

    #[test]
    fn what_is_pushed_out_mid_attempt_is_left_to_the_attempt() {
        let (q, gauge) = queue(1);
        q.push(note("g1", "A"));
        let head = q.front().expect("head");
        assert!(q.begin_attempt(head.seq));
        assert!(q.push(note("g1", "B")).1.is_empty());
        assert_eq!(gauge.get(), 1);
        assert_eq!(
            q.end_attempt(head.seq, true),
            AttemptEnd::Removed(DropReason::Superseded)
        );
        assert_eq!(ids(&q), ["g1-B"]);
        let head = q.front().expect("head");
        assert!(q.begin_attempt(head.seq));
        assert!(q.push(note("g2", "A")).1.is_empty());
        assert_eq!(
            q.end_attempt(head.seq, false),
            AttemptEnd::Removed(DropReason::QueueFull)
        );
        assert!(!q.begin_attempt(head.seq));
        assert!(!q.remove(head.seq));
    }

    #[test]
    fn take_all_empties_and_resets_the_gauge() {
        let (q, gauge) = queue(10);
        for g in ["a", "b", "c", "d"] {
            q.push(note(g, "A"));
        }
        assert_eq!(q.take_all(), 4);
        assert_eq!((q.len(), gauge.get()), (0, 0));
    }
}
