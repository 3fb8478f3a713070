//! Incident 2: a routine deployment reduced a pool's size and nothing alerted until users
//! queued. poolwatch must flag the smaller pool when it happens, not at the next peak.

use crate::scene::{
    api_alert, api_alerts, describe, metric, server_pool, wait_metric, Delivered, Scene, APP, WAIT,
};

/// Alerts that mean "saturated": none may come before the capacity drop is flagged.
fn is_saturation(d: &Delivered) -> bool {
    ["PoolNearFull", "PoolUtilizationHigh", "TargetSaturated"].contains(&d.alertname())
}

/// `ALTER ROLE app CONNECTION LIMIT 10` on a role that had 50, while 3 of its connections are
/// in use: PoolCapacityDropped at once, naming 50 and 10; the saturation alerts only come
/// when the peak arrives, after it.
#[tokio::test]
async fn role_limit_cut_by_a_deployment_is_flagged_before_any_saturation() {
    let scene = Scene::start("files-db", 30, Some(50)).await;
    let t = scene.target;
    let pw = scene.poolwatch("").await;
    let role_pool = [("target", t), ("kind", "role"), ("pool", APP)];
    let before = scene.hold(3, "file-api").await;
    wait_metric(&pw, "poolwatch_pool_capacity", &role_pool, 50.0).await;
    wait_metric(&pw, "poolwatch_pool_in_use", &role_pool, 3.0).await;

    // The deployment.
    scene.pg.exec("ALTER ROLE app CONNECTION LIMIT 10").await;
    let dropped = scene
        .wait_delivered("PoolCapacityDropped for the role", |d| {
            d.is("PoolCapacityDropped", "firing", "role", APP)
        })
        .await;
    assert_eq!(dropped.labels["severity"], "warning");
    assert_eq!(
        dropped.summary,
        "files-db role app: capacity fell from 50 to 10"
    );
    assert_eq!(
        dropped.description,
        "role connection limit 10; 3 in use now (30%). A smaller pool saturates at the next \
         peak: check the latest deployment or configuration change"
    );
    // A later poll shows the new limit, and still nothing but the capacity drop was sent.
    wait_metric(&pw, "poolwatch_pool_capacity", &role_pool, 10.0).await;
    wait_metric(&pw, "poolwatch_pool_utilization_ratio", &role_pool, 0.3).await;
    let so_far = scene.delivered();
    assert_eq!(so_far.len(), 1, "{}", describe(&so_far));
    let alerts = api_alerts(&pw).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let api = api_alert(&alerts, &dropped.fingerprint);
    assert_eq!(api["state"], "firing");
    assert_eq!(api["value"], "1.0000000000e+01");
    // The server pool (3 of 26: 27 ordinary slots, one held by poolwatch) did not change.
    assert_eq!(
        metric(&pw, "poolwatch_pool_capacity", &server_pool(t)).await,
        Some(26.0)
    );

    // The next peak: 7 more fill the smaller pool, and only now does saturation page.
    let peak = scene.hold(7, "file-api").await;
    let refusal = scene.assert_refused(APP).await;
    assert_eq!(refusal, "too many connections for role \"app\"");
    scene
        .wait_delivered("PoolNearFull for the role", |d| {
            d.is("PoolNearFull", "firing", "role", APP)
        })
        .await;
    let all = scene.delivered();
    let first_saturation = all.iter().position(is_saturation).expect("saturation");
    assert_eq!(
        all[0].fingerprint,
        dropped.fingerprint,
        "{}",
        describe(&all)
    );
    assert!(first_saturation > 0, "{}", describe(&all));
    assert!(
        !all.iter().any(|d| d.alertname() == "TargetSaturated"),
        "poolwatch keeps its own connection: {}",
        describe(&all)
    );
    assert_eq!(scene.poolwatch_sessions().await, 1);

    // The rollback restores the limit: the capacity drop resolves under its fingerprint.
    scene.pg.exec("ALTER ROLE app CONNECTION LIMIT 50").await;
    let rolled_back = scene
        .wait_delivered("PoolCapacityDropped resolved", |d| {
            d.status == "resolved" && d.fingerprint == dropped.fingerprint
        })
        .await;
    assert_eq!(rolled_back.labels, dropped.labels);
    assert_eq!(rolled_back.starts_at, dropped.starts_at);
    drop((before, peak));
}

