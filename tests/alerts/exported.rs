//! What the rules and the dashboard name, against what poolwatch really exports: the real
//! binary polls a real PostgreSQL (server, role and database pools; a role at its limit, so an
//! alert is active) and a real PgBouncer (client, pool and database pools) and delivers to a
//! real receiver; its `/metrics` is the list of names and labels, not a hand-kept one. A real
//! Prometheus scrapes it, loads both rule files and evaluates every dashboard expression.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::common::pgbouncer::Database;
use crate::common::scenario::{create_monitor_role, header, receiver, target, MONITOR_ROLE};
use crate::common::{
    poll_until, ConnectionHold, PgBouncer, PgBouncerOptions, PgCluster, PgOptions, Poolwatch,
    Receiver, Sample,
};
use crate::dashboard::{expressions, label_values};
use crate::promql::{selectors, Selector};
use crate::tools::{Prometheus, RULE_FILES};

/// Every pool kind the scene makes poolwatch report.
const KINDS: [&str; 6] = [
    "server",
    "role",
    "database",
    "pgbouncer_clients",
    "pgbouncer_pool",
    "pgbouncer_database",
];

/// Series that are Prometheus' own, with the labels they may be filtered on.
const PROMETHEUS_SERIES: [(&str, &[&str]); 2] = [
    // An alert's labels: any the rules give it.
    ("ALERTS", &[]),
    ("up", &["job", "instance"]),
];

/// The real services and the daemon watching them.
struct Scene {
    _pg: PgCluster,
    _bouncer: PgBouncer,
    _app: ConnectionHold,
    _shop: crate::common::pgbouncer::ClientHold,
    _receiver: Receiver,
    pw: Poolwatch,
}

async fn scene() -> Scene {
    let pg = PgCluster::start(PgOptions::default()).await;
    create_monitor_role(&pg).await;
    // A role at its limit: PoolExhausted fires for it.
    pg.create_role("app", "app-pw", Some(2)).await;
    pg.create_role("shop", "shop-pw", None).await;
    pg.create_database("orders", Some(5)).await;
    let app = pg
        .hold_connections("app", 2, "checkout")
        .await
        .expect("hold app's 2 connections");
    let bouncer = PgBouncer::start(
        &pg,
        PgBouncerOptions {
            databases: vec![Database::new("appdb", "postgres").max_db_connections(3)],
            users: vec!["shop".into()],
            stats_users: vec![MONITOR_ROLE.into()],
            ..Default::default()
        },
    )
    .await;
    let shop = bouncer.hold_clients("shop", "appdb", 1);
    shop.wait_for(1, 0, Duration::from_secs(20)).await;
    let hook = Receiver::start().await;
    // PgBouncer linked to the server: the server pool has its budget series.
    let config = format!(
        "{}{}{}{}[[links]]\nfrom = \"bouncer\"\nserver = {{ target = \"pg\" }}\n",
        header(""),
        target("pg", pg.port(), ""),
        target("bouncer", bouncer.port(), "type = \"pgbouncer\"\n"),
        receiver("hook", &hook.url("/hook"), ""),
    );
    let pw = Poolwatch::start(&config).await;
    Scene {
        _pg: pg,
        _bouncer: bouncer,
        _app: app,
        _shop: shop,
        _receiver: hook,
        pw,
    }
}

/// Metric name → label names, from a scrape that shows every kind and an active alert.
async fn exported(pw: &Poolwatch) -> BTreeMap<String, BTreeSet<String>> {
    let samples = poll_until(Duration::from_secs(30), || async {
        let samples = pw.metrics().await.ok()?;
        let kinds: BTreeSet<&str> = samples
            .iter()
            .filter(|s| s.name == "poolwatch_pool_capacity")
            .filter_map(|s| s.labels.get("kind").map(String::as_str))
            .collect();
        let alert = samples.iter().any(|s| s.name == "poolwatch_alerts");
        let delivered = samples
            .iter()
            .any(|s| s.name == "poolwatch_notifications_delivered_total" && s.value > 0.0);
        (KINDS.iter().all(|k| kinds.contains(k)) && alert && delivered).then_some(samples)
    })
    .await
    .unwrap_or_else(|| panic!("no scrape with every kind {KINDS:?}, an alert and a delivery"));
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for Sample { name, labels, .. } in samples {
        out.entry(name).or_default().extend(labels.into_keys());
    }
    out
}

