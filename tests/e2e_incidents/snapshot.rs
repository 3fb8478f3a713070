//! `poolwatch snapshot`: what on-call runs first. It must show the numbers and the holders of
//! a busy server, and say precisely why it cannot when the server is down or full.

use serde_json::{json, Value};

use crate::common::{run_cli, ConfigFile};
use crate::scene::{matches, Scene, APP, RESERVED_REFUSAL};

/// Runs `poolwatch snapshot --config FILE [--json]`: exit code, stdout, stderr.
async fn snapshot(config: &ConfigFile, as_json: bool) -> (i32, String, String) {
    let path = config.path().to_str().expect("UTF-8 path");
    let mut args = vec!["snapshot", "--config", path];
    if as_json {
        args.push("--json");
    }
    let out = run_cli(&args).await;
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The whitespace-separated fields of the table row of pool `kind`/`name`.
fn row<'a>(table: &'a str, kind: &str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() >= 8 && f[0] == kind && f[1] == name)
        .unwrap_or_else(|| panic!("no row {kind} {name} in:\n{table}"))
}

/// The holders line labelled `label` that follows the row of pool `kind`/`name`.
fn holders<'a>(table: &'a str, kind: &str, name: &str, label: &str) -> &'a str {
    let lines: Vec<&str> = table.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.split_whitespace().take(2).eq([kind, name]))
        .unwrap_or_else(|| panic!("no row {kind} {name} in:\n{table}"));
    lines[start + 1..]
        .iter()
        .take_while(|l| l.starts_with("      "))
        .find_map(|l| l.trim().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label} line under {kind} {name} in:\n{table}"))
}

/// The pool `kind`/`name` of the first target of `snapshot --json`.
fn pool<'a>(doc: &'a Value, kind: &str, name: &str) -> &'a Value {
    doc["targets"][0]["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .find(|p| p["kind"] == kind && p["pool"] == name)
        .unwrap_or_else(|| panic!("no pool {kind} {name} in {doc:#}"))
}

