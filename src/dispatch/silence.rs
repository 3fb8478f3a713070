//! Silences: matchers with an author, a comment and an end time. A firing alert that every
//! matcher of an active silence matches is muted like an inhibited one: left out of
//! notifications, still listed (with `silencedBy`). Expired silences are kept for
//! [`EXPIRED_RETENTION`] so that `list` shows them, then forgotten.

use super::Alert;
use crate::rules::matcher::Matcher;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long an expired silence is still listed.
pub const EXPIRED_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// At most this many silences are kept (a bound on untrusted input).
pub const MAX_SILENCES: usize = 1000;

/// One silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Its id (16 hex digits).
    pub id: String,
    /// Prometheus matchers, as written; all must match.
    pub matchers: Vec<String>,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was created.
    #[serde(with = "time_secs")]
    pub starts_at: SystemTime,
    /// When it ends (set to the expiry time by `expire`).
    #[serde(with = "time_secs")]
    pub ends_at: SystemTime,
}

impl Silence {
    /// `active` or `expired` at `now`.
    pub fn state(&self, now: SystemTime) -> &'static str {
        if now < self.ends_at {
            "active"
        } else {
            "expired"
        }
    }
}

/// What `add` needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSilence {
    /// Prometheus matchers; at least one.
    pub matchers: Vec<String>,
    /// Who creates it; required.
    pub created_by: String,
    /// Why; required.
    pub comment: String,
    /// How long it lasts, e.g. `"2h"`.
    pub duration: String,
}

/// Every silence, by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Silences {
    list: BTreeMap<String, Silence>,
}

impl Silences {
    /// Adds a silence from `new` at `now`; returns it, or what is wrong with `new`.
    pub fn add(&mut self, new: NewSilence, now: SystemTime) -> Result<Silence, String> {
        if new.matchers.is_empty() {
            return Err("matchers: give at least one matcher".into());
        }
        for (i, m) in new.matchers.iter().enumerate() {
            Matcher::parse(m).map_err(|e| format!("matchers[{i}]: {e}"))?;
        }
        if new.created_by.trim().is_empty() {
            return Err("createdBy: must not be empty".into());
        }
        if new.comment.trim().is_empty() {
            return Err("comment: must not be empty".into());
        }
        let d = crate::config::values::parse_duration(&new.duration)
            .map_err(|e| format!("duration: {e}"))?;
        if d.is_zero() {
            return Err("duration: must be greater than 0".into());
        }
        self.prune(now);
        if self.list.len() >= MAX_SILENCES {
            return Err(format!("too many silences (at most {MAX_SILENCES})"));
        }
        let nanos = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let mut h = crate::notice::Fnv::new();
        h.part(&nanos.to_le_bytes());
        h.part(&(self.list.len() as u64).to_le_bytes());
        for m in &new.matchers {
            h.part(m.as_bytes());
        }
        let s = Silence {
            id: h.hex(),
            matchers: new.matchers,
            created_by: new.created_by,
            comment: new.comment,
            starts_at: now,
            ends_at: now.checked_add(d).unwrap_or(now),
        };
        self.list.insert(s.id.clone(), s.clone());
        Ok(s)
    }

    /// Ends silence `id` at `now`; false if there is no such active silence.
    pub fn expire(&mut self, id: &str, now: SystemTime) -> bool {
        match self.list.get_mut(id) {
            Some(s) if now < s.ends_at => {
                s.ends_at = now;
                true
            }
            _ => false,
        }
    }

    /// Every silence (active and recently expired), oldest first.
    pub fn list(&self) -> Vec<Silence> {
        let mut all: Vec<Silence> = self.list.values().cloned().collect();
        all.sort_by_key(|s| s.starts_at);
        all
    }

    /// Forgets silences expired longer than [`EXPIRED_RETENTION`] ago.
    pub fn prune(&mut self, now: SystemTime) {
        self.list
            .retain(|_, s| now.duration_since(s.ends_at).unwrap_or_default() < EXPIRED_RETENTION);
    }

