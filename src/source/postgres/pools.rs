//! The monitoring query's answer as pools and facts: the server pool, one pool per role and per
//! database with a connection limit, and the server's settings as target facts.
//!
//! Sessions of poolwatch itself (`application_name = 'poolwatch'`, this instance's or another's)
//! are not load: they are not in `in_use`, the holders or the ages. They do hold slots, so those
//! are taken out of the capacity of the pools they belong to: with 10 usable slots, 9
//! application connections fill the server once poolwatch is connected, and poolwatch reports
//! 9/9 (100%), not 9/10 — and two instances watching one server report the same numbers.

use super::query::{Group, Limit, RawPoll};
use crate::model::{
    Fact, Holder, Holders, PgSessions, PollData, PoolId, PoolKind, PoolSnapshot, WhenFull,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The server's connection slots usable by ordinary roles; stands for the target as a whole.
pub const SERVER: PoolKind = PoolKind {
    name: "server",
    whole_target: true,
    when_full: WhenFull::Refuses,
};
/// A login role with a connection limit (`rolconnlimit >= 0`).
pub const ROLE: PoolKind = PoolKind {
    name: "role",
    whole_target: false,
    when_full: WhenFull::Refuses,
};
/// A database with a connection limit (`datconnlimit >= 0`).
pub const DATABASE: PoolKind = PoolKind {
    name: "database",
    whole_target: false,
    when_full: WhenFull::Refuses,
};

use crate::source::pgwire::APPLICATION_NAME;

/// Turns the answer into pools and facts.
pub fn to_poll_data(target: &str, raw: &RawPoll) -> PollData {
    let (monitors, load): (Vec<&Group>, Vec<&Group>) = raw
        .groups
        .iter()
        .partition(|g| g.app.as_deref() == Some(APPLICATION_NAME));
    let id = |kind, name: &str| PoolId {
        target: target.to_string(),
        kind,
        name: name.to_string(),
    };
    let mut pools = Vec::with_capacity(1 + raw.role_limits.len() + raw.db_limits.len());
    let held = count(monitors.iter().copied());
    let usable = raw.max_connections - raw.superuser_reserved - raw.reserved;
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
    note.push_str(&held_note(held));
    let server = aggregate(id(SERVER, "server"), (usable, held), note, &load);
    let by_state = server
        .postgres
        .as_ref()
        .map(|p| p.by_state.clone())
        .unwrap_or_default();
    pools.push(server);
    // One pool per limited role and per limited database, over the sessions of that name.
    type NameOf = for<'a> fn(&'a Group) -> Option<&'a str>;
    let limited: [(PoolKind, &[Limit], NameOf); 2] = [
        (ROLE, &raw.role_limits, |g| g.role.as_deref()),
        (DATABASE, &raw.db_limits, |g| g.db.as_deref()),
    ];
    for (kind, limits, name_of) in limited {
        for l in limits {
            let of = |g: &&Group| name_of(g) == Some(l.name.as_str());
            let mine: Vec<&Group> = load.iter().copied().filter(of).collect();
            let held = count(monitors.iter().copied().filter(of));
            let note = format!("{kind} connection limit {}{}", l.limit, held_note(held));
            let mut pool = aggregate(id(kind, &l.name), (l.limit, held), note, &mine);
            pool.parent = Some((SERVER, "server".into()));
            pools.push(pool);
        }
    }
    PollData {
        summary: summary(raw),
        pools,
        facts: facts(raw, by_state),
        // While poolwatch is connected, a full server shows as a full server pool; a refusal
        // is seen when connecting (SQLSTATE 53300).
        refusing: None,
    }
}

/// `PostgreSQL 16.4, max_connections 100, 3 reserved for superusers, 0 reserved`.
fn summary(raw: &RawPoll) -> String {
    format!(
        "PostgreSQL {}.{}, max_connections {}, {} reserved for superusers, {} reserved for pg_use_reserved_connections",
        raw.version_num / 10000,
        raw.version_num % 10000,
        raw.max_connections,
        raw.superuser_reserved,
        raw.reserved
    )
}

/// The server's settings and its client backends by state.
fn facts(raw: &RawPoll, by_state: BTreeMap<String, u64>) -> Vec<Fact> {
    let mut out = vec![
        Fact {
            name: "poolwatch_server_max_connections",
            help: "The server's max_connections.",
            labels: Vec::new(),
            value: raw.max_connections as f64,
        },
        reserved("superuser", raw.superuser_reserved),
        reserved("pg_use_reserved_connections", raw.reserved),
    ];
    out.extend(by_state.into_iter().map(|(state, n)| Fact {
        name: "poolwatch_server_connections",
        help: "Client backends on the server by state (poolwatch's own sessions excluded).",
        labels: vec![("state", state)],
        value: n as f64,
    }));
    out
}

