use super::*;
use crate::dispatch::fixtures::route;
use crate::rules::fixtures::labels;

/// root(default)
/// ├── db: target=~"db-.*"            (stops)
/// │   └── dba-critical: severity="critical" (continue)
/// │   └── dba-all: team="dba"
/// ├── audit: team!="" (continue)  — never reached for db-* alerts
/// └── app: kind="app"
fn tree() -> RouteTree {
    RouteTree::new(route(
        "default",
        &[],
        false,
        vec![
            route(
                "db",
                &[r#"target=~"db-.*""#],
                false,
                vec![
                    route("dba-critical", &[r#"severity="critical""#], true, vec![]),
                    route("dba-all", &[r#"team="dba""#], false, vec![]),
                ],
            ),
            route("audit", &[r#"team!="""#], true, vec![]),
            route("app", &[r#"kind="app""#], false, vec![]),
        ],
    ))
}

fn receivers(tree: &RouteTree, pairs: &[(&str, &str)]) -> Vec<String> {
    tree.matching(&labels(pairs))
        .into_iter()
        .map(|i| tree.nodes()[i].route.receiver.clone().unwrap_or_default())
        .collect()
}

/// (name, alert labels, receivers in match order)
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

#[test]
fn matching_table() {
    let t = tree();
    #[rustfmt::skip]
    let cases: &[Case] = &[
        ("nothing matches below: the root takes it", &[("target", "web")], &["default"]),
        ("first matching child, no children match: the child", &[("target", "db-1")], &["db"]),
        ("grandchild with continue, then its next sibling", &[("target", "db-1"), ("severity", "critical"), ("team", "dba")], &["dba-critical", "dba-all"]),
        ("continue without a later match", &[("target", "db-1"), ("severity", "critical")], &["dba-critical"]),
        ("a stopping match hides later siblings", &[("target", "db-1"), ("team", "x")], &["db"]),
        ("continue then a later sibling", &[("target", "web"), ("team", "x"), ("kind", "app")], &["audit", "app"]),
        ("continue only", &[("target", "web"), ("team", "x")], &["audit"]),
        ("a later sibling alone", &[("kind", "app")], &["app"]),
    ];
    for (name, pairs, want) in cases {
        assert_eq!(receivers(&t, pairs), *want, "{name}");
    }
}

#[test]
fn keys_follow_alertmanager() {
    let t = tree();
    let keys: Vec<&str> = t.nodes().iter().map(|n| n.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "{}",
            r#"{}/{target=~"db-.*"}"#,
            r#"{}/{target=~"db-.*"}/{severity="critical"}"#,
            r#"{}/{target=~"db-.*"}/{team="dba"}"#,
            r#"{}/{team!=""}"#,
            r#"{}/{kind="app"}"#,
        ]
    );
}

#[test]
fn a_filter_is_a_matcher_outside_the_key() {
    let mut critical_only = route("pager", &[], true, vec![]);
    critical_only.filter = vec![Matcher::parse(r#"severity=~"critical""#).unwrap()];
    let mut root = route("default", &[], false, vec![critical_only]);
    root.receiver = None;
    let t = RouteTree::new(root);
    assert_eq!(t.nodes()[1].key, "{}/{}");
    assert_eq!(receivers(&t, &[("severity", "critical")]), ["pager"]);
    // Falls back to the root, which has no receiver: dropped.
    assert_eq!(receivers(&t, &[("severity", "warning")]), [""]);
}

#[test]
fn a_root_that_does_not_match_takes_nothing() {
    let t = RouteTree::new(route("r", &[r#"env="prod""#], false, vec![]));
    assert!(t.matching(&labels(&[("env", "dev")])).is_empty());
    assert_eq!(t.matching(&labels(&[("env", "prod")])), [0]);
}

#[test]
fn group_labels() {
    let l = labels(&[("alertname", "A"), ("target", "db"), ("pool", "p")]);
    assert_eq!(GroupBy::All.group_labels(&l), l);
    let by = GroupBy::Labels(vec!["target".into(), "missing".into()]);
    assert_eq!(by.group_labels(&l), labels(&[("target", "db")]));
    assert!(GroupBy::Labels(vec![]).group_labels(&l).is_empty());
}

#[test]
fn describe_prints_the_tree_indented_with_receivers_and_timing() {
    let mut root = tree();
    root = root.with_integrations([
        ("db".to_string(), vec!["webhook".to_string()]),
        (
            "dba-critical".to_string(),
            vec!["webhook".to_string(), "alertmanager".to_string()],
        ),
    ]);
    let lines = root.describe();
    assert_eq!(lines.len(), 6, "{lines:#?}");
    assert_eq!(
        lines[0],
        "{} -> default (), group_by [], wait 0ms, interval 0ms, repeat 1h"
    );
    assert!(lines[1].starts_with(r#"  {target=~"db-.*"} -> db (webhook), group_by"#));
    assert!(lines[2].starts_with(
        r#"    {severity="critical"} -> dba-critical (webhook, alertmanager), continue, "#
    ));
    assert!(lines[3].starts_with(r#"    {team="dba"} -> dba-all ()"#));
    assert!(lines[4].starts_with(r#"  {team!=""} -> audit (), continue"#));
    assert!(lines[5].starts_with(r#"  {kind="app"} -> app ()"#));
}
