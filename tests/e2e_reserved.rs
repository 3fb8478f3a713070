//! PostgreSQL 16+: `reserved_connections` slots for roles with `pg_use_reserved_connections`,
//! as the README recommends for the monitoring role. When ordinary roles are refused, poolwatch
//! still connects (and reconnects) through a reserved slot and keeps reporting the full pool.
//!
//! Needs PostgreSQL 16 or newer, so it is not part of `cargo test --all-targets` (`test = false`
//! in Cargo.toml): `scripts/test.sh` runs it with `--test e2e_reserved` on every major from 16
//! on (`POOLWATCH_TEST_PG=16|17|18`). On an older server it fails rather than pass vacuously.

mod common;

use std::time::Duration;

use common::metrics::find_sample;
use common::scenario::{poolwatch_sessions, MONITOR_PASSWORD, MONITOR_ROLE};
use common::{PgCluster, PgOptions, Poolwatch};

/// How long an expected event may take.
const WAIT: Duration = Duration::from_secs(30);

/// `max_connections` 12, 2 slots for superusers, 2 for `pg_use_reserved_connections`: 8 for
/// ordinary roles.
const MAX: u32 = 12;
const SUPERUSER_RESERVED: u32 = 2;
const RESERVED: u32 = 2;
const ORDINARY: usize = 8;

/// What PostgreSQL 16+ tells an ordinary role once only reserved slots are left.
const REFUSAL: &str = "remaining connection slots are reserved for roles with privileges of the \
                       \"pg_use_reserved_connections\" role";

/// The daemon polling the cluster every 100 ms as the monitoring role, with the pool rules
/// firing after 300 ms.
fn config(pg: &PgCluster) -> String {
    format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n[[targets]]\nname = \"db\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nuser = \"{MONITOR_ROLE}\"\npassword = \"{MONITOR_PASSWORD}\"\n\
         sslmode = \"disable\"\ninterval = \"100ms\"\nconnect_timeout = \"3s\"\n\
         reconnect_max_backoff = \"200ms\"\n\n[[rules]]\nname = \"PoolNearFull\"\nfor = \"300ms\"\n",
        port = pg.port()
    )
}

/// Waits until `name{labels}` satisfies `ok`; panics with the daemon's logs otherwise.
async fn wait_metric(pw: &Poolwatch, name: &str, labels: &[(&str, &str)], want: f64) {
    if let Err(e) = pw.wait_for_metric(name, labels, |v| v == want, WAIT).await {
        panic!("waiting for {name}{labels:?} == {want}: {e}\n{}", pw.logs());
    }
}

#[tokio::test]
async fn a_monitoring_role_with_reserved_connections_connects_and_reports_when_ordinary_roles_are_refused(
) {
    let pg = PgCluster::start(PgOptions {
        max_connections: MAX,
        superuser_reserved_connections: SUPERUSER_RESERVED,
        reserved_connections: Some(RESERVED),
        ..Default::default()
    })
    .await;
    assert!(
        pg.major_version() >= 16,
        "reserved_connections needs PostgreSQL 16+; scripts/test.sh runs this on 16 to 18 only"
    );
    pg.create_role(MONITOR_ROLE, MONITOR_PASSWORD, None).await;
    pg.exec(&format!(
        "GRANT pg_monitor, pg_use_reserved_connections TO {MONITOR_ROLE}"
    ))
    .await;
    pg.create_role("app", "app-pw", None).await;

    // The application takes every ordinary slot before poolwatch starts.
    let web = pg
        .hold_connections("app", ORDINARY, "web")
        .await
        .expect("the ordinary slots");
    let refused = pg
        .connect("app", "postgres")
        .await
        .expect_err("no ordinary slot left");
    let db = refused.as_db_error().expect("a server error");
    assert_eq!((db.code().code(), db.message()), ("53300", REFUSAL));

    // poolwatch logs in through a reserved slot: up, not saturated, and sees the full pool.
    // The 8 application sessions now exceed the 7 ordinary slots poolwatch's own session
    // leaves them (one of them would be refused if it reconnected): 8/7.
    let pw = Poolwatch::start(&config(&pg)).await;
    let server = [("target", "db"), ("kind", "server"), ("pool", "server")];
    wait_metric(&pw, "poolwatch_target_up", &[("target", "db")], 1.0).await;
    wait_metric(&pw, "poolwatch_pool_in_use", &server, ORDINARY as f64).await;
    let samples = pw.metrics().await.unwrap_or_else(|e| panic!("{e}"));
    let value = |name: &str, labels: &[(&str, &str)]| {
        find_sample(&samples, name, labels).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    assert_eq!(value("poolwatch_pool_capacity", &server), 7.0);
    assert_eq!(
        value(
            "poolwatch_server_reserved_connections",
            &[("target", "db"), ("for", "pg_use_reserved_connections")]
        ),
        f64::from(RESERVED)
    );
    assert_eq!(
        value(
            "poolwatch_target_state",
            &[("target", "db"), ("state", "saturated")]
        ),
        0.0
    );
    let near_full = [
        ("alertname", "PoolNearFull"),
        ("target", "db"),
        ("state", "firing"),
    ];
    if let Err(e) = pw
        .wait_for_metric("poolwatch_alerts", &near_full, |v| v >= 1.0, WAIT)
        .await
    {
        panic!("PoolNearFull not firing: {e}\n{}", pw.logs());
    }
    assert_eq!(poolwatch_sessions(&pg).await, 1);

    // Its session ends; it gets back in through the reserved slots while the app stays out.
    pg.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'poolwatch'",
    )
    .await;
    let reconnected = common::poll_until(WAIT, || async {
        let connects =
            pw.metrics().await.ok().and_then(|s| {
                find_sample(&s, "poolwatch_connects_total", &[("target", "db")]).ok()
            });
        connects.filter(|n| *n >= 2.0)
    })
    .await;
    assert!(reconnected.is_some(), "no reconnect\n{}", pw.logs());
    wait_metric(&pw, "poolwatch_target_up", &[("target", "db")], 1.0).await;
    assert_eq!(poolwatch_sessions(&pg).await, 1);
    let still_refused = pg.connect("app", "postgres").await.expect_err("still full");
    assert_eq!(
        still_refused.as_db_error().map(|db| db.message()),
        Some(REFUSAL)
    );
    web.close_all().await;
}