fn reserved(for_: &str, n: i64) -> Fact {
    Fact {
        name: "poolwatch_server_reserved_connections",
        help: "Connection slots reserved: for superusers, and (PostgreSQL 16+) for pg_use_reserved_connections.",
        labels: vec![("for", for_.to_string())],
        value: n as f64,
    }
}

fn count<'a>(groups: impl Iterator<Item = &'a Group>) -> u64 {
    groups.map(|g| g.n).sum()
}

/// `limit - held`, never negative.
fn minus(limit: i64, held: u64) -> u64 {
    u64::try_from(limit.max(0))
        .unwrap_or(0)
        .saturating_sub(held)
}

fn held_note(held: u64) -> String {
    match held {
        0 => String::new(),
        n => format!(", {n} held by poolwatch"),
    }
}

fn is_idle_in_transaction(state: &str) -> bool {
    state.starts_with("idle in transaction")
}

/// A pool over `groups`, with `limit` slots of which `held` are held by poolwatch sessions.
fn aggregate(
    id: PoolId,
    (limit, held): (i64, u64),
    capacity_note: String,
    groups: &[&Group],
) -> PoolSnapshot {
    let mut s = PgSessions::default();
    let (mut roles, mut dbs, mut apps) = (HashMap::new(), HashMap::new(), HashMap::new());
    let mut in_use = 0u64;
    let (mut oldest_iit, mut oldest_xact) = (None::<f64>, None::<f64>);
    for g in groups {
        in_use += g.n;
        *s.by_state.entry(g.state.clone()).or_insert(0) += g.n;
        let g_iit = if is_idle_in_transaction(&g.state) {
            g.n
        } else {
            0
        };
        s.idle_in_transaction += g_iit;
        s.lock_waiting += g.lock_waiting;
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
    s.oldest_idle_in_transaction = oldest_iit.map(secs);
    s.oldest_transaction = oldest_xact.map(secs);
    s.holders = Holders {
        roles: top(roles),
        databases: top(dbs),
        applications: top(apps),
    };
    PoolSnapshot {
        configured_capacity: minus(limit, 0),
        idle: s.by_state.get("idle").copied().unwrap_or(0),
        capacity_note,
        postgres: Some(s),
        ..PoolSnapshot::new(id, minus(limit, held), in_use)
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
    use crate::source::postgres::query::parse;

    const ANSWER: &str = r#"{"version_num":150004,"max_connections":102,"superuser_reserved":3,"reserved":0,
      "sees_all_sessions":true,
      "groups":[
        {"db":"orders","role":"app","app":"django","state":"active","n":79,"oldest_xact":2.5,"oldest_iit":null,"lock_waiting":2},
        {"db":"orders","role":"app","app":"django","state":"idle in transaction","n":12,"oldest_xact":250.0,"oldest_iit":240.0,"lock_waiting":0},
        {"db":"orders","role":"batch","app":"celery","state":"idle","n":4,"oldest_xact":null,"oldest_iit":null,"lock_waiting":0},
        {"db":"postgres","role":"postgres","app":"","state":"unknown","n":2,"oldest_xact":null,"oldest_iit":null,"lock_waiting":0},
        {"db":"postgres","role":"poolwatch","app":"poolwatch","state":"active","n":1,"oldest_xact":0.001,"oldest_iit":null,"lock_waiting":0},
        {"db":"postgres","role":"poolwatch","app":"poolwatch","state":"idle","n":1,"oldest_xact":null,"oldest_iit":null,"lock_waiting":0}
      ],
      "role_limits":[{"name":"app","limit":91},{"name":"idle_role","limit":5},{"name":"poolwatch","limit":3}],
      "db_limits":[{"name":"orders","limit":200}]}"#;

    fn data(json: &str) -> PollData {
        to_poll_data("orders-db", &parse(json).expect("valid answer"))
    }

    #[test]
    fn server_role_and_database_pools() {
        let data = data(ANSWER);
        let pools: Vec<_> = data
            .pools
            .iter()
            .map(|p| (p.id.kind, p.id.name.as_str(), p.capacity, p.in_use, p.idle))
            .collect();
        assert_eq!(
            pools,
            vec![
                (SERVER, "server", 97, 97, 4),
                (ROLE, "app", 91, 91, 0),
                (ROLE, "idle_role", 5, 0, 0),
                (ROLE, "poolwatch", 1, 0, 0),
                (DATABASE, "orders", 200, 95, 4),
            ]
        );
        let server = &data.pools[0];
        let pg = server.postgres.as_ref().expect("postgres part");
        assert_eq!(pg.idle_in_transaction, 12);
        assert_eq!(
            pg.oldest_idle_in_transaction,
            Some(Duration::from_secs(240))
        );
        assert_eq!(pg.oldest_transaction, Some(Duration::from_secs(250)));
        assert_eq!(pg.lock_waiting, 2);
        assert_eq!(pg.by_state.get("active"), Some(&79));
        assert_eq!(pg.by_state.get("unknown"), Some(&2));
        let apps = &pg.holders.applications;
        assert_eq!(
            (
                apps[0].name.as_str(),
                apps[0].connections,
                apps[0].idle_in_transaction
            ),
            ("django", 91, 12)
        );
        assert!(apps.iter().all(|h| h.name != APPLICATION_NAME));
        assert_eq!(
            server.capacity_note,
            "max_connections 102, 3 reserved for superusers, 2 held by poolwatch"
        );
        assert!((server.utilization() - 1.0).abs() < 1e-9);
        assert_eq!(server.parent, None);
        assert_eq!((server.capacity, server.configured_capacity), (97, 99));
        assert_eq!(data.pools[1].parent, Some((SERVER, "server".into())));
        let empty_role = data.pools[2].postgres.as_ref().expect("postgres part");
        assert_eq!(empty_role.oldest_transaction, None);
        assert!(empty_role.holders.roles.is_empty());
        assert!(data
            .summary
            .starts_with("PostgreSQL 15.4, max_connections 102"));
    }

    #[test]
    fn every_poolwatch_session_is_a_slot_not_load() {
        // (poolwatch sessions, want server capacity, want own role capacity)
        let cases = [(0, 99, 3), (1, 98, 2), (2, 97, 1), (5, 94, 0)];
        for (n, server, role) in cases {
            let groups = (0..n)
                .map(|_| r#"{"db":"postgres","role":"poolwatch","app":"poolwatch","state":"idle","n":1,"oldest_xact":null,"oldest_iit":null,"lock_waiting":0}"#)
                .collect::<Vec<_>>()
                .join(",");
            let json = format!(
                r#"{{"version_num":160000,"max_connections":102,"superuser_reserved":3,"reserved":0,"sees_all_sessions":true,
                   "groups":[{groups}],"role_limits":[{{"name":"poolwatch","limit":3}}],"db_limits":[]}}"#
            );
            let d = data(&json);
            assert_eq!((d.pools[0].capacity, d.pools[0].in_use), (server, 0), "{n}");
            assert_eq!((d.pools[1].capacity, d.pools[1].in_use), (role, 0), "{n}");
        }
    }

    #[test]
    fn reserved_connections_lower_capacity() {
        let json = ANSWER.replace("\"reserved\":0", "\"reserved\":5");
        let data = data(&json);
        assert_eq!(data.pools[0].capacity, 92);
        assert_eq!(
            data.pools[3].capacity_note,
            "role connection limit 3, 2 held by poolwatch"
        );
        assert!(data.pools[0]
            .capacity_note
            .ends_with("5 for pg_use_reserved_connections, 2 held by poolwatch"));
    }

    #[test]
    fn facts_carry_the_server_settings_and_states() {
        let data = data(ANSWER);
        let fact = |name: &str, label: Option<&str>| {
            data.facts
                .iter()
                .find(|f| f.name == name && label.is_none_or(|l| f.labels[0].1 == l))
                .map(|f| f.value)
        };
        assert_eq!(fact("poolwatch_server_max_connections", None), Some(102.0));
        assert_eq!(
            fact("poolwatch_server_reserved_connections", Some("superuser")),
            Some(3.0)
        );
        assert_eq!(
            fact(
                "poolwatch_server_reserved_connections",
                Some("pg_use_reserved_connections")
            ),
            Some(0.0)
        );
        assert_eq!(
            fact("poolwatch_server_connections", Some("active")),
            Some(79.0)
        );
        assert_eq!(
            fact("poolwatch_server_connections", Some("idle")),
            Some(4.0)
        );
    }
}
