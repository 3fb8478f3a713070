//! Rendering tests of the status page: escaping, the empty states, many pools, alerts and
//! their age, a target that is down, and the sparkline.

use super::html::escape;
use super::spark::{sparkline, BUCKETS};
use super::*;
use crate::alert::AlertView;
use crate::model::{ErrorClass, Severity};
use crate::rules::fixtures::{failed, incident_one, labels, pool, role_pool, t, up};
use crate::store::history::{PoolHistory, Sample};
use std::time::Duration;

fn alert(
    name: &str,
    severity: Severity,
    state: &'static str,
    summary: &str,
    since: u64,
) -> AlertView {
    AlertView {
        labels: labels(&[("alertname", name), ("target", "orders-db")]),
        annotations: labels(&[("summary", summary)]),
        state,
        active_at: t(since),
        keep_firing_since: None,
        value: "1".into(),
        fingerprint: "0".into(),
        severity,
        inhibited_by: Vec::new(),
        silenced_by: Vec::new(),
    }
}

/// A store with `targets`, each report of `reports` applied in order.
fn store(targets: &[&str], reports: Vec<crate::model::TargetReport>) -> Store {
    let s = Store::new(targets.iter().copied());
    for r in &reports {
        s.apply(r);
    }
    s
}

fn count(page: &str, needle: &str) -> usize {
    page.matches(needle).count()
}

#[test]
fn every_value_is_escaped() {
    let evil = "<script>alert(1)</script>";
    let mut p = role_pool(evil, "a\"b<c>&'d", 10, 3);
    if let Some(pg) = p.postgres.as_mut() {
        pg.holders.applications = vec![crate::model::Holder {
            name: "<img src=x onerror=alert(2)>".into(),
            connections: 3,
            idle_in_transaction: 0,
        }];
    }
    let s = store(&[evil], vec![up(evil, t(0), vec![p])]);
    let alerts = [alert(
        evil,
        Severity::Critical,
        "firing",
        "<b onclick=x>&</b>",
        0,
    )];
    let page = render(&s, &alerts, &[], t(60));
    for raw in [evil, "<img", "<b onclick", "a\"b<c>"] {
        assert!(!page.contains(raw), "{raw} unescaped");
    }
    for escaped in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "a&quot;b&lt;c&gt;&amp;&#39;d",
        "app=&lt;img src=x onerror=alert(2)&gt; holds 3",
        "&lt;b onclick=x&gt;&amp;&lt;/b&gt;",
    ] {
        assert!(page.contains(escaped), "{escaped} missing");
    }
    assert_eq!(escape("&<>\"'x"), "&amp;&lt;&gt;&quot;&#39;x");
}

#[test]
fn empty_states_say_so() {
    // (targets, reports, texts the page must show)
    let cases: Vec<(&[&str], Vec<crate::model::TargetReport>, &[&str])> = vec![
        (
            &[],
            vec![],
            &["No target is configured.", "No alert is pending or firing."],
        ),
        (
            &["orders-db"],
            vec![],
            &["orders-db", "Not polled yet.", "state s-unknown"],
        ),
        (
            &["orders-db"],
            vec![up("orders-db", t(0), vec![])],
            &["No pool seen yet."],
        ),
    ];
    for (targets, reports, want) in cases {
        let page = render(&store(targets, reports), &[], &[], t(1));
        for w in want {
            assert!(page.contains(w), "{targets:?}: {w} missing");
        }
        assert_eq!(count(&page, "class=\"pool"), 0);
        assert!(page.contains("<title>poolwatch</title>"));
    }
}

#[test]
fn a_whole_page_is_self_contained_and_refreshes() {
    let s = store(
        &["orders-db"],
        vec![up("orders-db", t(0), vec![incident_one()])],
    );
    let page = render(&s, &[], &[], t(1));
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(&format!(
        "<meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">"
    )));
    assert!(page.contains("name=\"viewport\""));
    // Nothing fetched: no script, link, image or other source.
    for fetch in [
        "<script", "<link", "<img", "src=", "href=", "url(", "@import",
    ] {
        assert!(!page.contains(fetch), "{fetch} on the page");
    }
    // Incident 1's pool: full, who holds it.
    assert!(page.contains("97 / 97 in use · 100% · 0 waiting"));
    assert!(page.contains("app=django holds 91 (12 idle in transaction)"));
    assert!(page.contains("class=\"pool hot\""));
}

#[test]
fn alerts_firing_first_with_their_age() {
    let alerts = [
        alert(
            "PoolUtilizationHigh",
            Severity::Warning,
            "pending",
            "warming",
            100,
        ),
        alert(
            "PoolUtilizationHigh",
            Severity::Warning,
            "firing",
            "warm",
            50,
        ),
        alert("PoolNearFull", Severity::Critical, "firing", "full", 108),
    ];
    let page = render(&store(&[], vec![]), &alerts, &[], t(300));
    let at = |s: &str| page.find(s).unwrap_or_else(|| panic!("{s} missing"));
    assert!(at(">full<") < at(">warm<") && at(">warm<") < at(">warming<"));
    assert!(page.contains("3m 12s"), "the critical alert's age");
    assert!(page.contains("4m 10s"));
    assert!(page.contains("<title>poolwatch — 2 firing</title>"));
    assert_eq!(count(&page, "class=\"pending\""), 1);
}

