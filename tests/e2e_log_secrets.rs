//! End-to-end: no log line carries any part of a secret URL, whatever `POOLWATCH_LOG` asks for.
//!
//! The HTTP client stack and the TLS library log the host they connect to at debug and trace
//! (connection pool keys, "starting new connection", the TLS server name), and a webhook's host
//! name can carry a token. Here the webhook host names hold a token and resolve to 127.0.0.1
//! through a private `/etc/hosts` (a mount namespace of the daemon's own: the system's file is
//! untouched); the path, query, user name and password hold more, and so does the target's URL.
//! The daemon delivers to one receiver, pushes to an `alertmanager` integration (its URL and
//! basic-auth password secret too) and keeps retrying a TLS one, at `trace`, at `debug` and
//! with every dependency asked for by name at `trace`; its logs must hold none of it.

mod common;

use common::scenario::{expect_metric, header, receiver, SilentServer, MONITOR_ROLE, WAIT};
use common::{PgCluster, PgOptions, Poolwatch, PoolwatchOptions, Receiver};
use std::path::Path;

/// Every secret below contains it, so no fragment of any of them may appear in a log.
const MARK: &str = "s3cr3t";
const HOOK_HOST: &str = "s3cr3t-hook.localhost";
const TLS_HOST: &str = "s3cr3t-tls.localhost";
const PATH: &str = "/hook/s3cr3t-path";
const QUERY: &str = "key=s3cr3t-query";
const USER: &str = "s3cr3t-user";
const PASSWORD: &str = "s3cr3t-pass";
const PG_PASSWORD: &str = "s3cr3t-pg";
const AM_PATH: &str = "/am-s3cr3t";
const AM_PASSWORD: &str = "s3cr3t-am-pass";

/// Runs `unshare` so that the daemon sees `hosts` as its `/etc/hosts`.
fn private_hosts(hosts: &Path) -> Vec<String> {
    let mut wrapper = vec!["unshare".to_string()];
    if !common::running_as_root() {
        wrapper.extend(["--user".into(), "--map-root-user".into()]);
    }
    wrapper.extend(
        [
            "--mount",
            "--",
            "sh",
            "-c",
            r#"mount --bind "$0" /etc/hosts && exec "$@""#,
        ]
        .map(String::from),
    );
    wrapper.push(hosts.display().to_string());
    wrapper
}

/// What a leak could look like: the mark as text, in either case, or hex-encoded bytes.
fn leaks(text: &str) -> bool {
    let hex: String = MARK.bytes().map(|b| format!("{b:02x}")).collect();
    let lower = text.to_ascii_lowercase();
    lower.contains(MARK) || lower.contains(&hex)
}

