//! `poolwatch snapshot`: poll every target once and show what on-call wants to see right now —
//! each pool's numbers, who holds the connections, and which rules would be pending or firing.
//! Push targets are named on standard error and left out: what was pushed lives in the daemon.

use crate::alert::{AlertView, Engine};
use crate::model::{Holder, PoolSnapshot, TargetReport, TargetState};
use crate::settings::Config;
use crate::store::Store;
use serde_json::{json, Value};
use std::fmt::Write;
use std::time::SystemTime;

/// Polls every target concurrently, evaluates the rules once, prints a table (or JSON), and
/// returns the exit code: 0 when every target answered, 1 otherwise.
pub async fn run(config: Config, as_json: bool) -> i32 {
    let Config {
        targets,
        rules,
        links,
        ..
    } = config;
    // A push target's pools live in the running daemon, not in this process: named, not polled.
    let (pushed, targets): (Vec<_>, Vec<_>) = targets.into_iter().partition(|t| t.kind() == "push");
    for t in &pushed {
        eprintln!(
            "{}: push target; its pools are pushed to the running daemon (see its /metrics)",
            t.name
        );
    }
    let mut reports: Vec<TargetReport> =
        futures_util::future::join_all(targets.iter().map(|t| t.poll_once())).await;
    crate::budget::annotate::annotate_all(&mut reports, &links);
    let mut engine = Engine::new(rules);
    let store = Store::new(targets.iter().map(|t| t.name.as_str()));
    let now = SystemTime::now();
    for (t, r) in targets.iter().zip(&reports) {
        store.apply(r);
        engine.observe(now, r, &t.labels, &store.view());
    }
    let alerts = engine.alerts();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&reports, &alerts)).unwrap_or_default()
        );
    } else {
        print!("{}", render_text(&reports, &alerts));
    }
    if reports.iter().all(|r| r.outcome.is_ok()) {
        0
    } else {
        1
    }
}

fn secs(d: Option<std::time::Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs_f64()))
}

/// One pool as `snapshot --json` and `GET /api/v1/pools` show it.
pub fn pool_json(p: &PoolSnapshot) -> Value {
    let postgres = p.postgres.as_ref().map(|pg| {
        json!({
            "by_state": pg.by_state, "idle_in_transaction": pg.idle_in_transaction,
            "oldest_idle_in_transaction_seconds": secs(pg.oldest_idle_in_transaction),
            "oldest_transaction_seconds": secs(pg.oldest_transaction),
            "lock_waiting": pg.lock_waiting, "holders": pg.holders,
        })
    });
    json!({
        "target": p.id.target, "kind": p.id.kind.as_str(), "pool": p.id.name, "subject": p.id.subject(),
        "capacity": p.capacity, "in_use": p.in_use, "idle": p.idle, "waiting": p.waiting,
        "free": p.free(), "utilization": p.utilization(),
        "longest_wait_seconds": secs(p.longest_wait), "counters": p.counters,
        "capacity_note": p.capacity_note, "postgres": postgres,
        "server_side": p.server_side, "budget": p.budget,
    })
}

fn fact_json(f: &crate::model::Fact) -> Value {
    let labels: serde_json::Map<String, Value> = f
        .labels
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({ "name": f.name, "labels": labels, "value": f.value })
}

/// The JSON document printed by `snapshot --json`.
pub fn to_json(reports: &[TargetReport], alerts: &[AlertView]) -> Value {
    let targets: Vec<Value> = reports
        .iter()
        .map(|r| match &r.outcome {
            Ok(d) => json!({
                "target": r.target, "state": TargetState::polled(d), "summary": d.summary,
                "poll_seconds": r.duration.as_secs_f64(),
                "error": d.refusing.as_ref().map(|e| json!({ "class": e.class, "message": e.message })),
                "facts": d.facts.iter().map(fact_json).collect::<Vec<_>>(),
                "pools": d.pools.iter().map(pool_json).collect::<Vec<_>>(),
            }),
            Err(e) => json!({
                "target": r.target, "state": TargetState::from_error(e.class),
                "error": { "class": e.class, "message": e.message },
            }),
        })
        .collect();
    json!({ "targets": targets, "alerts": alerts })
}

