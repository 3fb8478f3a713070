//! Puts the budget on the pools it is about: each ceiling pool of a report that linked pools
//! draw on gets its [`BudgetFigure`], which rules (`budget_excess`), `/metrics` and alert text
//! read like any other number of the pool.

use super::{compute, text};
use crate::link::Link;
use crate::model::{BudgetFigure, PoolSnapshot, TargetReport};

/// Sets the budget figure of `report`'s ceiling pools, from its own pools and `others` (the
/// latest pools of every other target). Observed sizes only: no proposal.
pub fn annotate(report: &mut TargetReport, others: &[&PoolSnapshot], links: &[Link]) {
    let Ok(data) = &report.outcome else { return };
    if links.is_empty() {
        return;
    }
    let mut all: Vec<&PoolSnapshot> = others
        .iter()
        .copied()
        .filter(|p| p.id.target != report.target)
        .collect();
    all.extend(&data.pools);
    let budget = compute(&all, links, &[]);
    let Ok(data) = &mut report.outcome else {
        return;
    };
    for pool in &mut data.pools {
        pool.budget = budget
            .line(&pool.id.target, pool.id.kind.as_str(), &pool.id.name)
            .map(|l| BudgetFigure {
                demand: l.demand,
                contributors: text::contributors_inline(l),
            });
    }
}

/// [`annotate`] for every report of one round (`poolwatch snapshot`), each against the others.
pub fn annotate_all(reports: &mut [TargetReport], links: &[Link]) {
    let all: Vec<PoolSnapshot> = reports
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok())
        .flat_map(|d| d.pools.iter().cloned())
        .collect();
    let refs: Vec<&PoolSnapshot> = all.iter().collect();
    for r in reports {
        annotate(r, &refs, links);
    }
}
