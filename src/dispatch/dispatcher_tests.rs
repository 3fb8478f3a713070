use super::*;
use crate::dispatch::fixtures::{firing, resolved, route, tree};
use crate::dispatch::route::GroupBy;
use crate::rules::fixtures::t;

const S: fn(u64) -> Duration = Duration::from_secs;

/// One route to `r`, grouped by target, with `wait`/`interval` seconds and a 1 h repeat.
fn by_target(wait: u64, interval: u64, send_resolved: bool) -> Dispatcher {
    let mut root = route("r", &[], false, vec![]);
    root.group_by = GroupBy::Labels(vec!["target".into()]);
    root.timing.group_wait = S(wait);
    root.timing.group_interval = S(interval);
    root.send_resolved = send_resolved;
    Dispatcher::new(tree(root))
}

fn sent(ds: &[Decision]) -> Vec<&Notification> {
    ds.iter().filter_map(|d| d.notification.as_ref()).collect()
}

fn reasons(ds: &[Decision]) -> Vec<(bool, &'static str)> {
    ds.iter().map(|d| (d.notify, d.reason.as_str())).collect()
}

fn settle(d: &mut Dispatcher, n: &Notification, delivered: bool, at: u64) {
    d.outcome(&Outcome::of(n, delivered, t(at)));
}

fn ack(d: &mut Dispatcher, n: &Notification, at: u64) {
    settle(d, n, true, at);
}

fn give_up(d: &mut Dispatcher, n: &Notification, at: u64) {
    settle(d, n, false, at);
}

fn names(n: &Notification) -> Vec<(String, AlertState)> {
    n.alerts
        .iter()
        .map(|a| (a.labels["alertname"].clone(), a.state))
        .collect()
}

