//! The monitoring query and its parsing on the PostgreSQL major `POOLWATCH_TEST_PG` selects:
//! `scripts/test.sh` runs this binary on every supported major (13 to 18), through the real
//! `poolwatch snapshot` against a real cluster.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::pg::install;
use common::scenario::{create_monitor_role, header, target};
use common::{run_cli, ConfigFile, PgCluster, PgOptions};

/// Runs `poolwatch snapshot --json` on `config`; panics unless it exits 0 with JSON.
async fn snapshot_json(config: &ConfigFile) -> Value {
    let path = config.path().to_str().expect("UTF-8 path");
    let out = run_cli(&["snapshot", "--config", path, "--json"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The pool `kind`/`name` of the first target of a snapshot.
fn pool<'a>(doc: &'a Value, kind: &str, name: &str) -> &'a Value {
    doc["targets"][0]["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .find(|p| p["kind"] == kind && p["pool"] == name)
        .unwrap_or_else(|| panic!("no pool {kind} {name} in {doc:#}"))
}

/// Opens a TCP connection and sends a startup message for `user`, then stops answering: the
/// server waits in authentication (SCRAM) with a backend of its own, until the socket closes
/// or `authentication_timeout` passes. Returns once the server has asked for the password.
async fn stalled_login(port: u16, user: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let params = format!("user\0{user}\0database\0postgres\0\0");
    let length = u32::try_from(8 + params.len()).expect("small message");
    let mut message = length.to_be_bytes().to_vec();
    message.extend(196_608u32.to_be_bytes()); // protocol 3.0
    message.extend(params.as_bytes());
    stream.write_all(&message).await.expect("startup message");
    let mut first = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut first))
        .await
        .expect("an answer to the startup message")
        .expect("read");
    assert_eq!(first[0], b'R', "expected an authentication request");
    stream
}

/// Every figure of the poll on this major: server settings, the version, one pool per limited
/// role and database, holders and states. A connection still authenticating holds a backend
/// (PostgreSQL 18 shows it in `pg_stat_activity` as a client backend, state `starting`, with
/// no role or database yet) but belongs to nobody yet: it is not load.
#[tokio::test]
async fn the_poll_reads_every_figure_and_counts_only_logged_in_sessions() {
    let pg = PgCluster::start(PgOptions {
        max_connections: 20,
        ..Default::default()
    })
    .await;
    let major = pg.major_version();
    if let Some(wanted) = install::requested_pg_major() {
        assert_eq!(major, wanted);
    }
    create_monitor_role(&pg).await;
    pg.create_role("app", "app-pw", Some(10)).await;
    pg.create_database("orders", Some(6)).await;
    let web = pg
        .hold_connections_in("app", "orders", 3, "web")
        .await
        .expect("3 app connections");
    web.client(0)
        .batch_execute("BEGIN; SELECT 1")
        .await
        .expect("BEGIN");
    let stalled = stalled_login(pg.port(), "app").await;
    let starting: i64 = pg
        .query(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND usesysid IS NULL",
        )
        .await[0]
        .get(0);
    // Only PostgreSQL 18 shows backends before they have logged in.
    assert_eq!(starting, i64::from(major >= 18), "major {major}");

    let config = ConfigFile::new(&format!("{}{}", header(""), target("db", pg.port(), "")));
    let doc = snapshot_json(&config).await;
    let target = &doc["targets"][0];
    let summary = target["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with(&format!("PostgreSQL {major}."))
            && summary.contains("max_connections 20, 3 reserved for superusers, 0 reserved"),
        "{summary}"
    );
    let fact = |name: &str, label: Option<&str>| {
        target["facts"].as_array().and_then(|facts| {
            facts
                .iter()
                .find(|f| {
                    f["name"] == name
                        && label.is_none_or(|l| {
                            f["labels"]
                                .as_object()
                                .is_some_and(|o| o.values().any(|v| v == l))
                        })
                })
                .map(|f| f["value"].clone())
        })
    };
    assert_eq!(
        fact("poolwatch_server_max_connections", None),
        Some(json!(20.0))
    );
    assert_eq!(
        fact("poolwatch_server_reserved_connections", Some("superuser")),
        Some(json!(3.0))
    );
    assert_eq!(
        fact(
            "poolwatch_server_reserved_connections",
            Some("pg_use_reserved_connections")
        ),
        Some(json!(0.0))
    );
    let server_pool = pool(&doc, "server", "server");
    for (key, want) in [
        ("capacity", json!(16)),
        ("in_use", json!(3)),
        ("idle", json!(2)),
    ] {
        assert_eq!(server_pool[key], want, "{key}: {server_pool:#}");
    }
    let sessions = &server_pool["postgres"];
    for (key, want) in [
        ("idle_in_transaction", json!(1)),
        ("by_state", json!({"idle": 2, "idle in transaction": 1})),
    ] {
        assert_eq!(sessions[key], want, "{key}: {server_pool:#}");
    }
    assert_eq!(
        sessions["holders"]["applications"],
        json!([{"name": "web", "connections": 3, "idle_in_transaction": 1}]),
        "{server_pool:#}"
    );
    assert_eq!(
        sessions["holders"]["roles"],
        json!([{"name": "app", "connections": 3, "idle_in_transaction": 1}]),
        "{server_pool:#}"
    );
    let role = pool(&doc, "role", "app");
    assert_eq!(
        (&role["capacity"], &role["in_use"]),
        (&json!(10), &json!(3)),
        "{role:#}"
    );
    let database = pool(&doc, "database", "orders");
    assert_eq!(
        (&database["capacity"], &database["in_use"]),
        (&json!(6), &json!(3)),
        "{database:#}"
    );
    drop(stalled);
    web.close_all().await;
}
