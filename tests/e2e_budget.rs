//! End-to-end: `poolwatch budget`, the real binary against a real PostgreSQL cluster
//! (`max_connections` 40, 3 reserved: 37 usable; role `app` limited to 35) and a real PgBouncer
//! in front of it whose two pools (`appdb/app` of 25 and `reports/app` of 20, opened by one
//! client each) may open 45 server connections: over the server and over the role.
//! A proposal for an application known only by its link is checked the same way. The daemon
//! watching the same services fires the built-in `PoolBudgetExceeded` with the numbers, and
//! resolves it once PgBouncer's pools are made to fit.

mod common;

use common::pgbouncer::Database;
use common::scenario::{
    bouncer_with_cluster, expect_metric, header, notifications, receiver, target, Notification,
    WAIT,
};
use common::{run_cli, ConfigFile, PgBouncer, PgBouncerOptions, PgCluster, Poolwatch, Receiver};
use serde_json::Value;

/// The PostgreSQL target's name.
const SERVER: &str = "orders-db";
/// The PgBouncer target's name.
const BOUNCER: &str = "bouncer";

/// The cluster and the PgBouncer with both pools open, and the clients that keep them open.
async fn over_committed_bouncer() -> (PgCluster, PgBouncer, Vec<common::pgbouncer::ClientHold>) {
    let databases = vec![
        Database::new("appdb", "postgres").pool_size(25),
        Database::new("reports", "postgres").pool_size(20),
    ];
    let (pg, pgb) = bouncer_with_cluster("app", databases, PgBouncerOptions::default()).await;
    pg.exec("ALTER ROLE app CONNECTION LIMIT 35").await;
    let holds: Vec<_> = ["appdb", "reports"]
        .iter()
        .map(|db| pgb.hold_clients("app", db, 1))
        .collect();
    for h in &holds {
        h.wait_for(1, 0, WAIT).await;
    }
    (pg, pgb, holds)
}

/// Targets for the server and the PgBouncer, then `links`.
fn config(pg: &PgCluster, pgb: &PgBouncer, links: &str) -> ConfigFile {
    ConfigFile::new(
        &[
            header(""),
            target(SERVER, pg.port(), ""),
            target(BOUNCER, pgb.port(), "type = \"pgbouncer\"\n"),
            links.to_string(),
        ]
        .concat(),
    )
}

const BOUNCER_LINK: &str = "[[links]]\nfrom = \"bouncer\"\nserver = { target = \"orders-db\" }\n\n";
const CHECKOUT_LINK: &str =
    "[[links]]\nfrom = \"checkout\"\nserver = { target = \"orders-db\", role = \"app\" }\n\n";

