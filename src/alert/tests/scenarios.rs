//! Table-driven scenarios: each row is one poll (time, report) and the notices it must produce.

use super::*;
use crate::config::values::HumanDuration;
use crate::model::{ErrorClass, PoolSnapshot};
use crate::rules::config::{PoolMetric, ThresholdConfig};
use crate::rules::fixtures::{failed, incident_one, pool, role_pool, up};

/// One server pool of target `db` with capacity 100 and `in_use` taken.
fn db(secs: u64, in_use: u64) -> TargetReport {
    up("db", t(secs), vec![pool("db", 100, in_use)])
}

fn down(secs: u64, class: ErrorClass) -> TargetReport {
    failed("db", t(secs), class)
}

fn with_pools(secs: u64, pools: Vec<PoolSnapshot>) -> TargetReport {
    up("db", t(secs), pools)
}

const UTIL_FIRED: &str = "fired PoolUtilizationHigh/warning@db:server";
const UTIL_RESOLVED: &str = "resolved PoolUtilizationHigh/warning@db:server";
const FULL_FIRED: &str = "fired PoolNearFull/critical@db:server";
const FULL_RESOLVED: &str = "resolved PoolNearFull/critical@db:server";
const EXHAUSTED_FIRED: &str = "fired PoolExhausted/critical@db:server";
const EXHAUSTED_RESOLVED: &str = "resolved PoolExhausted/critical@db:server";

#[test]
fn warning_then_critical_as_utilization_ramps() {
    let mut e = engine();
    run(
        &mut e,
        vec![
            (0, db(0, 50), vec![]),
            (5, db(5, 80), vec![]),
            (60, db(60, 85), vec![]),
            (65, db(65, 90), vec![UTIL_FIRED]),
            (70, db(70, 95), vec![]),
            (84, db(84, 96), vec![]),
            (85, db(85, 97), vec![FULL_FIRED]),
            // Hysteresis: PoolNearFull clears below 0.90, PoolUtilizationHigh below 0.75.
            (90, db(90, 92), vec![]),
            (95, db(95, 89), vec![FULL_RESOLVED]),
            (100, db(100, 76), vec![]),
            (105, db(105, 74), vec![UTIL_RESOLVED]),
        ],
    );
    assert!(e.alerts().is_empty());
}

#[test]
fn a_full_pool_pages_at_once_and_near_full_stays_patient() {
    let mut e = engine();
    run(
        &mut e,
        vec![
            (0, db(0, 50), vec![]),
            // No free slot: the first poll that sees it pages.
            (1, db(1, 100), vec![EXHAUSTED_FIRED]),
            // Flickering between full and a free slot or two is one alert: it releases below
            // 0.90 only. PoolNearFull is pending, then cancelled below 0.95.
            (2, db(2, 99), vec![]),
            (3, db(3, 100), vec![]),
            (10, db(10, 94), vec![]),
            (11, db(11, 89), vec![EXHAUSTED_RESOLVED]),
            // A burst shorter than 15 s: one page, PoolNearFull never fires.
            (20, db(20, 100), vec![EXHAUSTED_FIRED]),
            (34, db(34, 100), vec![]),
            (35, db(35, 80), vec![EXHAUSTED_RESOLVED]),
            // A pool that stays full: PoolNearFull says so after 15 s, and both alerts of the
            // incident resolve at the same poll.
            (40, db(40, 100), vec![EXHAUSTED_FIRED]),
            (55, db(55, 100), vec![FULL_FIRED]),
            (60, db(60, 89), vec![EXHAUSTED_RESOLVED, FULL_RESOLVED]),
        ],
    );
    assert!(
        e.alerts()
            .iter()
            .all(|a| a.labels["alertname"] == "PoolUtilizationHigh"),
        "{:?}",
        states(&e)
    );
}

