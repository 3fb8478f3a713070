//! The alert state machine, with the semantics of Prometheus' `rules/alerting.go`:
//!
//! ```text
//!            active, for not elapsed          active, for elapsed (or for = 0)
//! inactive ───────────────────────▶ pending ───────────────────────▶ firing
//!     ▲                                │                              │ not active for
//!     └────────── not active ──────────┘ (no notice)                  │ keep_firing_for
//!     └───────────────────────────────── resolved ◀───────────────────┘
//! ```
//!
//! [`step`] is pure: the evaluation time is an argument, so tests drive time by hand, and a
//! clock that goes backwards only delays transitions (elapsed time saturates at zero).

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// An alert instance's state between two evaluations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// The condition does not hold (nothing is remembered).
    Inactive,
    /// The condition holds, but not yet for `for`.
    Pending {
        /// When the condition started holding (Prometheus' `activeAt`).
        active_at: SystemTime,
    },
    /// The alert fires.
    Firing {
        /// When the condition started holding.
        active_at: SystemTime,
        /// When it started firing.
        fired_at: SystemTime,
        /// When the condition stopped holding while firing; the alert resolves once this is
        /// `keep_firing_for` ago. `None` while the condition holds.
        keep_firing_since: Option<SystemTime>,
    },
}

impl State {
    /// When the condition started holding, unless inactive.
    pub fn active_at(&self) -> Option<SystemTime> {
        match self {
            State::Inactive => None,
            State::Pending { active_at } | State::Firing { active_at, .. } => Some(*active_at),
        }
    }

    /// True while firing (including while kept firing).
    pub fn is_firing(&self) -> bool {
        matches!(self, State::Firing { .. })
    }

    /// `pending`, `firing` or `inactive`, as in Prometheus' API.
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Inactive => "inactive",
            State::Pending { .. } => "pending",
            State::Firing { .. } => "firing",
        }
    }
}

/// What a step changed, when it changed something worth knowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// inactive → pending.
    Pending,
    /// Pending whose condition stopped holding → inactive. Nobody is told.
    Cancelled,
    /// → firing: notify.
    Fired,
    /// firing → inactive: notify that it resolved.
    Resolved,
}

/// `now - since`, zero when the clock went backwards.
pub fn elapsed(since: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or(Duration::ZERO)
}

/// Advances `prev` by one evaluation at `now`, where `active` says whether the condition holds.
pub fn step(
    prev: &State,
    now: SystemTime,
    active: bool,
    for_: Duration,
    keep_firing_for: Duration,
) -> (State, Option<Transition>) {
    match (*prev, active) {
        (State::Inactive, false) => (State::Inactive, None),
        (State::Inactive, true) if for_.is_zero() => (fired(now, now), Some(Transition::Fired)),
        (State::Inactive, true) => (State::Pending { active_at: now }, Some(Transition::Pending)),
        (State::Pending { active_at }, true) if elapsed(active_at, now) >= for_ => {
            (fired(active_at, now), Some(Transition::Fired))
        }
        (pending @ State::Pending { .. }, true) => (pending, None),
        (State::Pending { .. }, false) => (State::Inactive, Some(Transition::Cancelled)),
        (
            State::Firing {
                active_at,
                fired_at,
                ..
            },
            true,
        ) => (
            State::Firing {
                active_at,
                fired_at,
                keep_firing_since: None,
            },
            None,
        ),
        (
            State::Firing {
                active_at,
                fired_at,
                keep_firing_since,
            },
            false,
        ) => {
            let since = keep_firing_since.unwrap_or(now);
            if elapsed(since, now) >= keep_firing_for {
                (State::Inactive, Some(Transition::Resolved))
            } else {
                let kept = State::Firing {
                    active_at,
                    fired_at,
                    keep_firing_since: Some(since),
                };
                (kept, None)
            }
        }
    }
}