#[test]
fn a_target_that_is_down_shows_its_last_pools_and_its_error_class_only() {
    let s = store(
        &["orders-db"],
        vec![
            up("orders-db", t(0), vec![pool("orders-db", 100, 40)]),
            failed("orders-db", t(5), ErrorClass::Auth),
        ],
    );
    let page = render(&s, &[], &[], t(6));
    assert!(page.contains("state s-down"));
    assert!(page.contains("last poll failed: auth"));
    assert!(
        !page.contains("auth failure"),
        "the server's message stays off the page"
    );
    assert!(page.contains("Pools as last seen:"));
    assert!(page.contains("class=\"pool stale\""));
    assert!(page.contains("40 / 100 in use"));
}

#[test]
fn many_pools_each_get_a_card_and_a_sparkline_and_the_page_stays_small() {
    let targets: Vec<String> = (0..10).map(|i| format!("db-{i}")).collect();
    let names: Vec<&str> = targets.iter().map(String::as_str).collect();
    let mut reports = Vec::new();
    // 10 targets × 10 pools, 15 minutes of polls every second.
    for secs in 0..900 {
        for name in &names {
            let pools = (0..10)
                .map(|i| role_pool(name, &format!("role_{i}"), 50, (secs / 20 + i) % 50))
                .collect();
            reports.push(up(name, t(secs), pools));
        }
    }
    let s = store(&names, reports);
    let page = render(&s, &[], &[], t(900));
    assert_eq!(count(&page, "<div class=\"pool"), 100);
    assert_eq!(count(&page, "<svg "), 100);
    assert!(
        page.len() < 200 * 1024,
        "{} bytes for 100 pools",
        page.len()
    );
}

#[test]
fn sparklines_are_bounded_and_scaled() {
    let window = Duration::from_secs(900);
    let mut history = PoolHistory::default();
    let span = Duration::from_secs(600);
    assert_eq!(sparkline(&history, t(600), span), "");
    history.record(Sample::new(t(0), 5, 10), window);
    history.record(Sample::new(t(1), 6, 10), window);
    assert_eq!(
        sparkline(&history, t(600), span),
        "",
        "one slot of time is no line"
    );
    for secs in 2..=600 {
        history.record(Sample::new(t(secs), secs % 11, 10), window);
    }
    let svg = sparkline(&history, t(600), span);
    let points = svg
        .split("points=\"")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .expect("points");
    let ys: Vec<f64> = points
        .split(' ')
        .map(|xy| {
            xy.split(',')
                .nth(1)
                .and_then(|y| y.parse().ok())
                .expect("x,y")
        })
        .collect();
    assert!(
        ys.len() <= BUCKETS && ys.len() > BUCKETS / 2,
        "{}",
        ys.len()
    );
    // Each bucket shows its highest value: 10 of a capacity of 10, at the top.
    assert!(ys.iter().all(|y| (0.0..=30.0).contains(y)));
    assert!(ys.iter().any(|y| *y <= 1.01), "{points}");
    assert!(
        svg.contains("y1=\"1.0\""),
        "capacity line at the top: {svg}"
    );
}

#[test]
fn silences_muted_alerts_and_a_linked_server_side_are_shown_escaped() {
    let mut muted = alert("PoolNearFull", Severity::Critical, "firing", "full", 100);
    muted.silenced_by = vec!["s1".into()];
    let mut inhibited = alert(
        "PoolUtilizationHigh",
        Severity::Warning,
        "firing",
        "warm",
        100,
    );
    inhibited.inhibited_by = vec!["fp".into()];
    let silence = |id: &str, ends: u64| Silence {
        id: id.into(),
        matchers: vec!["target=\"orders-db\"".into()],
        created_by: "ana <oncall>".into(),
        comment: "deploy".into(),
        starts_at: t(0),
        ends_at: t(ends),
    };
    let mut app = pool("checkout", 10, 10);
    app.server_side =
        Some("server orders-db: 10 connections from application_name=<checkout>".into());
    let s = store(&["checkout"], vec![up("checkout", t(0), vec![app])]);
    let silences = [silence("s1", 400), silence("gone", 100)];
    let page = render(&s, &[muted, inhibited], &silences, t(200));
    assert_eq!(count(&page, "<br>silenced"), 1);
    assert_eq!(count(&page, "<br>inhibited"), 1);
    // The active silence only, escaped, with the time it has left.
    assert!(page.contains("<section id=\"silences\">"), "{page}");
    assert_eq!(count(&page, "target=&quot;orders-db&quot;"), 1, "{page}");
    assert!(page.contains("ana &lt;oncall&gt;") && page.contains(">3m 20s<"));
    assert!(page.contains("application_name=&lt;checkout&gt;"));
    // No silence, no section.
    assert!(!render(&s, &[], &silences[1..], t(200)).contains("id=\"silences\""));
}