#[test]
fn exhausted_means_no_free_slot_for_an_ordinary_client() {
    // (capacity, in_use, fires)
    let cases = [
        (10, 10, true),
        (10, 9, false),
        // Superusers in their reserved slots: over capacity, still no slot for ordinary roles.
        (10, 12, true),
        // `CONNECTION LIMIT 0` locks a role out; nobody connected is not an incident.
        (0, 0, false),
        // A session that outlived a limit lowered to 0.
        (0, 1, true),
        (1, 1, true),
    ];
    for (capacity, in_use, fires) in cases {
        let mut e = engine();
        let report = with_pools(0, vec![role_pool("db", "app", capacity, in_use)]);
        let got = observe(&mut e, 0, &report);
        let fired = got.contains(&"fired PoolExhausted/critical@db:app".to_string());
        assert_eq!(fired, fires, "{in_use}/{capacity}: {got:?}");
    }
}

#[test]
fn hysteresis_holds_firing_alerts_only_and_cancel_is_silent() {
    let mut e = engine();
    run(
        &mut e,
        vec![
            (0, db(0, 80), vec![]),
            // Below the threshold while pending: `for` requires the threshold itself, so the
            // pending alert is cancelled, silently, even though 77 is above `clear`.
            (10, db(10, 77), vec![]),
            (20, db(20, 74), vec![]),
            (30, db(30, 80), vec![]),
            (89, db(89, 80), vec![]),
            (90, db(90, 80), vec![UTIL_FIRED]),
        ],
    );
    let a = &e.alerts()[0];
    assert_eq!(
        a.active_at,
        t(30),
        "the cancelled pending period does not count"
    );
    run(
        &mut e,
        vec![
            // Firing: between `clear` (75) and the threshold it keeps firing...
            (100, db(100, 77), vec![]),
            (110, db(110, 75), vec![]),
            // ...and resolves only below `clear`.
            (120, db(120, 74), vec![UTIL_RESOLVED]),
        ],
    );
}

#[test]
fn a_short_spike_then_values_between_clear_and_threshold_never_fire() {
    let mut e = engine();
    let mut steps = vec![(0, db(0, 80), vec![])];
    for s in (10..=200).step_by(10) {
        steps.push((s, db(s, 77), vec![]));
    }
    run(&mut e, steps);
    assert!(e.alerts().is_empty(), "{:?}", e.alerts());
}

#[test]
fn keep_firing_for_bridges_dips() {
    let busy = RuleConfig {
        keep_firing_for: Some(HumanDuration::secs(30)),
        ..busy()
    };
    let mut e = Engine::new(rules(&[busy], false));
    run(
        &mut e,
        vec![
            (0, db(0, 10), vec!["fired Busy/critical@db:server"]),
            (10, db(10, 5), vec![]),
            (39, db(39, 5), vec![]),
            (40, db(40, 12), vec![]),
            (50, db(50, 5), vec![]),
            (79, db(79, 5), vec![]),
            (80, db(80, 5), vec!["resolved Busy/critical@db:server"]),
        ],
    );
}

#[test]
fn saturation_fires_at_once_and_freezes_pool_alerts() {
    let mut e = engine();
    let full = || with_pools(0, vec![pool("db", 97, 97)]);
    run(
        &mut e,
        vec![
            (0, full(), vec![EXHAUSTED_FIRED]),
            (15, full(), vec![FULL_FIRED]),
            (
                20,
                down(20, ErrorClass::TooManyConnections),
                vec!["fired TargetSaturated/critical@db"],
            ),
            // Frozen: PoolUtilizationHigh stays pending although its `for` has passed, and
            // PoolNearFull stays firing although no pool is seen.
            (61, down(61, ErrorClass::TooManyConnections), vec![]),
        ],
    );
    assert_eq!(
        states(&e),
        [
            ("PoolExhausted@db:server".to_string(), "firing"),
            ("PoolNearFull@db:server".to_string(), "firing"),
            ("PoolUtilizationHigh@db:server".to_string(), "pending"),
            ("TargetSaturated@db".to_string(), "firing"),
        ]
    );
    let got = observe(&mut e, 65, &db(65, 50));
    assert_eq!(
        got,
        [
            EXHAUSTED_RESOLVED,
            FULL_RESOLVED,
            "resolved TargetSaturated/critical@db"
        ]
    );
    assert!(e.alerts().is_empty());
}

