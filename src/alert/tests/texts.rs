//! The text of notices: a resolved notice says what recovered and after how long, never the
//! firing text with placeholders.

use super::*;
use crate::model::ErrorClass;
use crate::rules::config::RuleConfig;
use crate::rules::fixtures::{failed, pool, role_pool, up};

/// `db` up with `in_use` of 100 taken.
fn db(secs: u64, in_use: u64) -> TargetReport {
    up("db", t(secs), vec![pool("db", 100, in_use)])
}

fn down(secs: u64, class: ErrorClass) -> TargetReport {
    failed("db", t(secs), class)
}

/// The `(summary, description)` of the one notice of `alertname` among `notices`.
fn text_of(notices: &[Notice], alertname: &str) -> (String, String) {
    let n = notices
        .iter()
        .find(|n| n.labels["alertname"] == alertname)
        .unwrap_or_else(|| panic!("no {alertname} in {:?}", briefs(notices)));
    let a = &n.annotations;
    (a["summary"].clone(), a["description"].clone())
}

/// Observes `reports` in order and returns the notices of the last one.
fn run_all(e: &mut Engine, reports: Vec<TargetReport>) -> Vec<Notice> {
    let mut last = Vec::new();
    for r in reports {
        last = e.observe(r.at, &r, &Labels::new());
    }
    last
}

const LAST_SEEN: &str =
    "Last seen: 12/100 usable connections in use (-); no breakdown by holder; 0 idle in transaction";

#[test]
fn resolved_target_conditions_say_what_recovered_and_how_long_it_lasted() {
    // (name, polls, the alert whose resolved text is checked, summary, description)
    let net = ErrorClass::Network;
    let full = ErrorClass::TooManyConnections;
    let cases: Vec<(&str, Vec<TargetReport>, &str, String, String)> = vec![
        (
            "down, then up",
            vec![db(0, 10), down(5, net), down(35, net), db(197, 12)],
            "TargetDown",
            "db is up after 3m 12s down (network)".into(),
            format!("The last error was: network failure. {LAST_SEEN}"),
        ),
        (
            "down, then saturated: not 'up'",
            vec![db(0, 12), down(5, net), down(35, net), down(40, full)],
            "TargetDown",
            "db is saturated after 35s down (network)".into(),
            format!("The last error was: network failure. {LAST_SEEN}"),
        ),
        (
            "saturated, then up",
            vec![db(0, 10), down(40, full), db(85, 12)],
            "TargetSaturated",
            "db is up after 45s saturated".into(),
            format!(
                "New connections were refused with: sorry, too many clients already. {LAST_SEEN}"
            ),
        ),
        (
            "saturated, then down",
            vec![db(0, 12), down(40, full), down(85, ErrorClass::Timeout)],
            "TargetSaturated",
            "db is down (timeout) after 45s saturated".into(),
            format!(
                "New connections were refused with: sorry, too many clients already. {LAST_SEEN}"
            ),
        ),
    ];
    for (name, reports, alertname, summary, description) in cases {
        let mut e = engine();
        let notices = run_all(&mut e, reports);
        let resolved: Vec<&Notice> = notices
            .iter()
            .filter(|n| n.status == crate::notice::NoticeStatus::Resolved)
            .collect();
        assert_eq!(resolved.len(), 1, "{name}: {:?}", briefs(&notices));
        assert_eq!(resolved[0].labels["alertname"], alertname, "{name}");
        assert_eq!(
            text_of(&notices, alertname),
            (summary, description),
            "{name}"
        );
    }
}

#[test]
fn the_firing_text_of_target_conditions_is_unchanged() {
    let mut e = engine();
    let notices = run_all(
        &mut e,
        vec![
            db(0, 10),
            down(5, ErrorClass::Network),
            down(35, ErrorClass::Network),
        ],
    );
    assert_eq!(
        text_of(&notices, "TargetDown"),
        (
            "db cannot be polled (network)".into(),
            "network failure".into()
        )
    );
}

#[test]
fn the_cause_survives_a_restart() {
    let mut e = engine();
    run_all(
        &mut e,
        vec![
            db(0, 10),
            down(5, ErrorClass::Auth),
            down(35, ErrorClass::Auth),
        ],
    );
    let mut e = restart(&e);
    let notices = e.observe(t(65), &db(65, 12), &Labels::new());
    assert_eq!(
        text_of(&notices, "TargetDown").0,
        "db is up after 1m down (auth)"
    );
}

