//! Persistence across a restart, API views and labels.

use super::*;
use crate::model::{ErrorClass, PoolSnapshot};
use crate::notice::fingerprint;
use crate::rules::config::{PoolMetric, ThresholdConfig};
use crate::rules::fixtures::{failed, labels, pool, role_pool, up};

const FULL_FIRED: &str = "fired PoolNearFull/critical@db:server";
const FULL_RESOLVED: &str = "resolved PoolNearFull/critical@db:server";
const UTIL_FIRED: &str = "fired PoolUtilizationHigh/warning@db:server";
const UTIL_RESOLVED: &str = "resolved PoolUtilizationHigh/warning@db:server";

fn db(secs: u64, in_use: u64) -> TargetReport {
    up("db", t(secs), vec![pool("db", 100, in_use)])
}

/// An engine where PoolNearFull fired at 15s and PoolUtilizationHigh is pending since 0s.
fn firing_engine() -> Engine {
    let mut e = engine();
    assert!(observe(&mut e, 0, &db(0, 96)).is_empty());
    assert_eq!(observe(&mut e, 15, &db(15, 96)), [FULL_FIRED]);
    e
}

/// db with a full server pool and role `app` of capacity `app_cap`.
fn db_with_app(secs: u64, in_use: u64, app_cap: u64) -> TargetReport {
    let pools: Vec<PoolSnapshot> =
        vec![pool("db", 100, in_use), role_pool("db", "app", app_cap, 5)];
    up("db", t(secs), pools)
}

#[test]
fn restart_neither_forgets_nor_repages() {
    let mut e = engine();
    observe(&mut e, 0, &db_with_app(0, 96, 50));
    assert_eq!(observe(&mut e, 15, &db_with_app(15, 96, 50)), [FULL_FIRED]);
    assert_eq!(observe(&mut e, 60, &db_with_app(60, 96, 50)), [UTIL_FIRED]);
    assert_eq!(e.export_state().alert_count(), 2);

    let mut e = restart(&e);
    assert_eq!(states(&e).len(), 2);
    // Still firing: no new Fired. The lowered role limit is compared with the saved history.
    assert_eq!(
        observe(&mut e, 100, &db_with_app(100, 96, 10)),
        ["fired PoolCapacityDropped/warning@db:app"]
    );
    // The engine does not repeat (the dispatcher does); the drop has aged out of its 1h window.
    assert_eq!(
        observe(&mut e, 15 + 4 * 3600, &db_with_app(15 + 4 * 3600, 96, 10)),
        ["resolved PoolCapacityDropped/warning@db:app"]
    );
    // Its resolution is published and survives a restart too.
    let e2 = restart(&e);
    let mut e2 = e2;
    let set = e2.alert_set(t(16 + 4 * 3600));
    assert!(set
        .iter()
        .any(|a| a.state == crate::dispatch::AlertState::Resolved
            && a.labels["alertname"] == "PoolCapacityDropped"
            && a.ends_at == Some(t(15 + 4 * 3600))));
    let resolved = observe(&mut e, 20 + 4 * 3600, &db_with_app(20 + 4 * 3600, 10, 10));
    assert_eq!(resolved, [FULL_RESOLVED, UTIL_RESOLVED]);
}

#[test]
fn restored_alert_that_no_longer_holds_resolves() {
    let e = firing_engine();
    let before = e.alerts();
    let mut e = restart(&e);
    assert_eq!(e.alerts(), before, "views survive the round trip");
    let notices = e.observe(t(30), &db(30, 10), &Labels::new());
    assert_eq!(briefs(&notices), [FULL_RESOLVED]);
    assert_eq!(notices[0].starts_at, t(0));
}

#[test]
fn restored_alert_of_a_removed_rule_resolves() {
    let mut e = Engine::new(rules(&[busy()], false));
    assert_eq!(
        observe(&mut e, 0, &db(0, 50)),
        ["fired Busy/critical@db:server"]
    );
    let mut e = restart(&e);
    let notices = e.observe(t(5), &db(5, 50), &Labels::new());
    assert_eq!(briefs(&notices), ["removed Busy/critical@db:server"]);
    assert!(
        notices[0].annotations["summary"].contains("no longer evaluated"),
        "{:?}",
        notices[0].annotations
    );
}

#[test]
fn import_refuses_another_version() {
    let e = firing_engine();
    let mut json = serde_json::to_value(e.export_state()).unwrap();
    json["version"] = 99.into();
    let st: PersistedState = serde_json::from_value(json).unwrap();
    let mut fresh = engine();
    assert!(!fresh.import_state(st));
    assert!(fresh.alerts().is_empty());
}

