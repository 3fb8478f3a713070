//! The human text of a budget: one paragraph per ceiling, its contributors below it.
//!
//! ```text
//! orders-db: 150 committed of 97 usable (max_connections 100, 3 reserved for superusers): OVER by 53
//!      120  checkout: 20 × 6 instances (proposed)
//!       30  bouncer pgbouncer_pool orders/app: pool_size 30
//! ```

use super::{Budget, Contributor, Line};
use std::fmt::Write;

/// One line about a ceiling: demand, ceiling, verdict.
pub fn headline(l: &Line) -> String {
    let verdict = if l.over {
        format!("OVER by {}", l.headroom.unsigned_abs())
    } else {
        format!("fits, {} spare", l.headroom)
    };
    let note = if l.ceiling_note.is_empty() {
        String::new()
    } else {
        format!(" ({})", l.ceiling_note)
    };
    format!(
        "{}: {} committed of {}{note}: {verdict}",
        l.subject, l.demand, l.ceiling
    )
}

/// What one contributor may open, e.g. `checkout: 20 × 6 instances (proposed)`.
pub fn contributor(c: &Contributor) -> String {
    let how = if c.instances == 1 && c.kind != "app" {
        c.note.clone()
    } else {
        let plural = if c.instances == 1 { "" } else { "s" };
        format!("{} × {} instance{plural} ({})", c.size, c.instances, c.note)
    };
    format!("{}: {how}", c.name)
}

/// One ceiling's contributors on one line: `checkout 120 (20 × 6), bouncer ... 30`.
pub fn contributors_inline(l: &Line) -> String {
    let parts: Vec<String> = l
        .contributors
        .iter()
        .map(|c| format!("{} {}", c.name, c.demand))
        .collect();
    parts.join(", ")
}

/// The whole budget as text.
pub fn render(b: &Budget) -> String {
    let mut out = String::new();
    if b.lines.is_empty() {
        out.push_str("no linked pools: nothing to budget (see [[links]] in the README)\n");
    }
    for l in &b.lines {
        let _ = writeln!(out, "{}", headline(l));
        for c in &l.contributors {
            let _ = writeln!(out, "  {:>6}  {}", c.demand, contributor(c));
        }
    }
    for u in &b.unknown {
        let _ = writeln!(out, "not counted: {u}");
    }
    let _ = writeln!(
        out,
        "{}",
        if b.over_committed {
            "verdict: over-committed"
        } else {
            "verdict: within budget"
        }
    );
    out
}
