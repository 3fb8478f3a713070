//! `[[links]]`: who draws on which server.
//!
//! ```toml
//! [[links]]
//! from = "checkout"                 # an application (its target's name, or a name known only here)
//! server = { target = "orders-db", application_name = "checkout", role = "app", database = "orders" }
//!
//! [[links]]
//! from = "web"                      # an application behind PgBouncer
//! pgbouncer = { target = "bouncer", pool = "orders/app" }
//! server = { target = "orders-db" } # optional: PgBouncer's server, for the view
//!
//! [[links]]
//! from = "bouncer"                  # a pgbouncer target: its pool sizes count against the server
//! server = { target = "orders-db" }
//! ```

use super::{BouncerEnd, Drawer, Link, ServerEnd};
use crate::config::message::did_you_mean;
use crate::config::values::Problems;
use serde::Deserialize;
use std::collections::HashSet;

/// One `[[links]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// Who draws: an application — the name of its target (`app_metrics`, `push`), or a name
    /// known only here, whose size `poolwatch budget --propose` gives — or a `pgbouncer` target.
    /// Required.
    pub from: String,
    /// Only this pool of the application (its pool name); default: every pool of `from`.
    #[serde(default)]
    pub pool: Option<String>,
    /// The PostgreSQL server drawn on. Required unless `pgbouncer` is set.
    #[serde(default)]
    pub server: Option<ServerEndConfig>,
    /// The PgBouncer an application draws through: the application's connections are
    /// PgBouncer's clients (`max_client_conn`), and PgBouncer's pools draw on the server.
    #[serde(default)]
    pub pgbouncer: Option<BouncerEndConfig>,
}

/// `server = { ... }` of a link.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerEndConfig {
    /// A `postgres` target. Required.
    pub target: String,
    /// The `application_name` the application's sessions carry: the server's sessions of that
    /// name are shown beside the application's pool. Default: none.
    #[serde(default)]
    pub application_name: Option<String>,
    /// The role the application logs in as: its pools count against that role's connection
    /// limit too. Default: none.
    #[serde(default)]
    pub role: Option<String>,
    /// The database the application uses: its pools count against that database's connection
    /// limit too. Default: none.
    #[serde(default)]
    pub database: Option<String>,
}

/// `pgbouncer = { ... }` of a link.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BouncerEndConfig {
    /// A `pgbouncer` target. Required.
    pub target: String,
    /// The PgBouncer pool (`database/user`) the application's clients use, shown beside the
    /// application's pool. Default: none.
    #[serde(default)]
    pub pool: Option<String>,
}

/// A configured target as links see it: its name and its `type`.
#[derive(Debug, Clone, Copy)]
pub struct TargetRef<'a> {
    /// `[[targets]] name`.
    pub name: &'a str,
    /// `[[targets]] type` (`postgres`, `pgbouncer`, an application type).
    pub kind: &'a str,
}

/// Validates every `[[links]]` entry (`None` where the entry itself did not deserialise: its
/// problem is already recorded) against the targets, recording problems under `links[i]`.
pub fn resolve(
    links: &[Option<LinkConfig>],
    targets: &[TargetRef<'_>],
    problems: &mut Problems,
) -> Vec<Link> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, link) in links.iter().enumerate() {
        let Some(link) = link else { continue };
        let at = format!("links[{i}]");
        if let Some(l) = resolve_one(link, &at, targets, problems) {
            if !seen.insert((l.from.clone(), l.pool.clone())) {
                problems.at(
                    format!("{at}.from"),
                    format!("\"{}\" is linked twice{}", l.from, pool_text(&l.pool)),
                );
                continue;
            }
            out.push(l);
        }
    }
    out
}

fn pool_text(pool: &Option<String>) -> String {
    pool.as_ref()
        .map(|p| format!(" (pool \"{p}\")"))
        .unwrap_or_default()
}

fn resolve_one(
    link: &LinkConfig,
    at: &str,
    targets: &[TargetRef<'_>],
    problems: &mut Problems,
) -> Option<Link> {
    let before = problems.len();
    let key = |k: &str| format!("{at}.{k}");
    let kind_of = |name: &str| targets.iter().find(|t| t.name == name).map(|t| t.kind);
    if link.from.trim().is_empty() {
        problems.at(key("from"), "must not be empty");
    }
    let drawer = match kind_of(&link.from) {
        Some("postgres") => {
            problems.at(
                key("from"),
                format!(
                    "\"{}\" is a postgres target: a link goes from an application or a PgBouncer to the server it draws on",
                    link.from
                ),
            );
            Drawer::App
        }
        Some("pgbouncer") => Drawer::Pgbouncer,
        _ => Drawer::App,
    };
    if link.server.is_none() && link.pgbouncer.is_none() {
        problems.at(
            at,
            "a link needs `server` or `pgbouncer`: what `from` draws on",
        );
    }
    if let Some(s) = &link.server {
        check_target(
            &key("server.target"),
            &s.target,
            "postgres",
            targets,
            problems,
        );
        for (k, v) in [
            ("application_name", &s.application_name),
            ("role", &s.role),
            ("database", &s.database),
        ] {
            if v.as_deref().is_some_and(|v| v.is_empty()) {
                problems.at(key(&format!("server.{k}")), "must not be empty");
            } else if v.is_some() && drawer == Drawer::Pgbouncer {
                problems.at(
                    key(&format!("server.{k}")),
                    "a PgBouncer's pools name their own database and user: set it on an application's link",
                );
            }
        }
    }
    if let Some(b) = &link.pgbouncer {
        check_target(
            &key("pgbouncer.target"),
            &b.target,
            "pgbouncer",
            targets,
            problems,
        );
        if drawer == Drawer::Pgbouncer {
            problems.at(
                key("pgbouncer"),
                "a PgBouncer draws on a server: set `server` only",
            );
        }
        if b.pool.as_deref().is_some_and(|p| p.split('/').count() != 2) {
            problems.at(
                key("pgbouncer.pool"),
                "a PgBouncer pool is named `database/user`",
            );
        }
    }
    if drawer == Drawer::Pgbouncer && link.pool.is_some() {
        problems.at(
            key("pool"),
            "a PgBouncer's link covers all its pools: `pool` is for an application's pool",
        );
    }
    if problems.len() > before {
        return None;
    }
    Some(Link {
        from: link.from.clone(),
        drawer,
        pool: link.pool.clone(),
        server: link.server.as_ref().map(|s| ServerEnd {
            target: s.target.clone(),
            application_name: s.application_name.clone(),
            role: s.role.clone(),
            database: s.database.clone(),
        }),
        pgbouncer: link.pgbouncer.as_ref().map(|b| BouncerEnd {
            target: b.target.clone(),
            pool: b.pool.clone(),
        }),
    })
}

/// Records a problem unless `name` is a target of type `want`.
fn check_target(
    key: &str,
    name: &str,
    want: &str,
    targets: &[TargetRef<'_>],
    problems: &mut Problems,
) {
    match targets.iter().find(|t| t.name == name) {
        Some(t) if t.kind == want => {}
        Some(t) => problems.at(
            key,
            format!("\"{name}\" is a {} target, not a {want} target", t.kind),
        ),
        None => {
            let names: Vec<&str> = targets
                .iter()
                .filter(|t| t.kind == want)
                .map(|t| t.name)
                .collect();
            let hint = did_you_mean(name, names.iter().copied())
                .map(|n| format!(" (did you mean \"{n}\"?)"))
                .unwrap_or_default();
            problems.at(key, format!("unknown target \"{name}\"{hint}"));
        }
    }
}

#[cfg(test)]
mod tests;