/// `max_connections` lowered from 20 to 12 and the server restarted: poolwatch reconnects and
/// flags the server pool's drop from 16 to 8 usable slots (17 and 9 ordinary slots, one held
/// by poolwatch), comparing with the capacity seen before the restart. The restart itself is
/// too short for TargetDown (default `for` 30s).
#[tokio::test]
async fn server_restarted_with_lower_max_connections_is_flagged_after_reconnect() {
    let scene = Scene::start("files-db", 20, None).await;
    let t = scene.target;
    let pw = scene.poolwatch("").await;
    let held = scene.hold(2, "file-api").await;
    wait_metric(&pw, "poolwatch_pool_capacity", &server_pool(t), 16.0).await;
    wait_metric(&pw, "poolwatch_pool_in_use", &server_pool(t), 2.0).await;
    held.close_all().await;
    wait_metric(&pw, "poolwatch_pool_in_use", &server_pool(t), 0.0).await;

    scene.pg.set_conf("max_connections", 12);
    scene.pg.restart().await;
    let dropped = scene
        .wait_delivered("PoolCapacityDropped for the server", |d| {
            d.is("PoolCapacityDropped", "firing", "server", "server")
        })
        .await;
    assert_eq!(dropped.labels["severity"], "warning");
    assert_eq!(dropped.labels["target"], t);
    // The configured capacity (max_connections minus reserved slots) fell; poolwatch's own slot
    // is not part of it.
    assert_eq!(dropped.summary, "files-db: capacity fell from 17 to 9");
    // In use: nothing (poolwatch's own session is not load), or the harness's readiness probe
    // if the first poll after the restart caught it.
    let text = regex::Regex::new(
        r"^max_connections 12, 3 reserved for superusers, 1 held by poolwatch; (0 in use now \(0%\)|1 in use now \(12%\))\. A smaller pool saturates at the next peak: check the latest deployment or configuration change$",
    )
    .expect("regex");
    assert!(
        text.is_match(&dropped.description),
        "{}",
        dropped.description
    );
    wait_metric(
        &pw,
        "poolwatch_server_max_connections",
        &[("target", t)],
        12.0,
    )
    .await;
    assert_eq!(
        metric(&pw, "poolwatch_target_up", &[("target", t)]).await,
        Some(1.0)
    );
    assert_eq!(
        metric(&pw, "poolwatch_connects_total", &[("target", t)]).await,
        Some(2.0),
        "one connection before the restart, one after"
    );
    let all = scene.delivered();
    assert_eq!(all.len(), 1, "{}", describe(&all));
    assert_eq!(scene.poolwatch_sessions().await, 1);
}

/// poolwatch as a sidecar is redeployed together with the application: it stops (SIGTERM)
/// while the role allows 50, the deployment cuts the limit to 10, and the new poolwatch, reading
/// the same `state_file`, still flags the drop from 50 to 10 on its first polls.
#[tokio::test]
async fn role_limit_cut_while_poolwatch_restarts_is_flagged_from_the_state_file() {
    let scene = Scene::start("files-db", 30, Some(50)).await;
    let t = scene.target;
    let dir = tempfile::tempdir().expect("temp dir");
    let state_file = dir.path().join("state.json");
    let alerting = format!(
        "[alerting]\nstate_file = {:?}\n",
        state_file.display().to_string()
    );
    let role_pool = [("target", t), ("kind", "role"), ("pool", APP)];

    let mut first = scene.poolwatch(&alerting).await;
    wait_metric(&first, "poolwatch_pool_capacity", &role_pool, 50.0).await;
    first.sigterm();
    let status = first.wait_exit(WAIT).await;
    assert!(status.success(), "{status}\n{}", first.logs());
    assert!(state_file.is_file(), "no state file after SIGTERM");

    scene.pg.exec("ALTER ROLE app CONNECTION LIMIT 10").await;
    let _held = scene.hold(2, "file-api").await;
    let second = scene.poolwatch(&alerting).await;
    let dropped = scene
        .wait_delivered("PoolCapacityDropped after the restart", |d| {
            d.is("PoolCapacityDropped", "firing", "role", APP)
        })
        .await;
    assert_eq!(
        dropped.summary,
        "files-db role app: capacity fell from 50 to 10"
    );
    wait_metric(&second, "poolwatch_pool_capacity", &role_pool, 10.0).await;
    let all = scene.delivered();
    assert_eq!(all.len(), 1, "{}", describe(&all));
}

/// The same deployment on a role that had no limit at all: until then it could use the whole
/// server (26 usable slots), so putting `CONNECTION LIMIT 10` on it, while it is in use, is a
/// drop from 26 to 10, flagged at once.
#[tokio::test]
async fn a_first_limit_on_a_role_in_use_is_flagged_as_a_drop_from_the_server_capacity() {
    let scene = Scene::start("files-db", 30, None).await;
    let t = scene.target;
    let pw = scene.poolwatch("").await;
    let _held = scene.hold(3, "file-api").await;
    wait_metric(&pw, "poolwatch_pool_in_use", &server_pool(t), 3.0).await;
    assert_eq!(
        metric(&pw, "poolwatch_pool_capacity", &server_pool(t)).await,
        Some(26.0)
    );

    scene.pg.exec("ALTER ROLE app CONNECTION LIMIT 10").await;
    let dropped = scene
        .wait_delivered("PoolCapacityDropped for the newly limited role", |d| {
            d.is("PoolCapacityDropped", "firing", "role", APP)
        })
        .await;
    assert_eq!(
        dropped.summary,
        "files-db role app: capacity fell from 27 to 10"
    );
    let so_far = scene.delivered();
    assert_eq!(so_far.len(), 1, "{}", describe(&so_far));
}
