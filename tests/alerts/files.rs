//! The files of `alerts/` through the real tools: `promtool check rules`, `promtool test rules`
//! (and that those tests cover every rule, firing and not firing), `amtool check-config` and
//! where `amtool config routes test` sends each kind of alert.

use std::collections::BTreeSet;

use crate::tools::{promtool, repo_file, run_tool, Prometheus, RULE_FILES};

/// The unit test files of `alerts/tests/`, by path from the repository's top.
fn unit_test_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo_file("alerts/tests"))
        .expect("alerts/tests")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".yml"))
        .map(|name| format!("alerts/tests/{name}"))
        .collect();
    files.sort();
    files
}

#[test]
fn promtool_checks_the_rule_files() {
    let out = promtool(&["check", "rules", RULE_FILES[0], RULE_FILES[1]]);
    assert!(out.contains("SUCCESS: 13 rules found"), "{out}");
    assert!(out.contains("SUCCESS: 5 rules found"), "{out}");
}

#[test]
fn promtool_unit_tests_pass() {
    let files = unit_test_files();
    assert!(files.len() >= 6, "{files:?}");
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let out = promtool(&args);
    assert_eq!(out.matches("SUCCESS").count(), files.len(), "{out}");
}

/// Alert names of the unit tests, each with whether some case expects it firing and some
/// expects it quiet (`exp_alerts: []`); recording rules named in `promql_expr_test`s.
fn covered() -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    let mut recorded = BTreeSet::new();
    for file in unit_test_files() {
        let text = std::fs::read_to_string(repo_file(&file)).expect("read test file");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if let Some(name) = line.strip_prefix("alertname: ") {
                match lines.get(i + 1) {
                    Some(&"exp_alerts: []") => quiet.insert(name.to_owned()),
                    Some(&"exp_alerts:") => firing.insert(name.to_owned()),
                    other => panic!("{file}: `alertname: {name}` followed by {other:?}"),
                };
            }
            if let Some(expr) = line.strip_prefix("- expr: ") {
                let name = expr.split(['{', ' ']).next().unwrap_or_default();
                recorded.insert(name.to_owned());
            }
        }
    }
    (firing, quiet, recorded)
}

#[tokio::test]
async fn every_rule_has_unit_tests_firing_and_not_firing() {
    let prometheus = Prometheus::start(&RULE_FILES, None).await;
    let (firing, quiet, recorded) = covered();
    let mut missing = Vec::new();
    for rule in prometheus.rules().await {
        let name = rule["name"].as_str().unwrap_or_default().to_owned();
        if rule["type"] == "alerting" {
            if !firing.contains(&name) {
                missing.push(format!("{name}: no case where it fires"));
            }
            if !quiet.contains(&name) {
                missing.push(format!("{name}: no case where it stays quiet"));
            }
        } else if !recorded.contains(&name) {
            missing.push(format!("{name}: no promql_expr_test"));
        }
    }
    assert!(
        missing.is_empty(),
        "alerts/tests/ misses:\n  {}",
        missing.join("\n  ")
    );
}

fn amtool(args: &[&str]) -> (bool, String) {
    let out = run_tool("amtool", "POOLWATCH_TEST_AMTOOL", args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn amtool_accepts_the_alertmanager_example() {
    let (ok, out) = amtool(&["check-config", "alerts/alertmanager.example.yml"]);
    assert!(ok && out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_alertmanager_example_routes_poolwatch_alerts_by_severity() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["alertname=PoolExhausted", "severity=critical"],
            "database-oncall",
        ),
        (
            &["alertname=TargetDown", "severity=critical"],
            "database-oncall",
        ),
        (
            &["alertname=PoolUtilizationHigh", "severity=warning"],
            "database-team",
        ),
        (
            &["alertname=PoolExhaustionPredicted", "severity=warning"],
            "database-team",
        ),
        // Another project's TargetDown (kube-prometheus) is not poolwatch's.
        (
            &[
                "alertname=TargetDown",
                "severity=critical",
                "component=kubernetes",
            ],
            "default",
        ),
    ];
    for (labels, receiver) in cases {
        let verify = format!("--verify.receivers={receiver}");
        let mut args = vec![
            "config",
            "routes",
            "test",
            "--config.file=alerts/alertmanager.example.yml",
            &verify,
        ];
        let mut with_component: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        if !labels.iter().any(|l| l.starts_with("component=")) {
            with_component.push("component=poolwatch".into());
        }
        args.extend(with_component.iter().map(String::as_str));
        let (ok, out) = amtool(&args);
        assert!(ok, "{labels:?} should go to {receiver}: {out}");
    }
}
