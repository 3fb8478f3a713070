//! Cumulative counters of a push target that stay cumulative (pure). A pool's counters (waits,
//! wait seconds, timeouts) are summed over its instances, but the set of instances changes: an
//! instance that goes stale, stops or is forgotten would take its counts out of the sum, and an
//! instance that restarts counts from zero again. Either makes the sum go down, which the rate
//! code reads as a reset of one counter, and the pool would show a burst of timeouts that never
//! happened. So each (instance, pool) keeps contributing what it counted:
//!
//! * its contribution is `offset + last`: the last value it pushed, plus what earlier lives of
//!   it counted before a restart (a value below the previous one is a restart: the previous
//!   value moves into `offset`);
//! * an instance that leaves the fresh set keeps its contribution (a returning one continues
//!   from it, or restarts from its offset);
//! * a forgotten instance's contribution moves into its pool's `gone` total, so the state is
//!   bounded by the instances the registry keeps.

use super::body::PushedPool;
use crate::model::Counters;
use std::collections::{BTreeMap, BTreeSet};

/// Waits, wait seconds, timeouts: each `None` until some instance reports it.
pub type Three = [Option<f64>; 3];

/// One (instance, pool)'s part of the pool's counters.
#[derive(Debug, Clone, Default, PartialEq)]
struct Part {
    offset: [f64; 3],
    last: Three,
}

/// What a push target's pools have counted, across the lives of their instances.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Carry {
    /// By (pool, instance).
    parts: BTreeMap<(String, String), Part>,
    /// By pool: what forgotten instances counted.
    gone: BTreeMap<String, Three>,
}

/// The three counters of a pushed pool, as numbers.
pub fn three(p: &PushedPool) -> Three {
    [
        p.waits.map(|n| n as f64),
        p.wait_seconds,
        p.timeouts.map(|n| n as f64),
    ]
}

fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

impl Carry {
    /// Takes the counters each fresh (pool, instance) pushed last.
    pub fn observe<'a>(&mut self, fresh: impl IntoIterator<Item = (&'a str, &'a str, Three)>) {
        for (pool, instance, now) in fresh {
            let part = self
                .parts
                .entry((pool.to_string(), instance.to_string()))
                .or_default();
            for (k, value) in now.into_iter().enumerate() {
                let Some(value) = value else { continue };
                if let Some(before) = part.last[k].filter(|b| value < *b) {
                    part.offset[k] += before; // restarted: its earlier life still counts
                }
                part.last[k] = Some(value);
            }
        }
    }

    /// Moves the parts of instances not in `kept` into their pools' `gone` totals.
    pub fn forget_except(&mut self, kept: &BTreeSet<&str>) {
        let gone: Vec<(String, String)> = self
            .parts
            .keys()
            .filter(|(_, instance)| !kept.contains(instance.as_str()))
            .cloned()
            .collect();
        for key in gone {
            if let Some(part) = self.parts.remove(&key) {
                let total = self.gone.entry(key.0).or_default();
                let contribution = part.contribution();
                for k in 0..3 {
                    total[k] = add(total[k], contribution[k]);
                }
            }
        }
    }

    /// The pool's counters: every part's contribution, the forgotten ones included.
    pub fn total(&self, pool: &str) -> Counters {
        let mut sum: Three = self.gone.get(pool).copied().unwrap_or_default();
        let parts = self
            .parts
            .range((pool.to_string(), String::new())..)
            .take_while(|((p, _), _)| p == pool);
        for (_, part) in parts {
            let c = part.contribution();
            for k in 0..3 {
                sum[k] = add(sum[k], c[k]);
            }
        }
        Counters {
            waits: sum[0].map(|v| v.round() as u64),
            wait_seconds: sum[1],
            timeouts: sum[2].map(|v| v.round() as u64),
        }
    }
}

impl Part {
    fn contribution(&self) -> Three {
        let mut c = [None; 3];
        for (k, slot) in c.iter_mut().enumerate() {
            *slot = self.last[k].map(|v| v + self.offset[k]);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(waits: u64, timeouts: u64) -> Three {
        [Some(waits as f64), None, Some(timeouts as f64)]
    }

    fn totals(carry: &Carry) -> (Option<u64>, Option<u64>) {
        let t = carry.total("default");
        (t.waits, t.timeouts)
    }

    #[test]
    fn sums_stay_cumulative_as_instances_come_go_and_restart() {
        // Each step: the fresh instances' (name, waits, timeouts), the instances the registry
        // still keeps (None: all), and the pool's totals after it.
        #[allow(clippy::type_complexity)]
        let steps: &[(&[(&str, u64, u64)], Option<&[&str]>, (u64, u64))] = &[
            (&[("a", 10, 1), ("b", 5, 0)], None, (15, 1)),
            (&[("a", 12, 1), ("b", 6, 0)], None, (18, 1)),
            // b goes stale: its 6 waits still count.
            (&[("a", 13, 1)], None, (19, 1)),
            // b comes back having counted on: no double count.
            (&[("a", 13, 1), ("b", 8, 0)], None, (21, 1)),
            // a restarts (counts from 0): its 13 waits and 1 timeout are kept.
            (&[("a", 2, 0), ("b", 8, 0)], None, (23, 1)),
            // a restarted again, then counted past its previous value.
            (&[("a", 1, 0), ("b", 8, 0)], None, (24, 1)),
            (&[("a", 5, 2), ("b", 8, 0)], None, (28, 3)),
            // b is forgotten by the registry: its 8 move to the pool's total.
            (&[("a", 5, 2)], Some(&["a"]), (28, 3)),
            // A new instance c named like no earlier one adds to it.
            (&[("a", 5, 2), ("c", 1, 1)], Some(&["a", "c"]), (29, 4)),
        ];
        let mut carry = Carry::default();
        let mut previous = (0, 0);
        for (i, (fresh, kept, want)) in steps.iter().enumerate() {
            carry.observe(fresh.iter().map(|(n, w, t)| ("default", *n, c(*w, *t))));
            if let Some(kept) = kept {
                carry.forget_except(&kept.iter().copied().collect());
            }
            let got = totals(&carry);
            assert_eq!(got, (Some(want.0), Some(want.1)), "step {i}");
            assert!(
                want.0 >= previous.0 && want.1 >= previous.1,
                "step {i} went down"
            );
            previous = *want;
        }
    }

    #[test]
    fn counters_nobody_reports_stay_unknown_and_pools_are_apart() {
        let mut carry = Carry::default();
        carry.observe([
            ("default", "a", [None, None, Some(3.0)]),
            ("other", "a", [Some(7.0), Some(1.5), None]),
        ]);
        assert_eq!(
            carry.total("default"),
            Counters {
                waits: None,
                wait_seconds: None,
                timeouts: Some(3)
            }
        );
        assert_eq!(
            carry.total("other"),
            Counters {
                waits: Some(7),
                wait_seconds: Some(1.5),
                timeouts: None
            }
        );
        assert_eq!(carry.total("none"), Counters::default());
    }
}
