//! End-to-end: pushed pool stats (`type = "push"`). A real Python application holding a real
//! psycopg_pool against a real PostgreSQL pushes `pool.get_stats()` to the real daemon, which
//! pages through a real webhook receiver. Waits are bounded polls for expected events.

mod common;

use common::push_apps::{expect_notified, Lang, PushApp, PushAppOptions};
use common::scenario::{expect_metric, header, metric, receiver, WAIT};
use common::{PgCluster, PgOptions, Poolwatch, Receiver};
use std::time::Duration;

const TOKEN: &str = "push-Zq9xK-token";

/// A push target `checkout` with a 2 s ttl and a token, reporting every 100 ms; TargetDown
/// after 300 ms; alerts to `hook`.
fn config(hook: &Receiver) -> String {
    [
        header(""),
        format!(
            "[[targets]]\nname = \"checkout\"\ntype = \"push\"\ninterval = \"100ms\"\n\
             ttl = \"2s\"\ntoken = \"{TOKEN}\"\n\n"
        ),
        "[[rules]]\nname = \"TargetDown\"\nfor = \"300ms\"\n\n".into(),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat()
}

fn options(pg: &PgCluster, pw: &Poolwatch, instance: &str) -> PushAppOptions {
    PushAppOptions {
        dsn: pg.url("postgres", "postgres"),
        url: pw.url("/api/v1/pools"),
        application: "checkout".into(),
        instance: instance.into(),
        token: Some(TOKEN.into()),
        max_size: 5,
        every: 0.2,
    }
}

const POOL: [(&str, &str); 3] = [("target", "checkout"), ("kind", "app"), ("pool", "default")];

async fn cluster() -> PgCluster {
    PgCluster::start(PgOptions {
        max_connections: 40,
        ..PgOptions::default()
    })
    .await
}

#[tokio::test]
async fn clients_waiting_in_a_psycopg_pool_page() {
    let pg = cluster().await;
    let hook = Receiver::start().await;
    let pw = Poolwatch::start(&config(&hook)).await;
    let app = PushApp::start(Lang::Python, &options(&pg, &pw, "web-1")).await;
    expect_metric(&pw, "poolwatch_pool_capacity", &POOL, 5.0).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "checkout")], 1.0).await;
    let mut app = app;
    // 20 requests on a pool of 5: 5 hold a connection, 15 wait in psycopg_pool's queue.
    app.load(20, Duration::from_secs(20)).await;
    expect_metric(&pw, "poolwatch_pool_in_use", &POOL, 5.0).await;
    expect_metric(&pw, "poolwatch_pool_waiting", &POOL, 15.0).await;
    let page = expect_notified(&hook, 0, "firing PoolClientsWaiting checkout").await;
    assert!(
        page.summary.contains("checkout app default"),
        "{}",
        page.summary
    );
    // The queue is real: psycopg_pool counted the requests that had to wait.
    let waits = metric(&pw, "poolwatch_pool_waits_total", &POOL).await;
    assert!(waits >= 15.0, "waits_total {waits}");
    assert!(app.quit().await, "the final push was refused");
}

#[tokio::test]
async fn requests_waiting_in_djangos_own_pool_page() {
    let pg = cluster().await;
    let hook = Receiver::start().await;
    let pw = Poolwatch::start(&config(&hook)).await;
    // Django 5.2 with OPTIONS {"pool": {"max_size": 5}}: the README's function pushes
    // django.db.connection.pool's stats.
    let mut app = PushApp::start(Lang::Django, &options(&pg, &pw, "django-1")).await;
    // OPTIONS {"pool": {"name": "default", ...}} names the pool (psycopg's default: pool-1).
    expect_metric(&pw, "poolwatch_pool_capacity", &POOL, 5.0).await;
    // 12 requests in threads of their own: 5 hold a connection, 7 wait in Django's pool.
    app.load(12, Duration::from_secs(20)).await;
    expect_metric(&pw, "poolwatch_pool_in_use", &POOL, 5.0).await;
    expect_metric(&pw, "poolwatch_pool_waiting", &POOL, 7.0).await;
    expect_notified(&hook, 0, "firing PoolClientsWaiting checkout").await;
    assert!(app.quit().await, "the final push was refused");
}

#[tokio::test]
async fn one_instance_whose_pool_ran_dry_pages_while_another_has_room() {
    let pg = cluster().await;
    let hook = Receiver::start().await;
    let pw = Poolwatch::start(&config(&hook)).await;
    let mut web1 = PushApp::start(Lang::Python, &options(&pg, &pw, "web-1")).await;
    let mut roomy = options(&pg, &pw, "web-2");
    roomy.max_size = 10;
    let web2 = PushApp::start(Lang::Python, &roomy).await;
    expect_metric(&pw, "poolwatch_pool_capacity", &POOL, 15.0).await;
    // 8 requests on web-1's pool of 5: 3 wait there, while web-2 has 10 free slots they
    // cannot use. Summed, waiting (3) is below free (10): the queue is counted per instance.
    web1.load(8, Duration::from_secs(20)).await;
    expect_metric(&pw, "poolwatch_pool_waiting", &POOL, 3.0).await;
    expect_metric(&pw, "poolwatch_pool_queued", &POOL, 3.0).await;
    assert_eq!(metric(&pw, "poolwatch_pool_in_use", &POOL).await, 5.0);
    expect_notified(&hook, 0, "firing PoolClientsWaiting checkout").await;
    assert!(
        web1.quit().await && web2.quit().await,
        "a final push was refused"
    );
}

