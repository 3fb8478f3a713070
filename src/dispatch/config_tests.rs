use super::*;
use crate::rules::fixtures::labels;
use crate::settings::{parse, Config};
use std::path::Path;

const RECEIVERS: &str = r#"
[[targets]]
name = "db"
type = "postgres"
host = "127.0.0.1"
user = "poolwatch"

[[receivers]]
name = "oncall"
[[receivers.integrations]]
type = "webhook"
url = "http://127.0.0.1:9/a"

[[receivers]]
name = "dba"
severities = ["critical"]
send_resolved = false
[[receivers.integrations]]
type = "webhook"
url = "http://127.0.0.1:9/b"
"#;

fn config(route: &str) -> Result<Config, Vec<String>> {
    parse(Path::new("c.toml"), &format!("{RECEIVERS}{route}"))
        .map_err(|ps| ps.iter().map(|p| p.to_string()).collect())
}

fn tree(route: &str) -> RouteTree {
    config(route).unwrap_or_else(|e| panic!("{e:?}")).routes
}

/// (receiver, key, group_by, wait, interval, repeat, send_resolved) of every route.
fn summary(t: &RouteTree) -> Vec<(String, String, GroupBy, u64, u64, u64, bool)> {
    t.nodes()
        .iter()
        .map(|n| {
            let r = &n.route;
            (
                r.receiver.clone().unwrap_or_default(),
                n.key.clone(),
                r.group_by.clone(),
                r.timing.group_wait.as_secs(),
                r.timing.group_interval.as_secs(),
                r.timing.repeat_interval.as_secs(),
                r.send_resolved,
            )
        })
        .collect()
}

#[test]
fn without_route_every_receiver_gets_every_alert_of_its_severities_at_once() {
    let t = tree("");
    let s = summary(&t);
    assert_eq!(
        s[1],
        (
            "oncall".into(),
            "{}/{}".into(),
            GroupBy::All,
            0,
            0,
            4 * 3600,
            true
        )
    );
    assert_eq!(
        s[2],
        (
            "dba".into(),
            "{}/{}".into(),
            GroupBy::All,
            0,
            0,
            4 * 3600,
            false
        )
    );
    let to = |pairs: &[(&str, &str)]| -> Vec<String> {
        t.matching(&labels(pairs))
            .into_iter()
            .filter_map(|i| t.nodes()[i].route.receiver.clone())
            .collect()
    };
    assert_eq!(to(&[("severity", "critical")]), ["oncall", "dba"]);
    assert_eq!(to(&[("severity", "warning")]), ["oncall"]);
}

#[test]
fn settings_are_inherited_and_defaults_are_alertmanager_s() {
    let t = tree(
        r#"
[alerting]
repeat_interval = "2h"

[route]
receiver = "oncall"
group_by = ["target", "alertname"]

[[route.routes]]
matchers = ['severity="critical"']
receiver = "dba"
group_wait = "5s"
continue = true

[[route.routes.routes]]
matchers = ['kind="role"']
group_by = ["..."]
send_resolved = true

[[route.routes]]
matchers = ['target=~"orders-.*"']
repeat_interval = "10m"
"#,
    );
    let by = GroupBy::Labels(vec!["alertname".into(), "target".into()]);
    assert_eq!(
        summary(&t),
        [
            (
                "oncall".into(),
                "{}".into(),
                by.clone(),
                30,
                300,
                7200,
                true
            ),
            (
                "dba".into(),
                r#"{}/{severity="critical"}"#.into(),
                by.clone(),
                5,
                300,
                7200,
                false
            ),
            (
                "dba".into(),
                r#"{}/{severity="critical"}/{kind="role"}"#.into(),
                GroupBy::All,
                5,
                300,
                7200,
                true
            ),
            (
                "oncall".into(),
                r#"{}/{target=~"orders-.*"}"#.into(),
                by,
                30,
                300,
                600,
                true
            ),
        ]
    );
    assert!(t.nodes()[1].route.continue_matching);
    // dba's severities are a matcher on its routes.
    assert!(!t.nodes()[1].route.filter.is_empty() && t.nodes()[0].route.filter.is_empty());
}

#[test]
fn problems_are_located() {
    let cases: &[(&str, &str)] = &[
        ("[route]\ngroup_wait = \"1s\"\n", "route.receiver: the root route needs a receiver"),
        ("[route]\nreceiver = \"nobody\"\n", "route.receiver: no receiver is named \"nobody\"; receivers are \"oncall\", \"dba\""),
        ("[route]\nreceiver = \"oncall\"\nmatchers = ['a=\"b\"']\n", "route.matchers: the root route takes every alert"),
        ("[route]\nreceiver = \"oncall\"\ncontinue = true\n", "route.continue: the root route has no siblings"),
        ("[route]\nreceiver = \"oncall\"\n[[route.routes]]\nmatchers = ['severity=critical']\n", "route.routes[0].matchers[0]: the value in matcher"),
        ("[route]\nreceiver = \"oncall\"\n[[route.routes]]\nreceiver = \"x\"\n", "route.routes[0].receiver: no receiver is named \"x\""),
        ("[route]\nreceiver = \"oncall\"\ngroup_by = [\"...\", \"target\"]\n", "route.group_by: \"...\" groups by every label"),
        ("[route]\nreceiver = \"oncall\"\ngroup_by = [\"bad-name\"]\n", "route.group_by[0]: \"bad-name\" is not a label name"),
        ("[route]\nreceiver = \"oncall\"\nrepeat_interval = \"0s\"\n", "route.repeat_interval: must be greater than 0"),
        ("[route]\nreceiver = \"oncall\"\ngroup_wait = \"soon\"\n", "route.group_wait"),
        ("[route]\nreceiver = \"oncall\"\nmystery = 1\n", "route.mystery"),
        ("[route]\nreceiver = \"oncall\"\n[[route.routes]]\n[[route.routes.routes]]\nmatchers = ['x=~\"(\"']\n", "route.routes[0].routes[0].matchers[0]: invalid regex"),
    ];
    for (route, want) in cases {
        let errs = config(route).expect_err(route);
        assert!(
            errs.iter()
                .any(|e| e.starts_with("c.toml:") && e.contains(want)),
            "{route}\nwant {want}\ngot {errs:?}"
        );
    }
}

#[test]
fn problems_carry_a_line_and_column() {
    let errs =
        config("[route]\nreceiver = \"oncall\"\n[[route.routes]]\nreceiver = \"x\"\n").unwrap_err();
    let line = RECEIVERS.lines().count() + 4;
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("c.toml:{line}:"))),
        "{errs:?}"
    );
}
