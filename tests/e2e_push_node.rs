//! End-to-end: a real node-postgres application (`pg.Pool`) pushes its pool's counts to the
//! real daemon; clients queued in it page, and when it stops the target goes down as stale.

mod common;

use common::push_apps::{expect_notified, Lang, PushApp, PushAppOptions};
use common::scenario::{expect_metric, header, receiver};
use common::{PgCluster, PgOptions, Poolwatch, Receiver};
use std::time::Duration;

#[tokio::test]
async fn clients_queued_in_a_node_postgres_pool_page_and_a_stopped_app_goes_stale() {
    let pg = PgCluster::start(PgOptions {
        max_connections: 30,
        ..PgOptions::default()
    })
    .await;
    let hook = Receiver::start().await;
    let config = [
        header(""),
        "[[targets]]\nname = \"orders\"\ntype = \"push\"\ninterval = \"100ms\"\nttl = \"2s\"\n\n"
            .into(),
        "[[rules]]\nname = \"TargetDown\"\nfor = \"300ms\"\n\n".into(),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat();
    let pw = Poolwatch::start(&config).await;
    let mut app = PushApp::start(
        Lang::Node,
        &PushAppOptions {
            dsn: pg.url("postgres", "postgres"),
            url: pw.url("/api/v1/pools"),
            application: "orders".into(),
            instance: "node-1".into(),
            token: None,
            max_size: 5,
            every: 0.2,
        },
    )
    .await;
    let pool = [("target", "orders"), ("kind", "app"), ("pool", "default")];
    expect_metric(&pw, "poolwatch_pool_capacity", &pool, 5.0).await;
    // 20 queries on a pool of 5: 5 run, 15 wait in node-postgres' queue.
    app.load(20, Duration::from_secs(20)).await;
    expect_metric(&pw, "poolwatch_pool_in_use", &pool, 5.0).await;
    expect_metric(&pw, "poolwatch_pool_waiting", &pool, 15.0).await;
    expect_notified(&hook, 0, "firing PoolClientsWaiting orders").await;

    let before = hook.requests().len();
    assert!(app.quit().await, "the final push was refused");
    expect_metric(&pw, "poolwatch_target_up", &[("target", "orders")], 0.0).await;
    expect_notified(&hook, before, "firing TargetDown orders").await;
}

#[test]
fn the_readme_shows_the_node_example_the_tests_run() {
    common::push_apps::assert_readme_shows_example(Lang::Node);
}
