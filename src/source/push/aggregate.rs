//! From the last push of every instance of an application to the target's pools (pure, time
//! passed in). Only **fresh** instances count — those whose last push is at most `ttl` old —
//! and pools are summed across them by name, so that series carry no instance label:
//!
//! * capacity, in use, idle, waiting and the cumulative counters are sums, and so is
//!   `queued`, per instance (one instance's free slot cannot serve another's queue); the
//!   registry then replaces the counters by what every instance has counted, gone or
//!   restarted ones included ([`super::counters`]), so that they never go down;
//! * the longest wait is the longest of any instance;
//! * the configured capacity is the **per-instance** size (the smallest, when instances
//!   differ), so that scaling out or in is not a capacity change, and a rolling deployment that
//!   shrinks the pool is flagged with its first new instance.
//!
//! With no fresh instance the target is **stale** ([`ErrorClass::Stale`]): not up, its series
//! gone, `TargetDown` pending. Within one `ttl` of the target being watched (poolwatch started,
//! or the target was added) it is up with no pools, so a restart of poolwatch does not page
//! before the applications had a chance to push.

use super::body::PushedPool;
use crate::model::{ErrorClass, Fact, PollData, PollError, PoolId, PoolSnapshot};
use crate::source::app::APP;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// One instance's last push, as the registry keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// When its stats were read (never later than their arrival).
    pub at: SystemTime,
    /// Its pools.
    pub pools: Vec<PushedPool>,
}

/// How old a push is at `now` (zero when it is from the future).
pub fn age(at: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(at).unwrap_or_default()
}

/// Whether a push read at `at` still counts at `now`.
pub fn is_fresh(at: SystemTime, now: SystemTime, ttl: Duration) -> bool {
    age(at, now) <= ttl
}

/// The fact family counting a push target's instances, by `state` (`fresh`, `stale`).
pub const INSTANCES_FACT: &str = "poolwatch_push_instances";

/// The target's report at `now`: its pools summed over the fresh `instances`, or why there are
/// none. `since` is when poolwatch began watching the target.
pub fn aggregate(
    target: &str,
    instances: &BTreeMap<String, Instance>,
    since: SystemTime,
    ttl: Duration,
    now: SystemTime,
) -> Result<PollData, PollError> {
    let fresh: Vec<&Instance> = instances
        .values()
        .filter(|i| is_fresh(i.at, now, ttl))
        .collect();
    let stale = instances.len() - fresh.len();
    if fresh.is_empty() {
        return none_fresh(instances, since, ttl, now);
    }
    let mut by_name: BTreeMap<&str, Vec<&PushedPool>> = BTreeMap::new();
    for p in fresh.iter().flat_map(|i| &i.pools) {
        by_name.entry(p.name.as_str()).or_default().push(p);
    }
    let pools = by_name
        .into_iter()
        .map(|(name, parts)| sum(target, name, &parts))
        .collect();
    let stale_note = if stale > 0 {
        format!(" ({stale} stale)")
    } else {
        String::new()
    };
    Ok(PollData {
        summary: format!(
            "{} pushing{stale_note}, ttl {}",
            instances_word(fresh.len()),
            crate::timefmt::human(ttl)
        ),
        pools,
        facts: instance_facts(fresh.len(), stale),
        refusing: None,
    })
}

/// The report when no instance is fresh: up with no pools while the target is new, else stale.
fn none_fresh(
    instances: &BTreeMap<String, Instance>,
    since: SystemTime,
    ttl: Duration,
    now: SystemTime,
) -> Result<PollData, PollError> {
    let watched = age(since, now);
    let last = instances.iter().max_by_key(|(_, i)| i.at);
    match last {
        None if watched <= ttl => Ok(PollData {
            summary: "waiting for the first push".into(),
            facts: instance_facts(0, 0),
            ..PollData::default()
        }),
        None => Err(PollError {
            class: ErrorClass::Stale,
            message: format!(
                "no instance has pushed since poolwatch began watching this target {} ago",
                crate::timefmt::human(watched)
            ),
        }),
        Some((name, i)) => Err(PollError {
            class: ErrorClass::Stale,
            message: format!(
                "no instance pushed within the ttl ({}); the last push was read {} ago, from instance {name}",
                crate::timefmt::human(ttl),
                crate::timefmt::human(age(i.at, now))
            ),
        }),
    }
}

/// One pool summed over the instances that have it.
fn sum(target: &str, name: &str, parts: &[&PushedPool]) -> PoolSnapshot {
    let id = PoolId {
        target: target.to_string(),
        kind: APP,
        name: name.to_string(),
    };
    let total = |f: fn(&PushedPool) -> u64| parts.iter().map(|p| f(p)).sum::<u64>();
    let mut pool = PoolSnapshot::new(id, total(|p| p.capacity), total(|p| p.in_use));
    pool.idle = total(|p| p.idle);
    pool.waiting = total(|p| p.waiting);
    // One instance's free slot cannot serve another's queue: each instance's own.
    pool.queued = Some(total(|p| {
        p.waiting
            .saturating_sub(p.capacity.saturating_sub(p.in_use))
    }));
    let smallest = parts.iter().map(|p| p.capacity).min().unwrap_or(0);
    let largest = parts.iter().map(|p| p.capacity).max().unwrap_or(0);
    pool.configured_capacity = smallest;
    pool.longest_wait = parts.iter().filter_map(|p| p.longest_wait).max();
    pool.counters.waits = sum_known(parts.iter().map(|p| p.waits));
    pool.counters.timeouts = sum_known(parts.iter().map(|p| p.timeouts));
    pool.counters.wait_seconds = parts
        .iter()
        .filter_map(|p| p.wait_seconds)
        .fold(None, |acc, s| Some(acc.unwrap_or(0.0) + s));
    pool.capacity_note = if smallest == largest {
        format!("{} × {smallest}", instances_word(parts.len()))
    } else {
        format!(
            "{}, {smallest} to {largest} each",
            instances_word(parts.len())
        )
    };
    pool
}

/// The sum of the values known; `None` when no instance counts it.
fn sum_known(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values
        .flatten()
        .fold(None, |acc, v| Some(acc.unwrap_or(0) + v))
}

fn instances_word(n: usize) -> String {
    match n {
        1 => "1 instance".into(),
        n => format!("{n} instances"),
    }
}

fn instance_facts(fresh: usize, stale: usize) -> Vec<Fact> {
    let help = "Instances of a push target by state: fresh (pushed within the ttl, counted in the \
                pools) or stale (remembered, not counted)";
    [("fresh", fresh), ("stale", stale)]
        .into_iter()
        .map(|(state, n)| Fact {
            name: INSTANCES_FACT,
            help,
            labels: vec![("state", state.to_string())],
            value: n as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests;
