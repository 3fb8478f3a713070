//! `GET /`: the live status page on-call opens during an incident. One server-rendered HTML
//! document with its CSS and SVG inline (no external asset: it works on an isolated network),
//! readable on a phone, refreshing itself every [`REFRESH_SECS`] seconds. No script.
//!
//! It shows every target and pool (utilization bar, in use / capacity / waiting, a sparkline of
//! the store's history, who holds the connections, the server side of a linked application
//! pool), the pending and firing alerts with their age (silenced and inhibited ones marked), and
//! the active silences. Every value is HTML-escaped; nothing secret is on it (targets are named, never their
//! addresses or credentials; errors show their class).
//!
//! # Layout
//!
//! * [`html`] — escaping and the small writer the page is built with.
//! * `alerts` — the alerts table and the active silences.
//! * `pools` — targets and their pool cards.
//! * [`spark`] — the inline SVG sparkline of a pool's recent in use.
//! * `style` — the inline stylesheet.

mod alerts;
pub mod html;
mod pools;
pub mod spark;
mod style;

use super::{respond, AppState};
use crate::alert::AlertView;
use crate::dispatch::silence::Silence;
use crate::store::Store;
use html::Html;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use std::time::SystemTime;

/// How often the page reloads itself.
pub const REFRESH_SECS: u32 = 10;

/// The page as the HTTP handler serves it, rendered at `now`.
pub fn page(state: &AppState, now: SystemTime) -> Response<Full<Bytes>> {
    let (silences, _) = state.silences.get();
    let body = render(&state.store, &state.alerts.get(), &silences.list(), now);
    let mut resp = respond(StatusCode::OK, "text/html; charset=utf-8", body);
    resp.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    resp
}

/// Renders the page from what the store knows, the published `alerts` and the `silences`, at
/// `now`.
pub fn render(
    store: &Store,
    alerts: &[AlertView],
    silences: &[Silence],
    now: SystemTime,
) -> String {
    let targets = store.targets();
    let view = store.view();
    let mut h = Html::default();
    h.raw("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.raw(&format!(
        "<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">"
    ));
    h.raw("<title>");
    h.text(&title(alerts));
    h.raw("</title><style>");
    h.raw(style::CSS);
    h.raw("</style></head><body><header><h1>poolwatch</h1><p class=\"meta\">");
    h.text(&format!(
        "{} · {} · {} · refreshes every {REFRESH_SECS}s",
        plural(targets.len(), "target"),
        plural(alerts.len(), "alert"),
        crate::timefmt::rfc3339(now)
    ));
    h.raw("</p></header><main>");
    alerts::section(&mut h, alerts, now);
    alerts::silences(&mut h, silences, now);
    pools::section(&mut h, &targets, &view, now);
    h.raw("</main></body></html>\n");
    h.finish()
}

/// `1 target`, `3 targets`.
fn plural(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// `poolwatch — 2 firing`: the tab tells from afar.
fn title(alerts: &[AlertView]) -> String {
    let firing = alerts.iter().filter(|a| a.state == "firing").count();
    match firing {
        0 => "poolwatch".to_string(),
        n => format!("poolwatch — {n} firing"),
    }
}

#[cfg(test)]
mod tests;