    /// The firing alerts of `alerts` that active silences mute, with the silences' ids.
    pub fn silenced(&self, alerts: &[Alert], now: SystemTime) -> BTreeMap<String, Vec<String>> {
        let active: Vec<(&str, Vec<Matcher>)> = self
            .list
            .values()
            .filter(|s| now < s.ends_at && s.starts_at <= now)
            .map(|s| {
                let ms = s.matchers.iter().filter_map(|m| Matcher::parse(m).ok());
                (s.id.as_str(), ms.collect())
            })
            .collect();
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in alerts.iter().filter(|a| a.is_firing()) {
            for (id, ms) in &active {
                if !ms.is_empty() && ms.iter().all(|m| m.matches(&a.labels)) {
                    out.entry(a.fingerprint.clone())
                        .or_default()
                        .push(id.to_string());
                }
            }
        }
        out
    }
}

/// The silences shared by the HTTP API (which changes them) and the daemon (which applies and
/// saves them); a version number tells the daemon that they changed.
#[derive(Debug, Default)]
pub struct SilenceStore {
    inner: std::sync::Mutex<(Silences, u64)>,
}

impl SilenceStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Silences, u64)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the silences with `f`; returns what it returns.
    pub fn update<T>(&self, f: impl FnOnce(&mut Silences) -> T) -> T {
        let mut g = self.lock();
        g.1 += 1;
        f(&mut g.0)
    }

    /// A copy of the silences and their version.
    pub fn get(&self) -> (Silences, u64) {
        self.lock().clone()
    }
}

/// Times as RFC 3339 in JSON (the API and the state file).
mod time_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        crate::timefmt::rfc3339::serialize(t, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::fixtures::{firing, resolved};
    use crate::rules::fixtures::t;

    fn new(matchers: &[&str], duration: &str) -> NewSilence {
        NewSilence {
            matchers: matchers.iter().map(|m| m.to_string()).collect(),
            created_by: "ana".into(),
            comment: "maintenance".into(),
            duration: duration.into(),
        }
    }

    #[test]
    fn add_validates() {
        let mut s = Silences::default();
        let cases = [
            (new(&[], "1h"), "matchers: give at least one"),
            (new(&["bad"], "1h"), "matchers[0]: matcher `bad`"),
            (new(&[r#"a="b""#], "soon"), "duration:"),
            (new(&[r#"a="b""#], "0s"), "duration: must be greater than 0"),
            (
                NewSilence {
                    created_by: " ".into(),
                    ..new(&[r#"a="b""#], "1h")
                },
                "createdBy: must not be empty",
            ),
            (
                NewSilence {
                    comment: "".into(),
                    ..new(&[r#"a="b""#], "1h")
                },
                "comment: must not be empty",
            ),
        ];
        for (n, want) in cases {
            let err = s.add(n, t(0)).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        assert!(s.list().is_empty());
    }

    #[test]
    fn silences_mute_matching_firing_alerts_until_they_end() {
        let mut s = Silences::default();
        let db = firing("PoolNearFull", &[("target", "db")], 0);
        let web = firing("PoolNearFull", &[("target", "web")], 0);
        let sil = s
            .add(
                new(&[r#"target="db""#, r#"alertname=~"Pool.*""#], "1h"),
                t(10),
            )
            .unwrap();
        assert_eq!(sil.ends_at, t(3610));
        assert_eq!(sil.state(t(11)), "active");
        let alerts = [db.clone(), web.clone(), resolved(db.clone(), 5)];
        let got = s.silenced(&alerts[..2], t(20));
        assert_eq!(got.len(), 1);
        assert_eq!(got[&db.fingerprint], std::slice::from_ref(&sil.id));
        assert!(
            s.silenced(&alerts[2..], t(20)).is_empty(),
            "resolved: not muted"
        );
        assert!(s.silenced(&alerts, t(3610)).is_empty(), "ended");
        // Expired by hand; listed for a day, then gone.
        let other = s.add(new(&[r#"target="web""#], "2h"), t(20)).unwrap();
        assert_ne!(other.id, sil.id);
        assert!(s.expire(&other.id, t(30)));
        assert!(!s.expire(&other.id, t(31)), "already expired");
        assert!(!s.expire("nope", t(31)));
        assert!(!s.silenced(&alerts, t(40)).contains_key(&web.fingerprint));
        assert_eq!(s.list().len(), 2);
        s.prune(t(30) + EXPIRED_RETENTION);
        assert_eq!(s.list().len(), 1);
        let json = serde_json::to_string(&s).unwrap();
        let back: Silences = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
