//! Applies a [`Mapping`] to a parsed [`Exposition`]: pure, so that every preset is tested on
//! expositions in its library's shape.
//!
//! A pool is named by the value of the mapping's pool label (`default` for samples without
//! it). Per pool and number, the first of the series' names present wins; when two samples
//! give the same number of the same pool under the same name (other labels differ), the first
//! one in the exposition wins. A pool needs its capacity and its in-use count (served, or
//! open minus idle); one without them is left out, and said so.

use super::exposition::Exposition;
use super::presets::{Mapping, Series};
use crate::model::{Counters, PoolId, PoolSnapshot};
use crate::source::app::APP;
use std::collections::BTreeMap;

/// Most pools one endpoint may report: each is a set of series in poolwatch's own `/metrics`.
pub const MAX_POOLS: usize = 64;

/// The name of the pool of samples that lack the pool label.
pub const DEFAULT_POOL: &str = "default";

/// What a mapping found.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// Complete pools, by name.
    pub pools: Vec<PoolSnapshot>,
    /// Why pools were left out (`pool "x": no capacity`), for the summary.
    pub left_out: Vec<String>,
}

/// The numbers found for one pool: per field of [`Mapping::fields`], the rank of the name that
/// gave it and its value.
#[derive(Debug, Default)]
struct Found([Option<(usize, f64)>; 8]);

impl Found {
    fn get(&self, field: usize) -> Option<f64> {
        self.0[field].map(|(_, v)| v)
    }

    /// A count: a finite, non-negative value, rounded.
    fn count(&self, field: usize) -> Option<u64> {
        self.get(field)
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v.round().min(u64::MAX as f64) as u64)
    }
}

// Indexes into `Mapping::fields()`.
const CAPACITY: usize = 0;
const IN_USE: usize = 1;
const IDLE: usize = 2;
const TOTAL: usize = 3;
const WAITING: usize = 4;
const WAITS: usize = 5;
const WAIT_SECONDS: usize = 6;
const TIMEOUTS: usize = 7;

/// Maps `expo` to the pools of `target`, counting only samples that carry every label of
/// `match_labels`. Fails, saying what was looked for, when no complete pool is found.
pub fn map(
    expo: &Exposition,
    mapping: &Mapping,
    match_labels: &[(String, String)],
    target: &str,
) -> Result<Mapped, String> {
    let (found, overflow) = collect(expo, mapping, match_labels);
    let mut mapped = Mapped {
        pools: Vec::new(),
        left_out: Vec::new(),
    };
    for (name, numbers) in &found {
        match pool(target, name, numbers, mapping) {
            Ok(p) => mapped.pools.push(p),
            Err(why) => mapped.left_out.push(format!("pool {name:?}: {why}")),
        }
    }
    if overflow > 0 {
        mapped.left_out.push(format!(
            "{overflow} samples of pools beyond the first {MAX_POOLS}"
        ));
    }
    if mapped.pools.is_empty() {
        return Err(if found.is_empty() {
            format!(
                "no pool series found: preset {} looks for {}",
                mapping.name,
                looked_for(mapping)
            )
        } else {
            format!("no complete pool: {}", mapped.left_out.join("; "))
        });
    }
    Ok(mapped)
}

/// Gathers, per pool, the numbers the mapping's series give; also how many samples were
/// dropped because there were already [`MAX_POOLS`] pools.
fn collect(
    expo: &Exposition,
    mapping: &Mapping,
    match_labels: &[(String, String)],
) -> (BTreeMap<String, Found>, usize) {
    let fields = mapping.fields();
    let mut pools: BTreeMap<String, Found> = BTreeMap::new();
    let mut overflow = 0;
    for s in &expo.samples {
        if !match_labels.iter().all(|(n, v)| s.label(n) == Some(v)) {
            continue;
        }
        for (i, (_, series)) in fields.iter().enumerate() {
            let Some(rank) = series.and_then(|se| rank_of(se, s)) else {
                continue;
            };
            let name = mapping
                .pool_label
                .as_deref()
                .and_then(|l| s.label(l))
                .unwrap_or(DEFAULT_POOL);
            if !pools.contains_key(name) && pools.len() >= MAX_POOLS {
                overflow += 1;
                continue;
            }
            let slot = &mut pools.entry(name.to_string()).or_default().0[i];
            if slot.is_none_or(|(r, _)| rank < r) {
                *slot = Some((rank, s.value));
            }
        }
    }
    (pools, overflow)
}

/// The rank of the sample's name among the series' names, if the sample is of the series.
fn rank_of(series: &Series, s: &super::exposition::Sample) -> Option<usize> {
    let rank = series.rank(&s.name)?;
    series
        .labels
        .iter()
        .all(|(n, v)| s.label(n) == Some(v))
        .then_some(rank)
}

/// One pool from its numbers, or why it cannot be one.
fn pool(target: &str, name: &str, f: &Found, m: &Mapping) -> Result<PoolSnapshot, String> {
    let capacity = f.count(CAPACITY).ok_or("no capacity")?;
    if capacity == 0 && m.zero_capacity_is_unlimited {
        return Err("no limit (capacity 0 means unlimited): it cannot run out".into());
    }
    let total = f.count(TOTAL);
    let in_use = f
        .count(IN_USE)
        .or_else(|| Some(total?.saturating_sub(f.count(IDLE)?)))
        .ok_or("no in-use count")?;
    let idle = f
        .count(IDLE)
        .or_else(|| total.map(|t| t.saturating_sub(in_use)))
        .unwrap_or(0);
    let id = PoolId {
        target: target.to_string(),
        kind: APP,
        name: name.to_string(),
    };
    let mut p = PoolSnapshot::new(id, capacity, in_use);
    p.idle = idle;
    p.waiting = f.count(WAITING).unwrap_or(0);
    p.counters = Counters {
        waits: f.count(WAITS),
        wait_seconds: f.get(WAIT_SECONDS).filter(|v| v.is_finite() && *v >= 0.0),
        timeouts: f.count(TIMEOUTS),
    };
    p.capacity_note = format!("{} pool maximum", m.name);
    Ok(p)
}

/// The capacity and in-use series a mapping looks for, for the "none found" error.
fn looked_for(m: &Mapping) -> String {
    let names: Vec<&str> = m
        .fields()
        .iter()
        .take(2)
        .filter_map(|(_, s)| s.and_then(|s| s.names.first()).map(String::as_str))
        .collect();
    names.join(", ")
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;