/// One daemon run at `level` (`log_format` text or json): a delivery to the token-laden hook,
/// two failed attempts at the TLS receiver that never answers; then the logs are checked.
/// `dependency_lines`: whether the level lets the audited dependency (`tokio_postgres`) speak.
async fn run_at(pg: &PgCluster, level: &str, log_format: &str, dependency_lines: bool) {
    let hook = Receiver::start().await;
    let silent = SilentServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hosts = dir.path().join("hosts");
    let names = format!("127.0.0.1 localhost\n127.0.0.1 {HOOK_HOST} {TLS_HOST}\n");
    std::fs::write(&hosts, names).expect("write hosts");
    let hook_url = format!(
        "http://{USER}:{PASSWORD}@{HOOK_HOST}:{}{PATH}?{QUERY}",
        hook.addr().port()
    );
    let tls_url = format!("https://{TLS_HOST}:{}{PATH}?{QUERY}", silent.port());
    let target_url = format!(
        "postgres://{MONITOR_ROLE}:${{PG_PW}}@127.0.0.1:{}/postgres?sslmode=disable",
        pg.port()
    );
    let config = [
        header("shutdown_flush_timeout = \"200ms\""),
        format!("[[targets]]\nname = \"db\"\nurl = \"{target_url}\"\ninterval = \"100ms\"\n\n"),
        "[[rules]]\nname = \"Always\"\nmetric = \"capacity\"\nwarning = 1\n\
         matchers = ['kind=\"server\"']\n\n"
            .into(),
        receiver("oncall", &hook_url, ""),
        receiver("tls", &tls_url, "timeout = \"1s\"\n"),
        format!(
            "[[receivers]]\nname = \"am\"\n[[receivers.integrations]]\ntype = \"alertmanager\"\n\
             urls = [\"http://{HOOK_HOST}:{}{AM_PATH}\"]\n\
             basic_auth = {{ username = \"poolwatch\", password = \"{AM_PASSWORD}\" }}\n\n",
            hook.addr().port()
        ),
    ]
    .concat();
    let options = PoolwatchOptions {
        env: vec![
            ("PG_PW".into(), PG_PASSWORD.into()),
            ("POOLWATCH_LOG".into(), level.into()),
        ],
        args: vec!["--log-format".into(), log_format.into()],
    };
    let wrapper = private_hosts(&hosts);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let mut pw = Poolwatch::start_wrapped(&config, options, &wrapper).await;
    assert!(
        // The webhook's own delivery: the Alertmanager push goes to the same host and may
        // arrive first.
        hook.wait_for(
            |r| r.iter().any(|r| r.path == PATH && r.answered == 200),
            WAIT
        )
        .await,
        "no delivery through {HOOK_HOST}"
    );
    let pushed = |r: &[common::RecordedRequest]| {
        r.iter()
            .find(|r| r.path == format!("{AM_PATH}/api/v2/alerts"))
            .cloned()
    };
    assert!(
        hook.wait_for(|r| pushed(r).is_some(), WAIT).await,
        "no push through {HOOK_HOST}"
    );
    let push = pushed(&hook.requests()).expect("push");
    assert_eq!(
        push.header("authorization"),
        Some("Basic cG9vbHdhdGNoOnMzY3IzdC1hbS1wYXNz"),
        "basic_auth: base64(\"poolwatch:{AM_PASSWORD}\")"
    );
    assert_eq!(
        push.json.as_ref().and_then(|j| j.as_array()).map(Vec::len),
        Some(1)
    );
    let delivered = hook
        .requests()
        .into_iter()
        .find(|r| r.path == PATH)
        .expect("a webhook delivery");
    assert_eq!(delivered.path, PATH);
    assert_eq!(delivered.query.as_deref(), Some(QUERY));
    assert!(delivered.header("authorization").is_some());
    let failures = [("receiver", "tls"), ("class", "retryable")];
    pw.wait_for_metric(
        "poolwatch_notification_failures_total",
        &failures,
        |n| n >= 2.0,
        WAIT,
    )
    .await
    .expect("attempts at the TLS receiver");
    expect_metric(&pw, "poolwatch_target_up", &[("target", "db")], 1.0).await;
    pw.sigterm();
    assert_eq!(pw.wait_exit(WAIT).await.code(), Some(0));
    let stderr = pw.stderr();
    assert!(
        stderr.contains("notification delivered"),
        "poolwatch's own lines are missing at {level}:\n{stderr}"
    );
    assert_eq!(
        stderr.contains("tokio_postgres"),
        dependency_lines,
        "lines of tokio_postgres at {level}:\n{stderr}"
    );
    for line in stderr.lines().chain(pw.stdout().lines()) {
        assert!(!leaks(line), "a secret leaked at {level}: {line}");
    }
    silent.close().await;
}

#[tokio::test]
async fn no_part_of_a_secret_url_is_logged_at_any_level() {
    let pg = PgCluster::start(PgOptions::default()).await;
    pg.create_role(MONITOR_ROLE, PG_PASSWORD, None).await;
    pg.exec(&format!("GRANT pg_monitor TO {MONITOR_ROLE}"))
        .await;
    run_at(&pg, "trace", "text", true).await;
    run_at(&pg, "debug", "json", true).await;
    let by_name = "info,reqwest=trace,hyper_util=trace,hyper=trace,hyper_rustls=trace,\
                   rustls=trace,tokio_postgres=trace,tokio_postgres_rustls=trace,h2=trace,\
                   tokio=trace,mio=trace,log=trace";
    run_at(&pg, by_name, "text", true).await;
    run_at(&pg, "info", "text", false).await;
}