#[tokio::test]
async fn instances_add_up_and_one_that_dies_goes_stale_then_all_gone_is_down() {
    let pg = cluster().await;
    let hook = Receiver::start().await;
    let pw = Poolwatch::start(&config(&hook)).await;
    let web1 = PushApp::start(Lang::Python, &options(&pg, &pw, "web-1")).await;
    let mut web2 = PushApp::start(Lang::Python, &options(&pg, &pw, "web-2")).await;
    expect_metric(&pw, "poolwatch_pool_capacity", &POOL, 10.0).await;
    // The per-instance size is the configured capacity: scaling out is no capacity change.
    expect_metric(&pw, "poolwatch_pool_configured_capacity", &POOL, 5.0).await;
    let fresh = [("target", "checkout"), ("state", "fresh")];
    expect_metric(&pw, "poolwatch_push_instances", &fresh, 2.0).await;

    // web-2 crashes: no last push; after the ttl it leaves the sums.
    web2.kill().await;
    expect_metric(&pw, "poolwatch_pool_capacity", &POOL, 5.0).await;
    let stale = [("target", "checkout"), ("state", "stale")];
    expect_metric(&pw, "poolwatch_push_instances", &stale, 1.0).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "checkout")], 1.0).await;

    // web-1 stops cleanly: it leaves at once, web-2 is long stale: nothing fresh is left.
    // (A slow start may have let the target go stale before the first push: what counts is
    // what is notified from here on.)
    let before = hook.requests().len();
    assert!(web1.quit().await, "the final push was refused");
    expect_metric(&pw, "poolwatch_target_up", &[("target", "checkout")], 0.0).await;
    let class = [("target", "checkout"), ("class", "stale")];
    pw.wait_for_metric("poolwatch_poll_errors_total", &class, |v| v >= 1.0, WAIT)
        .await
        .expect("stale poll errors");
    let down = expect_notified(&hook, before, "firing TargetDown checkout").await;
    assert!(down.summary.contains("(stale)"), "{}", down.summary);
    assert!(
        down.description
            .contains("no instance pushed within the ttl (2s)"),
        "{}",
        down.description
    );
    // Its series are gone rather than frozen at the last values.
    let gone = common::poll_until(WAIT, || async {
        let samples = pw.metrics().await.ok()?;
        let left = samples
            .iter()
            .any(|s| s.matches("poolwatch_pool_capacity", &POOL));
        (!left).then_some(())
    })
    .await;
    assert!(gone.is_some(), "the pool's series stayed");

    // An instance that comes back resolves it.
    let web3 = PushApp::start(Lang::Python, &options(&pg, &pw, "web-3")).await;
    expect_notified(&hook, before, "resolved TargetDown checkout").await;
    assert!(web3.quit().await, "the final push was refused");
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_nothing_is_stored() {
    let pg = cluster().await;
    let hook = Receiver::start().await;
    let pw = Poolwatch::start(&config(&hook)).await;
    let mut o = options(&pg, &pw, "web-1");
    o.token = Some("not-the-token".into());
    let app = PushApp::start(Lang::Python, &o).await;
    assert!(
        app.wait_for_line("poolwatch push failed: HTTP Error 401", WAIT)
            .await,
        "{}",
        app.output()
    );
    let refused = [("reason", "unauthorized")];
    pw.wait_for_metric("poolwatch_push_refused_total", &refused, |v| v >= 2.0, WAIT)
        .await
        .expect("refusals counted");
    let accepted = metric(
        &pw,
        "poolwatch_push_accepted_total",
        &[("target", "checkout")],
    )
    .await;
    assert_eq!(accepted, 0.0);
    let samples = pw.metrics().await.expect("scrape");
    assert!(
        !samples
            .iter()
            .any(|s| s.matches("poolwatch_pool_capacity", &POOL)),
        "a refused push was stored"
    );
    // Neither the token sent nor the one configured shows up anywhere.
    for secret in [TOKEN, "not-the-token"] {
        assert!(!pw.logs().contains(secret), "{}", pw.logs());
    }
    assert!(
        !app.quit().await,
        "a final push with the wrong token was accepted"
    );
}

