//! Pools from console answers shaped as PgBouncer 1.18 and 1.24 send them (column sets as
//! those versions print them; the end-to-end tests read the real consoles).

use super::*;
use crate::model::PoolMetric;

fn table(command: &'static str, columns: &str, rows: &[&str]) -> Table {
    let split = |s: &str| -> Vec<String> { s.split('|').map(|c| c.trim().to_string()).collect() };
    Table {
        command,
        columns: split(columns),
        rows: rows
            .iter()
            .map(|r| {
                split(r)
                    .into_iter()
                    .map(|v| if v == "NULL" { None } else { Some(v) })
                    .collect()
            })
            .collect(),
    }
}

const POOLS_118: &str = "database|user|cl_active|cl_waiting|cl_cancel_req|sv_active|sv_idle|sv_used|sv_tested|sv_login|maxwait|maxwait_us|pool_mode";
const POOLS_124: &str = "database|user|cl_active|cl_waiting|cl_active_cancel_req|cl_waiting_cancel_req|sv_active|sv_active_cancel|sv_being_canceled|sv_idle|sv_used|sv_tested|sv_login|maxwait|maxwait_us|pool_mode|load_balance_hosts";
const DBS_118: &str = "name|host|port|database|force_user|pool_size|min_pool_size|reserve_pool|pool_mode|max_connections|current_connections|paused|disabled";
const DBS_124: &str = "name|host|port|database|force_user|pool_size|min_pool_size|reserve_pool_size|server_lifetime|pool_mode|load_balance_hosts|max_connections|current_connections|max_client_connections|current_client_connections|paused|disabled";

fn answers_118() -> Answers {
    Answers {
        version: "PgBouncer 1.18.0".into(),
        pools: table(
            "SHOW POOLS",
            POOLS_118,
            &[
                "orders|app|20|15|0|5|0|0|0|0|0|250000|transaction",
                "pgbouncer|pgbouncer|1|0|0|0|0|0|0|0|0|0|statement",
                "reports|app|1|0|0|0|2|1|0|0|0|0|transaction",
            ],
        ),
        databases: table(
            "SHOW DATABASES",
            DBS_118,
            &[
                "orders|127.0.0.1|5432|orders|NULL|5|0|0|NULL|0|5|0|0",
                "pgbouncer|NULL|6432|pgbouncer|pgbouncer|2|0|0|statement|0|0|0|0",
                "reports|127.0.0.1|5432|reports|NULL|20|0|3|NULL|10|3|0|0",
            ],
        ),
        config: table(
            "SHOW CONFIG",
            "key|value|changeable",
            &["max_client_conn|100|yes", "default_pool_size|20|yes"],
        ),
        lists: table(
            "SHOW LISTS",
            "list|items",
            &["pools|3", "used_clients|22", "login_clients|0"],
        ),
        users: table("SHOW USERS", "name|pool_mode", &["app|NULL"]),
    }
}

fn brief(d: &PollData) -> Vec<(&'static str, String, u64, u64, u64, u64)> {
    d.pools
        .iter()
        .map(|p| {
            (
                p.id.kind.as_str(),
                p.id.name.clone(),
                p.capacity,
                p.in_use,
                p.idle,
                p.waiting,
            )
        })
        .collect()
}

#[test]
fn pgbouncer_1_18_pools_databases_and_clients() {
    let d = to_poll_data("bouncer", &answers_118()).expect("valid answers");
    assert_eq!(
        brief(&d),
        vec![
            ("pgbouncer_clients", "clients".into(), 99, 21, 0, 0),
            ("pgbouncer_pool", "orders/app".into(), 5, 5, 0, 15),
            ("pgbouncer_pool", "reports/app".into(), 20, 0, 3, 0),
            ("pgbouncer_database", "reports".into(), 10, 3, 0, 0),
        ]
    );
    // Sub-second queueing is kept: 250 ms, not 0.
    assert_eq!(d.pools[1].longest_wait, Some(Duration::from_millis(250)));
    assert_eq!(d.pools[0].longest_wait, None);
    assert_eq!(
        d.pools[0].capacity_note,
        "max_client_conn 100, 1 held by admin console sessions"
    );
    assert_eq!(
        d.pools[2].capacity_note,
        "pool_size 20, reserve_pool 3 unused"
    );
    assert_eq!(d.pools[3].capacity_note, "max_db_connections 10");
    assert!(d.pools[0].id.kind.whole_target);
    assert_eq!(
        d.summary,
        "PgBouncer 1.18.0, max_client_conn 100, 2 databases, 2 pools"
    );
}

