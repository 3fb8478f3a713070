//! Incident 1: a pool of 10 connections exhausted at peak. poolwatch must warn on the way up,
//! page when the pool is full with a text that names the numbers and the holders, and announce
//! the recovery for the same alerts.

use crate::common::promtool_check_metrics;
use crate::scene::{
    api_alert, api_alerts, describe, metric, server_pool, wait_metric, Delivered, Scene, APP,
};

/// The summary and description of a notice.
fn server_text(d: &Delivered) -> (String, String) {
    (d.summary.clone(), d.description.clone())
}

/// What a server-pool alert of `images-db` (10 usable slots once poolwatch holds its own) says
/// with `app` application connections of `image-compressor`. poolwatch's own session is not
/// load: it is in neither the count nor the holders, only in the capacity note.
fn expected_server_text(app: u64) -> (String, String) {
    (
        format!(
            "images-db: {app}/10 usable connections in use ({}%)",
            app * 10
        ),
        format!(
            "max_connections 14, 3 reserved for superusers, 1 held by poolwatch; \
             app=image-compressor holds {app}; role=app {app}; 0 idle in transaction"
        ),
    )
}

/// The server pool: `max_connections` 14 with 3 reserved for superusers leaves 11 slots for
/// ordinary roles; poolwatch's own session holds one, so 10 are usable by the application.
#[tokio::test]
async fn server_exhaustion_warns_then_pages_with_holders_then_resolves() {
    let scene = Scene::start("images-db", 14, None).await;
    let t = scene.target;
    let pw = scene.poolwatch("").await;
    wait_metric(&pw, "poolwatch_target_up", &[("target", t)], 1.0).await;
    // Its own session is not load, but the slot it holds is not usable: 0 of 10.
    wait_metric(&pw, "poolwatch_pool_in_use", &server_pool(t), 0.0).await;
    assert_eq!(
        metric(&pw, "poolwatch_pool_capacity", &server_pool(t)).await,
        Some(10.0)
    );
    assert_eq!(scene.poolwatch_sessions().await, 1);

    // The ramp: 8 application connections make 8 of 10, the warning threshold (80%).
    let first = scene.hold(8, "image-compressor").await;
    let warning = scene
        .wait_delivered("PoolUtilizationHigh firing", |d| {
            d.is("PoolUtilizationHigh", "firing", "server", "server")
        })
        .await;
    assert_eq!(warning.labels["severity"], "warning");
    assert_eq!(warning.labels["target"], t);
    assert_eq!(server_text(&warning), expected_server_text(8));
    assert!(
        !scene
            .delivered()
            .iter()
            .any(|d| d.alertname() == "PoolNearFull"),
        "critical before the pool was near full:\n{}",
        describe(&scene.delivered())
    );

    // Peak: 2 more fill the server (10 + poolwatch = the 11 ordinary slots); the next
    // application connection is refused.
    let second = scene.hold(2, "image-compressor").await;
    let refusal = scene.assert_refused(APP).await;
    assert!(refusal.contains("reserved"), "{refusal}");
    // No free slot: PoolExhausted pages at once, PoolNearFull after its `for`.
    let exhausted = scene
        .wait_delivered("PoolExhausted firing", |d| {
            d.is("PoolExhausted", "firing", "server", "server")
        })
        .await;
    assert_eq!(exhausted.labels["severity"], "critical");
    assert_eq!(server_text(&exhausted), expected_server_text(10));
    let critical = scene
        .wait_delivered("PoolNearFull firing", |d| {
            d.is("PoolNearFull", "firing", "server", "server")
        })
        .await;
    assert_eq!(critical.labels["severity"], "critical");
    assert_eq!(server_text(&critical), expected_server_text(10));
    assert_ne!(critical.fingerprint, warning.fingerprint);
    let order: Vec<String> = scene
        .delivered()
        .iter()
        .map(|d| format!("{} {}", d.alertname(), d.status))
        .collect();
    assert_eq!(
        order,
        [
            "PoolUtilizationHigh firing",
            "PoolExhausted firing",
            "PoolNearFull firing"
        ],
        "warning first, then the full pool at once, then near-full once its `for` passed"
    );

    // While firing: the alerts API and the metrics agree with the webhooks.
    let alerts = api_alerts(&pw).await;
    assert_eq!(alerts.len(), 3, "{alerts:#?}");
    let near_full = api_alert(&alerts, &critical.fingerprint);
    assert_eq!(near_full["state"], "firing");
    assert_eq!(near_full["severity"], "critical");
    assert_eq!(near_full["labels"]["alertname"], "PoolNearFull");
    assert_eq!(near_full["labels"]["kind"], "server");
    assert_eq!(near_full["value"], "1.0000000000e+00");
    assert_eq!(near_full["annotations"]["summary"], critical.summary);
    let high = api_alert(&alerts, &warning.fingerprint);
    assert_eq!(high["state"], "firing");
    assert_eq!(high["labels"]["alertname"], "PoolUtilizationHigh");

    let (_, exposition) = pw.get("/metrics").await;
    promtool_check_metrics(&exposition).unwrap_or_else(|e| panic!("{e}\n{exposition}"));
    let firing = |name: &'static str, severity: &'static str| {
        [
            ("alertname", name),
            ("severity", severity),
            ("target", t),
            ("kind", "server"),
            ("pool", "server"),
            ("state", "firing"),
        ]
    };
    assert_eq!(
        metric(&pw, "poolwatch_alerts", &firing("PoolNearFull", "critical")).await,
        Some(1.0)
    );
    assert_eq!(
        metric(
            &pw,
            "poolwatch_alerts",
            &firing("PoolUtilizationHigh", "warning")
        )
        .await,
        Some(1.0)
    );
    assert_eq!(
        metric(&pw, "poolwatch_pool_in_use", &server_pool(t)).await,
        Some(10.0)
    );
    assert_eq!(
        metric(&pw, "poolwatch_pool_utilization_ratio", &server_pool(t)).await,
        Some(1.0)
    );
    assert_eq!(scene.poolwatch_sessions().await, 1);

    // Recovery: the connections go away, every alert resolves under its fingerprint.
    first.close_all().await;
    second.close_all().await;
    // The text of a resolved notice says it cleared and carries the numbers of the poll that
    // resolved it: below the clear value (90% for PoolExhausted and PoolNearFull, 75% for
    // PoolUtilizationHigh) as connections close.
    let in_use = regex::Regex::new(
        r"^images-db: \w+ cleared after [0-9.hms ]+; (\d+)/10 usable connections in use \(\d+%\) now$",
    )
    .expect("regex");
    for (fired, below) in [(&exhausted, 9), (&critical, 9), (&warning, 8)] {
        let resolved = scene
            .wait_delivered("resolved", |d| {
                d.status == "resolved" && d.fingerprint == fired.fingerprint
            })
            .await;
        assert_eq!(resolved.labels, fired.labels);
        assert_eq!(resolved.starts_at, fired.starts_at);
        assert!(resolved.ends_at.is_some_and(|end| end > fired.starts_at));
        let n: u64 = in_use
            .captures(&resolved.summary)
            .unwrap_or_else(|| panic!("{}", resolved.summary))[1]
            .parse()
            .expect("number");
        assert!(n < below, "{}", resolved.summary);
    }
    wait_metric(&pw, "poolwatch_pool_in_use", &server_pool(t), 0.0).await;
    assert_eq!(
        scene.delivered().len(),
        6,
        "exactly three firing and three resolved notices:\n{}",
        describe(&scene.delivered())
    );
    assert!(api_alerts(&pw).await.is_empty());
    assert_eq!(
        metric(&pw, "poolwatch_alerts", &firing("PoolNearFull", "critical")).await,
        None
    );
}

