//! The store fed with synthetic reports: time driven by hand.

use super::*;
use crate::model::ErrorClass;
use crate::rules::fixtures::{failed, pool, role_pool, t, up};

const HOUR: Duration = Duration::from_secs(3600);

fn server() -> PoolRef {
    PoolRef::new("db", "server", "server")
}

/// The samples recorded in `pool`'s history: (how many, sum of in use, peak in use).
fn recorded(view: &StoreView<'_>, pool: &PoolRef) -> (f64, f64, u32) {
    let Some(slots) = view.history(pool).map(|h| h.slots()) else {
        return (0.0, 0.0, 0);
    };
    let sums = slots.range(0, slots.len() - 1, 0);
    let peak = (0..slots.len())
        .filter_map(|i| slots.get(i))
        .map(|s| s.peak_in_use)
        .max();
    (sums.n, sums.y, peak.unwrap_or(0))
}

#[test]
fn reports_update_entries_history_and_last_pools() {
    let store = Store::new(["db"]);
    // (seconds, report, want state, want data, want last pools, want samples)
    let rows = [
        (
            0,
            up("db", t(0), vec![pool("db", 10, 3)]),
            TargetState::Up,
            true,
            1,
            1,
        ),
        (
            1,
            up("db", t(1), vec![pool("db", 10, 4)]),
            TargetState::Up,
            true,
            1,
            2,
        ),
        (
            2,
            failed("db", t(2), ErrorClass::TooManyConnections),
            TargetState::Saturated,
            false,
            1,
            2,
        ),
        (
            3,
            failed("db", t(3), ErrorClass::Network),
            TargetState::Down,
            false,
            1,
            2,
        ),
        (
            4,
            up("db", t(4), vec![pool("db", 10, 9)]),
            TargetState::Up,
            true,
            1,
            3,
        ),
    ];
    for (secs, report, state, data, last, samples) in rows {
        let entry = store.apply(&report).expect("expected target");
        assert_eq!(entry.state, state, "at {secs}");
        assert_eq!(entry.data.is_some(), data, "at {secs}");
        let view = store.view();
        assert_eq!(view.last_pools("db").len(), last, "at {secs}");
        assert_eq!(recorded(&view, &server()).0, samples as f64, "at {secs}");
        assert_eq!(view.last_error("db").is_some(), !data, "at {secs}");
    }
    let view = store.view();
    // While down, the last pools seen stay for alert text.
    assert_eq!(view.last_pools("db")[0].in_use, 9);
    // In use 3, 4 and 9 recorded; the failed poll recorded nothing.
    assert_eq!(recorded(&view, &server()), (3.0, 16.0, 9));
    drop(view);
    assert!(store.apply(&up("other", t(5), Vec::new())).is_none());
}

#[test]
fn capacity_history_sees_drops_and_first_limits_on_pools_in_use() {
    let store = Store::new(["db"]);
    store.apply(&up("db", t(0), vec![pool("db", 50, 5)]));
    // A role in use gets its first limit: it dropped from the server's 50.
    store.apply(&up(
        "db",
        t(10),
        vec![pool("db", 50, 5), role_pool("db", "app", 10, 4)],
    ));
    // An unused role with a first limit has no "before".
    store.apply(&up(
        "db",
        t(20),
        vec![
            pool("db", 50, 5),
            role_pool("db", "app", 10, 4),
            role_pool("db", "idle", 5, 0),
        ],
    ));
    // The server itself drops.
    store.apply(&up("db", t(30), vec![pool("db", 40, 5)]));
    let view = store.view();
    let app = PoolRef::new("db", "role", "app");
    let idle = PoolRef::new("db", "role", "idle");
    // (pool, now, window, want highest)
    let cases = [
        (&app, t(10), HOUR, Some(50)),
        (&app, t(40), Duration::from_secs(5), Some(10)),
        (&idle, t(20), HOUR, Some(5)),
        (&server(), t(30), HOUR, Some(50)),
        (&server(), t(30 + 3600), HOUR, Some(40)),
    ];
    for (p, now, window, want) in cases {
        assert_eq!(view.highest_capacity(p, now, window), want, "{p:?}");
    }
}

