//! The pool names an application's kept instances use, so that most pushes are checked against
//! `max_pools` without visiting every instance.

use super::super::aggregate::Instance;
use std::collections::{BTreeMap, HashSet};

/// A superset of the pool names of an application's kept instances, fresh or stale. A push
/// whose names are all in it, while it holds at most `max_pools` names, cannot make the fresh
/// instances use more than `max_pools` names: the scan over every instance is then skipped. It
/// is only ever too large (names of instances since gone), never too small: names are added by
/// every accepted push, and it is rebuilt whenever instances are forgotten.
#[derive(Debug, Default)]
pub(super) struct Names(HashSet<String>);

impl Names {
    /// Whether a push using `names` certainly keeps the application within `max` pool names.
    pub(super) fn admit<'a>(&self, mut names: impl Iterator<Item = &'a str>, max: usize) -> bool {
        self.0.len() <= max && names.all(|n| self.0.contains(n))
    }

    /// Adds the names of an accepted push.
    pub(super) fn add<'a>(&mut self, names: impl Iterator<Item = &'a str>) {
        for n in names {
            if !self.0.contains(n) {
                self.0.insert(n.to_string());
            }
        }
    }

    /// The names of `instances`, after some were forgotten.
    pub(super) fn rebuild(&mut self, instances: &BTreeMap<String, Instance>) {
        self.0.clear();
        let names = instances.values().flat_map(|i| i.pools.iter());
        self.add(names.map(|p| p.name.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::push::body::PushedPool;

    #[test]
    fn admits_only_pushes_that_cannot_grow_the_names_past_the_limit() {
        // (names known, names pushed, max_pools, admitted without a scan)
        let cases: [(&[&str], &[&str], usize, bool); 7] = [
            (&["a", "b"], &["a"], 2, true),
            (&["a", "b"], &["a", "b"], 2, true),
            (&["a", "b"], &["c"], 3, false),
            (&["a", "b", "c"], &["a"], 2, false),
            (&[], &[], 0, true),
            (&[], &["a"], 5, false),
            (&["a"], &[], 1, true),
        ];
        for (known, pushed, max, want) in cases {
            let mut names = Names::default();
            names.add(known.iter().copied());
            let got = names.admit(pushed.iter().copied(), max);
            assert_eq!(got, want, "{known:?} + {pushed:?} within {max}");
        }
    }

    #[test]
    fn a_rebuild_keeps_only_the_names_of_kept_instances() {
        let pool = |name: &str| PushedPool {
            name: name.into(),
            capacity: 1,
            in_use: 0,
            idle: 0,
            waiting: 0,
            longest_wait: None,
            waits: None,
            wait_seconds: None,
            timeouts: None,
        };
        let instance = |names: &[&str]| Instance {
            at: std::time::UNIX_EPOCH,
            pools: names.iter().map(|n| pool(n)).collect(),
        };
        let mut names = Names::default();
        names.add(["a", "b", "c"].into_iter());
        let kept = BTreeMap::from([("web-1".to_string(), instance(&["a"]))]);
        names.rebuild(&kept);
        assert!(names.admit(["a"].into_iter(), 1));
        assert!(!names.admit(["b"].into_iter(), 2));
    }
}
