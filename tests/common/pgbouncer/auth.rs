//! PgBouncer's `auth_file`: the real SCRAM secrets of the cluster's roles, read from
//! `pg_authid`, so that PgBouncer checks client passwords and logs in to PostgreSQL with them.

use std::collections::HashMap;
use std::path::Path;

use super::PgBouncerOptions;
use crate::common::pg::setup::hand_over;
use crate::common::pg::{quote_literal, PgCluster};

/// The role the harness itself uses on the admin console (in `admin_users`); created on the
/// cluster by [`super::PgBouncer::start`] when missing, so that its SCRAM secret is a real one.
pub const ADMIN_USER: &str = "pgbouncer_admin";
const ADMIN_PASSWORD: &str = "pgbouncer-admin-pw";

/// Writes `auth_file` with the SCRAM secrets (from `pg_authid`) of every user `options` names
/// and of [`ADMIN_USER`] (created when missing); returns their passwords.
pub async fn write_auth_file(
    pg: &PgCluster,
    options: &PgBouncerOptions,
    path: &Path,
) -> Result<HashMap<String, String>, String> {
    if pg.password_of(ADMIN_USER).is_none() {
        pg.create_role(ADMIN_USER, ADMIN_PASSWORD, None).await;
    }
    let mut users: Vec<&String> = options
        .users
        .iter()
        .chain(&options.stats_users)
        .chain(&options.admin_users)
        .collect();
    let admin = ADMIN_USER.to_owned();
    users.push(&admin);
    users.sort();
    users.dedup();
    let mut passwords = HashMap::new();
    for user in &users {
        let password = pg.password_of(user).ok_or_else(|| {
            format!("PgBouncer user {user} is not a role made with PgCluster::create_role")
        })?;
        passwords.insert((*user).clone(), password);
    }
    let names: Vec<String> = users.iter().map(|u| quote_literal(u)).collect();
    let rows = pg
        .query(&format!(
            "SELECT rolname::text, rolpassword FROM pg_authid WHERE rolname IN ({}) ORDER BY 1",
            names.join(", ")
        ))
        .await;
    let mut text = String::new();
    for row in &rows {
        let (user, secret): (String, String) = (row.get(0), row.get(1));
        if !secret.starts_with("SCRAM-SHA-256$") {
            return Err(format!("{user}'s password is not a SCRAM secret"));
        }
        text.push_str(&auth_line(&user, &secret));
    }
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
    hand_over(path)?;
    Ok(passwords)
}

/// One `auth_file` line: `"user" "secret"` with inner quotes doubled.
pub fn auth_line(user: &str, secret: &str) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    format!("{} {}\n", quote(user), quote(secret))
}
