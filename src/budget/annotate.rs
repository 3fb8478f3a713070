//! Puts the budget on the pools it is about: each ceiling pool of a report that linked pools
//! draw on gets its [`BudgetFigure`], which rules (`budget_excess`), `/metrics` and alert text
//! read like any other number of the pool; each linked application pool gets its server side
//! ([`crate::link::join`]), for alert text, `snapshot` and `/api/v1/pools`.

use super::{compute, text};
use crate::link::join::server_side;
use crate::link::Link;
use crate::model::{BudgetFigure, PoolSnapshot, TargetReport};
use crate::source::app::APP;
use std::sync::Arc;

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
    let figures: Vec<(Option<BudgetFigure>, Option<String>)> = data
        .pools
        .iter()
        .map(|pool| {
            let figure = budget
                .line(&pool.id.target, pool.id.kind.as_str(), &pool.id.name)
                .map(|l| BudgetFigure {
                    demand: l.demand,
                    contributors: text::contributors_inline(l),
                });
            let side = links
                .iter()
                .find(|l| pool.id.kind == APP && l.covers_app_pool(&pool.id.target, &pool.id.name))
                .map(|l| server_side(l, &all));
            (figure, side)
        })
        .collect();
    if let Ok(data) = &mut report.outcome {
        let data = Arc::make_mut(data);
        for (pool, (figure, side)) in data.pools.iter_mut().zip(figures) {
            pool.budget = figure;
            pool.server_side = side;
        }
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