#[test]
fn alert_views_in_prometheus_shape() {
    let e = firing_engine();
    let views = e.alerts();
    let json = serde_json::to_value(&views).unwrap();
    let full = &json[0];
    assert_eq!(full["labels"]["alertname"], "PoolNearFull");
    assert_eq!(full["state"], "firing");
    assert_eq!(full["activeAt"], "2023-11-14T22:13:20.000Z");
    assert_eq!(full["value"], "9.6000000000e-01");
    assert_eq!(full["severity"], "critical");
    assert_eq!(
        full["annotations"]["summary"],
        "db: 96/100 usable connections in use (96%)"
    );
    assert!(full.get("keepFiringSince").is_none());
    assert_eq!(full["fingerprint"], fingerprint(&views[0].labels).as_str());
    assert_eq!(json[1]["labels"]["alertname"], "PoolUtilizationHigh");
    assert_eq!(json[1]["state"], "pending");
}

#[test]
fn labels_combine_target_rule_and_reserved() {
    let role_full = RuleConfig {
        name: "RoleFull".into(),
        metric: Some(PoolMetric::Utilization),
        critical: Some(ThresholdConfig {
            value: 1.0,
            clear: None,
            for_: None,
        }),
        matchers: Some(vec!["kind=\"role\"".into(), "env=\"prod\"".into()]),
        labels: Some(labels(&[("team", "dba")])),
        ..RuleConfig::default()
    };
    let saturated = override_of("TargetSaturated", |r| {
        r.labels = Some(labels(&[("page", "yes")]))
    });
    let mut e = Engine::new(rules(&[role_full, saturated], true));
    let report = up(
        "db",
        t(0),
        vec![pool("db", 100, 1), role_pool("db", "app", 10, 10)],
    );
    // Target labels cannot override the reserved ones.
    let prod = labels(&[
        ("env", "prod"),
        ("severity", "bogus"),
        ("pool", "x"),
        ("team", "ops"),
    ]);
    let notices = e.observe(t(0), &report, &prod);
    let role = notices
        .iter()
        .find(|n| n.labels["alertname"] == "RoleFull")
        .unwrap();
    let want = labels(&[
        ("alertname", "RoleFull"),
        ("env", "prod"),
        ("kind", "role"),
        ("pool", "app"),
        ("severity", "critical"),
        ("target", "db"),
        ("team", "dba"),
    ]);
    assert_eq!(role.labels, want, "rule labels win over target labels");
    assert_eq!(role.fingerprint, fingerprint(&want));
    // Matchers see the target's labels.
    let mut other = engine();
    let dev = labels(&[("env", "dev")]);
    assert!(other
        .observe(t(0), &report, &dev)
        .iter()
        .all(|n| n.labels["alertname"] != "RoleFull"));
    // Target-level alerts have no kind or pool.
    let sat = e.observe(
        t(5),
        &failed("db", t(5), ErrorClass::TooManyConnections),
        &prod,
    );
    let want = labels(&[
        ("alertname", "TargetSaturated"),
        ("env", "prod"),
        ("page", "yes"),
        ("severity", "critical"),
        ("target", "db"),
        ("team", "ops"),
    ]);
    assert_eq!(sat[0].labels, want);
}

#[test]
fn a_predicted_exhaustion_is_refitted_every_20s_and_held_in_between() {
    let mut e = engine();
    // +1 connection every 15s (+4/min) from 20 of 100, polled every second.
    let mut events = Vec::new();
    for secs in 0..=425u64 {
        let report = crate::rules::fixtures::up(
            "db",
            t(secs),
            vec![crate::rules::fixtures::pool("db", 100, 20 + secs / 15)],
        );
        for n in e.observe(t(secs), &report, &Labels::new()) {
            if n.labels["alertname"] == "PoolExhaustionPredicted" {
                events.push((secs, n.reason.as_str()));
            }
        }
    }
    // Half the window (300 s) of history is needed; the verdict changes only on a refit, at a
    // 20 s slot boundary, and holds (firing, no resolve) on the polls between.
    assert_eq!(events, [(300, "fired")]);
    assert_eq!(
        states(&e),
        [("PoolExhaustionPredicted@db:server".to_string(), "firing")]
    );
    // At 425 s, between two refits: held as holding, not kept firing by keep_firing_for.
    assert_eq!(e.alerts()[0].keep_firing_since, None);
}

#[test]
fn a_prediction_that_stops_resolves_after_keep_firing_for_even_between_refits() {
    let mut e = engine();
    // +4/min from 20 of 60, polled every second, full (and flat) from 600 s on.
    let mut events = Vec::new();
    for secs in 0..=900u64 {
        let in_use = (20 + secs / 15).min(60);
        let report = crate::rules::fixtures::up(
            "db",
            t(secs),
            vec![crate::rules::fixtures::pool("db", 60, in_use)],
        );
        for n in e.observe(t(secs), &report, &Labels::new()) {
            if n.labels["alertname"] == "PoolExhaustionPredicted" {
                events.push((secs, n.reason.as_str()));
            }
        }
    }
    // Full at 600 s, a refit slot boundary: the verdict turns quiet there, and the polls held
    // in between keep it quiet, so it resolves keep_firing_for (2m) later.
    assert_eq!(events, [(300, "fired"), (720, "resolved")]);
}
