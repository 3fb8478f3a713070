//! Staying sighted when the server is full: refused with SQLSTATE 53300, poolwatch reports the
//! target *saturated* (not down); connected before the server filled, it keeps seeing through
//! its one long-lived session.

use crate::common::{poll_until, process_exited, Poolwatch};
use crate::scene::{
    api_alert, api_alerts, describe, matches, metric, server_pool, wait_metric, Scene, APP,
    MONITOR, RESERVED_REFUSAL, WAIT,
};

/// TargetDown as fast as the pool rules: a 53300 misread as "down" would page within a second.
const FAST_TARGET_DOWN: &str = r#"
[[rules]]
name = "TargetDown"
for = "300ms"
"#;

/// Waits until poolwatch has counted at least `n` failed attempts of `class`.
async fn wait_errors(pw: &Poolwatch, target: &str, class: &str, n: f64) {
    let labels = [("target", target), ("class", class)];
    if let Err(e) = pw
        .wait_for_metric("poolwatch_poll_errors_total", &labels, |v| v >= n, WAIT)
        .await
    {
        panic!("{e}\n{}", pw.logs());
    }
}

/// Waits until poolwatch has kept polling `target` successfully for another half second.
async fn wait_successful_polls(pw: &Poolwatch, target: &str) {
    let name = "poolwatch_target_last_success_timestamp_seconds";
    let labels = [("target", target)];
    let before = metric(pw, name, &labels).await.expect("a successful poll");
    if let Err(e) = pw
        .wait_for_metric(name, &labels, |v| v >= before + 0.5, WAIT)
        .await
    {
        panic!("polling stopped: {e}\n{}", pw.logs());
    }
}

/// Asserts that poolwatch reports the server pool full, `slots`/`slots` (utilization 1.0), and
/// that the server agrees: the next application connection is refused with 53300.
async fn assert_server_full(scene: &Scene, pw: &Poolwatch, slots: f64) {
    for (name, want) in [
        ("poolwatch_pool_in_use", slots),
        ("poolwatch_pool_capacity", slots),
        ("poolwatch_pool_utilization_ratio", 1.0),
    ] {
        assert_eq!(
            metric(pw, name, &server_pool(scene.target)).await,
            Some(want),
            "{name}"
        );
    }
    scene.assert_refused(APP).await;
}

/// Client backends other than the harness's own query session and poolwatch's own session:
/// the load poolwatch must report.
async fn client_backends(scene: &Scene) -> i64 {
    scene
        .pg
        .query(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
             AND application_name NOT IN ('poolwatch-test-harness', 'poolwatch')",
        )
        .await[0]
        .get(0)
}

/// The server is full before poolwatch starts, so its monitoring role is refused with 53300:
/// saturated and too_many_connections in the metrics, a TargetSaturated page (never
/// TargetDown); one freed slot later it is up, and TargetSaturated resolves. `max_connections`
/// 13 with 3 reserved for superusers: 10 ordinary slots, all taken by the application.
#[tokio::test]
async fn started_on_a_full_server_reports_saturated_not_down_then_recovers() {
    let scene = Scene::start("full-db", 13, None).await;
    let t = scene.target;
    let mut held = scene.hold(10, "batch").await;
    let refusal = scene.assert_refused(MONITOR).await;
    assert!(matches(RESERVED_REFUSAL, &refusal), "{refusal}");

    let pw = scene.poolwatch(FAST_TARGET_DOWN).await;
    let state = |s: &'static str| [("target", t), ("state", s)];
    wait_metric(&pw, "poolwatch_target_state", &state("saturated"), 1.0).await;
    let saturated = scene
        .wait_delivered("TargetSaturated firing", |d| {
            d.is_target("TargetSaturated", "firing")
        })
        .await;
    // Several refused attempts later (enough for TargetDown's 300ms), still saturated, not down.
    wait_errors(&pw, t, "too_many_connections", 5.0).await;
    for (s, want) in [
        ("saturated", 1.0),
        ("down", 0.0),
        ("up", 0.0),
        ("unknown", 0.0),
    ] {
        assert_eq!(
            metric(&pw, "poolwatch_target_state", &state(s)).await,
            Some(want),
            "{s}"
        );
    }
    let error = |class: &'static str| {
        let pw = &pw;
        async move {
            metric(
                pw,
                "poolwatch_target_error",
                &[("target", t), ("class", class)],
            )
            .await
        }
    };
    assert_eq!(error("too_many_connections").await, Some(1.0));
    assert_eq!(error("network").await, None);
    assert_eq!(
        metric(&pw, "poolwatch_target_up", &[("target", t)]).await,
        Some(0.0)
    );
    assert_eq!(saturated.labels["severity"], "critical");
    assert_eq!(saturated.labels["target"], t);
    assert_eq!(
        saturated.summary,
        "full-db refuses new connections because it is full"
    );
    let description = format!(
        r"FATAL {RESERVED_REFUSAL} \(SQLSTATE 53300\)\. poolwatch has not seen its pools yet"
    );
    assert!(
        matches(&description, &saturated.description),
        "{}",
        saturated.description
    );
    let so_far = scene.delivered();
    assert_eq!(so_far.len(), 1, "{}", describe(&so_far));
    assert_eq!(scene.poolwatch_sessions().await, 0);

    // One slot frees up: poolwatch takes it, the server is up and full again: 9 application
    // connections on the 9 slots poolwatch's own leaves, 100%; the next one is refused.
    held.close(1).await;
    wait_metric(&pw, "poolwatch_target_up", &[("target", t)], 1.0).await;
    wait_metric(&pw, "poolwatch_pool_in_use", &server_pool(t), 9.0).await;
    assert_server_full(&scene, &pw, 9.0).await;
    let resolved = scene
        .wait_delivered("TargetSaturated resolved", |d| {
            d.is_target("TargetSaturated", "resolved")
        })
        .await;
    assert_eq!(resolved.fingerprint, saturated.fingerprint);
    assert_eq!(resolved.starts_at, saturated.starts_at);
    assert_eq!(error("too_many_connections").await, None);
    assert_eq!(scene.poolwatch_sessions().await, 1);
    let all = scene.delivered();
    assert!(
        !all.iter().any(|d| d.alertname() == "TargetDown"),
        "{}",
        describe(&all)
    );
}