#[test]
fn target_down_after_30s_then_saturated() {
    let mut e = engine();
    run(
        &mut e,
        vec![
            (0, db(0, 10), vec![]),
            (5, down(5, ErrorClass::Network), vec![]),
            (34, down(34, ErrorClass::Timeout), vec![]),
            (
                35,
                down(35, ErrorClass::Network),
                vec!["fired TargetDown/critical@db"],
            ),
            (
                40,
                down(40, ErrorClass::TooManyConnections),
                vec![
                    "fired TargetSaturated/critical@db",
                    "resolved TargetDown/critical@db",
                ],
            ),
            (45, db(45, 10), vec!["resolved TargetSaturated/critical@db"]),
            // A short outage stays pending and is forgotten silently.
            (50, down(50, ErrorClass::Auth), vec![]),
            (55, db(55, 10), vec![]),
        ],
    );
}

#[test]
fn capacity_drop_fires_at_once_and_resolves_when_restored_or_aged_out() {
    const FIRED: &str = "fired PoolCapacityDropped/warning@db:app";
    const RESOLVED: &str = "resolved PoolCapacityDropped/warning@db:app";
    // Per scenario: (secs, capacity of role `app`, expected notices).
    type Rows = Vec<(u64, u64, Vec<&'static str>)>;
    let scenarios: [(&str, Rows); 2] = [
        (
            "restored",
            vec![
                (0, 50, vec![]),
                (10, 10, vec![FIRED]),
                (20, 10, vec![]),
                (30, 50, vec![RESOLVED]),
                // A rise is no drop.
                (40, 80, vec![]),
            ],
        ),
        (
            "aged out of the 1h window",
            vec![
                (0, 50, vec![]),
                (10, 10, vec![FIRED]),
                (3609, 10, vec![]),
                (3610, 10, vec![RESOLVED]),
                (3620, 10, vec![]),
            ],
        ),
    ];
    for (name, rows) in scenarios {
        let mut e = engine();
        for (secs, cap, want) in rows {
            let report = with_pools(secs, vec![role_pool("db", "app", cap, 5)]);
            assert_eq!(observe(&mut e, secs, &report), want, "{name} at {secs}s");
        }
    }
}

#[test]
fn a_limit_put_on_a_role_in_use_is_a_capacity_drop_but_a_new_role_is_not() {
    let server = || pool("db", 97, 20);
    let mut e = engine();
    run(
        &mut e,
        vec![
            (0, with_pools(0, vec![server()]), vec![]),
            // `app` (in use, unlimited until now) gets CONNECTION LIMIT 10.
            (
                10,
                with_pools(10, vec![server(), role_pool("db", "app", 10, 8)]),
                vec!["fired PoolCapacityDropped/warning@db:app"],
            ),
            // A new role created with a limit and nothing in use yet: no drop.
            (
                20,
                with_pools(
                    20,
                    vec![
                        server(),
                        role_pool("db", "app", 10, 8),
                        role_pool("db", "fresh", 5, 0),
                    ],
                ),
                vec![],
            ),
        ],
    );
    let dropped = e
        .alerts()
        .into_iter()
        .find(|a| a.labels["alertname"] == "PoolCapacityDropped")
        .expect("firing");
    assert_eq!(
        dropped.annotations["summary"],
        "db role app: capacity fell from 97 to 10"
    );
    // On the very first poll nothing is known of "before": limits seen then are no drop.
    let mut fresh = engine();
    let first = with_pools(0, vec![server(), role_pool("db", "app", 10, 8)]);
    assert!(observe(&mut fresh, 0, &first).is_empty());
}

#[test]
fn capacity_drop_shows_after_a_restart() {
    // Lowering max_connections needs a restart: the target is down in between.
    let mut e = engine();
    let server = |secs, cap| with_pools(secs, vec![pool("db", cap, 5)]);
    run(
        &mut e,
        vec![
            (0, server(0, 97), vec![]),
            (10, down(10, ErrorClass::Network), vec![]),
            (20, down(20, ErrorClass::CannotConnectNow), vec![]),
            (
                30,
                server(30, 47),
                vec!["fired PoolCapacityDropped/warning@db:server"],
            ),
        ],
    );
    let a = e.alerts();
    assert_eq!(
        a[0].annotations["summary"],
        "db: capacity fell from 97 to 47"
    );
}

#[test]
fn a_vanished_pool_resolves() {
    let mut e = engine();
    let batch = role_pool("db", "batch", 10, 10);
    run(
        &mut e,
        vec![
            (
                0,
                with_pools(0, vec![pool("db", 100, 5), batch.clone()]),
                vec!["fired PoolExhausted/critical@db:batch"],
            ),
            (
                15,
                with_pools(15, vec![pool("db", 100, 5), batch]),
                vec!["fired PoolNearFull/critical@db:batch"],
            ),
            (
                20,
                with_pools(20, vec![pool("db", 100, 5)]),
                vec![
                    "removed PoolExhausted/critical@db:batch",
                    "removed PoolNearFull/critical@db:batch",
                ],
            ),
        ],
    );
    assert!(e.alerts().is_empty(), "{:?}", states(&e));
}

#[test]
fn a_vanished_pool_is_retired_without_claiming_it_recovered() {
    let mut e = engine();
    let batch = role_pool("db", "batch", 10, 10);
    observe(&mut e, 0, &with_pools(0, vec![pool("db", 100, 5), batch]));
    let notices = e.observe(
        t(5),
        &with_pools(5, vec![pool("db", 100, 5)]),
        &Labels::new(),
    );
    assert_eq!(notices.len(), 1, "{notices:?}");
    let text = &notices[0].annotations;
    assert_eq!(
        text["summary"],
        "db role batch: PoolExhausted is no longer evaluated: db no longer reports this pool"
    );
    assert_eq!(
        text["description"],
        "This notice does not mean that the condition cleared: poolwatch stopped evaluating \
         it. Last known: db role batch: 10/10 usable connections in use (100%)"
    );
}

#[test]
fn waiting_clients_are_critical_within_one_poll() {
    let mut e = engine();
    // Not full (a pool still opening connections), so PoolClientsWaiting alone speaks.
    let mut p = pool("db", 20, 18);
    p.waiting = 3;
    let got = observe(&mut e, 0, &with_pools(0, vec![p]));
    assert_eq!(got, ["fired PoolClientsWaiting/critical@db:server"]);
    let got = observe(&mut e, 5, &db(5, 10));
    assert_eq!(got, ["resolved PoolClientsWaiting/critical@db:server"]);
}

#[test]
fn the_published_set_has_pending_firing_and_recently_resolved_alerts() {
    use crate::dispatch::AlertState::{Firing, Pending, Resolved};
    let mut e = engine();
    let set_of = |e: &mut Engine, secs| -> Vec<(String, crate::dispatch::AlertState)> {
        e.alert_set(t(secs))
            .into_iter()
            .map(|a| (a.labels["alertname"].clone(), a.state))
            .collect()
    };
    observe(&mut e, 0, &db(0, 96));
    let s = set_of(&mut e, 0);
    assert!(s.contains(&("PoolNearFull".into(), Pending)), "{s:?}");
    assert_eq!(observe(&mut e, 15, &db(15, 96)), [FULL_FIRED]);
    assert!(set_of(&mut e, 15).contains(&("PoolNearFull".into(), Firing)));
    // Never repeated by the engine, however long it fires.
    assert_eq!(observe(&mut e, 30_000, &db(30_000, 96)), [UTIL_FIRED]);
    let resolved = observe(&mut e, 30_010, &db(30_010, 10));
    assert!(resolved.len() >= 2, "{resolved:?}");
    let set = e.alert_set(t(30_011));
    let full = set
        .iter()
        .find(|a| a.labels["alertname"] == "PoolNearFull")
        .expect("kept resolved");
    assert_eq!(
        (full.state, full.starts_at, full.ends_at),
        (Resolved, t(0), Some(t(30_010)))
    );
    // Kept for the retention, then gone.
    let retention = crate::alert::RESOLVED_RETENTION.as_secs();
    assert!(set_of(&mut e, 30_010 + retention - 1).contains(&("PoolNearFull".into(), Resolved)));
    assert!(set_of(&mut e, 30_010 + retention).is_empty());
    // Firing again removes the resolution.
    observe(&mut e, 40_000, &db(40_000, 10));
    observe(&mut e, 40_001, &db(40_001, 96));
    observe(&mut e, 40_010, &db(40_010, 10));
    observe(&mut e, 40_020, &db(40_020, 96));
    assert_eq!(observe(&mut e, 40_040, &db(40_040, 96)), [FULL_FIRED]);
    let s = set_of(&mut e, 40_040);
    assert!(!s.contains(&("PoolNearFull".into(), Resolved)), "{s:?}");
}

#[test]
fn each_severity_has_its_own_for() {
    let two = RuleConfig {
        name: "Util".into(),
        metric: Some(PoolMetric::Utilization),
        warning: Some(ThresholdConfig {
            value: 0.5,
            clear: None,
            for_: Some(HumanDuration::secs(0)),
        }),
        critical: Some(ThresholdConfig {
            value: 0.9,
            clear: None,
            for_: None,
        }),
        for_: Some(HumanDuration::secs(30)),
        ..RuleConfig::default()
    };
    let mut e = Engine::new(rules(&[two], false));
    run(
        &mut e,
        vec![
            (0, db(0, 95), vec!["fired Util/warning@db:server"]),
            (29, db(29, 95), vec![]),
            (30, db(30, 95), vec!["fired Util/critical@db:server"]),
            (35, db(35, 60), vec!["resolved Util/critical@db:server"]),
            (40, db(40, 10), vec!["resolved Util/warning@db:server"]),
        ],
    );
}

#[test]
fn targets_are_independent() {
    let mut e = engine();
    let other = |secs| up("other", t(secs), vec![pool("other", 100, 10)]);
    run(
        &mut e,
        vec![
            (0, db(0, 99), vec![]),
            (15, db(15, 99), vec![FULL_FIRED]),
            // Another target's report neither resolves nor repeats db's alerts.
            (20, other(20), vec![]),
            (20_000, other(20_000), vec![]),
            (
                20_001,
                failed("other", t(20_001), ErrorClass::TooManyConnections),
                vec!["fired TargetSaturated/critical@other"],
            ),
        ],
    );
}

#[test]
fn incident_one_text() {
    let mut e = engine();
    let report = |secs| up("orders-db", t(secs), vec![incident_one()]);
    e.observe(t(0), &report(0), &Labels::new());
    let notices = e.observe(t(15), &report(15), &Labels::new());
    assert_eq!(notices.len(), 1);
    let n = &notices[0];
    assert_eq!(
        n.annotations["summary"],
        "orders-db: 97/97 usable connections in use (100%)"
    );
    assert_eq!(
        n.annotations["description"],
        "max_connections 100, 3 reserved; app=django holds 91 (12 idle in transaction), \
         app=celery holds 4; role=app 95, role=postgres 2; 12 idle in transaction \
         (oldest 4m)"
    );
    assert_eq!(
        n.starts_at,
        t(0),
        "starts_at is when the condition started holding"
    );
    assert_eq!(n.ends_at, None);

    // Saturation: the text names the refusal and the last numbers seen.
    let sat = failed("orders-db", t(20), ErrorClass::TooManyConnections);
    let notices = e.observe(t(20), &sat, &Labels::new());
    assert_eq!(
        notices[0].annotations["summary"],
        "orders-db refuses new connections because it is full"
    );
    assert_eq!(
        notices[0].annotations["description"],
        "sorry, too many clients already. Last seen: 97/97 usable connections in use \
         (max_connections 100, 3 reserved); app=django holds 91 (12 idle in transaction), \
         app=celery holds 4; role=app 95, role=postgres 2; 12 idle in transaction (oldest 4m)"
    );
}

#[test]
fn capacity_drop_text() {
    let mut e = engine();
    let app = |secs, cap| {
        up(
            "orders-db",
            t(secs),
            vec![role_pool("orders-db", "app", cap, 5)],
        )
    };
    e.observe(t(0), &app(0, 50), &Labels::new());
    let n = e.observe(t(5), &app(5, 10), &Labels::new());
    assert_eq!(
        n[0].annotations["summary"],
        "orders-db role app: capacity fell from 50 to 10"
    );
    assert!(n[0].annotations["description"].starts_with("rolconnlimit 10; 5 in use now (50%)"));
    let n = e.observe(t(10), &app(10, 50), &Labels::new());
    assert_eq!(n[0].status, crate::notice::NoticeStatus::Resolved);
    assert_eq!(n[0].ends_at, Some(t(10)));
    assert_eq!(n[0].starts_at, t(5));
}
