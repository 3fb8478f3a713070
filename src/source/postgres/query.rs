//! The one monitoring query (prepared once per connection; one round trip per poll) and its
//! translation into pools. The server aggregates `pg_stat_activity` itself, so the answer stays
//! small however many clients are connected.

use serde::Deserialize;

/// Oldest supported server: `backend_type` (10) and `current_setting(name, missing_ok)` (9.6)
/// are what the query needs; 13 is the oldest release still tested and supported upstream.
pub const MIN_VERSION_NUM: i32 = 130000;

/// The monitoring query. It reads `pg_stat_get_activity(NULL)` (what the `pg_stat_activity`
/// view is built on) and groups by database and role ids before looking up their names, so the
/// name joins run once per group instead of once per backend. `reserved_connections` exists
/// from PostgreSQL 16 on; reading it with `missing_ok` makes the same text valid on 13 to 18.
/// Only logged-in client backends are counted: not autovacuum, parallel or WAL workers, nor a
/// connection still authenticating (which PostgreSQL 18 lists, with no role yet). Sessions of
/// poolwatch itself (`application_name = 'poolwatch'`: this one, another poolwatch watching the
/// same server, a `poolwatch snapshot`) come back as their own groups; [`super::pools`] takes
/// their slots out of capacity instead of counting them as load, so that every instance
/// reports the same numbers.
pub const POLL_SQL: &str = r#"SELECT json_build_object(
  'version_num', current_setting('server_version_num')::int,
  'max_connections', current_setting('max_connections')::int,
  'superuser_reserved', current_setting('superuser_reserved_connections')::int,
  'reserved', COALESCE(current_setting('reserved_connections', true), '0')::int,
  'sees_all_sessions', pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'),
  'groups', COALESCE((SELECT json_agg(g) FROM (
      SELECT d.datname AS db, r.rolname AS role, a.app, a.state, a.n,
             a.oldest_xact, a.oldest_iit, a.lock_waiting
        FROM (SELECT datid, usesysid, application_name AS app,
                     COALESCE(state, 'unknown') AS state, count(*) AS n,
                     max(extract(epoch FROM clock_timestamp() - xact_start))::float8 AS oldest_xact,
                     (max(extract(epoch FROM clock_timestamp() - state_change))
                        FILTER (WHERE state LIKE 'idle in transaction%'))::float8 AS oldest_iit,
                     count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_waiting
                FROM pg_stat_get_activity(NULL)
                 -- Logged-in sessions only: PostgreSQL 18 also lists backends still
                 -- authenticating (no role yet, state 'starting'); they are nobody's load yet.
               WHERE usesysid IS NOT NULL
                 AND (backend_type = 'client backend'
                      -- Without pg_monitor, other roles' sessions hide their type and state:
                      -- count those attached to a database, as state 'unknown'.
                      OR (backend_type IS NULL AND datid IS NOT NULL))
               GROUP BY 1, 2, 3, 4) a
        LEFT JOIN pg_database d ON d.oid = a.datid
        LEFT JOIN pg_roles r ON r.oid = a.usesysid) g), '[]'::json),
  'role_limits', COALESCE((SELECT json_agg(json_build_object('name', rolname, 'limit', rolconnlimit))
        FROM pg_roles WHERE rolconnlimit >= 0 AND rolcanlogin), '[]'::json),
  'db_limits', COALESCE((SELECT json_agg(json_build_object('name', datname, 'limit', datconnlimit))
        FROM pg_database WHERE datconnlimit >= 0 AND datallowconn), '[]'::json)
)::text"#;

/// The query's answer, as the server sends it.
#[derive(Debug, Deserialize)]
pub struct RawPoll {
    /// `server_version_num`.
    pub version_num: i32,
    /// `max_connections`.
    pub max_connections: i64,
    /// `superuser_reserved_connections`.
    pub superuser_reserved: i64,
    /// `reserved_connections` (16+; 0 before).
    pub reserved: i64,
    /// Whether the monitoring role sees other roles' sessions (`pg_read_all_stats`, part of
    /// `pg_monitor`); without it their state is hidden and counted as `unknown`.
    pub sees_all_sessions: bool,
    /// Client backends grouped by database, role, application and state.
    pub groups: Vec<Group>,
    /// Login roles with a connection limit.
    pub role_limits: Vec<Limit>,
    /// Databases with a connection limit.
    pub db_limits: Vec<Limit>,
}

/// Client backends sharing database, role, application and state.
#[derive(Debug, Deserialize)]
pub struct Group {
    /// Database name.
    pub db: Option<String>,
    /// Role name.
    pub role: Option<String>,
    /// `application_name`.
    pub app: Option<String>,
    /// `state`, or `unknown` when hidden.
    pub state: String,
    /// How many backends.
    pub n: u64,
    /// Age of the oldest open transaction, seconds.
    pub oldest_xact: Option<f64>,
    /// Age of the oldest idle-in-transaction state, seconds.
    pub oldest_iit: Option<f64>,
    /// Backends waiting on a heavyweight lock.
    pub lock_waiting: u64,
}

/// A role's or database's connection limit.
#[derive(Debug, Deserialize)]
pub struct Limit {
    /// Role or database name.
    pub name: String,
    /// `rolconnlimit` / `datconnlimit` (never -1 here).
    pub limit: i64,
}

/// Parses the query's single text cell.
pub fn parse(json: &str) -> Result<RawPoll, String> {
    let raw: RawPoll = serde_json::from_str(json)
        .map_err(|e| format!("unexpected answer to the monitoring query: {e}"))?;
    if raw.version_num < MIN_VERSION_NUM {
        return Err(format!(
            "PostgreSQL {} is not supported (13 or newer is required)",
            raw.version_num
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_servers_and_garbage_are_refused() {
        let ok = r#"{"version_num":130000,"max_connections":10,"superuser_reserved":3,"reserved":0,
          "sees_all_sessions":true,"groups":[],"role_limits":[],"db_limits":[]}"#;
        assert_eq!(parse(ok).map(|r| r.max_connections), Ok(10));
        let old = ok.replace("130000", "120010");
        assert!(parse(&old).unwrap_err().contains("13 or newer"));
        assert!(parse("{}").unwrap_err().contains("unexpected answer"));
    }
}