#[test]
fn group_wait_collects_alerts_into_one_notification() {
    let mut d = by_target(30, 300, true);
    let a = firing("A", &[("target", "db")], 0);
    let b = firing("B", &[("target", "db")], 5);
    let c = firing("C", &[("target", "web")], 5);
    d.ingest(std::slice::from_ref(&a), t(0));
    assert!(d.flush(t(10)).is_empty(), "group_wait not over");
    d.ingest(&[a.clone(), b.clone(), c.clone()], t(10));
    let ds = d.flush(t(30));
    assert_eq!(reasons(&ds), [(true, "first_notification")]);
    let n = sent(&ds)[0];
    assert_eq!(n.group_key, r#"{}:{target="db"}"#);
    assert_eq!(n.group_labels["target"], "db");
    assert_eq!(names(n).len(), 2);
    assert_eq!(n.common_labels()["target"], "db");
    assert!(!n.common_labels().contains_key("alertname"));
    // The web group waits its own group_wait from when it appeared.
    assert_eq!(sent(&d.flush(t(40))).len(), 1);
}

#[test]
fn repeat_after_ack_and_not_before() {
    let mut d = by_target(0, 0, true);
    let a = firing("A", &[("target", "db")], 0);
    d.ingest(std::slice::from_ref(&a), t(0));
    let ds = d.flush(t(0));
    let n = sent(&ds)[0].clone();
    // Not acknowledged yet: the same notification is not handed over twice.
    assert!(d.flush(t(1)).is_empty());
    ack(&mut d, &n, 2);
    assert_eq!(reasons(&d.flush(t(3))), [(false, "up_to_date")]);
    assert_eq!(reasons(&d.flush(t(3601))), [(false, "up_to_date")]);
    let ds = d.flush(t(3602));
    assert_eq!(reasons(&ds), [(true, "repeat")]);
    assert_ne!(sent(&ds)[0].id, n.id, "a repeat is no duplicate");
}

#[test]
fn a_newer_state_supersedes_an_unacknowledged_one() {
    let mut d = by_target(0, 0, true);
    let a = firing("A", &[("target", "db")], 0);
    let b = firing("B", &[("target", "db")], 0);
    d.ingest(std::slice::from_ref(&a), t(0));
    let first = sent(&d.flush(t(0)))[0].clone();
    d.ingest(&[a.clone(), b.clone()], t(5));
    let ds = d.flush(t(5));
    let second = sent(&ds)[0].clone();
    assert_eq!(second.reason, Reason::FirstNotification);
    assert_ne!(second.id, first.id);
    assert_eq!(names(&second).len(), 2);
    // The stale one's acknowledgement arrives late: ignored, the newer one stays offered.
    ack(&mut d, &first, 6);
    assert!(d.log().is_empty());
    ack(&mut d, &second, 7);
    assert_eq!(
        d.log()
            .get("r", "webhook", &second.group_key)
            .map(|e| e.firing.len()),
        Some(2)
    );
}

#[test]
fn resolution_is_told_once_then_the_group_ends() {
    let mut d = by_target(0, 60, true);
    let a = firing("A", &[("target", "db")], 0);
    let b = firing("B", &[("target", "db")], 0);
    d.ingest(&[a.clone(), b.clone()], t(0));
    let n = sent(&d.flush(t(0)))[0].clone();
    ack(&mut d, &n, 1);
    let a_end = resolved(a.clone(), 10);
    d.ingest(&[a_end.clone(), b.clone()], t(10));
    assert!(d.flush(t(30)).is_empty(), "group_interval not over");
    let ds = d.flush(t(60));
    assert_eq!(reasons(&ds), [(true, "new_resolved")]);
    let n = sent(&ds)[0].clone();
    assert_eq!(
        names(&n),
        [
            ("A".into(), AlertState::Resolved),
            ("B".into(), AlertState::Firing)
        ]
    );
    ack(&mut d, &n, 61);
    // A's resolution left the group; it stays in the alert set (retention) without coming back.
    d.ingest(&[a_end.clone(), b.clone()], t(70));
    assert_eq!(reasons(&d.flush(t(120))), [(false, "up_to_date")]);
    let b_end = resolved(b.clone(), 130);
    d.ingest(&[a_end.clone(), b_end.clone()], t(130));
    let ds = d.flush(t(180));
    assert_eq!(reasons(&ds), [(true, "all_resolved")]);
    let n = sent(&ds)[0].clone();
    assert_eq!(n.status(), AlertState::Resolved);
    ack(&mut d, &n, 181);
    assert_eq!(d.groups().count(), 0);
    d.ingest(&[a_end, b_end], t(190));
    assert_eq!(
        d.groups().count(),
        0,
        "resolved alerts already told do not come back"
    );
    assert!(d.flush(t(300)).is_empty());
}

#[test]
fn without_send_resolved_resolutions_are_recorded_not_sent() {
    let mut d = by_target(0, 0, false);
    let a = firing("A", &[("target", "db")], 0);
    let b = firing("B", &[("target", "db")], 0);
    d.ingest(&[a.clone(), b.clone()], t(0));
    let n = sent(&d.flush(t(0)))[0].clone();
    ack(&mut d, &n, 1);
    d.ingest(&[resolved(a.clone(), 10), b.clone()], t(10));
    assert_eq!(reasons(&d.flush(t(10))), [(false, "up_to_date")]);
    d.ingest(&[resolved(a, 10), resolved(b, 20)], t(20));
    let ds = d.flush(t(20));
    assert_eq!(reasons(&ds), [(true, "all_resolved")]);
    assert!(sent(&ds).is_empty());
    assert_eq!(d.groups().count(), 0);
    // Recorded as told (nothing firing), then forgotten with the group: nothing left to dedup.
    assert!(d.log().is_empty());
}

#[test]
fn alerts_resolved_before_anyone_was_told_are_not_sent() {
    let mut d = by_target(30, 60, true);
    let a = firing("A", &[("target", "db")], 0);
    d.ingest(std::slice::from_ref(&a), t(0));
    d.ingest(&[resolved(a, 10)], t(10));
    assert_eq!(reasons(&d.flush(t(30))), [(false, "never_fired")]);
    assert_eq!(d.groups().count(), 0);
}

#[test]
fn a_dropped_notification_waits_for_a_change() {
    let mut d = by_target(0, 0, true);
    let a = firing("A", &[("target", "db")], 0);
    d.ingest(std::slice::from_ref(&a), t(0));
    let n = sent(&d.flush(t(0)))[0].clone();
    give_up(&mut d, &n, 1);
    assert!(d.flush(t(2)).is_empty());
    let b = firing("B", &[("target", "db")], 0);
    d.ingest(&[a, b], t(3));
    assert_eq!(sent(&d.flush(t(3))).len(), 1);
}

#[test]
fn continue_gives_each_receiver_its_group_and_log() {
    let root = route(
        "default",
        &[],
        false,
        vec![
            route("pager", &[r#"severity="critical""#], true, vec![]),
            route("team", &[], false, vec![]),
        ],
    );
    let mut d = Dispatcher::new(tree(root));
    let a = firing("A", &[("severity", "critical")], 0);
    d.ingest(&[a], t(0));
    let ds = d.flush(t(0));
    let mut got: Vec<(&str, &str)> = sent(&ds)
        .iter()
        .map(|n| (n.receiver.as_str(), n.group_key.as_str()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("pager", r#"{}/{severity="critical"}:{}"#),
            ("team", "{}/{}:{}")
        ]
    );
    let n = sent(&ds)[0].clone();
    ack(&mut d, &n, 1);
    assert_eq!(d.log().len(), 1);
}

#[test]
fn a_restart_resends_what_was_not_acknowledged_with_the_same_id() {
    let mut d = by_target(0, 0, true);
    let a = firing("A", &[("target", "db")], 0);
    let b = firing("B", &[("target", "web")], 0);
    d.ingest(&[a.clone(), b.clone()], t(0));
    let ds = d.flush(t(0));
    let (na, nb) = (sent(&ds)[0].clone(), sent(&ds)[1].clone());
    ack(&mut d, &na, 1);
    let saved = d.export();
    let json = serde_json::to_string(&saved).unwrap();
    let mut d = by_target(30, 300, true);
    d.import(serde_json::from_str(&json).unwrap(), t(100));
    d.ingest(&[a.clone(), b.clone()], t(100));
    let ds = d.flush(t(100));
    let again = sent(&ds);
    assert_eq!(again.len(), 1, "only the unacknowledged group: {ds:?}");
    assert_eq!(again[0].id, nb.id);
    // The acknowledged group keeps its repeat schedule from its acknowledgement.
    let ds = d.flush(t(3601));
    assert_eq!(sent(&ds).len(), 1);
    assert_eq!(sent(&ds)[0].group_key, na.group_key);
}

#[test]
fn a_group_given_up_then_resolved_is_notified_when_it_fires_again() {
    let mut d = by_target(0, 0, true);
    let a = firing("A", &[("target", "db")], 0);
    d.ingest(std::slice::from_ref(&a), t(0));
    let first = sent(&d.flush(t(0)))[0].clone();
    give_up(&mut d, &first, 1);
    // Resolved before anything was acknowledged: nothing to tell, the group goes.
    d.ingest(&[resolved(a.clone(), 5)], t(5));
    assert!(sent(&d.flush(t(5))).is_empty());
    assert_eq!(d.groups().count(), 0);
    // It fires again: a new episode, notified (with the same state, hence the same id).
    d.ingest(std::slice::from_ref(&a), t(10));
    let ds = d.flush(t(10));
    let again = sent(&ds);
    assert_eq!(again.len(), 1, "the new episode is notified");
    assert_eq!(again[0].id, first.id);
}

/// A receiver with two integrations: each is notified, acknowledges and is restored on its own.
fn two_integrations() -> Dispatcher {
    let mut root = route("r", &[], false, vec![]);
    root.group_by = GroupBy::Labels(vec!["target".into()]);
    let tree = RouteTree::new(root).with_integrations([(
        "r".to_string(),
        vec!["webhook".to_string(), "pagerduty".to_string()],
    )]);
    Dispatcher::new(tree)
}

#[test]
fn each_integration_acknowledges_on_its_own_and_a_restart_resends_only_to_the_other() {
    let mut d = two_integrations();
    let a = firing("A", &[("target", "db")], 0);
    d.ingest(std::slice::from_ref(&a), t(0));
    let ds = d.flush(t(0));
    let mut got: Vec<(String, String)> = sent(&ds)
        .iter()
        .map(|n| (n.integration.clone(), n.group_key.clone()))
        .collect();
    got.sort();
    assert_eq!(got.len(), 2, "one per integration: {got:?}");
    assert_eq!(got[0].1, got[1].1, "the same group");
    let webhook = sent(&ds)
        .into_iter()
        .find(|n| n.integration == "webhook")
        .unwrap()
        .clone();
    let pager = sent(&ds)
        .into_iter()
        .find(|n| n.integration == "pagerduty")
        .unwrap()
        .clone();
    assert_ne!(webhook.id, pager.id, "ids are per integration");
    // Only the webhook acknowledges; the pager's delivery is still under way at the restart.
    ack(&mut d, &webhook, 1);
    assert!(d.log().get("r", "webhook", &webhook.group_key).is_some());
    assert!(d.log().get("r", "pagerduty", &pager.group_key).is_none());
    let json = serde_json::to_string(&d.export()).unwrap();
    let mut d = two_integrations();
    d.import(serde_json::from_str(&json).unwrap(), t(100));
    d.ingest(std::slice::from_ref(&a), t(100));
    let ds = d.flush(t(100));
    let again = sent(&ds);
    assert_eq!(again.len(), 1, "{ds:?}");
    assert_eq!(again[0].integration, "pagerduty");
    assert_eq!(again[0].id, pager.id, "the same id after the restart");
}

#[test]
fn a_resolution_waiting_for_delivery_survives_a_restart() {
    let mut d = by_target(0, 0, true);
    let a = firing("A", &[("target", "db")], 0);
    d.ingest(std::slice::from_ref(&a), t(0));
    let n = sent(&d.flush(t(0)))[0].clone();
    ack(&mut d, &n, 1);
    d.ingest(&[resolved(a.clone(), 10)], t(10));
    let pending = sent(&d.flush(t(10)))[0].clone();
    let saved = d.export();
    let mut d = by_target(0, 0, true);
    d.import(saved, t(50));
    // The engine's retention is over: the alert set no longer has it.
    d.ingest(&[], t(50));
    let ds = d.flush(t(50));
    assert_eq!(sent(&ds)[0].id, pending.id);
    assert_eq!(names(sent(&ds)[0]), [("A".into(), AlertState::Resolved)]);
}

#[test]
fn a_firing_alert_missing_from_the_set_is_taken_as_resolved() {
    let mut d = by_target(0, 0, true);
    let a = firing("A", &[("target", "db")], 0);
    d.ingest(&[a], t(0));
    let n = sent(&d.flush(t(0)))[0].clone();
    ack(&mut d, &n, 1);
    d.ingest(&[], t(5));
    let ds = d.flush(t(5));
    assert_eq!(reasons(&ds), [(true, "all_resolved")]);
    assert_eq!(sent(&ds)[0].alerts[0].ends_at, Some(t(5)));
}

#[test]
fn new_routes_regroup_what_is_held() {
    let mut d = by_target(0, 0, true);
    let a = firing("A", &[("target", "db")], 0);
    let b = firing("B", &[("target", "web")], 0);
    d.ingest(&[a.clone(), b.clone()], t(0));
    for n in sent(&d.flush(t(0)))
        .into_iter()
        .cloned()
        .collect::<Vec<_>>()
    {
        ack(&mut d, &n, 1);
    }
    let mut root = route("r", &[], false, vec![]);
    root.group_by = GroupBy::Labels(vec![]);
    d.set_routes(tree(root), t(10));
    let ds = d.flush(t(10));
    assert_eq!(reasons(&ds), [(true, "first_notification")]);
    assert_eq!(names(sent(&ds)[0]).len(), 2);
    assert_eq!(sent(&ds)[0].group_key, "{}:{}");
}

#[test]
fn a_reload_while_a_notification_is_in_flight_does_not_hand_it_over_twice() {
    let mut d = by_target(0, 0, true);
    let a = firing("A", &[("target", "db")], 0);
    d.ingest(std::slice::from_ref(&a), t(0));
    let first = sent(&d.flush(t(0)))[0].clone();
    // A reload with the same routes, before the receiver has acknowledged.
    let mut root = route("r", &[], false, vec![]);
    root.group_by = GroupBy::Labels(vec!["target".into()]);
    d.set_routes(tree(root), t(1));
    assert!(sent(&d.flush(t(1))).is_empty(), "handed over again");
    // Its outcome still counts: acknowledged, nothing more is sent.
    ack(&mut d, &first, 2);
    assert!(sent(&d.flush(t(3))).is_empty());
}

#[test]
fn pending_alerts_are_not_dispatched_and_drop_routes_send_nothing() {
    let mut root = route("r", &[], false, vec![]);
    root.receiver = None;
    let mut d = Dispatcher::new(tree(root));
    let mut p = firing("P", &[], 0);
    p.state = AlertState::Pending;
    d.ingest(&[p, firing("A", &[], 0)], t(0));
    assert!(d.flush(t(0)).is_empty());
    assert_eq!(d.groups().count(), 0);
}

#[test]
fn a_resolution_supersedes_a_firing_notification_still_in_flight() {
    let mut d = by_target(0, 0, true);
    let a = firing("A", &[("target", "db")], 0);
    d.ingest(std::slice::from_ref(&a), t(0));
    let f = sent(&d.flush(t(0)))[0].clone();
    d.ingest(&[resolved(a.clone(), 5)], t(5));
    let ds = d.flush(t(5));
    assert_eq!(reasons(&ds), [(true, "resolved_in_flight")]);
    let r = sent(&ds)[0].clone();
    assert_ne!(r.id, f.id);
    assert_eq!(names(&r), [("A".into(), AlertState::Resolved)]);
    ack(&mut d, &r, 6);
    assert_eq!(d.groups().count(), 0);
    // Once the firing one was given up, nobody needs the resolution.
    let mut d = by_target(0, 0, true);
    d.ingest(std::slice::from_ref(&a), t(0));
    let f = sent(&d.flush(t(0)))[0].clone();
    give_up(&mut d, &f, 1);
    d.ingest(&[resolved(a, 5)], t(5));
    assert_eq!(reasons(&d.flush(t(5))), [(false, "never_fired")]);
}

#[test]
fn inhibited_alerts_are_left_out_until_their_source_resolves() {
    use crate::dispatch::inhibit::InhibitRule;
    let mut d = by_target(0, 0, true);
    d.set_inhibit_rules(vec![InhibitRule::builtin()]);
    let down = firing("TargetDown", &[("target", "db")], 0);
    let util = firing("PoolUtilizationHigh", &[("target", "db")], 0);
    d.ingest(&[down.clone(), util.clone()], t(0));
    assert_eq!(d.muted().get(&util.fingerprint), Some(&down.fingerprint));
    let n = sent(&d.flush(t(0)))[0].clone();
    assert_eq!(names(&n), [("TargetDown".into(), AlertState::Firing)]);
    ack(&mut d, &n, 1);
    // The target is back, the pool still full: now it is told.
    d.ingest(&[resolved(down, 10), util.clone()], t(10));
    assert!(d.muted().is_empty());
    let ds = d.flush(t(10));
    assert_eq!(reasons(&ds), [(true, "new_firing")]);
    assert_eq!(
        names(sent(&ds)[0]),
        [
            ("PoolUtilizationHigh".into(), AlertState::Firing),
            ("TargetDown".into(), AlertState::Resolved)
        ]
    );
}

#[test]
fn silenced_alerts_are_left_out_while_the_silence_lasts() {
    use crate::dispatch::silence::{NewSilence, Silences};
    let mut d = by_target(0, 0, true);
    let a = firing("A", &[("target", "db")], 0);
    let mut s = Silences::default();
    let sil = s
        .add(
            NewSilence {
                matchers: vec![r#"alertname="A""#.into()],
                created_by: "ana".into(),
                comment: "deploy".into(),
                duration: "10s".into(),
            },
            t(0),
        )
        .unwrap();
    d.set_silences(s);
    d.ingest(std::slice::from_ref(&a), t(0));
    assert_eq!(d.silenced().get(&a.fingerprint), Some(&vec![sil.id]));
    assert_eq!(reasons(&d.flush(t(0))), [(false, "empty")]);
    d.ingest(std::slice::from_ref(&a), t(10));
    assert!(d.silenced().is_empty());
    assert_eq!(reasons(&d.flush(t(10))), [(true, "first_notification")]);
}

/// 1,000 firing alerts in 50 groups to 3 receivers: 150 notifications of 20 alerts each, and
/// nothing more once acknowledged. Prints what it cost (no assertion on time; the figures in
/// BENCHMARKS.md come from `cargo test --release --lib dispatch_cost -- --nocapture`).
#[test]
fn dispatch_cost() {
    use std::time::Instant;
    let routes: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|r| {
            let mut x = route(r, &[], true, vec![]);
            x.group_by = GroupBy::Labels(vec!["target".into()]);
            x
        })
        .collect();
    let mut root = route("a", &[], false, routes);
    root.receiver = None;
    let mut d = Dispatcher::new(tree(root));
    let alerts: Vec<Alert> = (0..1000)
        .map(|i| {
            let (target, pool) = (format!("db{}", i % 50), format!("p{i}"));
            firing("PoolNearFull", &[("target", &target), ("pool", &pool)], 0)
        })
        .collect();
    let start = Instant::now();
    d.ingest(&alerts, t(0));
    let ingest = start.elapsed();
    let ds = d.flush(t(0));
    let took = start.elapsed();
    println!("ingest {ingest:?}");
    let ns = sent(&ds);
    assert_eq!(ns.len(), 150, "one notification per receiver and target");
    assert!(
        ns.iter().all(|n| n.alerts.len() == 20),
        "20 pools per target"
    );
    let start = Instant::now();
    let bodies: usize = ns
        .iter()
        .map(|n| {
            crate::notify::integrations::webhook::render(n, &n.receiver, "http://poolwatch:9671", 0)
                .expect("render")
                .len()
        })
        .sum();
    let render = start.elapsed();
    for n in ns.iter().map(|n| (*n).clone()).collect::<Vec<_>>() {
        ack(&mut d, &n, 1);
    }
    assert!(
        sent(&d.flush(t(2))).is_empty(),
        "acknowledged: nothing to send"
    );
    let start = Instant::now();
    let json = serde_json::to_vec(&d.export()).expect("state");
    let export = start.elapsed();
    println!(
        "1000 alerts, {} notifications: ingest+flush {took:?} ({:?}/notification), render {render:?} ({} bytes), state {} bytes serialised in {export:?}",
        ns.len(),
        took / ns.len() as u32,
        bodies,
        json.len()
    );
}

#[test]
fn an_alertmanager_integration_is_sent_firing_groups_every_resend_interval() {
    // The route: group_interval 5 min, repeat 1 h; the alertmanager integration re-sends every
    // 60 s, the webhook of the same receiver keeps the route's timing.
    let build = || {
        let mut root = route("r", &[], false, vec![]);
        root.timing.group_interval = S(300);
        let tree = RouteTree::new(root)
            .with_integrations([(
                "r".to_string(),
                vec!["webhook".to_string(), "alertmanager".to_string()],
            )])
            .with_resend([(("r".to_string(), "alertmanager".to_string()), S(60))]);
        Dispatcher::new(tree)
    };
    let mut d = build();
    let a = firing("A", &[("target", "db")], 0);
    let sent_to = |ds: &[Decision]| -> Vec<(String, &'static str)> {
        sent(ds)
            .iter()
            .map(|n| (n.integration.clone(), n.reason.as_str()))
            .collect()
    };
    d.ingest(std::slice::from_ref(&a), t(0));
    let first = d.flush(t(0));
    for n in sent(&first) {
        ack(&mut d, n, 0);
    }
    d.ingest(std::slice::from_ref(&a), t(59));
    assert!(sent_to(&d.flush(t(59))).is_empty());
    d.ingest(std::slice::from_ref(&a), t(60));
    let ds = d.flush(t(60));
    assert_eq!(sent_to(&ds), [("alertmanager".to_string(), "repeat")]);
    let repeat = sent(&ds)[0].clone();
    ack(&mut d, &repeat, 61);
    // Across a restart the schedule holds: due 60 s after the last acknowledgement (61 s),
    // not 60 s after the start.
    let json = serde_json::to_string(&d.export()).unwrap();
    let mut d = build();
    d.import(serde_json::from_str(&json).unwrap(), t(100));
    d.ingest(std::slice::from_ref(&a), t(100));
    assert!(sent_to(&d.flush(t(100))).is_empty());
    d.ingest(std::slice::from_ref(&a), t(121));
    assert_eq!(
        sent_to(&d.flush(t(121))),
        [("alertmanager".to_string(), "repeat")]
    );
}