#[test]
fn pgbouncer_1_24_columns_and_the_reserve_pool() {
    let mut a = answers_118();
    a.version = "PgBouncer 1.24.1".into();
    a.pools = table(
        "SHOW POOLS",
        POOLS_124,
        &["orders|app|7|3|0|0|7|0|0|0|0|0|0|1|5|transaction|NULL"],
    );
    a.databases = table(
        "SHOW DATABASES",
        DBS_124,
        &["orders|127.0.0.1|5432|orders|NULL|5|0|2|3600|NULL|NULL|0|7|0|10|0|0"],
    );
    a.config = table(
        "SHOW CONFIG",
        "key|value|default|changeable",
        &["max_client_conn|100|100|yes"],
    );
    let d = to_poll_data("bouncer", &a).expect("valid answers");
    let p = &d.pools[1];
    // 7 server connections for a pool_size of 5: the reserve pool (2) is in use.
    assert_eq!((p.capacity, p.configured_capacity), (7, 5));
    assert_eq!((p.in_use, p.waiting), (7, 3));
    assert_eq!(p.longest_wait, Some(Duration::from_micros(1_000_005)));
    assert_eq!(p.capacity_note, "pool_size 5, reserve_pool 2 in use");
}

#[test]
fn a_user_pool_size_overrides_the_database_one() {
    let mut a = answers_118();
    a.users = table(
        "SHOW USERS",
        "name|pool_size|reserve_pool_size|pool_mode|max_user_connections|current_connections",
        &["app|8|NULL|NULL|0|0"],
    );
    let d = to_poll_data("bouncer", &a).expect("valid answers");
    assert_eq!(d.pools[1].capacity, 8);
    assert_eq!(d.pools[1].capacity_note, "pool_size 8 (user)");
}

#[test]
fn missing_required_columns_are_named() {
    let mut a = answers_118();
    a.pools = table("SHOW POOLS", "database|user|cl_active", &[]);
    let err = to_poll_data("bouncer", &a).unwrap_err();
    assert!(
        err.starts_with("SHOW POOLS has no column `cl_waiting`, `sv_active`")
            && err.contains("PgBouncer 1.18.0"),
        "{err}"
    );
}

#[test]
fn a_full_pgbouncer_is_saturated_though_its_console_answers() {
    // (used clients, max_client_conn, want refusing)
    let cases = [
        (22, 100, false),
        (99, 100, false),
        (100, 100, true),
        (120, 100, true),
    ];
    for (used, max, want) in cases {
        let mut a = answers_118();
        a.config = table(
            "SHOW CONFIG",
            "key|value|changeable",
            &[&format!("max_client_conn|{max}|yes")],
        );
        a.lists = table(
            "SHOW LISTS",
            "list|items",
            &[&format!("used_clients|{used}")],
        );
        let d = to_poll_data("bouncer", &a).expect("valid answers");
        assert_eq!(d.refusing.is_some(), want, "{used}/{max}");
        if let Some(e) = d.refusing {
            assert_eq!(e.class, ErrorClass::TooManyConnections);
            assert!(
                e.message.starts_with("max_client_conn 100 reached"),
                "{}",
                e.message
            );
        }
    }
}

#[test]
fn clients_held_back_by_max_db_connections_queue_on_the_database() {
    let mut a = answers_118();
    // reports/app has room (pool_size 20, 3 in use) but reports' max_db_connections 3 is
    // reached: its 4 waiting clients queue on the database, not on the pool.
    a.pools = table(
        "SHOW POOLS",
        POOLS_118,
        &["reports|app|3|4|0|3|0|0|0|0|1|0|transaction"],
    );
    a.databases = table(
        "SHOW DATABASES",
        DBS_118,
        &["reports|127.0.0.1|5432|reports|NULL|20|0|0|NULL|3|3|0|0"],
    );
    let d = to_poll_data("bouncer", &a).expect("valid answers");
    let queued = |i: usize| PoolMetric::Queued.value(&d.pools[i]);
    assert_eq!(
        brief(&d)[1..],
        [
            ("pgbouncer_pool", "reports/app".into(), 20, 3, 0, 4),
            ("pgbouncer_database", "reports".into(), 3, 3, 0, 4),
        ]
    );
    assert_eq!((queued(1), queued(2)), (Some(0.0), Some(4.0)));
}