/// The same incident on a role with `CONNECTION LIMIT 10` on a roomy server: the role's pool
/// pages, the server's does not, and the text shows the sessions idle in transaction.
#[tokio::test]
async fn role_connection_limit_exhaustion_pages_for_the_role_only() {
    let scene = Scene::start("images-db", 30, Some(10)).await;
    let t = scene.target;
    let pw = scene.poolwatch("").await;
    let role_pool = [("target", t), ("kind", "role"), ("pool", APP)];
    wait_metric(&pw, "poolwatch_pool_capacity", &role_pool, 10.0).await;
    wait_metric(&pw, "poolwatch_pool_in_use", &role_pool, 0.0).await;

    let first = scene.hold(8, "django").await;
    for i in 0..2 {
        first
            .client(i)
            .batch_execute("BEGIN; SELECT 1")
            .await
            .expect("BEGIN on a held connection");
    }
    let warning = scene
        .wait_delivered("PoolUtilizationHigh firing for the role", |d| {
            d.is("PoolUtilizationHigh", "firing", "role", APP)
        })
        .await;
    assert_eq!(
        warning.summary,
        "images-db role app: 8/10 usable connections in use (80%)"
    );

    let second = scene.hold(2, "django").await;
    let refusal = scene.assert_refused(APP).await;
    assert_eq!(refusal, "too many connections for role \"app\"");
    let exhausted = scene
        .wait_delivered("PoolExhausted firing for the role", |d| {
            d.is("PoolExhausted", "firing", "role", APP)
        })
        .await;
    assert_eq!(
        exhausted.summary,
        "images-db role app: 10/10 usable connections in use (100%)"
    );
    let critical = scene
        .wait_delivered("PoolNearFull firing for the role", |d| {
            d.is("PoolNearFull", "firing", "role", APP)
        })
        .await;
    assert_eq!(critical.labels["severity"], "critical");
    assert_eq!(
        critical.summary,
        "images-db role app: 10/10 usable connections in use (100%)"
    );
    let pattern = regex::Regex::new(
        r"^role connection limit 10; app=django holds 10 \(2 idle in transaction\); role=app 10; 2 idle in transaction \(oldest [0-9.a-z ]+\)$",
    )
    .expect("regex");
    assert!(
        pattern.is_match(&critical.description),
        "{}",
        critical.description
    );

    // The server pool (10 of 26: 27 ordinary slots, one held by poolwatch) never alerted.
    assert_eq!(
        metric(&pw, "poolwatch_pool_in_use", &server_pool(t)).await,
        Some(10.0)
    );
    assert_eq!(
        metric(&pw, "poolwatch_pool_capacity", &server_pool(t)).await,
        Some(26.0)
    );
    assert_eq!(
        metric(&pw, "poolwatch_pool_idle_in_transaction", &role_pool).await,
        Some(2.0)
    );
    let alerts = api_alerts(&pw).await;
    assert_eq!(alerts.len(), 3, "{alerts:#?}");
    assert!(alerts.iter().all(|a| a["labels"]["kind"] == "role"));
    assert_eq!(scene.poolwatch_sessions().await, 1);

    first.close_all().await;
    second.close_all().await;
    for fired in [&exhausted, &critical, &warning] {
        let resolved = scene
            .wait_delivered("role alert resolved", |d| {
                d.status == "resolved" && d.fingerprint == fired.fingerprint
            })
            .await;
        assert_eq!(resolved.labels, fired.labels);
    }
    let all = scene.delivered();
    assert_eq!(all.len(), 6, "{}", describe(&all));
    assert!(
        all.iter().all(|d| d.labels["kind"] == "role"),
        "{}",
        describe(&all)
    );
    assert!(all.iter().all(|d| d.labels["target"] == t));
}
