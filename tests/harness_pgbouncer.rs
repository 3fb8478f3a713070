//! Tests of the PgBouncer harness (`tests/common/pgbouncer`) against a real PgBouncer in front
//! of a real PostgreSQL cluster, on the version `POOLWATCH_TEST_PGBOUNCER` selects:
//! `scripts/test.sh` runs this binary once per supported version (1.18 and 1.24), and the
//! assertions that differ between them are made for the version running.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::pg::install;
use common::pgbouncer::auth::auth_line;
use common::pgbouncer::ini::Ini;
use common::pgbouncer::{error_text, Database, PoolMode, Version};
use common::{PgBouncer, PgBouncerOptions, PgCluster, PgOptions};

/// The application role whose clients fill the pools.
const APP: &str = "app";
/// The monitoring role: in `stats_users`, as a PgBouncer source would connect.
const MONITOR: &str = "monitor";
/// How long clients may take to reach an expected state.
const WAIT: Duration = Duration::from_secs(20);

const V118: Version = Version {
    major: 1,
    minor: 18,
};
const V124: Version = Version {
    major: 1,
    minor: 24,
};

/// A cluster with [`APP`] and [`MONITOR`], and a PgBouncer in front of it with database
/// `appdb` (the cluster's `postgres`) made by `database`, and `options` otherwise.
async fn start(
    database: impl FnOnce(Database) -> Database,
    options: PgBouncerOptions,
) -> (PgCluster, PgBouncer) {
    let pg = PgCluster::start(PgOptions {
        max_connections: 40,
        ..Default::default()
    })
    .await;
    pg.create_role(APP, "app-pw", None).await;
    pg.create_role(MONITOR, "monitor-pw", None).await;
    let bouncer = PgBouncer::start(
        &pg,
        PgBouncerOptions {
            databases: vec![database(Database::new("appdb", "postgres"))],
            users: vec![APP.to_owned()],
            stats_users: vec![MONITOR.to_owned()],
            ..options
        },
    )
    .await;
    (pg, bouncer)
}

/// PostgreSQL sessions of [`APP`]: PgBouncer's server connections.
async fn server_connections(pg: &PgCluster) -> i64 {
    pg.query("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'")
        .await[0]
        .get(0)
}

#[tokio::test]
async fn the_selected_version_runs_and_its_columns_are_read_by_name() {
    let (_pg, pgb) = start(|db| db.pool_size(5).reserve_pool(2), Default::default()).await;
    if let Ok(wanted) = std::env::var(install::PGBOUNCER_VAR) {
        assert_eq!(pgb.version().to_string(), wanted);
    }
    eprintln!("PgBouncer {}", pgb.full_version());

    let databases = pgb.show("DATABASES").await;
    let appdb = databases.find("name", "appdb").expect("appdb entry");
    assert_eq!(appdb.int("pool_size"), 5);
    assert_eq!(appdb.text("database"), "postgres");
    let (reserve, absent) = if pgb.version() >= V124 {
        ("reserve_pool_size", "reserve_pool")
    } else {
        ("reserve_pool", "reserve_pool_size")
    };
    assert_eq!(appdb.int(reserve), 2, "{:?}", databases.columns);
    assert!(!appdb.has(absent), "{:?}", databases.columns);
    let added_in_124 = [
        "server_lifetime",
        "load_balance_hosts",
        "max_client_connections",
        "current_client_connections",
    ];
    for column in added_in_124 {
        assert_eq!(
            appdb.has(column),
            pgb.version() >= V124,
            "{column} in {:?}",
            databases.columns
        );
    }

    let pools = pgb.show("POOLS").await;
    for column in ["cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used"] {
        assert!(pools.columns.iter().any(|c| c == column), "{column}");
    }
    for column in ["maxwait", "maxwait_us", "pool_mode"] {
        assert!(pools.columns.iter().any(|c| c == column), "{column}");
    }
    assert_eq!(
        pools.columns.iter().any(|c| c == "load_balance_hosts"),
        pgb.version() >= V124,
        "{:?}",
        pools.columns
    );

    // SHOW CONFIG has had `default` since 1.18: four columns on both versions.
    let config = pgb.show("CONFIG").await;
    assert_eq!(config.columns, ["key", "value", "default", "changeable"]);
    let max_client_conn = config.find("key", "max_client_conn").expect("key");
    assert_eq!(max_client_conn.text("value"), "100");
    assert_eq!(max_client_conn.text("changeable"), "yes");
    assert_eq!(pgb.config_value("reserve_pool_size").await, "0");
    assert_eq!(pgb.config_value("pool_mode").await, "session");

    // The monitoring role may read but not administer; a wrong password is refused.
    let as_monitor = pgb
        .try_console(MONITOR, "SHOW POOLS")
        .await
        .expect("stats_users may SHOW");
    assert_eq!(as_monitor.columns, pools.columns);
    let refused = pgb
        .try_console(MONITOR, "RELOAD")
        .await
        .expect_err("stats_users may not RELOAD");
    assert_eq!(refused.message(), "admin access needed", "{refused:?}");
    let url = pgb.console_url(MONITOR).replace("monitor-pw", "wrong");
    let refused = common::pgbouncer::Console::connect(&url)
        .await
        .err()
        .expect("wrong password refused");
    assert!(
        refused.message() == "SASL authentication failed",
        "{refused:?}"
    );
}