/// Connected before the server fills, poolwatch keeps polling through saturation on its one
/// session: up, in_use = capacity = 10 (matching pg_stat_activity), PoolNearFull pages, and a
/// new monitoring connection would have been refused. `max_connections` 14 with 3 reserved
/// for superusers: 11 ordinary slots, one of them poolwatch's own, 10 for the application.
#[tokio::test]
async fn connected_before_the_server_filled_keeps_reporting_through_saturation() {
    let scene = Scene::start("busy-db", 14, None).await;
    let t = scene.target;
    let pw = scene.poolwatch(FAST_TARGET_DOWN).await;
    wait_metric(&pw, "poolwatch_target_up", &[("target", t)], 1.0).await;
    wait_metric(&pw, "poolwatch_pool_in_use", &server_pool(t), 0.0).await;
    assert_eq!(
        metric(&pw, "poolwatch_pool_capacity", &server_pool(t)).await,
        Some(10.0)
    );
    assert_eq!(scene.poolwatch_sessions().await, 1);

    // The harness's superuser sessions (counting poolwatch sessions in pg_stat_activity) are
    // client backends too: they run before each step, never while an alert text is rendered.
    let mut holds = Vec::new();
    let mut total = 0;
    for step in [3, 3, 4] {
        assert_eq!(scene.poolwatch_sessions().await, 1, "at {total} in use");
        holds.push(scene.hold(step, "web").await);
        total += step;
        wait_metric(&pw, "poolwatch_pool_in_use", &server_pool(t), total as f64).await;
        assert_eq!(
            metric(&pw, "poolwatch_target_up", &[("target", t)]).await,
            Some(1.0)
        );
    }
    let near_full = scene
        .wait_delivered("PoolNearFull firing", |d| {
            d.is("PoolNearFull", "firing", "server", "server")
        })
        .await;
    assert_eq!(
        near_full.summary,
        "busy-db: 10/10 usable connections in use (100%)"
    );
    assert_eq!(
        near_full.description,
        "max_connections 14, 3 reserved for superusers, 1 held by poolwatch; app=web holds 10; \
         role=app 10; 0 idle in transaction"
    );
    // Full: neither the application nor a new monitoring session gets in, and the server
    // counts the same 10 application backends as poolwatch, besides poolwatch's own. (The
    // metrics are read before the harness's superuser sessions, which are client backends too.)
    assert_server_full(&scene, &pw, 10.0).await;
    scene.assert_refused(MONITOR).await;
    assert_eq!(client_backends(&scene).await, 10);
    assert_eq!(scene.poolwatch_sessions().await, 1);
    assert_eq!(
        metric(
            &pw,
            "poolwatch_target_state",
            &[("target", t), ("state", "up")]
        )
        .await,
        Some(1.0)
    );
    assert_eq!(
        metric(&pw, "poolwatch_connects_total", &[("target", t)]).await,
        Some(1.0),
        "never reconnected"
    );

    // Still polling successfully while full, on the same session.
    wait_successful_polls(&pw, t).await;
    assert_eq!(
        metric(&pw, "poolwatch_pool_in_use", &server_pool(t)).await,
        Some(10.0)
    );

    for hold in holds {
        hold.close_all().await;
    }
    let resolved = scene
        .wait_delivered("PoolNearFull resolved", |d| {
            d.status == "resolved" && d.fingerprint == near_full.fingerprint
        })
        .await;
    assert_eq!(resolved.labels, near_full.labels);
    assert_eq!(scene.poolwatch_sessions().await, 1);
    let all = scene.delivered();
    assert!(
        !all.iter()
            .any(|d| ["TargetSaturated", "TargetDown"].contains(&d.alertname())),
        "{}",
        describe(&all)
    );
}

