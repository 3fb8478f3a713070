//! One receiver's bounded queue: FIFO, drop-oldest when full, never blocking the producer.
//!
//! The head stays in the queue while the worker delivers it (head-of-line retry), so the
//! capacity bounds everything held. If the queue overflows while the head is in the middle of an
//! HTTP attempt, the head is still the one evicted; its fate is settled by that attempt: delivered
//! if the receiver accepted it, dropped (`queue_full`) otherwise.

use crate::notice::Notice;
use prometheus::IntGauge;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A queued notice.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// Position in the queue's history, to recognise the head after the lock was released.
    pub(crate) seq: u64,
    /// The notice, shared by every receiver it was queued for.
    pub(crate) notice: Arc<Notice>,
    /// When it was queued: the start of `max_retry_age` and of the delivery latency.
    pub(crate) enqueued: Instant,
}

impl Item {
    /// The `alertname` label, for log lines.
    pub(crate) fn alertname(&self) -> &str {
        self.notice
            .labels
            .get("alertname")
            .map_or("", String::as_str)
    }

    /// `firing` or `resolved`, for log lines.
    pub(crate) fn status(&self) -> &'static str {
        self.notice.status.as_str()
    }
}

/// How an attempt on the head ended, as far as the queue is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptEnd {
    /// The item was still the head; it was removed if the attempt settled it.
    Head,
    /// The queue overflowed during the attempt and evicted the item; it is gone either way.
    Evicted,
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Item>,
    next_seq: u64,
    /// The head's `seq` while an HTTP attempt on it is in flight.
    attempting: Option<u64>,
    /// The in-flight head was evicted by an overflow.
    evicted_attempt: bool,
}

/// A bounded FIFO of notices for one receiver.
#[derive(Debug)]
pub(crate) struct Queue {
    inner: Mutex<Inner>,
    wake: Notify,
    capacity: usize,
    /// `poolwatch_notification_queue_length{receiver}`: increased and decreased (not set) so that
    /// an old notifier draining after a reload adds to the new one's count.
    length: IntGauge,
}

impl Queue {
    /// An empty queue holding at most `capacity` (at least 1) notices.
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

    /// Appends `notice` and wakes the worker. Returns the new item and, when the queue was full,
    /// the evicted oldest item, unless that one is in an attempt (see [`AttemptEnd::Evicted`]).
    /// Never blocks beyond a short critical section.
    pub(crate) fn push(&self, notice: Arc<Notice>) -> (Item, Option<Item>) {
        let mut inner = self.lock();
        let mut evicted = None;
        if inner.items.len() >= self.capacity {
            if let Some(oldest) = inner.items.pop_front() {
                self.length.dec();
                if inner.attempting == Some(oldest.seq) {
                    inner.evicted_attempt = true;
                } else {
                    evicted = Some(oldest);
                }
            }
        }
        let item = Item {
            seq: inner.next_seq,
            notice,
            enqueued: Instant::now(),
        };
        inner.next_seq += 1;
        inner.items.push_back(item.clone());
        self.length.inc();
        drop(inner);
        self.wake.notify_one();
        (item, evicted)
    }

    /// The oldest item, if any.
    pub(crate) fn front(&self) -> Option<Item> {
        self.lock().items.front().cloned()
    }