#[tokio::test]
async fn clients_beyond_the_pool_size_wait_until_released() {
    let (pg, pgb) = start(|db| db.pool_size(5), Default::default()).await;
    let mut clients = pgb.hold_clients(APP, "appdb", 20);
    clients.wait_for(5, 15, WAIT).await;
    let pool = pgb.pool("appdb", APP).await;
    assert_eq!(
        (
            pool.int("cl_active"),
            pool.int("cl_waiting"),
            pool.int("sv_active")
        ),
        (5, 15, 5),
        "{pool:?}"
    );
    // The longest wait grows while they wait, with microseconds (sub-second waits included).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pool = pgb.pool("appdb", APP).await;
    let waited_us = pool.int("maxwait") * 1_000_000 + pool.int("maxwait_us");
    assert!(waited_us >= 250_000, "{pool:?}");
    assert_eq!(server_connections(&pg).await, 5);

    clients.release(20);
    let drained = common::poll_until(WAIT, || async {
        let pool = pgb.pool("appdb", APP).await;
        (pool.int("cl_active") + pool.int("cl_waiting") == 0).then_some(pool)
    })
    .await
    .expect("clients gone from SHOW POOLS");
    // The 5 server connections stay, back in the pool (idle, or being reset or tested).
    assert_eq!(drained.int("sv_active"), 0, "{drained:?}");
    let kept: i64 = ["sv_idle", "sv_used", "sv_tested"]
        .iter()
        .map(|c| drained.int(c))
        .sum();
    assert_eq!(kept, 5, "{drained:?}");
}

#[tokio::test]
async fn a_reload_with_a_smaller_pool_size_takes_effect() {
    let (_pg, pgb) = start(|db| db.pool_size(5), Default::default()).await;
    let pool_size = |rows: &common::pgbouncer::ShowResult| {
        rows.find("name", "appdb").expect("appdb").int("pool_size")
    };
    assert_eq!(pool_size(&pgb.show("DATABASES").await), 5);

    pgb.set_database(Database::new("appdb", "postgres").pool_size(2));
    pgb.set("default_pool_size", 7);
    pgb.set("pool_mode", PoolMode::Transaction.as_str());
    pgb.reload().await;
    assert_eq!(pool_size(&pgb.show("DATABASES").await), 2);
    assert_eq!(pgb.config_value("default_pool_size").await, "7");
    assert_eq!(pgb.config_value("pool_mode").await, "transaction");
    // Transaction mode: the hold keeps a transaction open to keep its server connection.
    let clients = pgb.hold_clients(APP, "appdb", 4);
    clients.wait_for(2, 2, WAIT).await;
    let pool = pgb.pool("appdb", APP).await;
    assert_eq!(pool.text("pool_mode"), "transaction");
    assert_eq!(
        (pool.int("sv_active"), pool.int("cl_waiting")),
        (2, 2),
        "{pool:?}"
    );
}

#[tokio::test]
async fn max_client_conn_reached_refuses_clients_but_not_the_console() {
    let (_pg, pgb) = start(
        |db| db,
        PgBouncerOptions {
            max_client_conn: 5,
            ..Default::default()
        },
    )
    .await;
    let clients = pgb.hold_clients(APP, "appdb", 5);
    clients.wait_for(5, 0, WAIT).await;
    let refused = pgb
        .connect(APP, "appdb")
        .await
        .expect_err("a sixth client is refused");
    assert_eq!(
        error_text(&refused),
        "no more connections allowed (max_client_conn)",
        "{refused:?}"
    );
    // The console still answers the monitoring role: PgBouncer lets it in beyond the limit.
    let pools = pgb
        .try_console(MONITOR, "SHOW POOLS")
        .await
        .expect("console while max_client_conn is reached");
    let pool = pools.find("database", "appdb").expect("appdb pool");
    assert_eq!(pool.int("cl_active"), 5);
    drop(clients);
}

