//! The one monitoring query (prepared once per connection; one round trip per poll) and its
//! translation into pools. The server aggregates `pg_stat_activity` itself, so the answer stays
//! small however many clients are connected.

use crate::model::{Holder, Holders, PollData, PoolId, PoolKind, PoolSnapshot, ServerInfo};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Oldest supported server: `backend_type` (10) and `current_setting(name, missing_ok)` (9.6)
/// are what the query needs; 13 is the oldest release still tested and supported upstream.
pub const MIN_VERSION_NUM: i32 = 130000;

/// The monitoring query. It reads `pg_stat_get_activity(NULL)` (what the `pg_stat_activity`
/// view is built on) and groups by database and role ids before looking up their names, so the
/// name joins run once per group instead of once per backend. `reserved_connections` exists
/// from PostgreSQL 16 on; reading it with `missing_ok` makes the same text valid on 13 to 18.
/// Only logged-in client backends are counted: not autovacuum, parallel or WAL workers, nor a
/// connection still authenticating (which PostgreSQL 18 lists, with no role yet). poolwatch's
/// own session is not counted as load (it is not in `in_use`, the holders or the ages), but it
/// does hold a slot, so it is taken out of the capacity of the pools it belongs to: with 10
/// usable slots, 9 application connections fill the server once poolwatch is connected, and
/// poolwatch reports 9/9 (100%), not 9/10.
pub const POLL_SQL: &str = r#"SELECT json_build_object(
  'version_num', current_setting('server_version_num')::int,
  'max_connections', current_setting('max_connections')::int,
  'superuser_reserved', current_setting('superuser_reserved_connections')::int,
  'reserved', COALESCE(current_setting('reserved_connections', true), '0')::int,
  'own_role', current_user,
  'own_db', current_database(),
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
               WHERE pid <> pg_backend_pid()
                 -- Logged-in sessions only: PostgreSQL 18 also lists backends still
                 -- authenticating (no role yet, state 'starting'); they are nobody's load yet.
                 AND usesysid IS NOT NULL
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
    version_num: i32,
    max_connections: i64,
    superuser_reserved: i64,
    reserved: i64,
    own_role: String,
    own_db: String,
    sees_all_sessions: bool,
    groups: Vec<Group>,
    role_limits: Vec<Limit>,
    db_limits: Vec<Limit>,
}

/// Client backends sharing database, role, application and state.
#[derive(Debug, Deserialize)]
struct Group {
    db: Option<String>,
    role: Option<String>,
    app: Option<String>,
    state: String,
    n: u64,
    oldest_xact: Option<f64>,
    oldest_iit: Option<f64>,
    lock_waiting: u64,
}

#[derive(Debug, Deserialize)]
struct Limit {
    name: String,
    limit: i64,
}

/// Parses the query's single text cell.
pub fn parse(target: &str, json: &str) -> Result<PollData, String> {
    let raw: RawPoll = serde_json::from_str(json)
        .map_err(|e| format!("unexpected answer to the monitoring query: {e}"))?;
    if raw.version_num < MIN_VERSION_NUM {
        return Err(format!(
            "PostgreSQL {} is not supported (13 or newer is required)",
            raw.version_num
        ));
    }
    Ok(to_pools(target, &raw))
}

