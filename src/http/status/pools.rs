//! Every target with its state, and a card per pool: utilization bar, in use / capacity /
//! waiting, sparkline, and what the source tells of who holds the connections.

use super::html::Html;
use super::spark::sparkline;
use crate::model::{PoolSnapshot, TargetState};
use crate::rules::template::{percent, pool_details};
use crate::store::capacity::PoolRef;
use crate::store::{StoreView, TargetEntry};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// How far back the sparklines go.
pub const SPARK_SPAN: Duration = Duration::from_secs(15 * 60);

/// Writes the targets section.
pub(super) fn section(
    h: &mut Html,
    targets: &BTreeMap<String, TargetEntry>,
    view: &StoreView<'_>,
    now: SystemTime,
) {
    h.raw("<section id=\"targets\">");
    if targets.is_empty() {
        h.raw("<h2>Targets</h2><p class=\"empty\">No target is configured.</p></section>");
        return;
    }
    for (name, entry) in targets {
        target(h, name, entry, view, now);
    }
    h.raw("</section>");
}

fn target(h: &mut Html, name: &str, entry: &TargetEntry, view: &StoreView<'_>, now: SystemTime) {
    let state = entry.state.as_str();
    h.raw("<h2>");
    h.text(name);
    h.element("span", &format!("state s-{state}"), state);
    h.raw("</h2>");
    if let Some(e) = &entry.error {
        // The class only: a server message is for logs and alert text, not a public page.
        h.element("p", "err", &format!("last poll failed: {}", e.class));
    }
    let (data, stale) = match (&entry.data, &entry.last_data) {
        (Some(d), _) => (Some(d), false),
        (None, Some(d)) => (Some(d), true),
        (None, None) => (None, false),
    };
    let Some(data) = data.filter(|d| !d.pools.is_empty()) else {
        let text = match entry.state {
            TargetState::Unknown => "Not polled yet.",
            _ => "No pool seen yet.",
        };
        h.element("p", "empty", text);
        return;
    };
    if stale {
        h.element("p", "empty", "Pools as last seen:");
    }
    h.raw("<div class=\"grid\">");
    for p in &data.pools {
        pool(h, p, view, now, stale);
    }
    h.raw("</div>");
}

/// `hot` at 95% or with clients waiting, `warm` from 80%.
fn heat(p: &PoolSnapshot) -> &'static str {
    let u = p.utilization();
    if u >= 0.95 || p.waiting > 0 {
        " hot"
    } else if u >= 0.8 {
        " warm"
    } else {
        ""
    }
}

fn pool(h: &mut Html, p: &PoolSnapshot, view: &StoreView<'_>, now: SystemTime, stale: bool) {
    let class = format!("pool{}{}", heat(p), if stale { " stale" } else { "" });
    h.raw(&format!("<div class=\"{class}\">"));
    h.element("div", "name", &p.id.name);
    h.element("div", "kind", p.id.kind.as_str());
    let width = (p.utilization().clamp(0.0, 1.0) * 100.0).round();
    h.raw(&format!(
        "<div class=\"bar\"><i style=\"width:{width}%\"></i></div>"
    ));
    h.element(
        "div",
        "nums",
        &format!(
            "{} / {} in use · {} · {} waiting",
            p.in_use,
            p.capacity,
            percent(p.utilization()),
            p.waiting
        ),
    );
    if let Some(history) = view.history(&PoolRef::of(&p.id)) {
        h.raw(&sparkline(history, now, SPARK_SPAN));
    }
    h.element("p", "holders", &pool_details(p));
    if let Some(server) = &p.server_side {
        h.element("p", "link", server);
    }
    h.raw("</div>");
}