#[tokio::test]
async fn stop_start_and_kill_keep_the_port() {
    let (_pg, pgb) = start(|db| db, Default::default()).await;
    let port = pgb.port();
    let clients = pgb.hold_clients(APP, "appdb", 2);
    clients.wait_for(2, 0, WAIT).await;

    pgb.stop().await;
    assert!(!pgb.is_running());
    let down = pgb.connect(APP, "appdb").await.expect_err("stopped");
    assert!(down.as_db_error().is_none(), "{down:?}");
    pgb.start_again().await;
    assert_eq!(pgb.port(), port);
    pgb.connect(APP, "appdb")
        .await
        .expect("a client after start_again");

    let pid = pgb.pid().expect("running");
    pgb.kill().await;
    assert!(common::process_exited(pid));
    assert!(pgb.connect(APP, "appdb").await.is_err());
    pgb.start_again().await;
    assert_ne!(pgb.pid(), Some(pid));
    // A new process: the pools of before are gone until a client comes.
    assert!(pgb.show("POOLS").await.find("database", "appdb").is_none());
    drop(clients);
}

#[tokio::test]
async fn tls_clients_verify_pgbouncer_with_its_ca() {
    let (_pg, pgb) = start(
        |db| db,
        PgBouncerOptions {
            tls: true,
            ..Default::default()
        },
    )
    .await;
    let ca = pgb.ca_file().expect("CA file");
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(
        common::pg::ssl::client_config(ca).expect("client config"),
    );
    let conninfo = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user={MONITOR} password={} dbname=pgbouncer sslmode=require",
        pgb.port(),
        pgb.password(MONITOR).expect("monitor password"),
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tls)
        .await
        .unwrap_or_else(|e| panic!("TLS to PgBouncer: {e:?}"));
    tokio::spawn(connection);
    let rows = client
        .simple_query("SHOW CLIENTS")
        .await
        .expect("SHOW CLIENTS");
    let tls_of_self = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) if r.get("user") == Some(MONITOR) => {
            r.get("tls").map(str::to_owned)
        }
        _ => None,
    });
    assert!(
        tls_of_self
            .as_deref()
            .is_some_and(|t| t.starts_with("TLSv1")),
        "{tls_of_self:?}"
    );
}

#[test]
fn versions_parse_from_the_first_line() {
    let cases = [
        (
            "PgBouncer 1.18.0\nlibevent 2.1.12-stable\n",
            Some((V118, "1.18.0")),
        ),
        ("PgBouncer 1.24.1\n", Some((V124, "1.24.1"))),
        ("pgbouncer version 1.7\n", None),
        ("", None),
    ];
    for (output, want) in cases {
        let got = Version::parse(output);
        assert_eq!(
            got.as_ref().map(|(v, full)| (*v, full.as_str())),
            want,
            "{output:?}"
        );
    }
}

#[test]
fn the_reserve_pool_key_of_a_database_entry_depends_on_the_version() {
    let ini = Ini {
        server_port: 5433,
        listen_port: 6433,
        databases: vec![Database::new("app", "postgres")
            .pool_size(5)
            .reserve_pool(2)
            .max_db_connections(8)
            .pool_mode(PoolMode::Transaction)],
        settings: BTreeMap::from([("reserve_pool_size".to_owned(), "1".to_owned())]),
        auth_file: PathBuf::from("/d/users.txt"),
        logfile: PathBuf::from("/d/pgbouncer.log"),
    };
    let old = ini.render(V118);
    let entry = "app = host=127.0.0.1 port=5433 dbname=postgres pool_size=5";
    assert!(
        old.contains(&format!(
            "{entry} reserve_pool=2 max_db_connections=8 pool_mode=transaction\n"
        )),
        "{old}"
    );
    let new = ini.render(V124);
    assert!(
        new.contains(&format!("{entry} reserve_pool_size=2 max_db_connections=8")),
        "{new}"
    );
    for text in [&old, &new] {
        // The global key is reserve_pool_size on both: a global reserve_pool is fatal.
        assert!(text.contains("\nreserve_pool_size = 1\n"), "{text}");
        assert!(!text.contains("\nreserve_pool ="), "{text}");
        assert!(text.contains("\nlisten_port = 6433\n"), "{text}");
        assert!(text.contains("\nunix_socket_dir = \n"), "{text}");
    }
}

#[test]
fn auth_lines_quote_names_and_secrets() {
    assert_eq!(
        auth_line("mon", "SCRAM-SHA-256$4096:a$b:c"),
        "\"mon\" \"SCRAM-SHA-256$4096:a$b:c\"\n"
    );
    assert_eq!(auth_line("we\"ird", "x"), "\"we\"\"ird\" \"x\"\n");
}