#[test]
fn resolved_pool_alerts_do_not_read_as_still_full() {
    let mut e = engine();
    let notices = run_all(&mut e, vec![db(0, 96), db(15, 96), db(60, 96), db(95, 85)]);
    assert_eq!(
        briefs(&notices),
        ["resolved PoolNearFull/critical@db:server"]
    );
    assert_eq!(
        text_of(&notices, "PoolNearFull"),
        (
            "db: PoolNearFull cleared after 1m 35s; 85/100 usable connections in use (85%) now"
                .into(),
            "capacity 100; no breakdown by holder; 0 idle in transaction".into()
        )
    );
    // Its firing text was the usual one.
    let mut e = engine();
    let fired = run_all(&mut e, vec![db(0, 96), db(15, 96)]);
    assert_eq!(
        text_of(&fired, "PoolNearFull").0,
        "db: 96/100 usable connections in use (96%)"
    );
}

#[test]
fn resolved_capacity_drop_says_so() {
    let mut e = engine();
    let app = |secs, cap| up("db", t(secs), vec![role_pool("db", "app", cap, 5)]);
    let notices = run_all(&mut e, vec![app(0, 50), app(5, 10), app(10, 50)]);
    assert_eq!(
        text_of(&notices, "PoolCapacityDropped"),
        (
            "db role app: PoolCapacityDropped cleared after 5s; capacity 50 now".into(),
            "rolconnlimit 50; 5 in use now (10%). The alert clears when the capacity is back at \
             the highest seen within the rule's window, or once the drop is older than the \
             window"
                .into()
        )
    );
}

#[test]
fn a_rule_sets_its_own_resolved_text() {
    let busy = RuleConfig {
        resolved_summary: Some("{{subject}} calm again after {{duration}} ({{alertname}})".into()),
        resolved_description: Some("{{in_use}} in use, target {{target_state}}".into()),
        ..busy()
    };
    let mut e = Engine::new(rules(&[busy], false));
    let notices = run_all(&mut e, vec![db(0, 10), db(42, 3)]);
    assert_eq!(
        text_of(&notices, "Busy"),
        (
            "db calm again after 42s (Busy)".into(),
            "3 in use, target up".into()
        )
    );
}

#[test]
fn predicted_exhaustion_says_when_and_at_what_rate() {
    let mut e = engine();
    // +1 connection every 15s (+4/min) from 20 of 60, polled every 15s.
    let ramp = |secs: u64| up("db", t(secs), vec![pool("db", 60, 20 + secs / 15)]);
    let mut fired = Vec::new();
    for secs in (0..=600).step_by(15) {
        let notices = e.observe(t(secs), &ramp(secs), &Labels::new());
        fired.extend(
            notices
                .into_iter()
                .filter(|n| n.labels["alertname"] == "PoolExhaustionPredicted")
                .map(|n| (secs, n)),
        );
    }
    let (secs, n) = fired.first().expect("PoolExhaustionPredicted fired");
    // Half the 10m window of history is needed: it fires at 5m, with 40/60 in use.
    assert_eq!(*secs, 300);
    assert_eq!(n.labels["severity"], "warning");
    assert_eq!(
        n.annotations["summary"],
        "db will be exhausted in ~5 min at the current rate (+4.0 connections/min, 40/60 now)"
    );
    assert!(
        n.annotations["description"].starts_with("A straight line through the recent"),
        "{}",
        n.annotations["description"]
    );
    assert_eq!(fired.len(), 1, "fired once");
    // Full at 600s (60/60): quiet from then on; it resolves after keep_firing_for (2m).
    let mut resolved = None;
    for secs in (615..=900).step_by(15) {
        let notices = e.observe(
            t(secs),
            &up("db", t(secs), vec![pool("db", 60, 60)]),
            &Labels::new(),
        );
        if let Some(n) = notices
            .iter()
            .find(|n| n.labels["alertname"] == "PoolExhaustionPredicted")
        {
            resolved = Some((secs, n.annotations["summary"].clone()));
        }
    }
    assert_eq!(
        resolved,
        Some((
            720,
            "db: PoolExhaustionPredicted cleared after 7m; the trend no longer reaches the \
             capacity soon (60/60 in use now)"
                .to_string()
        ))
    );
}