fn holders_line(label: &str, hs: &[Holder]) -> Option<String> {
    if hs.is_empty() {
        return None;
    }
    let parts: Vec<String> = hs
        .iter()
        .map(|h| {
            let name = if h.name.is_empty() { "(none)" } else { &h.name };
            if h.idle_in_transaction > 0 {
                format!(
                    "{name} {} ({} idle in tx)",
                    h.connections, h.idle_in_transaction
                )
            } else {
                format!("{name} {}", h.connections)
            }
        })
        .collect();
    Some(format!("      {label:<13} {}", parts.join(", ")))
}

/// A linked pool's server side, and the budget of a ceiling that linked pools draw on.
fn link_lines(p: &PoolSnapshot) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(side) = &p.server_side {
        out.push(format!("      {:<13} {side}", "server side"));
    }
    if let Some(b) = &p.budget {
        out.push(format!(
            "      {:<13} {} committed of {}: {}",
            "budget", b.demand, p.configured_capacity, b.contributors
        ));
    }
    out
}

/// The human-readable table printed by `snapshot`.
pub fn render_text(reports: &[TargetReport], alerts: &[AlertView]) -> String {
    let mut out = String::new();
    for r in reports {
        let data = match &r.outcome {
            Ok(d) => d,
            Err(e) => {
                let state = TargetState::from_error(e.class).as_str().to_uppercase();
                let _ = writeln!(out, "{}: {state} ({}): {}\n", r.target, e.class, e.message);
                continue;
            }
        };
        let _ = writeln!(
            out,
            "{}: {}, {}, polled in {:.1}ms",
            r.target,
            TargetState::polled(data),
            data.summary,
            r.duration.as_secs_f64() * 1000.0
        );
        if let Some(e) = &data.refusing {
            let _ = writeln!(out, "  refusing new clients ({}): {}", e.class, e.message);
        }
        // As wide as the longest kind (PgBouncer's are longer than PostgreSQL's).
        let kind = data
            .pools
            .iter()
            .map(|p| p.id.kind.as_str().len())
            .fold(9, usize::max);
        let _ = writeln!(
            out,
            "  {:<kind$} {:<20} {:>8} {:>7} {:>6} {:>8} {:>6}  IDLE IN TX (OLDEST)",
            "KIND", "POOL", "CAPACITY", "IN USE", "IDLE", "WAITING", "UTIL"
        );
        for p in &data.pools {
            let pg = p.postgres.as_ref();
            let iit = match pg.map(|pg| (pg.idle_in_transaction, pg.oldest_idle_in_transaction)) {
                Some((n, Some(d))) => format!("{n} ({})", crate::timefmt::human(d)),
                Some((n, None)) => n.to_string(),
                None => "-".to_string(),
            };
            let _ = writeln!(
                out,
                "  {:<kind$} {:<20} {:>8} {:>7} {:>6} {:>8} {:>5.0}%  {}",
                p.id.kind.as_str(),
                p.id.name,
                p.capacity,
                p.in_use,
                p.idle,
                p.waiting,
                p.utilization() * 100.0,
                iit
            );
            for line in link_lines(p) {
                let _ = writeln!(out, "{line}");
            }
            if let Some(d) = p.longest_wait.filter(|d| !d.is_zero()) {
                let _ = writeln!(
                    out,
                    "      {:<13} {}",
                    "longest wait",
                    crate::timefmt::human(d)
                );
            }
            let Some(pg) = pg else { continue };
            for line in [
                holders_line("applications", &pg.holders.applications),
                holders_line("roles", &pg.holders.roles),
                holders_line("databases", &pg.holders.databases),
            ]
            .into_iter()
            .flatten()
            {
                let _ = writeln!(out, "{line}");
            }
            if let Some(d) = pg.oldest_transaction {
                let _ = writeln!(
                    out,
                    "      {:<13} {}",
                    "oldest xact",
                    crate::timefmt::human(d)
                );
            }
        }
        out.push('\n');
    }
    if alerts.is_empty() {
        out.push_str("No rule would be pending or firing.\n");
    } else {
        out.push_str("Rules that would be pending or firing now:\n");
        for a in alerts {
            let get = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<8} {:<9} {:<22} {}",
                a.state.to_uppercase(),
                get("severity"),
                get("alertname"),
                a.annotations.get("summary").cloned().unwrap_or_default()
            );
        }
    }
    out
}