/// 8 application connections (5 `checkout`, 2 of them idle in transaction; 3 `reports`) on 16
/// usable slots (17 ordinary ones, one held by the snapshot's own session, which is not load)
/// and a role limited to 12.
#[tokio::test]
async fn snapshot_shows_capacity_holders_and_idle_in_transaction() {
    let scene = Scene::start("orders-db", 20, Some(12)).await;
    let checkout = scene.hold(5, "checkout").await;
    for i in 0..2 {
        checkout
            .client(i)
            .batch_execute("BEGIN; SELECT 1")
            .await
            .expect("BEGIN on a held connection");
    }
    let reports = scene.hold(3, "reports").await;
    let config = ConfigFile::new(&scene.config(""));

    let (code, table, stderr) = snapshot(&config, false).await;
    assert_eq!(code, 0, "{table}\n{stderr}");
    let header = table.lines().next().expect("a header line");
    assert!(
        matches(
            r"orders-db: up, PostgreSQL \d+\.\d+, max_connections 20, 3 reserved for superusers, 0 reserved for pg_use_reserved_connections, polled in [0-9.]+ms",
            header
        ),
        "{header}"
    );
    // KIND POOL CAPACITY IN_USE IDLE WAITING UTIL IDLE_IN_TX (OLDEST)
    let server = row(&table, "server", "server");
    assert_eq!(
        server[..8],
        ["server", "server", "16", "8", "6", "0", "50%", "2"],
        "{table}"
    );
    assert!(
        server[8].starts_with('('),
        "oldest idle in transaction: {table}"
    );
    assert_eq!(
        holders(&table, "server", "server", "applications"),
        "checkout 5 (2 idle in tx), reports 3"
    );
    assert_eq!(
        holders(&table, "server", "server", "roles"),
        "app 8 (2 idle in tx)"
    );
    let role = row(&table, "role", APP);
    assert_eq!(
        role[..8],
        ["role", "app", "12", "8", "6", "0", "67%", "2"],
        "{table}"
    );
    assert_eq!(
        holders(&table, "role", APP, "applications"),
        "checkout 5 (2 idle in tx), reports 3"
    );
    assert!(
        table.contains("No rule would be pending or firing."),
        "{table}"
    );

    let (code, text, stderr) = snapshot(&config, true).await;
    assert_eq!(code, 0, "{text}\n{stderr}");
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let target = &doc["targets"][0];
    assert_eq!(target["target"], "orders-db");
    assert_eq!(target["state"], "up");
    assert!(
        target["summary"]
            .as_str()
            .is_some_and(|s| s.contains("max_connections 20, 3 reserved for superusers")),
        "{target:#}"
    );
    let fact = |name: &str| {
        target["facts"]
            .as_array()
            .and_then(|facts| facts.iter().find(|f| f["name"] == name))
            .map(|f| f["value"].clone())
    };
    assert_eq!(fact("poolwatch_server_max_connections"), Some(json!(20.0)));
    let server = pool(&doc, "server", "server");
    for (key, want) in [
        ("subject", json!("orders-db")),
        ("capacity", json!(16)),
        ("in_use", json!(8)),
        ("idle", json!(6)),
        ("waiting", json!(0)),
        ("free", json!(8)),
        ("longest_wait_seconds", json!(null)),
        (
            "capacity_note",
            json!("max_connections 20, 3 reserved for superusers, 1 held by poolwatch"),
        ),
    ] {
        assert_eq!(server[key], want, "{key}: {server:#}");
    }
    for (key, want) in [
        ("idle_in_transaction", json!(2)),
        ("lock_waiting", json!(0)),
        ("by_state", json!({"idle": 6, "idle in transaction": 2})),
    ] {
        assert_eq!(server["postgres"][key], want, "{key}: {server:#}");
    }
    assert_eq!(
        server["postgres"]["holders"]["applications"],
        json!([
            {"name": "checkout", "connections": 5, "idle_in_transaction": 2},
            {"name": "reports", "connections": 3, "idle_in_transaction": 0},
        ])
    );
    assert!(
        server["postgres"]["oldest_idle_in_transaction_seconds"]
            .as_f64()
            .expect("age")
            >= 0.0
    );
    let role = pool(&doc, "role", APP);
    assert_eq!(
        (
            &role["capacity"],
            &role["in_use"],
            &role["postgres"]["idle_in_transaction"]
        ),
        (&json!(12), &json!(8), &json!(2)),
        "{role:#}"
    );
    assert_eq!(doc["alerts"], json!([]));
    drop((checkout, reports));
}

/// A full server refuses the snapshot's session with 53300: exit 1, SATURATED
/// (too_many_connections), TargetSaturated would fire. A stopped one: exit 1, DOWN (network).
#[tokio::test]
async fn snapshot_says_saturated_for_a_full_server_and_network_for_a_stopped_one() {
    let scene = Scene::start("orders-db", 13, None).await;
    let config = ConfigFile::new(&scene.config(""));
    let held = scene.hold(10, "checkout").await;

    let (code, table, stderr) = snapshot(&config, false).await;
    assert_eq!(code, 1, "{table}\n{stderr}");
    let first = table.lines().next().unwrap_or_default();
    let saturated = format!(
        r"orders-db: SATURATED \(too_many_connections\): FATAL {RESERVED_REFUSAL} \(SQLSTATE 53300\)"
    );
    assert!(matches(&saturated, first), "{table}");
    assert!(
        table.lines().any(|l| l.split_whitespace().take(3).eq([
            "FIRING",
            "critical",
            "TargetSaturated"
        ])),
        "{table}"
    );
    let (code, text, _) = snapshot(&config, true).await;
    assert_eq!(code, 1, "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(doc["targets"][0]["state"], "saturated", "{doc:#}");
    assert_eq!(
        doc["targets"][0]["error"]["class"], "too_many_connections",
        "{doc:#}"
    );

    held.close_all().await;
    scene.pg.stop().await;
    let (code, table, stderr) = snapshot(&config, false).await;
    assert_eq!(code, 1, "{table}\n{stderr}");
    let first = table.lines().next().unwrap_or_default();
    assert!(first.starts_with("orders-db: DOWN (network): "), "{table}");
    assert!(first.contains("Connection refused"), "{table}");
    let (code, text, _) = snapshot(&config, true).await;
    assert_eq!(code, 1, "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(doc["targets"][0]["state"], "down", "{doc:#}");
    assert_eq!(doc["targets"][0]["error"]["class"], "network", "{doc:#}");
}
