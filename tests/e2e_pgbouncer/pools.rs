//! PgBouncer's pools: clients waiting paged within a poll and resolved, a pool size lowered
//! by a `RELOAD` flagged before any client waits, `max_db_connections` as a pool of its own,
//! and the reserve pool as capacity that comes and goes without a drop.

use std::time::{Duration, Instant};

use crate::common::scenario::{expect_metric, metric, notifications, Notification, WAIT};
use crate::common::{PgBouncerOptions, Poolwatch, Receiver};
use crate::scene::*;

#[tokio::test]
async fn clients_waiting_page_within_a_poll_and_resolve_after_release() {
    let (_pg, pgb) = bouncer(vec![appdb(5)], PgBouncerOptions::default()).await;
    let hook = Receiver::start().await;
    // The pool's five server connections are open before poolwatch looks: PgBouncer opens
    // them one at a time, and the clients of a cold pool wait for each to log in.
    let mut served = pgb.hold_clients(APP, "appdb", 5);
    served.wait_for(5, 0, WAIT).await;
    let pw = Poolwatch::start(&config(&pgb, &hook)).await;
    expect_metric(&pw, "poolwatch_pool_in_use", &POOL, 5.0).await;

    let mut clients = pgb.hold_clients(APP, "appdb", 15);
    clients.wait_for(0, 15, WAIT).await;
    let seen = Instant::now();
    let firing = expect_pages(&hook, "PoolClientsWaiting", 1).await;
    let paged = hook
        .requests()
        .iter()
        .find(|r| r.body_text().contains("PoolClientsWaiting"))
        .map(|r| r.received_at)
        .expect("the page");
    let after = paged.saturating_duration_since(seen);
    eprintln!("PoolClientsWaiting paged {after:?} after the clients were seen waiting");
    assert!(after <= INTERVAL + Duration::from_secs(1), "{after:?}");
    let summary = regex::Regex::new(
        r"^bouncer pgbouncer_pool appdb/app: (\d+) clients waiting for a connection \(5/5 in use\)$",
    )
    .expect("regex");
    // The page comes from the first poll that sees a client waiting: 1 to 15 of them.
    let waiting: u32 = summary
        .captures(&firing[0].summary)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("{firing:?}"));
    assert!((1..=15).contains(&waiting), "{firing:?}");
    assert_eq!(firing[0].severity, "critical");
    assert!(
        firing[0].description.starts_with("pool_size 5;"),
        "{firing:?}"
    );

    // The scrape that shows all 15 waiting shows a fresh, sub-second longest wait.
    let (body, samples) = wait_scrape(&pw, |s| {
        sample(s, "poolwatch_pool_waiting", &POOL) == Some(15.0)
    })
    .await;
    let wait = sample(&samples, "poolwatch_pool_longest_wait_seconds", &POOL).expect("wait");
    assert!(wait > 0.0 && wait < 1.0, "longest wait {wait}");
    assert_eq!(sample(&samples, "poolwatch_pool_in_use", &POOL), Some(5.0));
    assert_eq!(
        sample(&samples, "poolwatch_pool_capacity", &POOL),
        Some(5.0)
    );
    crate::common::promtool_check_metrics(&body).unwrap_or_else(|e| panic!("{e}"));

    // PgBouncer notices that a waiting client left only when it has a server for it: the
    // clients holding the servers go too.
    clients.release(15);
    served.release(5);
    let both = expect_pages(&hook, "PoolClientsWaiting", 2).await;
    assert_eq!(both[1].status, "resolved", "{both:?}");
    let resolved = regex::Regex::new(
        r"^bouncer pgbouncer_pool appdb/app: PoolClientsWaiting cleared after \S+; 0 clients waiting for a connection \([0-5]/5 in use\) now$",
    )
    .expect("regex");
    assert!(resolved.is_match(&both[1].summary), "{both:?}");
    expect_metric(&pw, "poolwatch_pool_waiting", &POOL, 0.0).await;
}