#[tokio::test]
async fn hostile_pushes_are_refused_naming_the_problem_and_the_daemon_is_unaffected() {
    let hook = Receiver::start().await;
    let pw = Poolwatch::start(&config(&hook)).await;
    let client = reqwest::Client::new();
    let post = |body: String| {
        client
            .post(pw.url("/api/v1/pools"))
            .header("content-type", "application/json")
            .bearer_auth(TOKEN)
            .body(body)
            .send()
    };
    let pool = |i: usize| {
        format!(r#"{{"name": "p{i}", "capacity": 5, "in_use": 1, "idle": 1, "waiting": 0}}"#)
    };
    let push = |pools: Vec<String>| {
        format!(
            r#"{{"application": "checkout", "instance": "i", "pools": [{}]}}"#,
            pools.join(", ")
        )
    };
    // (body, status, the error says)
    let cases = [
        (
            "{\"application\": \"checkout\", ".to_string(),
            400,
            "EOF while parsing",
        ),
        (
            push(vec![pool(0).replace("\"idle\": 1", "\"idle\": 9")]),
            400,
            "pools[0].capacity: must be ≥ in_use + idle (1 + 9)",
        ),
        (
            push((0..21).map(pool).collect()),
            400,
            "pools: at most 20 pools per push (got 21)",
        ),
        (
            push((0..2000).map(pool).collect()),
            413,
            "larger than 65536 bytes",
        ),
        (
            push(vec![pool(0)]).replace("checkout", "unknown"),
            404,
            "application: no push target has this name",
        ),
    ];
    for (body, status, says) in cases {
        let resp = post(body).await.expect("an answer");
        assert_eq!(resp.status().as_u16(), status);
        let text = resp.text().await.expect("body");
        assert!(text.contains(says), "{status}: {text}");
    }
    // Still serving, and a good push goes through.
    assert_eq!(pw.get("/healthz").await, (200, "ok\n".into()));
    let resp = post(push(vec![pool(0)])).await.expect("an answer");
    assert_eq!(resp.status().as_u16(), 202);
    let p0 = [("target", "checkout"), ("kind", "app"), ("pool", "p0")];
    expect_metric(&pw, "poolwatch_pool_capacity", &p0, 5.0).await;
    let invalid = metric(
        &pw,
        "poolwatch_push_refused_total",
        &[("reason", "invalid")],
    )
    .await;
    assert_eq!(invalid, 3.0);
    // The push families and the instance facts are well-formed exposition.
    let (status, text) = pw.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("poolwatch_push_instances{"), "{text}");
    common::promtool_check_metrics(&text).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_readme_shows_the_python_example_the_tests_run() {
    common::push_apps::assert_readme_shows_example(Lang::Python);
}

#[tokio::test]
async fn the_example_push_target_is_valid_and_check_config_describes_it_without_its_token() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let text = std::fs::read_to_string(example).expect("example");
    let kind = text
        .find("# type = \"push\"")
        .expect("the push target block");
    let start = text[..kind]
        .rfind("# [[targets]]")
        .expect("its [[targets]] line");
    let block: String = text[start..]
        .lines()
        .map_while(|l| l.strip_prefix("# "))
        .filter(|l| !l.starts_with("token_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    let file = common::ConfigFile::new(&block);
    let out = common::poolwatch::run_cli_with_env(
        &["check-config", &file.path().display().to_string()],
        &[("CHECKOUT_PUSH_TOKEN", TOKEN)],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{block}\n{stdout}");
    assert!(
        stdout.contains(
            "checkout             push every 1s, pushed to POST /api/v1/pools as application \
             \"checkout\", ttl 30s, bearer token required, at most 100 instances and 20 pools"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains(TOKEN), "{stdout}");
}

#[tokio::test]
async fn an_unknown_application_becomes_a_target_when_a_push_target_accepts_it() {
    let pg = cluster().await;
    let hook = Receiver::start().await;
    let config = [
        header(""),
        format!(
            "[[targets]]\nname = \"apps\"\ntype = \"push\"\ninterval = \"100ms\"\nttl = \"2s\"\n\
             token = \"{TOKEN}\"\naccept_unknown = true\nmax_applications = 1\n\n"
        ),
        "[[rules]]\nname = \"TargetDown\"\nfor = \"300ms\"\n\n".into(),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat();
    let pw = Poolwatch::start(&config).await;
    let mut o = options(&pg, &pw, "web-1");
    o.application = "billing".into();
    let mut app = PushApp::start(Lang::Python, &o).await;
    let billing = [("target", "billing"), ("kind", "app"), ("pool", "default")];
    expect_metric(&pw, "poolwatch_pool_capacity", &billing, 5.0).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "billing")], 1.0).await;
    assert!(pw.logs().contains("watching it as a target of its own"));

    // One application at most: the next new one is refused, naming the limit.
    let resp = reqwest::Client::new()
        .post(pw.url("/api/v1/pools"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(
            r#"{"application": "mail", "instance": "m", "pools": [
                {"name": "p", "capacity": 1, "in_use": 0, "idle": 0, "waiting": 0}]}"#,
        )
        .send()
        .await
        .expect("an answer");
    assert_eq!(resp.status().as_u16(), 409);
    let text = resp.text().await.expect("body");
    assert!(text.contains("max_applications"), "{text}");

    // A reload keeps the application's target and what it pushed.
    pw.sighup();
    assert!(pw.wait_for_log("configuration reloaded", WAIT).await);
    assert_eq!(metric(&pw, "poolwatch_pool_capacity", &billing).await, 5.0);

    // It is a target like any other: when it dies, it goes stale and TargetDown pages.
    app.kill().await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "billing")], 0.0).await;
    expect_notified(&hook, 0, "firing TargetDown billing").await;
}
