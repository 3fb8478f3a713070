//! What the alert engine reports of one alert's transition (fired, resolved, replaced, removed),
//! already labelled and annotated: the daemon logs it (`alert notice`), and the engine keeps the
//! resolved ones in its published alert set. What receivers get is decided by the dispatcher
//! ([`crate::dispatch`]) from that set, not from notices.

use crate::model::Severity;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Whether the alert is firing or resolved, as in Alertmanager's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeStatus {
    /// The alert is firing.
    Firing,
    /// The alert stopped firing.
    Resolved,
}

impl NoticeStatus {
    /// `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeStatus::Firing => "firing",
            NoticeStatus::Resolved => "resolved",
        }
    }
}

/// Why a notice is sent now; doubles as a log field and a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeReason {
    /// The alert just went from pending (or inactive, with `for = 0`) to firing.
    Fired,
    /// The alert just resolved: its condition stopped holding.
    Resolved,
    /// A configuration change gave the alert new labels (a target's or its rule's `labels`): the
    /// notice retires the old label set (status resolved, as Alertmanager expects of a label set
    /// that ends) though the condition did not clear; the alert goes on under the new labels,
    /// whose own notice follows with the same `startsAt`.
    Replaced,
    /// A configuration change removed what the alert was evaluated for (its rule, this severity
    /// of it, or its target), or the target no longer reports the alert's pool: status resolved,
    /// though nobody knows whether the condition cleared.
    Removed,
}

impl NoticeReason {
    /// The status a notice sent for this reason has.
    pub fn status(self) -> NoticeStatus {
        match self {
            NoticeReason::Fired => NoticeStatus::Firing,
            NoticeReason::Resolved | NoticeReason::Replaced | NoticeReason::Removed => {
                NoticeStatus::Resolved
            }
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeReason::Fired => "fired",
            NoticeReason::Resolved => "resolved",
            NoticeReason::Replaced => "replaced",
            NoticeReason::Removed => "removed",
        }
    }
}

/// One alert's notice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// Firing or resolved.
    pub status: NoticeStatus,
    /// Why it is sent now.
    pub reason: NoticeReason,
    /// Severity, also present as the `severity` label; receivers filter on it.
    pub severity: Severity,
    /// Identifying labels: `alertname`, `severity`, `target`, `kind`, `pool`, plus the rule's
    /// and the target's extra labels.
    pub labels: BTreeMap<String, String>,
    /// `summary` and `description`, filled with the numbers at the time of the notice.
    pub annotations: BTreeMap<String, String>,
    /// When the alert's condition started to hold (Prometheus' `activeAt`).
    #[serde(with = "crate::timefmt::rfc3339")]
    pub starts_at: SystemTime,
    /// When it resolved; `None` while firing.
    pub ends_at: Option<SystemTime>,
    /// Stable 16-hex-digit fingerprint of `labels`.
    pub fingerprint: String,
}

/// FNV-1a 64-bit fingerprint of a label set, rendered as 16 lowercase hex digits. Stable across
/// restarts and versions: it depends only on the sorted label names and values.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h = Fnv::new();
    for (k, v) in labels {
        h.part(k.as_bytes());
        h.part(v.as_bytes());
    }
    h.hex()
}

/// FNV-1a 64-bit hashing of a sequence of byte strings, each followed by a `0xff` separator
/// (so that `("ab","c")` and `("a","bc")` differ). Stable across versions: fingerprints and
/// notification ids are built with it.
#[derive(Debug, Clone)]
pub struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// An empty hash.
    pub fn new() -> Fnv {
        Fnv(Self::OFFSET)
    }

    /// Feeds one part and its separator.
    pub fn part(&mut self, bytes: &[u8]) {
        for b in bytes.iter().chain(&[0xff]) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// The hash as 16 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

impl Default for Fnv {
    fn default() -> Self {
        Fnv::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fingerprint_is_stable_and_label_sensitive() {
        let a = labels(&[("alertname", "PoolNearFull"), ("target", "orders-db")]);
        let b = labels(&[("target", "orders-db"), ("alertname", "PoolNearFull")]);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len(), 16);
        let c = labels(&[("alertname", "PoolNearFull"), ("target", "orders-db2")]);
        assert_ne!(fingerprint(&a), fingerprint(&c));
        // The separator keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(
            fingerprint(&labels(&[("ab", "c")])),
            fingerprint(&labels(&[("a", "bc")]))
        );
        // Pinned so that a code change cannot silently re-key every alert.
        assert_eq!(fingerprint(&labels(&[])), "cbf29ce484222325");
    }
}
