//! `poolwatch check-config` and `poolwatch snapshot` with a PgBouncer target.

use crate::common::scenario::{header, WAIT};
use crate::common::{run_cli, ConfigFile, PgBouncerOptions};
use crate::scene::*;

#[tokio::test]
async fn snapshot_and_check_config_show_a_pgbouncer_target() {
    let (_pg, pgb) = bouncer(vec![appdb(5)], PgBouncerOptions::default()).await;
    let clients = pgb.hold_clients(APP, "appdb", 7);
    clients.wait_for(5, 2, WAIT).await;
    let file = ConfigFile::new(&[header(""), bouncer_target(pgb.port(), "")].concat());
    let path = file.path().to_str().expect("UTF-8 path");

    let out = run_cli(&["check-config", path]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let described = format!(
        "pgbouncer every 100ms, poolwatch@127.0.0.1:{}/pgbouncer (admin console), sslmode disable, poll_timeout 2s",
        pgb.port()
    );
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(TARGET))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(
        line.split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" "),
        described
    );

    let out = run_cli(&["snapshot", "--config", path]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let head = format!(
        "bouncer: up, PgBouncer {}, max_client_conn 100, 1 databases, 1 pools",
        pgb.full_version()
    );
    assert!(stdout.starts_with(&head), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    let row = |pool: &str| {
        let at = lines
            .iter()
            .position(|l| l.split_whitespace().nth(1) == Some(pool))
            .unwrap_or_else(|| panic!("no row {pool} in\n{stdout}"));
        (at, lines[at].split_whitespace().collect::<Vec<_>>())
    };
    let (at, pool) = row("appdb/app");
    assert_eq!(
        pool,
        [
            "pgbouncer_pool",
            "appdb/app",
            "5",
            "5",
            "0",
            "2",
            "100%",
            "-"
        ]
    );
    assert!(
        lines[at + 1].trim_start().starts_with("longest wait "),
        "{stdout}"
    );
    let (_, all) = row("clients");
    assert_eq!(
        all,
        [
            "pgbouncer_clients",
            "clients",
            "99",
            "7",
            "0",
            "0",
            "7%",
            "-"
        ]
    );
    // Columns line up under the header, whatever the length of the kinds.
    let header_line = lines
        .iter()
        .find(|l| l.contains("CAPACITY"))
        .expect("header");
    let pool_column = header_line.find("POOL").expect("POOL");
    assert_eq!(lines[at].find("appdb/app"), Some(pool_column), "{stdout}");
    let firing = format!(
        "FIRING   critical  PoolClientsWaiting     {TARGET} pgbouncer_pool appdb/app: 2 clients waiting"
    );
    assert!(stdout.contains(&firing), "{stdout}");
}