/// Turns the raw answer into the server pool, one pool per limited role, one per limited database.
pub fn to_pools(target: &str, raw: &RawPoll) -> PollData {
    let server = ServerInfo {
        version_num: raw.version_num,
        max_connections: raw.max_connections,
        superuser_reserved_connections: raw.superuser_reserved,
        reserved_connections: raw.reserved,
        sees_all_sessions: raw.sees_all_sessions,
    };
    let id = |kind, name: &str| PoolId {
        target: target.to_string(),
        kind,
        name: name.to_string(),
    };
    let mut pools = Vec::with_capacity(1 + raw.role_limits.len() + raw.db_limits.len());
    // poolwatch's own session holds one slot of the server and of its own role's and
    // database's limits: take it out of those capacities rather than counting it as load.
    let own = |limit: i64| (limit - 1).max(0) as u64;
    let capacity = own(raw.max_connections - raw.superuser_reserved - raw.reserved);
    let mut note = format!(
        "max_connections {}, {} reserved for superusers",
        raw.max_connections, raw.superuser_reserved
    );
    if raw.reserved > 0 {
        note.push_str(&format!(
            ", {} for pg_use_reserved_connections",
            raw.reserved
        ));
    }
    note.push_str(", 1 held by poolwatch");
    pools.push(aggregate(
        id(PoolKind::Server, "server"),
        capacity,
        note,
        raw.groups.iter(),
    ));
    // One pool per limited role and per limited database, over the sessions of that name.
    type NameOf = for<'a> fn(&'a Group) -> Option<&'a str>;
    let limited: [(PoolKind, &[Limit], &str, NameOf); 2] = [
        (PoolKind::Role, &raw.role_limits, &raw.own_role, |g| {
            g.role.as_deref()
        }),
        (PoolKind::Database, &raw.db_limits, &raw.own_db, |g| {
            g.db.as_deref()
        }),
    ];
    for (kind, limits, own, name_of) in limited {
        for l in limits {
            let groups = raw
                .groups
                .iter()
                .filter(|g| name_of(g) == Some(l.name.as_str()));
            let (capacity, note) = limit_capacity(kind, l, own);
            pools.push(aggregate(id(kind, &l.name), capacity, note, groups));
        }
    }
    PollData { server, pools }
}

/// Capacity and note of a role or database limit; one slot less when it is poolwatch's own.
fn limit_capacity(kind: PoolKind, l: &Limit, own: &str) -> (u64, String) {
    let limit = l.limit.max(0) as u64;
    if l.name == own {
        let note = format!("{kind} connection limit {}, 1 held by poolwatch", l.limit);
        (limit.saturating_sub(1), note)
    } else {
        (limit, format!("{kind} connection limit {}", l.limit))
    }
}

fn is_idle_in_transaction(state: &str) -> bool {
    state.starts_with("idle in transaction")
}