/// Full server, poolwatch connected and PoolNearFull firing; then poolwatch loses its session
/// and an application takes the slot. It must report saturated (TargetSaturated), keep the pool
/// alert firing rather than resolve it (it cannot see the pool), and once back in, neither
/// resolve nor re-announce PoolNearFull for the pool that stayed full. `max_connections` 14
/// with 3 reserved for superusers: 10 usable slots once poolwatch holds its own.
#[tokio::test]
async fn locked_out_after_losing_its_session_reports_saturated_and_keeps_pool_alerts() {
    let scene = Scene::start("busy-db", 14, None).await;
    let t = scene.target;
    // The application ends poolwatch's session itself (see below).
    scene
        .pg
        .exec(&format!("GRANT pg_signal_backend TO {APP}"))
        .await;
    let pw = scene.poolwatch(FAST_TARGET_DOWN).await;
    wait_metric(&pw, "poolwatch_pool_in_use", &server_pool(t), 0.0).await;
    let mut web = vec![scene.hold(10, "web").await];
    let near_full = scene
        .wait_delivered("PoolNearFull firing", |d| {
            d.is("PoolNearFull", "firing", "server", "server")
        })
        .await;

    // End poolwatch's session (waiting until its backend is gone) and take its slot before it
    // reconnects; if it wins the race, try again. The session is ended from one of the web
    // connections: a harness superuser session would be a client backend of its own, and a
    // poll that caught it would make the last pool poolwatch saw 11/10 rather than 10/10.
    let mut locked_out = false;
    for _ in 0..10 {
        // (pg_terminate_backend's own timeout argument is PostgreSQL 14+: wait for the process.)
        let rows = web[0]
            .client(0)
            .query(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'poolwatch'",
                &[],
            )
            .await
            .expect("terminating poolwatch's session");
        assert!(rows.iter().all(|r| r.get::<_, bool>(1)), "terminate failed");
        for row in &rows {
            let pid: i32 = row.get(0);
            let gone = poll_until(WAIT, || async move { process_exited(pid).then_some(()) });
            assert!(
                gone.await.is_some(),
                "poolwatch's backend {pid} still running"
            );
        }
        match scene.pg.hold_connections(APP, 1, "web").await {
            Ok(hold) => {
                web.push(hold);
                locked_out = true;
                break;
            }
            Err(_) => continue,
        }
    }
    assert!(locked_out, "poolwatch always reconnected first");
    let saturated = scene
        .wait_delivered("TargetSaturated firing", |d| {
            d.is_target("TargetSaturated", "firing")
        })
        .await;
    wait_errors(&pw, t, "too_many_connections", 3.0).await;
    assert_eq!(
        metric(
            &pw,
            "poolwatch_target_state",
            &[("target", t), ("state", "saturated")]
        )
        .await,
        Some(1.0)
    );
    // The pool alert is frozen, not resolved: poolwatch cannot see the pool, which is full.
    let alerts = api_alerts(&pw).await;
    assert_eq!(
        api_alert(&alerts, &near_full.fingerprint)["state"],
        "firing"
    );
    // What it last saw: the 10 web connections filling the 10 usable slots.
    let description = format!(
        r"FATAL {RESERVED_REFUSAL} \(SQLSTATE 53300\)\. Last seen: 10/10 usable connections in use {}; {}",
        r"\(max_connections 14, 3 reserved for superusers, 1 held by poolwatch\)",
        "app=web holds 10; role=app 10; 0 idle in transaction",
    );
    assert!(
        matches(&description, &saturated.description),
        "{}",
        saturated.description
    );

    // A slot frees up: poolwatch is back, the pool is still full (10 + poolwatch).
    let last = web.pop().expect("the connection that took the slot");
    last.close_all().await;
    let resolved = scene
        .wait_delivered("TargetSaturated resolved", |d| {
            d.is_target("TargetSaturated", "resolved")
        })
        .await;
    assert_eq!(resolved.fingerprint, saturated.fingerprint);
    wait_metric(&pw, "poolwatch_pool_in_use", &server_pool(t), 10.0).await;
    wait_successful_polls(&pw, t).await;
    assert_server_full(&scene, &pw, 10.0).await;
    let all = scene.delivered();
    let near_full_notices: Vec<_> = all
        .iter()
        .filter(|d| d.fingerprint == near_full.fingerprint)
        .collect();
    assert_eq!(near_full_notices.len(), 1, "{}", describe(&all));
    assert!(
        !all.iter().any(|d| d.alertname() == "TargetDown"),
        "{}",
        describe(&all)
    );
    assert_eq!(scene.poolwatch_sessions().await, 1);
    drop(web);
}
