//! `alerts/dashboard.json`, valid by construction since no Grafana runs here: its structure
//! (schema version, unique panel ids on a 24-column grid without overlaps, the datasource,
//! target, kind and pool variables, the capacity-change annotation), and every PromQL
//! expression in it parsed by `promtool` (each wrapped in a recording rule). That they name
//! only what poolwatch exports is checked against a real scrape in `exported.rs`.

use serde_json::Value;

use crate::promql::substitute_grafana;
use crate::tools::{promtool, repo_file};

/// The dashboard, parsed.
pub fn dashboard() -> Value {
    let text = std::fs::read_to_string(repo_file("alerts/dashboard.json")).expect("read dashboard");
    serde_json::from_str(&text).expect("alerts/dashboard.json is JSON")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map_or(&[], Vec::as_slice)
}

/// Every PromQL expression of panels and annotations, with Grafana's variables substituted:
/// `(where, expression)`.
pub fn expressions() -> Vec<(String, String)> {
    let d = dashboard();
    let mut out = Vec::new();
    for panel in list(&d, "panels") {
        for target in list(panel, "targets") {
            let expr = target["expr"].as_str().expect("a target without expr");
            let place = format!("panel {:?} {}", panel["title"], target["refId"]);
            out.push((
                place,
                substitute_grafana(expr).unwrap_or_else(|e| panic!("{e}")),
            ));
        }
    }
    for annotation in list(&d["annotations"], "list") {
        if let Some(expr) = annotation["expr"].as_str() {
            let place = format!("annotation {:?}", annotation["name"]);
            out.push((
                place,
                substitute_grafana(expr).unwrap_or_else(|e| panic!("{e}")),
            ));
        }
    }
    out
}

/// The query variables' `label_values(SELECTOR, LABEL)`: `(variable, selector, label)`.
pub fn label_values() -> Vec<(String, String, String)> {
    let pattern = regex::Regex::new(r"^label_values\((.+),\s*(\w+)\)$").expect("regex");
    let d = dashboard();
    list(&d["templating"], "list")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let name = v["name"].as_str().expect("variable name").to_owned();
            let query = v["query"].as_str().expect("variable query");
            let c = pattern.captures(query).unwrap_or_else(|| {
                panic!("variable {name}: not label_values(selector, label): {query}")
            });
            let selector = substitute_grafana(&c[1]).unwrap_or_else(|e| panic!("{e}"));
            (name, selector, c[2].to_owned())
        })
        .collect()
}

#[test]
fn the_dashboard_is_importable_grafana_json() {
    let d = dashboard();
    assert!(
        d["schemaVersion"].as_u64().unwrap_or(0) >= 36,
        "schemaVersion"
    );
    for key in ["uid", "title"] {
        assert!(!d[key].as_str().unwrap_or("").is_empty(), "{key}");
    }
    let panels = list(&d, "panels");
    let mut ids = std::collections::BTreeSet::new();
    let mut cells = std::collections::BTreeSet::new();
    for p in panels {
        let title = &p["title"];
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate id: {title}"
        );
        let g = &p["gridPos"];
        let [h, w, x, y] = ["h", "w", "x", "y"].map(|k| g[k].as_u64().expect("gridPos"));
        assert!(h > 0 && w > 0 && x + w <= 24, "{title}: gridPos {g}");
        for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
            assert!(
                cells.insert(cell),
                "{title} overlaps another panel at {cell:?}"
            );
        }
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "{title}: datasource"
        );
        let targets = list(p, "targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "{title}: target datasource"
            );
        }
        let refs: std::collections::BTreeSet<_> =
            targets.iter().map(|t| t["refId"].to_string()).collect();
        assert_eq!(refs.len(), targets.len(), "{title}: refIds not unique");
    }
    let variables = list(&d["templating"], "list");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    for name in ["target", "kind", "pool"] {
        assert_eq!(variable(name)["type"], "query", "${name}");
        assert_eq!(
            variable(name)["datasource"]["uid"],
            "${datasource}",
            "${name}"
        );
    }
    let annotations = list(&d["annotations"], "list");
    assert!(
        annotations.iter().any(|a| a["expr"]
            .as_str()
            .is_some_and(|e| e.contains("configured_capacity"))),
        "no capacity-change annotation"
    );
    // The panels the dashboard exists for.
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for want in ["utilization", "waiting", "longest wait", "Alerts"] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no panel about {want}: {titles:?}"
        );
    }
}

#[test]
fn every_dashboard_expression_parses() {
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut places = Vec::new();
    for (place, expr) in expressions() {
        places.push(place);
        let json = serde_json::to_string(&expr).expect("json string");
        rules.push_str(&format!(
            "      - record: dashboard:expression_{}\n        expr: {json}\n",
            places.len()
        ));
    }
    for (variable, selector, _) in label_values() {
        places.push(format!("variable {variable}"));
        let json = serde_json::to_string(&selector).expect("json string");
        rules.push_str(&format!(
            "      - record: dashboard:expression_{}\n        expr: {json}\n",
            places.len()
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("dashboard.rules.yml");
    std::fs::write(&file, &rules).expect("write rules");
    let out = promtool(&["check", "rules", &file.display().to_string()]);
    assert!(
        out.contains(&format!("SUCCESS: {} rules found", places.len())),
        "{out}\n{places:#?}"
    );
}
