//! Reloads: rules and target labels changed, removed rules, severities and targets. An alert
//! whose labels change keeps its state and start time under the new labels; nothing claims
//! that a condition cleared.

use super::*;
use crate::config::values::HumanDuration;
use crate::notice::{fingerprint, NoticeReason, NoticeStatus};
use crate::rules::config::{RuleConfig, ThresholdConfig};
use crate::rules::fixtures::{labels, pool, up};
use std::collections::BTreeMap;

fn db(secs: u64, in_use: u64) -> TargetReport {
    up("db", t(secs), vec![pool("db", 100, in_use)])
}

/// `{"db": pairs}`: the target labels of a configuration with target `db` only.
fn db_labels(pairs: &[(&str, &str)]) -> BTreeMap<String, Labels> {
    BTreeMap::from([("db".to_string(), labels(pairs))])
}

/// The alert's extra labels: `{env=prod,team=orders}`.
fn extras(l: &Labels) -> String {
    let extra: Vec<String> = l
        .iter()
        .filter(|(k, _)| !crate::rules::RESERVED_LABELS.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{{{}}}", extra.join(","))
}

/// `replaced PoolNearFull/critical@db:server {team=orders}`, in the order sent.
fn described(notices: &[Notice]) -> Vec<String> {
    notices
        .iter()
        .map(|n| format!("{} {}", brief(n), extras(&n.labels)))
        .collect()
}

/// `(alertname, state, activeAt, extras)` of every alert.
fn alert_rows(e: &Engine) -> Vec<(String, &'static str, SystemTime, String)> {
    e.alerts()
        .into_iter()
        .map(|a| {
            let name = a.labels["alertname"].clone();
            (name, a.state, a.active_at, extras(&a.labels))
        })
        .collect()
}

/// Target `db` labelled `team=orders` at 96%: PoolNearFull pending from 0s and firing at 15s,
/// PoolUtilizationHigh pending from 0s (its `for` is 1m).
fn firing_engine() -> Engine {
    let mut e = engine();
    let team = labels(&[("team", "orders")]);
    assert!(e.observe(t(0), &db(0, 96), &team).is_empty());
    let fired = e.observe(t(15), &db(15, 96), &team);
    assert_eq!(briefs(&fired), ["fired PoolNearFull/critical@db:server"]);
    e
}

const FULL: &str = "PoolNearFull/critical@db:server";

/// One reload at 20s of [`firing_engine`]: the `[[rules]]` entries and the target's labels.
struct Reload {
    name: &'static str,
    rules: Vec<RuleConfig>,
    target_labels: &'static [(&'static str, &'static str)],
    /// The notices, in the order sent.
    notices: Vec<String>,
    /// The extras of PoolNearFull's (and PoolUtilizationHigh's) alert afterwards; `None`: gone.
    full: Option<&'static str>,
    util: Option<&'static str>,
}

/// PoolNearFull with rule labels `pairs`.
fn page(pairs: &[(&str, &str)]) -> RuleConfig {
    override_of("PoolNearFull", |r| r.labels = Some(labels(pairs)))
}

#[test]
fn reload_table() {
    let off = |name: &str| override_of(name, |r| r.enabled = Some(false));
    let orders = &[("team", "orders")][..];
    let rows = vec![
        Reload {
            name: "nothing changed",
            rules: vec![],
            target_labels: orders,
            notices: vec![],
            full: Some("{team=orders}"),
            util: Some("{team=orders}"),
        },
        Reload {
            name: "a target label added",
            rules: vec![],
            target_labels: &[("env", "prod"), ("team", "orders")],
            notices: vec![
                format!("fired {FULL} {{env=prod,team=orders}}"),
                format!("replaced {FULL} {{team=orders}}"),
            ],
            full: Some("{env=prod,team=orders}"),
            util: Some("{env=prod,team=orders}"),
        },
        Reload {
            name: "a target label changed",
            rules: vec![],
            target_labels: &[("team", "payments")],
            notices: vec![
                format!("fired {FULL} {{team=payments}}"),
                format!("replaced {FULL} {{team=orders}}"),
            ],
            full: Some("{team=payments}"),
            util: Some("{team=payments}"),
        },
        Reload {
            name: "the target labels removed",
            rules: vec![],
            target_labels: &[],
            notices: vec![
                format!("fired {FULL} {{}}"),
                format!("replaced {FULL} {{team=orders}}"),
            ],
            full: Some("{}"),
            util: Some("{}"),
        },
        Reload {
            name: "a rule label added",
            rules: vec![page(&[("page", "yes")])],
            target_labels: orders,
            notices: vec![
                format!("fired {FULL} {{page=yes,team=orders}}"),
                format!("replaced {FULL} {{team=orders}}"),
            ],
            full: Some("{page=yes,team=orders}"),
            util: Some("{team=orders}"),
        },
        Reload {
            name: "a rule label overriding the target's",
            rules: vec![page(&[("team", "dba")])],
            target_labels: orders,
            notices: vec![
                format!("fired {FULL} {{team=dba}}"),
                format!("replaced {FULL} {{team=orders}}"),
            ],
            full: Some("{team=dba}"),
            util: Some("{team=orders}"),
        },
        Reload {
            name: "target and rule labels at once: one move",
            rules: vec![page(&[("page", "yes")])],
            target_labels: &[("env", "prod"), ("team", "orders")],
            notices: vec![
                format!("fired {FULL} {{env=prod,page=yes,team=orders}}"),
                format!("replaced {FULL} {{team=orders}}"),
            ],
            full: Some("{env=prod,page=yes,team=orders}"),
            util: Some("{env=prod,team=orders}"),
        },
        Reload {
            name: "the firing rule disabled",
            rules: vec![off("PoolNearFull")],
            target_labels: orders,
            notices: vec![format!("removed {FULL} {{team=orders}}")],
            full: None,
            util: Some("{team=orders}"),
        },
        Reload {
            name: "the pending rule disabled: silently",
            rules: vec![off("PoolUtilizationHigh")],
            target_labels: orders,
            notices: vec![],
            full: Some("{team=orders}"),
            util: None,
        },
    ];
    for row in rows {
        let mut e = firing_engine();
        let target_labels = db_labels(row.target_labels);
        let notices = e.set_rules(t(20), rules(&row.rules, true), &target_labels);
        assert_eq!(described(&notices), row.notices, "{}", row.name);
        // Moved alerts keep their state and activeAt: no gap, no new `for`.
        let mut want = Vec::new();
        if let Some(x) = row.full {
            want.push(("PoolNearFull".to_string(), "firing", t(0), x.to_string()));
        }
        if let Some(x) = row.util {
            let util = "PoolUtilizationHigh".to_string();
            want.push((util, "pending", t(0), x.to_string()));
        }
        let mut got = alert_rows(&e);
        got.sort();
        want.sort();
        assert_eq!(got, want, "{}", row.name);
        // The next polls under the new labels neither resolve nor page again, and the pending
        // alert fires on its original schedule.
        let new = &target_labels["db"];
        let next = e.observe(t(25), &db(25, 96), new);
        assert_eq!(described(&next), Vec::<String>::new(), "{}", row.name);
        let at_60 = described(&e.observe(t(60), &db(60, 96), new));
        let util_fired: Vec<String> = row
            .util
            .map(|x| format!("fired PoolUtilizationHigh/warning@db:server {x}"))
            .into_iter()
            .collect();
        assert_eq!(at_60, util_fired, "{}", row.name);
    }
}

#[test]
fn the_replaced_notice_links_to_the_new_one_and_keeps_the_start() {
    let mut e = firing_engine();
    let prod = db_labels(&[("env", "prod"), ("team", "orders")]);
    let notices = e.set_rules(t(20), rules(&[], true), &prod);
    let [fired, replaced] = &notices[..] else {
        panic!("{notices:?}");
    };
    assert_eq!(
        (fired.status, fired.reason, fired.starts_at, fired.ends_at),
        (NoticeStatus::Firing, NoticeReason::Fired, t(0), None)
    );
    assert_eq!(fired.fingerprint, fingerprint(&fired.labels));
    assert_eq!(
        fired.annotations["summary"], "db: 96/100 usable connections in use (96%)",
        "the new label set carries the alert's text"
    );
    assert_eq!(
        (replaced.status, replaced.reason, replaced.starts_at),
        (NoticeStatus::Resolved, NoticeReason::Replaced, t(0))
    );
    assert_eq!(replaced.ends_at, Some(t(20)));
    assert_eq!(replaced.labels["team"], "orders");
    assert!(!replaced.labels.contains_key("env"));
    let a = &replaced.annotations;
    assert_eq!(a["replaced_by"], fired.fingerprint);
    assert_eq!(a["reason"], "replaced");
    assert_eq!(
        a["summary"],
        "db: PoolNearFull replaced by a configuration change: labels now env=\"prod\", \
         team=\"orders\"; it did not clear"
    );
    assert!(
        a["description"].contains("did not clear") && a["description"].contains(&fired.fingerprint),
        "{}",
        a["description"]
    );
    // Published: the new label set firing, the old one resolved.
    let set = e.alert_set(t(21));
    let state_of = |fp: &str| set.iter().find(|a| a.fingerprint == fp).map(|a| a.state);
    assert_eq!(
        state_of(&fired.fingerprint),
        Some(crate::dispatch::AlertState::Firing)
    );
    assert_eq!(
        state_of(&replaced.fingerprint),
        Some(crate::dispatch::AlertState::Resolved)
    );
}

#[test]
fn a_kept_firing_alert_moves_kept() {
    let busy = RuleConfig {
        keep_firing_for: Some(HumanDuration::secs(30)),
        ..busy()
    };
    let mut e = Engine::new(rules(std::slice::from_ref(&busy), false));
    assert_eq!(
        observe(&mut e, 0, &db(0, 10)),
        ["fired Busy/critical@db:server"]
    );
    // The condition stopped holding at 5s: kept firing until 35s.
    assert!(observe(&mut e, 5, &db(5, 1)).is_empty());
    let prod = db_labels(&[("env", "prod")]);
    let moved = e.set_rules(t(10), rules(&[busy], false), &prod);
    assert_eq!(
        described(&moved),
        [
            "fired Busy/critical@db:server {env=prod}",
            "replaced Busy/critical@db:server {}"
        ]
    );
    assert_eq!(e.alerts()[0].keep_firing_since, Some(t(5)));
    assert!(e.observe(t(34), &db(34, 1), &prod["db"]).is_empty());
    let resolved = e.observe(t(35), &db(35, 1), &prod["db"]);
    assert_eq!(
        described(&resolved),
        ["resolved Busy/critical@db:server {env=prod}"]
    );
    assert_eq!(resolved[0].starts_at, t(0));
}

#[test]
fn a_removed_severity_or_target_is_retired_not_resolved() {
    let warning_only = RuleConfig {
        critical: None,
        warning: Some(ThresholdConfig {
            value: 10.0,
            clear: None,
            for_: None,
        }),
        ..busy()
    };
    let mut e = Engine::new(rules(&[busy()], false));
    observe(&mut e, 0, &db(0, 50));
    let notices = e.set_rules(t(5), rules(&[warning_only], false), &db_labels(&[]));
    assert_eq!(described(&notices), ["removed Busy/critical@db:server {}"]);
    assert_eq!(
        notices[0].annotations["summary"],
        "db: Busy is no longer evaluated: a configuration change removed the critical \
         threshold of the rule Busy"
    );
    assert_eq!(
        notices[0].annotations["description"],
        "This notice does not mean that the condition cleared: poolwatch stopped evaluating \
         it. Last known: db: 50/100 usable connections in use (50%)"
    );
    assert_eq!(notices[0].status, NoticeStatus::Resolved);
    // The warning is a new alert of its own.
    assert_eq!(
        observe(&mut e, 6, &db(6, 50)),
        ["fired Busy/warning@db:server"]
    );
    let gone = e.remove_target(t(7), "db");
    assert_eq!(described(&gone), ["removed Busy/warning@db:server {}"]);
    assert!(gone[0].annotations["summary"].ends_with("removed the target db"));
    assert!(e.alerts().is_empty());
}

#[test]
fn matchers_that_no_longer_select_the_pool_resolve_it_at_the_next_poll() {
    let mut e = firing_engine();
    let roles_only = override_of("PoolNearFull", |r| {
        r.matchers = Some(vec!["kind=\"role\"".into()]);
    });
    let orders = db_labels(&[("team", "orders")]);
    let notices = e.set_rules(t(20), rules(&[roles_only], true), &orders);
    assert!(notices.is_empty());
    let next = e.observe(t(25), &db(25, 96), &orders["db"]);
    assert_eq!(
        described(&next),
        [format!("resolved {FULL} {{team=orders}}")]
    );
}

#[test]
fn a_state_saved_under_other_labels_is_reconciled_at_start() {
    let e = firing_engine();
    let mut e = restart(&e);
    let prod = db_labels(&[("env", "prod")]);
    let notices = e.reconcile(t(30), &prod);
    assert_eq!(
        described(&notices),
        [
            format!("fired {FULL} {{env=prod}}"),
            format!("replaced {FULL} {{team=orders}}")
        ]
    );
    assert!(e.observe(t(31), &db(31, 96), &prod["db"]).is_empty());
    // Reconciling again changes nothing.
    assert!(e.reconcile(t(32), &prod).is_empty());
}

#[test]
fn when_both_label_sets_exist_the_one_further_along_stays() {
    let busy = RuleConfig {
        keep_firing_for: Some(HumanDuration::secs(60)),
        ..busy()
    };
    let mut e = Engine::new(rules(std::slice::from_ref(&busy), false));
    observe(&mut e, 0, &db(0, 50));
    // Polled under new labels without a reload: the old alert is kept firing (stale), the
    // new one fires at 5s.
    let prod = db_labels(&[("env", "prod")]);
    let both = e.observe(t(5), &db(5, 50), &prod["db"]);
    assert_eq!(
        described(&both),
        ["fired Busy/critical@db:server {env=prod}"]
    );
    assert_eq!(e.alerts().len(), 2);
    let notices = e.set_rules(t(10), rules(&[busy], false), &prod);
    // The older one moves over the newer; both were announced, so only the retirement is new.
    assert_eq!(described(&notices), ["replaced Busy/critical@db:server {}"]);
    let rows = alert_rows(&e);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2, t(0));
}
