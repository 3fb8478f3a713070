//! `poolwatch budget --config FILE [--propose APP=SIZExREPLICAS ...] [--json]`: polls every
//! target once, puts the proposals in place of the applications' observed pools, prints the
//! budget, and exits with a code a CI step can gate on.

use super::{compute, text, Proposal};
use crate::link::{Drawer, Link};
use crate::model::{PoolSnapshot, TargetReport};
use crate::settings::Config;

/// Every linked ceiling fits.
pub const EXIT_FITS: i32 = 0;
/// Some ceiling is over-committed.
pub const EXIT_OVER: i32 = 1;
/// Invalid configuration or usage (a proposal for an application no link names).
pub const EXIT_USAGE: i32 = 2;
/// Nothing is over, but something could not be counted (a linked target unreachable, an
/// application with no pool seen and no proposal): the gate cannot say it fits.
pub const EXIT_INCOMPLETE: i32 = 3;

/// Checks that every proposal names an application's link.
pub fn check_proposals(proposals: &[Proposal], links: &[Link]) -> Result<(), String> {
    for p in proposals {
        let named = links.iter().any(|l| {
            l.drawer == Drawer::App && l.from == p.app && (p.pool.is_none() || p.pool == l.pool)
        });
        if !named {
            let what = match &p.pool {
                Some(pool) => format!("\"{}\" pool \"{pool}\"", p.app),
                None => format!("\"{}\"", p.app),
            };
            return Err(format!(
                "--propose {}={}x{}: no [[links]] entry from application {what}",
                p.app, p.size, p.replicas
            ));
        }
    }
    Ok(())
}

/// Runs the command; returns the exit code.
pub async fn run(config: Config, proposals: Vec<Proposal>, as_json: bool) -> i32 {
    if let Err(e) = check_proposals(&proposals, &config.links) {
        eprintln!("poolwatch: {e}");
        return EXIT_USAGE;
    }
    let reports: Vec<TargetReport> =
        futures_util::future::join_all(config.targets.iter().map(|t| t.poll_once())).await;
    let mut pools: Vec<&PoolSnapshot> = Vec::new();
    for r in &reports {
        match &r.outcome {
            Ok(data) => pools.extend(&data.pools),
            Err(e) => eprintln!("poolwatch: {}: {e}", r.target),
        }
    }
    let budget = compute(&pools, &config.links, &proposals);
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&budget).unwrap_or_default()
        );
    } else {
        print!("{}", text::render(&budget));
    }
    if budget.over_committed {
        EXIT_OVER
    } else if !budget.unknown.is_empty() {
        EXIT_INCOMPLETE
    } else {
        EXIT_FITS
    }
}