#[tokio::test]
async fn a_reload_with_a_smaller_pool_size_is_flagged_before_any_client_waits() {
    let (_pg, pgb) = bouncer(vec![appdb(20)], PgBouncerOptions::default()).await;
    // PgBouncer lists a pool once a client has used it. Its server connections are open before
    // poolwatch looks: clients of a cold pool wait for them to log in, which is no incident.
    let mut clients = pgb.hold_clients(APP, "appdb", 3);
    clients.wait_for(3, 0, WAIT).await;
    let hook = Receiver::start().await;
    let pw = Poolwatch::start(&config(&pgb, &hook)).await;
    expect_metric(&pw, "poolwatch_pool_capacity", &POOL, 20.0).await;

    // A deployment lowers the pool size and reloads PgBouncer.
    pgb.set_database(appdb(5));
    pgb.reload().await;
    let dropped = expect_pages(&hook, "PoolCapacityDropped", 1).await;
    assert_eq!(
        (dropped[0].severity.as_str(), dropped[0].summary.as_str()),
        (
            "warning",
            "bouncer pgbouncer_pool appdb/app: capacity fell from 20 to 5"
        ),
        "{dropped:?}"
    );
    assert!(
        dropped[0]
            .description
            .starts_with("pool_size 5; 3 in use now (60%)."),
        "{dropped:?}"
    );
    expect_metric(&pw, "poolwatch_pool_capacity", &POOL, 5.0).await;
    assert_eq!(metric(&pw, "poolwatch_pool_waiting", &POOL).await, 0.0);

    // The next peak finds the smaller pool: clients wait, paged after the drop was.
    let more = pgb.hold_clients(APP, "appdb", 4);
    more.wait_for(2, 2, WAIT).await;
    expect_pages(&hook, "PoolClientsWaiting", 1).await;
    let sent: Vec<String> = notifications(&hook.requests())
        .iter()
        .map(Notification::brief)
        .collect();
    assert_eq!(
        sent[..2],
        [
            "firing PoolCapacityDropped bouncer",
            "firing PoolClientsWaiting bouncer"
        ],
        "{sent:?}"
    );
    drop(more);
    clients.release(3);
}

#[tokio::test]
async fn max_db_connections_is_a_pool_of_its_own() {
    let database = appdb(5).max_db_connections(3);
    let (_pg, pgb) = bouncer(vec![database], PgBouncerOptions::default()).await;
    let hook = Receiver::start().await;
    let pw = Poolwatch::start(&config(&pgb, &hook)).await;
    let clients = pgb.hold_clients(APP, "appdb", 5);
    clients.wait_for(3, 2, WAIT).await;
    let db = pool_of("pgbouncer_database", "appdb");
    // The database's limit, not the pool's size, makes the clients wait.
    let (_, samples) = wait_scrape(&pw, |s| {
        sample(s, "poolwatch_pool_waiting", &POOL) == Some(2.0)
            && sample(s, "poolwatch_pool_in_use", &db) == Some(3.0)
    })
    .await;
    assert_eq!(sample(&samples, "poolwatch_pool_capacity", &db), Some(3.0));
    assert_eq!(
        sample(&samples, "poolwatch_pool_capacity", &POOL),
        Some(5.0)
    );
    assert_eq!(sample(&samples, "poolwatch_pool_in_use", &POOL), Some(3.0));
    expect_pages(&hook, "PoolClientsWaiting", 1).await;
}

#[tokio::test]
async fn a_reserve_pool_in_use_adds_capacity_and_its_release_is_no_drop() {
    let options = PgBouncerOptions {
        // Idle servers close after a second, the reserve connection with them.
        settings: vec![
            ("reserve_pool_timeout".into(), "0.3".into()),
            ("server_idle_timeout".into(), "1".into()),
        ],
        ..Default::default()
    };
    let (_pg, pgb) = bouncer(vec![appdb(2).reserve_pool(1)], options).await;
    let hook = Receiver::start().await;
    let pw = Poolwatch::start(&config(&pgb, &hook)).await;
    // Two clients get the pool; of the two that wait, one gets the reserve connection once it
    // has waited reserve_pool_timeout.
    let mut clients = pgb.hold_clients(APP, "appdb", 4);
    clients.wait_for(3, 1, WAIT).await;
    let (_, samples) = wait_scrape(&pw, |s| {
        sample(s, "poolwatch_pool_in_use", &POOL) == Some(3.0)
            && sample(s, "poolwatch_pool_waiting", &POOL) == Some(1.0)
    })
    .await;
    assert_eq!(
        sample(&samples, "poolwatch_pool_capacity", &POOL),
        Some(3.0)
    );

    // Released, the servers idle out: capacity back to the pool size, which is where it was
    // configured, so no capacity drop is flagged.
    clients.release(4);
    expect_metric(&pw, "poolwatch_pool_capacity", &POOL, 2.0).await;
    expect_pages(&hook, "PoolClientsWaiting", 2).await;
    assert!(pages(&hook, "PoolCapacityDropped").is_empty());
}