/// Whether `selector` names a series that exists here, filtered only on labels it has.
fn check(
    selector: &Selector,
    exported: &BTreeMap<String, BTreeSet<String>>,
    recorded: &BTreeSet<String>,
) -> Result<(), String> {
    if recorded.contains(&selector.name) {
        return Ok(());
    }
    let labels: BTreeSet<String> = match exported.get(&selector.name) {
        Some(labels) => labels.clone(),
        None => match PROMETHEUS_SERIES.iter().find(|(n, _)| *n == selector.name) {
            Some((_, [])) => return Ok(()),
            Some((_, labels)) => labels.iter().map(|l| l.to_string()).collect(),
            None => {
                return Err(format!(
                    "{} is not a metric poolwatch exports",
                    selector.name
                ))
            }
        },
    };
    match selector.labels.iter().find(|l| !labels.contains(*l)) {
        Some(l) => Err(format!(
            "{} has no label {l} (it has {labels:?})",
            selector.name
        )),
        None => Ok(()),
    }
}

#[tokio::test]
async fn the_rules_and_the_dashboard_name_only_what_poolwatch_exports() {
    let scene = scene().await;
    let exported = exported(&scene.pw).await;
    let prometheus = Prometheus::start(&RULE_FILES, Some(scene.pw.addr())).await;
    let rules = prometheus.rules().await;
    let recorded: BTreeSet<String> = rules
        .iter()
        .filter(|r| r["type"] == "recording")
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(recorded.len(), 5, "{recorded:?}");
    let mut named: Vec<(String, String)> = rules
        .iter()
        .map(|r| {
            (
                format!("rule {}", r["name"]),
                r["query"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    named.extend(expressions());
    named.extend(
        label_values()
            .into_iter()
            .map(|(v, s, _)| (format!("variable {v}"), s)),
    );
    let mut problems = Vec::new();
    for (place, expr) in &named {
        let found = selectors(expr).unwrap_or_else(|e| panic!("{place}: {e}"));
        assert!(!found.is_empty(), "{place}: no selector in {expr}");
        for selector in found {
            if let Err(e) = check(&selector, &exported, &recorded) {
                problems.push(format!("{place}: {e}"));
            }
        }
    }
    for (variable, selector, label) in label_values() {
        let name = &selectors(&selector).expect("selector")[0].name;
        if !exported.get(name).is_some_and(|l| l.contains(&label)) {
            problems.push(format!("variable {variable}: {name} has no label {label}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Prometheus itself evaluates every dashboard expression (a parse error is an error here).
    for (place, expr) in expressions() {
        let answer = prometheus.api("query", &[("query", &expr)]).await;
        assert!(answer.is_ok(), "{place}: {expr}: {answer:?}");
    }
}

/// The alerts Prometheus has firing: (alertname, labels, summary).
async fn firing(prometheus: &Prometheus) -> Vec<(String, BTreeMap<String, String>, String)> {
    let data = prometheus.api("alerts", &[]).await.unwrap_or(Value::Null);
    data["alerts"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(a["labels"].clone()).unwrap_or_default();
            let summary = a["annotations"]["summary"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            (
                labels.get("alertname").cloned().unwrap_or_default(),
                labels,
                summary,
            )
        })
        .collect()
}

#[tokio::test]
async fn prometheus_scraping_poolwatch_fires_pool_exhausted_with_the_numbers() {
    let scene = scene().await;
    let prometheus = Prometheus::start(&RULE_FILES, Some(scene.pw.addr())).await;
    let found = poll_until(Duration::from_secs(30), || async {
        firing(&prometheus)
            .await
            .into_iter()
            .find(|(name, labels, _)| {
                name == "PoolExhausted" && labels.get("kind").map(String::as_str) == Some("role")
            })
    })
    .await;
    let Some((_, labels, summary)) = found else {
        let all = firing(&prometheus).await;
        panic!("PoolExhausted never fired in Prometheus; firing: {all:?}");
    };
    assert_eq!(labels.get("pool").map(String::as_str), Some("app"));
    assert_eq!(labels.get("severity").map(String::as_str), Some("critical"));
    assert_eq!(summary, "pg role app: 2/2 usable connections in use (100%)");
    // The recording rules have data from the real scrape.
    let query = r#"poolwatch:pool_utilization_ratio:max5m{kind="role",pool="app"}"#;
    let recorded = poll_until(Duration::from_secs(20), || async {
        let data = prometheus.api("query", &[("query", query)]).await.ok()?;
        (data["result"][0]["value"][1] == "1").then_some(())
    })
    .await;
    assert!(
        recorded.is_some(),
        "{query} never 1: {:?}",
        prometheus.api("query", &[("query", query)]).await
    );
}