fn fired(active_at: SystemTime, now: SystemTime) -> State {
    State::Firing {
        active_at,
        fired_at: now,
        keep_firing_since: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixtures::t;
    fn pending(a: u64) -> State {
        State::Pending { active_at: t(a) }
    }
    fn firing(a: u64, f: u64) -> State {
        State::Firing {
            active_at: t(a),
            fired_at: t(f),
            keep_firing_since: None,
        }
    }
    fn kept(a: u64, f: u64, since: u64) -> State {
        State::Firing {
            active_at: t(a),
            fired_at: t(f),
            keep_firing_since: Some(t(since)),
        }
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// (name, prev, now, active, for, keep_firing_for, next, transition)
    type Row = (
        &'static str,
        State,
        u64,
        bool,
        u64,
        u64,
        State,
        Option<Transition>,
    );

    #[test]
    fn transition_table() {
        use State::Inactive;
        use Transition::*;
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("stays inactive", Inactive, 10, false, 60, 0, Inactive, None),
            ("starts pending", Inactive, 10, true, 60, 0, pending(10), Some(Pending)),
            ("for=0 fires at once", Inactive, 10, true, 0, 0, firing(10, 10), Some(Fired)),
            ("for=0 with keep_firing_for fires at once", Inactive, 10, true, 0, 30, firing(10, 10), Some(Fired)),
            ("pending, for not elapsed", pending(10), 69, true, 60, 0, pending(10), None),
            ("pending, exactly for", pending(10), 70, true, 60, 0, firing(10, 70), Some(Fired)),
            ("pending, past for", pending(10), 95, true, 60, 0, firing(10, 95), Some(Fired)),
            ("pending whose for shrank to 0", pending(10), 10, true, 0, 0, firing(10, 10), Some(Fired)),
            ("pending cancelled silently", pending(10), 20, false, 60, 0, Inactive, Some(Cancelled)),
            ("pending cancelled even after for", pending(10), 200, false, 60, 0, Inactive, Some(Cancelled)),
            ("pending cancelled despite keep_firing_for", pending(10), 20, false, 60, 300, Inactive, Some(Cancelled)),
            ("firing stays firing", firing(10, 70), 80, true, 60, 0, firing(10, 70), None),
            ("firing resolves", firing(10, 70), 80, false, 60, 0, Inactive, Some(Resolved)),
            ("keep firing starts", firing(10, 70), 80, false, 60, 30, kept(10, 70, 80), None),
            ("kept, before keep_firing_for", kept(10, 70, 80), 109, false, 60, 30, kept(10, 70, 80), None),
            ("kept, exactly keep_firing_for", kept(10, 70, 80), 110, false, 60, 30, Inactive, Some(Resolved)),
            ("kept, past keep_firing_for", kept(10, 70, 80), 500, false, 60, 30, Inactive, Some(Resolved)),
            ("kept, re-activated", kept(10, 70, 80), 100, true, 60, 30, firing(10, 70), None),
            ("re-activated then off restarts the keep", firing(10, 70), 120, false, 60, 30, kept(10, 70, 120), None),
            ("kept while keep_firing_for shrank to 0", kept(10, 70, 80), 90, false, 60, 0, Inactive, Some(Resolved)),
            ("firing ignores a longer for", firing(10, 70), 80, true, 3600, 0, firing(10, 70), None),
            ("clock backwards: pending waits", pending(100), 50, true, 60, 0, pending(100), None),
            ("clock backwards: pending for=0 fires", pending(100), 50, true, 0, 0, firing(100, 50), Some(Fired)),
            ("clock backwards: kept waits", kept(10, 70, 100), 50, false, 60, 30, kept(10, 70, 100), None),
            ("clock backwards: firing resolves without keep", firing(100, 100), 50, false, 60, 0, Inactive, Some(Resolved)),
            ("clock backwards: inactive starts pending", Inactive, 0, true, 60, 0, pending(0), Some(Pending)),
            ("long for", pending(0), 86_399, true, 86_400, 0, pending(0), None),
            ("long for elapsed", pending(0), 86_400, true, 86_400, 0, firing(0, 86_400), Some(Fired)),
        ];
        assert!(rows.len() >= 25);
        for (name, prev, now, active, for_, keep, want, want_tr) in rows {
            let (got, tr) = step(&prev, t(now), active, S(for_), S(keep));
            assert_eq!((got, tr), (want, want_tr), "{name}");
        }
    }

    #[test]
    fn sub_second_for() {
        let start = t(0);
        let (p, _) = step(
            &State::Inactive,
            start,
            true,
            Duration::from_millis(500),
            S(0),
        );
        let (p, tr) = step(
            &p,
            start + Duration::from_millis(499),
            true,
            Duration::from_millis(500),
            S(0),
        );
        assert_eq!(tr, None);
        let (f, tr) = step(
            &p,
            start + Duration::from_millis(500),
            true,
            Duration::from_millis(500),
            S(0),
        );
        assert_eq!(tr, Some(Transition::Fired));
        assert_eq!(f.active_at(), Some(start));
        assert!(f.is_firing());
        assert_eq!(f.as_str(), "firing");
    }

    #[test]
    fn far_past_and_future_times_do_not_panic() {
        let epoch = SystemTime::UNIX_EPOCH;
        let far = epoch + Duration::from_secs(u32::MAX as u64 * 100);
        for (prev, now) in [
            (pending(0), epoch),
            (kept(0, 0, 0), far),
            (firing(0, 0), epoch),
        ] {
            for active in [true, false] {
                let _ = step(&prev, now, active, Duration::MAX, Duration::MAX);
                let _ = step(&prev, now, active, S(0), S(0));
            }
        }
    }

    #[test]
    fn serde_round_trip() {
        for s in [State::Inactive, pending(1), firing(1, 2), kept(1, 2, 3)] {
            let json = serde_json::to_string(&s).unwrap();
            let back: State = serde_json::from_str(&json).unwrap();
            assert_eq!(back, s, "{json}");
        }
    }
}