fn aggregate<'a>(
    id: PoolId,
    capacity: u64,
    capacity_note: String,
    groups: impl Iterator<Item = &'a Group>,
) -> PoolSnapshot {
    let mut by_state = BTreeMap::new();
    let (mut roles, mut dbs, mut apps) = (HashMap::new(), HashMap::new(), HashMap::new());
    let (mut in_use, mut iit, mut lock_waiting) = (0u64, 0u64, 0u64);
    let (mut oldest_iit, mut oldest_xact) = (None::<f64>, None::<f64>);
    for g in groups {
        in_use += g.n;
        *by_state.entry(g.state.clone()).or_insert(0) += g.n;
        let g_iit = if is_idle_in_transaction(&g.state) {
            g.n
        } else {
            0
        };
        iit += g_iit;
        lock_waiting += g.lock_waiting;
        oldest_iit = max_opt(oldest_iit, g.oldest_iit);
        oldest_xact = max_opt(oldest_xact, g.oldest_xact);
        for (map, key) in [
            (&mut roles, &g.role),
            (&mut dbs, &g.db),
            (&mut apps, &g.app),
        ] {
            let e: &mut (u64, u64) = map.entry(key.clone().unwrap_or_default()).or_default();
            e.0 += g.n;
            e.1 += g_iit;
        }
    }
    let idle = by_state.get("idle").copied().unwrap_or(0);
    PoolSnapshot {
        id,
        capacity,
        in_use,
        idle,
        waiting: 0,
        by_state,
        idle_in_transaction: iit,
        oldest_idle_in_transaction: oldest_iit.map(secs),
        oldest_transaction: oldest_xact.map(secs),
        lock_waiting,
        holders: Holders {
            roles: top(roles),
            databases: top(dbs),
            applications: top(apps),
        },
        capacity_note,
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn top(map: HashMap<String, (u64, u64)>) -> Vec<Holder> {
    let mut v: Vec<Holder> = map
        .into_iter()
        .map(|(name, (connections, idle_in_transaction))| Holder {
            name,
            connections,
            idle_in_transaction,
        })
        .collect();
    v.sort_by(|a, b| {
        b.connections
            .cmp(&a.connections)
            .then_with(|| a.name.cmp(&b.name))
    });
    v.truncate(Holders::TOP);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"{"version_num":150004,"max_connections":101,"superuser_reserved":3,"reserved":0,
      "own_role":"poolwatch","own_db":"postgres","sees_all_sessions":true,
      "groups":[
        {"db":"orders","role":"app","app":"django","state":"active","n":79,"oldest_xact":2.5,"oldest_iit":null,"lock_waiting":2},
        {"db":"orders","role":"app","app":"django","state":"idle in transaction","n":12,"oldest_xact":250.0,"oldest_iit":240.0,"lock_waiting":0},
        {"db":"orders","role":"batch","app":"celery","state":"idle","n":4,"oldest_xact":null,"oldest_iit":null,"lock_waiting":0},
        {"db":"postgres","role":"postgres","app":"","state":"unknown","n":2,"oldest_xact":null,"oldest_iit":null,"lock_waiting":0}
      ],
      "role_limits":[{"name":"app","limit":91},{"name":"idle_role","limit":5},{"name":"poolwatch","limit":2}],
      "db_limits":[{"name":"orders","limit":200}]}"#;

    #[test]
    fn server_role_and_database_pools() {
        let data = parse("orders-db", ANSWER).unwrap();
        assert_eq!(data.server.max_connections, 101);
        let pools: Vec<_> = data
            .pools
            .iter()
            .map(|p| (p.id.kind, p.id.name.as_str(), p.capacity, p.in_use, p.idle))
            .collect();
        assert_eq!(
            pools,
            vec![
                (PoolKind::Server, "server", 97, 97, 4),
                (PoolKind::Role, "app", 91, 91, 0),
                (PoolKind::Role, "idle_role", 5, 0, 0),
                (PoolKind::Role, "poolwatch", 1, 0, 0),
                (PoolKind::Database, "orders", 200, 95, 4),
            ]
        );
        let server = &data.pools[0];
        assert_eq!(server.idle_in_transaction, 12);
        assert_eq!(
            server.oldest_idle_in_transaction,
            Some(Duration::from_secs(240))
        );
        assert_eq!(server.oldest_transaction, Some(Duration::from_secs(250)));
        assert_eq!(server.lock_waiting, 2);
        assert_eq!(server.by_state.get("active"), Some(&79));
        assert_eq!(server.by_state.get("unknown"), Some(&2));
        let apps = &server.holders.applications;
        assert_eq!(
            (
                apps[0].name.as_str(),
                apps[0].connections,
                apps[0].idle_in_transaction
            ),
            ("django", 91, 12)
        );
        assert_eq!(
            server.capacity_note,
            "max_connections 101, 3 reserved for superusers, 1 held by poolwatch"
        );
        assert!((server.utilization() - 1.0).abs() < 1e-9);
        let empty_role = &data.pools[2];
        assert_eq!(empty_role.oldest_transaction, None);
        assert!(empty_role.holders.roles.is_empty());
    }

    #[test]
    fn reserved_connections_lower_capacity() {
        let json = ANSWER.replace("\"reserved\":0", "\"reserved\":5");
        let data = parse("t", &json).unwrap();
        assert_eq!(data.pools[0].capacity, 92);
        assert_eq!(
            data.pools[3].capacity_note,
            "role connection limit 2, 1 held by poolwatch"
        );
        assert!(data.pools[0]
            .capacity_note
            .ends_with("5 for pg_use_reserved_connections, 1 held by poolwatch"));
    }

    #[test]
    fn old_servers_and_garbage_are_refused() {
        let old = ANSWER.replace("150004", "120010");
        assert!(parse("t", &old).unwrap_err().contains("13 or newer"));
        assert!(parse("t", "{}").unwrap_err().contains("unexpected answer"));
    }
}