async fn budget(file: &ConfigFile, extra: &[&str]) -> (Option<i32>, String, String) {
    let path = file.path().to_str().expect("UTF-8 path");
    let mut args = vec!["budget", "--config", path];
    args.extend(extra);
    let out = run_cli(&args).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn pgbouncer_pools_over_the_server_exit_1_with_the_numbers() {
    let (pg, pgb, _holds) = over_committed_bouncer().await;
    let file = config(&pg, &pgb, BOUNCER_LINK);
    let (code, out, err) = budget(&file, &[]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with(
            "orders-db: 45 committed of 37 (max_connections 40, 3 reserved for superusers"
        ) && lines[0].ends_with("): OVER by 8"),
        "{out}"
    );
    assert_eq!(
        lines[1].split_whitespace().take(3).collect::<Vec<_>>(),
        ["25", "bouncer", "pgbouncer_pool"],
        "{out}"
    );
    assert!(lines[1].ends_with("appdb/app: pool_size 25"), "{out}");
    assert!(lines[2].ends_with("reports/app: pool_size 20"), "{out}");
    assert_eq!(
        lines[3], "orders-db role app: 45 committed of 35 (role connection limit 35): OVER by 10",
        "{out}"
    );
    assert_eq!(lines.last(), Some(&"verdict: over-committed"), "{out}");

    let (code, out, err) = budget(&file, &["--json"]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    let doc: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(doc["over_committed"], true);
    let server = &doc["lines"][0];
    assert_eq!(
        (
            &server["subject"],
            &server["demand"],
            &server["ceiling"],
            &server["headroom"],
            &server["over"]
        ),
        (
            &Value::from("orders-db"),
            &Value::from(45),
            &Value::from(37),
            &Value::from(-8),
            &Value::from(true)
        )
    );
    let sizes: Vec<(&str, u64)> = server["contributors"]
        .as_array()
        .expect("contributors")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or(""),
                c["size"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        sizes,
        [
            ("bouncer pgbouncer_pool appdb/app", 25),
            ("bouncer pgbouncer_pool reports/app", 20)
        ]
    );
}

#[tokio::test]
async fn a_proposal_that_fits_exits_0_and_one_that_does_not_exits_1() {
    let (pg, pgb, _holds) = over_committed_bouncer().await;
    let file = config(&pg, &pgb, CHECKOUT_LINK);
    // (proposal, exit code, first line)
    let cases = [
        (
            "checkout=10x3",
            0,
            "orders-db role app: 30 committed of 35 (role connection limit 35): fits, 5 spare",
        ),
        (
            "checkout=10x4",
            1,
            "orders-db role app: 40 committed of 35 (role connection limit 35): OVER by 5",
        ),
    ];
    for (proposal, want, line) in cases {
        let (code, out, err) = budget(&file, &["--propose", proposal]).await;
        assert_eq!(code, Some(want), "{proposal}: {out}{err}");
        assert!(out.lines().any(|l| l == line), "{proposal}: {out}");
        assert!(
            out.contains("checkout: 10 × "),
            "{proposal}: the proposal is shown: {out}"
        );
    }
    // Behind PgBouncer, an application's connections are PgBouncer's clients.
    let web = config(
        &pg,
        &pgb,
        "[[links]]\nfrom = \"web\"\npgbouncer = { target = \"bouncer\", pool = \"appdb/app\" }\n",
    );
    for (proposal, want, line) in [
        (
            "web=30x3",
            0,
            "bouncer: 90 committed of 100 (max_client_conn 100, 1 held by admin console sessions): fits, 10 spare",
        ),
        (
            "web=30x4",
            1,
            "bouncer: 120 committed of 100 (max_client_conn 100, 1 held by admin console sessions): OVER by 20",
        ),
    ] {
        let (code, out, err) = budget(&web, &["--propose", proposal]).await;
        assert_eq!(code, Some(want), "{proposal}: {out}{err}");
        assert_eq!(out.lines().next(), Some(line), "{proposal}: {out}");
    }
    // Without a proposal the application is not counted: the gate cannot say it fits.
    let (code, out, err) = budget(&file, &[]).await;
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(
        out.contains("not counted: checkout: no application pool seen"),
        "{out}"
    );
}

#[tokio::test]
async fn usage_and_config_errors_exit_2() {
    let (pg, pgb, _holds) = over_committed_bouncer().await;
    let file = config(&pg, &pgb, CHECKOUT_LINK);
    let (code, _, err) = budget(&file, &["--propose", "chekout=10x3"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--propose chekout=10x3: no [[links]] entry from application \"chekout\""),
        "{err}"
    );
    let (code, _, err) = budget(&file, &["--propose", "checkout=10x0"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("replicas must be at least 1"), "{err}");
    let bad = config(
        &pg,
        &pgb,
        "[[links]]\nfrom = \"checkout\"\nserver = { target = \"orders\" }\n",
    );
    let (code, _, err) = budget(&bad, &[]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("links[0].server.target: unknown target \"orders\""),
        "{err}"
    );
}

/// The `PoolBudgetExceeded` notifications of `target` so far, once there are `n`.
async fn budget_pages(hook: &Receiver, n: usize) -> Vec<Notification> {
    let pages = |r: &[common::receiver::RecordedRequest]| -> Vec<Notification> {
        notifications(r)
            .into_iter()
            .filter(|n| n.alertname == "PoolBudgetExceeded")
            .collect()
    };
    let arrived = hook.wait_for(|r| pages(r).len() >= n, WAIT).await;
    let got = pages(&hook.requests());
    assert!(
        arrived,
        "expected {n} PoolBudgetExceeded notifications, got {got:?}"
    );
    got
}

#[tokio::test]
async fn the_daemon_fires_pool_budget_exceeded_with_the_numbers_and_resolves_it() {
    let (pg, pgb, _holds) = over_committed_bouncer().await;
    let hook = Receiver::start().await;
    let config = [
        header(""),
        target(SERVER, pg.port(), ""),
        target(BOUNCER, pgb.port(), "type = \"pgbouncer\"\n"),
        receiver("oncall", &hook.url("/hook"), ""),
        BOUNCER_LINK.to_string(),
    ]
    .concat();
    let pw = Poolwatch::start(&config).await;
    let server = [("target", SERVER), ("kind", "server"), ("pool", "server")];
    expect_metric(&pw, "poolwatch_pool_budget_demand", &server, 45.0).await;
    expect_metric(&pw, "poolwatch_pool_budget_excess", &server, 8.0).await;
    let (status, body) = pw.get("/api/v1/pools").await;
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).expect("JSON");
    let pools = doc["data"]["pools"].as_array().expect("pools");
    let found = pools
        .iter()
        .find(|p| p["target"] == SERVER && p["kind"] == "server")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(found["budget"]["demand"], 45, "{found:#}");
    assert_eq!(
        found["budget"]["contributors"],
        "bouncer pgbouncer_pool appdb/app 25, bouncer pgbouncer_pool reports/app 20"
    );
    assert!(
        pools
            .iter()
            .any(|p| p["kind"] == "pgbouncer_pool" && p["budget"].is_null()),
        "{body}"
    );
    let mut fired = budget_pages(&hook, 2).await;
    fired.sort_by(|a, b| a.summary.cmp(&b.summary));
    let contributors = "bouncer pgbouncer_pool appdb/app 25, bouncer pgbouncer_pool reports/app 20";
    let got: Vec<(&str, &str, &str)> = fired
        .iter()
        .map(|n| (n.status.as_str(), n.severity.as_str(), n.summary.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "firing",
                "warning",
                "orders-db role app: the pools linked to it may open 45 connections, over its 35"
            ),
            (
                "firing",
                "warning",
                "orders-db: the pools linked to it may open 45 connections, over its 37"
            ),
        ]
    );
    for n in &fired {
        assert!(
            n.description.starts_with(&format!("{contributors}; ")),
            "{}",
            n.description
        );
    }
    assert!(
        fired[1]
            .description
            .contains("; max_connections 40, 3 reserved for superusers"),
        "{}",
        fired[1].description
    );

    // PgBouncer's reports pool shrinks to 5: 30 fit both the server (37) and the role (35).
    pgb.set_database(Database::new("reports", "postgres").pool_size(5));
    pgb.reload().await;
    let all = budget_pages(&hook, 4).await;
    let mut resolved: Vec<(&str, &str)> = all[2..]
        .iter()
        .map(|n| {
            assert_eq!(n.status, "resolved", "{n:?}");
            let (subject, rest) = n
                .summary
                .split_once(": PoolBudgetExceeded cleared after ")
                .unwrap_or_else(|| panic!("{}", n.summary));
            let numbers = rest.split_once("; ").map_or("", |(_, numbers)| numbers);
            (subject, numbers)
        })
        .collect();
    resolved.sort();
    assert_eq!(
        resolved,
        [
            (
                "orders-db",
                "the pools linked to it may open 30 of its 37 connections now"
            ),
            (
                "orders-db role app",
                "the pools linked to it may open 30 of its 35 connections now"
            ),
        ]
    );
    expect_metric(&pw, "poolwatch_pool_budget_excess", &server, -7.0).await;
}

#[tokio::test]
async fn snapshot_and_check_config_show_links_and_the_budget() {
    let (pg, pgb, _holds) = over_committed_bouncer().await;
    let file = config(&pg, &pgb, BOUNCER_LINK);
    let path = file.path().to_str().expect("UTF-8 path");
    let out = run_cli(&["check-config", path]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("links (1):\n  bouncer → server orders-db\n"),
        "{stdout}"
    );
    let out = run_cli(&["snapshot", "--config", path]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let budget = "      budget        45 committed of 37: bouncer pgbouncer_pool appdb/app 25, bouncer pgbouncer_pool reports/app 20";
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == budget)
        .unwrap_or_else(|| panic!("no budget line in\n{stdout}"));
    assert!(
        lines[at - 1]
            .split_whitespace()
            .take(2)
            .eq(["server", "server"]),
        "under the server pool: {stdout}"
    );
    assert!(
        lines.iter().any(|l| l.contains("PoolBudgetExceeded")
            && l.contains(
                "orders-db: the pools linked to it may open 45 connections, over its 37"
            )),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_reload_that_adds_or_removes_links_fires_or_resolves_the_budget() {
    let (pg, pgb, _holds) = over_committed_bouncer().await;
    let hook = Receiver::start().await;
    let base = [
        header(""),
        target(SERVER, pg.port(), ""),
        target(BOUNCER, pgb.port(), "type = \"pgbouncer\"\n"),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat();
    let pw = Poolwatch::start(&base).await;
    let server = [("target", SERVER), ("kind", "server"), ("pool", "server")];
    expect_metric(&pw, "poolwatch_pool_configured_capacity", &server, 37.0).await;
    let samples = pw.metrics().await.expect("metrics");
    assert!(
        !samples
            .iter()
            .any(|s| s.name.starts_with("poolwatch_pool_budget")),
        "no links, no budget"
    );

    pw.config().write(&format!("{base}{BOUNCER_LINK}"));
    pw.sighup();
    let fired = budget_pages(&hook, 2).await;
    assert!(fired.iter().all(|n| n.status == "firing"), "{fired:?}");

    pw.config().write(&base);
    pw.sighup();
    let all = budget_pages(&hook, 4).await;
    let resolved: Vec<&str> = all[2..].iter().map(|n| n.status.as_str()).collect();
    assert_eq!(resolved, ["resolved", "resolved"], "{all:?}");
}