#[test]
fn monitoring_sessions_are_no_capacity_change() {
    let store = Store::new(["db"]);
    let mut p = pool("db", 9, 3);
    p.configured_capacity = 10;
    store.apply(&up("db", t(0), vec![p.clone()]));
    // Another poolwatch connects: usable capacity 8, configured still 10.
    p.capacity = 8;
    store.apply(&up("db", t(1), vec![p]));
    assert_eq!(
        store.view().highest_capacity(&server(), t(1), HOUR),
        Some(10)
    );
    assert_eq!(store.export_capacity()[0].changes.len(), 1);
}

#[test]
fn removed_targets_and_vanished_pools_are_forgotten() {
    let store = Store::new(["db", "other"]);
    store.set_windows(Duration::from_secs(60), HOUR);
    store.apply(&up(
        "db",
        t(0),
        vec![pool("db", 10, 1), role_pool("db", "app", 5, 1)],
    ));
    store.apply(&up("other", t(0), vec![pool("other", 10, 1)]));
    let app = PoolRef::new("db", "role", "app");
    // The role vanishes; its history goes once a whole window has passed without it.
    store.apply(&up("db", t(30), vec![pool("db", 10, 1)]));
    assert!(store.view().history(&app).is_some());
    store.apply(&up("db", t(61), vec![pool("db", 10, 1)]));
    assert!(store.view().history(&app).is_none());
    store.set_targets(["db"]);
    let view = store.view();
    assert!(view.target("other").is_none());
    assert!(view
        .history(&PoolRef::new("other", "server", "server"))
        .is_none());
    drop(view);
    assert!(store
        .export_capacity()
        .iter()
        .all(|c| c.pool.target == "db"));
}

#[test]
fn capacity_history_survives_export_and_import() {
    let store = Store::new(["db"]);
    store.apply(&up("db", t(0), vec![pool("db", 50, 5)]));
    store.apply(&up("db", t(10), vec![pool("db", 10, 5)]));
    let saved = serde_json::to_string(&store.export_capacity()).expect("serialize");
    let fresh = Store::new(["db"]);
    fresh.import_capacity(serde_json::from_str(&saved).expect("deserialize"));
    assert_eq!(
        fresh.view().highest_capacity(&server(), t(20), HOUR),
        Some(50)
    );
    // A saved target no longer configured is not restored.
    let other = Store::new(["elsewhere"]);
    other.import_capacity(serde_json::from_str(&saved).expect("deserialize"));
    assert!(other.export_capacity().is_empty());
}

#[test]
fn counter_rates_are_filled_against_the_last_successful_report() {
    let store = Store::new(["db"]);
    let counted = |timeouts: u64| {
        let mut p = pool("db", 10, 10);
        p.counters.timeouts = Some(timeouts);
        p
    };
    // (report, want timeouts per second after filling)
    let rows = [
        (up("db", t(0), vec![counted(5)]), None), // first sample
        (up("db", t(2), vec![counted(9)]), Some(2.0)),
        (failed("db", t(3), ErrorClass::Network), None),
        (up("db", t(6), vec![counted(13)]), Some(1.0)), // over the gap since t(2)
        (up("db", t(8), vec![counted(2)]), Some(1.0)),  // reset: 2 since then
        (up("db", t(9), vec![pool("db", 10, 10)]), None), // no counter, no rate
    ];
    for (i, (mut report, want)) in rows.into_iter().enumerate() {
        store.fill_rates(&mut report);
        let got = report
            .outcome
            .as_ref()
            .ok()
            .and_then(|d| d.pools[0].rates.timeouts);
        assert_eq!(got, want, "row {i}");
        store.apply(&report);
    }
}

#[test]
fn a_targets_pools_are_found_and_pruned_without_touching_the_others() {
    let mut map: BTreeMap<PoolRef, u32> = BTreeMap::new();
    // Targets whose names prefix each other, and kinds and names around the empty string.
    for (target, kind, pool) in [
        ("a", "app", "x"),
        ("a", "server", ""),
        ("ab", "app", "x"),
        ("", "app", "x"),
        ("b", "app", "a"),
    ] {
        map.insert(PoolRef::new(target, kind, pool), 1);
    }
    let of_a: Vec<String> = of_target(&map, "a")
        .map(|(k, _)| format!("{}/{}", k.kind, k.pool))
        .collect();
    assert_eq!(of_a, ["app/x", "server/"]);
    retain_of_target(&mut map, "a", |k, _| k.kind == "server");
    let left: Vec<String> = map
        .keys()
        .map(|k| format!("{}/{}/{}", k.target, k.kind, k.pool))
        .collect();
    assert_eq!(left, ["/app/x", "a/server/", "ab/app/x", "b/app/a"]);
}