    /// Resolves after a [`Queue::push`]; a push made before the call is not missed.
    pub(crate) fn pushed(&self) -> Notified<'_> {
        self.wake.notified()
    }

    /// Marks the head `seq` as in an attempt; false if it is no longer the head.
    pub(crate) fn begin_attempt(&self, seq: u64) -> bool {
        let mut inner = self.lock();
        if inner.items.front().map(|i| i.seq) != Some(seq) {
            return false;
        }
        inner.attempting = Some(seq);
        inner.evicted_attempt = false;
        true
    }

    /// Ends the attempt on `seq`; with `settled` the item is removed (delivered or refused).
    pub(crate) fn end_attempt(&self, seq: u64, settled: bool) -> AttemptEnd {
        let mut inner = self.lock();
        inner.attempting = None;
        if std::mem::take(&mut inner.evicted_attempt) {
            return AttemptEnd::Evicted;
        }
        if settled {
            Self::pop_if_head(&mut inner, seq, &self.length);
        }
        AttemptEnd::Head
    }

    /// Removes the head if it is `seq` (an expired item); false if it was already gone.
    pub(crate) fn remove_head(&self, seq: u64) -> bool {
        Self::pop_if_head(&mut self.lock(), seq, &self.length)
    }

    fn pop_if_head(inner: &mut Inner, seq: u64, length: &IntGauge) -> bool {
        if inner.items.front().map(|i| i.seq) == Some(seq) {
            inner.items.pop_front();
            length.dec();
            return true;
        }
        false
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
    use crate::model::Severity;
    use crate::notice::{NoticeReason, NoticeStatus};
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    fn notice(n: u32) -> Arc<Notice> {
        Arc::new(Notice {
            status: NoticeStatus::Firing,
            reason: NoticeReason::Fired,
            severity: Severity::Warning,
            labels: BTreeMap::from([("alertname".to_string(), format!("A{n}"))]),
            annotations: BTreeMap::new(),
            starts_at: SystemTime::UNIX_EPOCH,
            ends_at: None,
            fingerprint: format!("{n:016x}"),
        })
    }

    fn head_name(q: &Queue) -> Option<String> {
        q.front().map(|i| i.alertname().to_string())
    }

    fn queue(capacity: usize) -> (Queue, IntGauge) {
        let gauge = IntGauge::new("q", "test").expect("gauge");
        (Queue::new(capacity, gauge.clone()), gauge)
    }

    #[test]
    fn fifo_and_drop_oldest_when_full() {
        let (q, gauge) = queue(2);
        assert!(q.push(notice(1)).1.is_none());
        assert!(q.push(notice(2)).1.is_none());
        let (item, evicted) = q.push(notice(3));
        assert_eq!(
            evicted.map(|e| e.alertname().to_string()).as_deref(),
            Some("A1")
        );
        assert_eq!(item.alertname(), "A3");
        assert_eq!((q.len(), gauge.get()), (2, 2));
        let head = q.front().expect("head");
        assert_eq!(head.alertname(), "A2");
        assert!(q.begin_attempt(head.seq));
        assert_eq!(q.end_attempt(head.seq, true), AttemptEnd::Head);
        assert_eq!(head_name(&q).as_deref(), Some("A3"));
        assert_eq!(gauge.get(), 1);
    }

    #[test]
    fn overflow_during_an_attempt_evicts_the_head_but_leaves_it_to_the_attempt() {
        let (q, gauge) = queue(1);
        q.push(notice(1));
        let head = q.front().expect("head");
        assert!(q.begin_attempt(head.seq));
        // Evicted, but not reported now: the attempt in flight decides delivered or dropped.
        assert!(q.push(notice(2)).1.is_none());
        assert_eq!(gauge.get(), 1);
        assert_eq!(q.end_attempt(head.seq, true), AttemptEnd::Evicted);
        assert_eq!(head_name(&q).as_deref(), Some("A2"));
        assert_eq!(gauge.get(), 1);
        // An item that is not the head cannot start an attempt.
        assert!(!q.begin_attempt(head.seq));
    }

    #[test]
    fn unsettled_attempt_keeps_the_head_and_overflow_outside_attempts_is_reported() {
        let (q, _) = queue(1);
        q.push(notice(1));
        let head = q.front().expect("head");
        assert!(q.begin_attempt(head.seq));
        assert_eq!(q.end_attempt(head.seq, false), AttemptEnd::Head);
        assert_eq!(q.front().map(|i| i.seq), Some(head.seq));
        // Backing off between attempts: an overflow evicts and reports the head at once.
        assert_eq!(q.push(notice(2)).1.map(|i| i.seq), Some(head.seq));
        assert!(!q.remove_head(head.seq));
    }

    #[test]
    fn take_all_empties_and_resets_the_gauge() {
        let (q, gauge) = queue(10);
        for n in 0..4 {
            q.push(notice(n));
        }
        assert_eq!(q.take_all(), 4);
        assert_eq!((q.len(), gauge.get()), (0, 0));
    }
}
