//! End-to-end: configuration through the binary. Invalid files are refused by `check-config`
//! and `run` alike (exit 2, every problem with file:line:column, no secret echoed); the example
//! file is valid; SIGHUP keeps the running configuration when the new one is invalid and
//! applies a valid one (targets added, kept and removed, thresholds changed).

mod common;

use common::poolwatch::{run_cli, run_cli_with_env};
use common::scenario::{
    accepted, expect_accepted_unordered, expect_metric, header, idle_in_transaction_rule, metric,
    monitored_cluster, poolwatch_sessions, receiver, target, WAIT,
};
use common::{ConfigFile, Poolwatch, Receiver};
use poolwatch::model::metric::PoolMetric;
use poolwatch::rules::template::variable_names;

/// Opens every case: a receiver whose URL and header carry secrets (lines 1–7).
const PRELUDE: &str = r#"[[receivers]]
name = "oncall"
[[receivers.integrations]]
type = "webhook"
url = "http://127.0.0.1:9/hook?token=SECRET123"
headers = { Authorization = "Bearer SECRET456" }

"#;
const PRELUDE_LINES: usize = 7;
const SECRETS: [&str; 3] = ["SECRET123", "SECRET456", "SECRET789"];

/// One invalid file: its text after [`PRELUDE`], where the problem is (line counted from the
/// first line after the prelude, column) and what `check-config` must say about it.
struct Case {
    name: &'static str,
    body: &'static str,
    at: Option<(usize, usize)>,
    message: String,
}

const T: &str = "[[targets]]\nname = \"db\"\n";

fn cases() -> Vec<Case> {
    let case = |name, body, at, message: &str| Case {
        name,
        body,
        at,
        message: message.to_string(),
    };
    // Lists that grow with the model are taken from it.
    let metrics = PoolMetric::ALL
        .iter()
        .map(|m| format!("`{}`", m.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let variables = variable_names().collect::<Vec<_>>().join(", ");
    vec![
        case("syntax error", "[[targets]]\nname = \"db\"\ninterval = \n", Some((3, 12)),
            "targets[0].interval: invalid string\nexpected `\"`, `'`"),
        case("type error", "[[targets]]\nname = \"db\"\ninterval = 5\n", Some((3, 12)),
            "targets[0].interval: invalid type: integer, expected a string"),
        case("unknown key", "[[targets]]\nname = \"db\"\nintervall = \"1s\"\n", Some((3, 1)),
            "targets[0].intervall: unknown field `intervall`, expected one of `type`, `name`, \
             `labels`, `interval`, `reconnect_max_backoff`, `url`, `host`, `port`, `user`, \
             `password`, `password_file`, `dbname`, `sslmode`, `sslrootcert`, \
             `connect_timeout`, `statement_timeout` (did you mean `interval`?)"),
        case("unknown section", "[alertin]\n[[targets]]\nname = \"db\"\n", Some((1, 2)),
            "alertin: unknown field `alertin`, expected one of `http`, `alerting`, `history`, \
             `targets`, `rules`, `receivers`, `links`, `route`, `inhibit_rules` (did you mean `alerting`?)"),
        case("duration without unit", "[[targets]]\nname = \"db\"\ninterval = \"15\"\n",
            Some((3, 12)),
            "targets[0].interval: duration \"15\" has no unit: write e.g. \"15s\" or \"15ms\""),
        case("interval below 100ms", "[[targets]]\nname = \"db\"\ninterval = \"50ms\"\n",
            Some((3, 1)), "targets[0].interval: must be at least 100ms (got 50ms)"),
        case("bad sslmode", "[[targets]]\nname = \"db\"\nsslmode = \"verify\"\n", Some((3, 11)),
            "targets[0].sslmode: unknown variant `verify`, expected one of `disable`, `prefer`, `require`, \
             `verify-ca`, `verify-full` (did you mean `verify-ca`?)"),
        case("bad listen address", "[http]\nlisten = \"localhost\"\n[[targets]]\nname = \"db\"\n",
            Some((2, 1)), "http.listen: \"localhost\" is not an address like \"0.0.0.0:9671\""),
        case("duplicate target names", "[[targets]]\nname = \"db\"\n[[targets]]\nname = \"db\"\n",
            Some((4, 1)), "targets[1].name: duplicate target name \"db\""),
        case("missing password_file",
            "[[targets]]\nname = \"db\"\npassword_file = \"/nonexistent/pw\"\n", Some((3, 1)),
            "targets[0].password_file: `password_file`: cannot read secret file /nonexistent/pw: \
             No such file or directory (os error 2)"),
        case("unset environment variable",
            "[[targets]]\nname = \"db\"\npassword = \"${POOLWATCH_E2E_UNSET}\"\n", Some((3, 1)),
            "targets[0].password: `password`: environment variable POOLWATCH_E2E_UNSET is not \
             set or empty"),
        case("receiver URL not http(s)",
            "[[targets]]\nname = \"db\"\n[[receivers]]\nname = \"r2\"\n[[receivers.integrations]]\ntype = \"webhook\"\nurl = \"ftp://127.0.0.1/hook?token=SECRET789\"\n",
            Some((7, 1)), "receivers[1].integrations[0].url: not a valid http(s) URL: the scheme is not http or https"),
        case("unknown rule metric",
            "[[targets]]\nname = \"db\"\n[[rules]]\nname = \"X\"\nmetric = \"utilisation\"\nwarning = 0.5\n",
            Some((5, 10)), &format!("rules[0].metric: unknown variant `utilisation`, expected one of \
             {metrics} (did you mean `utilization`?)")),
        case("unknown template variable",
            "[[targets]]\nname = \"db\"\n[[rules]]\nname = \"X\"\nmetric = \"in_use\"\nwarning = 5\nsummary = \"{{targte}} busy\"\n",
            Some((7, 1)), &format!("rules[0].summary: unknown template variable {{{{targte}}}}; did you mean \
             {{{{target}}}}? known variables: {variables}")),
        case("bad matcher regex",
            "[[targets]]\nname = \"db\"\n[[rules]]\nname = \"X\"\nmetric = \"in_use\"\nwarning = 5\nmatchers = ['pool=~\"(app\"']\n",
            Some((7, 13)), "rules[0].matchers[0]: invalid regex in matcher `pool=~\"(app\"`: \
             regex parse error:\n    ^(?:(app)$\n     ^\nerror: unclosed group"),
        case("clear on the wrong side",
            "[[targets]]\nname = \"db\"\n[[rules]]\nname = \"X\"\nmetric = \"utilization\"\nwarning = { value = 0.5, clear = 0.6 }\n",
            Some((6, 26)), "rules[0].warning.clear: `clear` 0.6 is above `value` 0.5: with `>=` \
             the alert clears when the metric falls below `clear`, so it must be at most 0.5"),
        case("url and host both set",
            "[[targets]]\nname = \"db\"\nurl = \"postgres://poolwatch:SECRET789@127.0.0.1/postgres\"\nhost = \"127.0.0.1\"\n",
            Some((4, 1)), "targets[0].host: set either `url` or the separate connection keys, not both"),
        case("invalid connection URL",
            "[[targets]]\nname = \"db\"\nurl = \"postgres://poolwatch:SECRET789@127.0.0.1:port/postgres\"\n",
            Some((3, 1)), "targets[0].url: not a valid connection URL or string: invalid connection string"),
        case("no targets", "[http]\nlisten = \"127.0.0.1:0\"\n", None,
            "targets: no [[targets]]: add at least one target (a PostgreSQL server or a PgBouncer) to watch"),
    ]
}

/// What `poolwatch` must print on stderr for `case` in `path`.
fn expected_stderr(path: &str, case: &Case) -> String {
    let at = case
        .at
        .map(|(line, col)| format!(":{}:{col}", line + PRELUDE_LINES))
        .unwrap_or_default();
    format!("{path}{at}: {}\n1 problem(s) found\n", case.message)
}

/// Runs `args` (the path of `file` is appended); returns exit code, stdout and stderr.
async fn cli(args: &[&str], file: &ConfigFile) -> (Option<i32>, String, String) {
    let path = file.path().display().to_string();
    let args: Vec<&str> = args.iter().copied().chain([path.as_str()]).collect();
    let out = tokio::time::timeout(WAIT, run_cli(&args))
        .await
        .unwrap_or_else(|_| panic!("poolwatch {args:?} still running after {WAIT:?}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn invalid_configs_are_refused_by_check_config_and_run_with_located_messages() {
    let cases = cases();
    assert!(cases.len() >= 12);
    for case in &cases {
        let file = ConfigFile::new(&format!("{PRELUDE}{}", case.body));
        let path = file.path().display().to_string();
        let want = expected_stderr(&path, case);
        for args in [&["check-config"][..], &["run", "--config"][..]] {
            let (code, stdout, stderr) = cli(args, &file).await;
            let what = format!("{} ({args:?})", case.name);
            assert_eq!(code, Some(2), "{what}: exit code; stderr:\n{stderr}");
            assert_eq!(stderr, want, "{what}: stderr");
            assert_eq!(stdout, "", "{what}: stdout");
            for secret in SECRETS {
                assert!(!stderr.contains(secret), "{what}: {secret} echoed");
            }
        }
    }
}

#[tokio::test]
async fn every_problem_is_reported_at_once_and_a_missing_file_is_named() {
    let body =
        format!("{T}interval = \"50ms\"\n[[targets]]\nname = \"db\"\nsslmode = \"require\"\n");
    let file = ConfigFile::new(&format!("{PRELUDE}{body}"));
    let path = file.path().display().to_string();
    let (code, _, stderr) = cli(&["check-config"], &file).await;
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        format!(
            "{path}:{}:1: targets[0].interval: must be at least 100ms (got 50ms)\n\
             {path}:{}:1: targets[1].name: duplicate target name \"db\"\n2 problem(s) found\n",
            PRELUDE_LINES + 3,
            PRELUDE_LINES + 5
        )
    );

    let missing = file.dir().join("missing.toml");
    let out = run_cli(&["check-config", &missing.display().to_string()]).await;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}: cannot read config file: No such file or directory (os error 2)\n\
             1 problem(s) found\n",
            missing.display()
        )
    );
}

#[tokio::test]
async fn the_example_config_is_valid_and_check_config_summarises_it_without_secrets() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let config = poolwatch::settings::load(std::path::Path::new(example))
        .unwrap_or_else(|problems| panic!("config.example.toml: {problems:#?}"));
    let targets: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(targets, ["local"]);
    // No receiver: a local run must not retry its first alert for an hour against an address
    // where nothing listens (alerts are logged and on /api/v1/alerts).
    assert!(config.receivers.is_empty());
    let rules: Vec<&str> = config
        .rules
        .rules()
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert!(rules.contains(&"IdleInTransactionTooLong"), "{rules:?}");
    assert!(rules.contains(&"TargetDown"), "{rules:?}");

    let out = run_cli(&["check-config", example]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with(&format!("{example}: valid\ntargets (1):\n")),
        "{stdout}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");

    // The commented-out receiver documents every key: uncommented (all but the `*_file` keys,
    // which exclude their inline twins, and `routing_key`, for pagerduty only), it is valid, and its URL is not printed back.
    let text = std::fs::read_to_string(example).expect("example");
    let (before, block) = text.split_once("# [[receivers]]").expect("receiver block");
    let block: String = block
        .lines()
        .skip(1) // the rest of the `# [[receivers]]` line
        .take_while(|l| !l.is_empty())
        .map(|l| match l.strip_prefix("# ") {
            Some(key) if documented_key_stays(key) => format!("{key}\n"),
            _ => String::new(),
        })
        .collect();
    let file = ConfigFile::new(&format!("{before}[[receivers]]\n{block}"));
    let path = file.path().display().to_string();
    let password = "am-s3cr3t-pw";
    let out = run_cli_with_env(&["check-config", &path], &[("AM_PASSWORD", password)]).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("receivers (1):\n  oncall"), "{stdout}");
    assert!(
        stdout.contains(
            "    webhook            webhook url <redacted>, timeout 10s, headers 0, \
             signed (standard-webhooks, github)"
        ),
        "{stdout}"
    );
    // The alertmanager integration: one per URL, none of them printed back.
    for name in ["alertmanager/1", "alertmanager/2"] {
        assert!(
            stdout.contains(&format!("    {name:<18} alertmanager url <redacted>")),
            "{stdout}"
        );
    }
    // The route tree: without [route], one route per receiver under the root.
    assert!(
        stdout.contains(
            "routes (2):\n  {} -> (no receiver), group_by [...], wait 0ms, interval 0ms, \
             repeat 4h\n    {} -> oncall (webhook, \
             alertmanager/1, alertmanager/2), continue, group_by [...]"
        ),
        "{stdout}"
    );
    for secret in ["relay.example.internal", "alertmanager-0", password] {
        assert!(!stdout.contains(secret), "{secret} printed:\n{stdout}");
    }
}

#[tokio::test]
async fn sighup_keeps_the_running_config_when_invalid_and_applies_a_valid_one() {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let hook_block = receiver("oncall", &hook.url("/hook"), "");
    let v1 = [
        header(""),
        target("alpha", pg.port(), ""),
        target("beta", pg.port(), ""),
        idle_in_transaction_rule("IdleTx", 1),
        hook_block.clone(),
    ]
    .concat();
    let pw = Poolwatch::start(&v1).await;
    let reload_ok = "poolwatch_config_last_reload_successful";
    expect_metric(&pw, reload_ok, &[], 1.0).await;
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_accepted_unordered(&hook, 0, &["firing IdleTx alpha", "firing IdleTx beta"]).await;

    // An invalid file: refused, logged, and the old configuration keeps working.
    pw.config()
        .write(&v1.replace("interval = \"100ms\"", "interval = \"15\""));
    pw.sighup();
    expect_metric(&pw, reload_ok, &[], 0.0).await;
    assert!(
        pw.wait_for_log("reload refused", WAIT).await
            && pw
                .stderr()
                .contains(":12:12: targets[0].interval: duration \"15\" has no unit")
            && pw
                .stderr()
                .contains(":23:12: targets[1].interval: duration \"15\" has no unit"),
        "{}",
        pw.stderr()
    );
    let polled = metric(
        &pw,
        "poolwatch_poll_duration_seconds_count",
        &[("target", "beta")],
    )
    .await;
    pw.wait_for_metric(
        "poolwatch_poll_duration_seconds_count",
        &[("target", "beta")],
        |n| n >= polled + 5.0,
        WAIT,
    )
    .await
    .expect("beta still polled");
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    expect_accepted_unordered(&hook, 2, &["resolved IdleTx alpha", "resolved IdleTx beta"]).await;
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_accepted_unordered(&hook, 4, &["firing IdleTx alpha", "firing IdleTx beta"]).await;

    // A valid one: beta removed, gamma added, alpha kept (same connection), threshold raised.
    let v2 = [
        header(""),
        target("alpha", pg.port(), ""),
        target("gamma", pg.port(), ""),
        idle_in_transaction_rule("IdleTx", 2),
        hook_block,
    ]
    .concat();
    pw.config().write(&v2);
    pw.sighup();
    expect_metric(&pw, reload_ok, &[], 1.0).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "gamma")], 1.0).await;
    // beta's alert resolves as its target goes; alpha's as 1 < 2 at its next poll.
    expect_accepted_unordered(&hook, 6, &["resolved IdleTx alpha", "resolved IdleTx beta"]).await;
    let samples = pw.metrics().await.expect("scrape");
    let left: Vec<_> = samples
        .iter()
        .filter(|s| s.labels.get("target").map(String::as_str) == Some("beta"))
        .collect();
    assert!(left.is_empty(), "series of the removed target: {left:?}");
    assert_eq!(
        metric(&pw, "poolwatch_connects_total", &[("target", "alpha")]).await,
        1.0,
        "alpha reconnected although its settings did not change"
    );
    let two = common::poll_until(WAIT, || async {
        (poolwatch_sessions(&pg).await == 2).then_some(())
    })
    .await;
    assert!(two.is_some(), "beta's session was not closed");

    // The new threshold: two sessions idle in transaction fire for alpha and gamma.
    let tx2 = pg.open("postgres", "postgres").await.expect("connect");
    tx2.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_accepted_unordered(&hook, 8, &["firing IdleTx alpha", "firing IdleTx gamma"]).await;
    assert_eq!(accepted(&hook.requests()).len(), 10);
    tx.close().await;
    tx2.close().await;
}

#[tokio::test]
async fn a_signal_right_after_the_listening_line_is_handled() {
    // Many targets and receivers lengthen the start-up after the HTTP port is bound.
    let mut config = header("");
    for i in 0..40 {
        config.push_str(&target(&format!("t{i}"), 1, ""));
        config.push_str(&receiver(&format!("r{i}"), "http://127.0.0.1:1/hook", ""));
    }
    for signal in [libc::SIGHUP, libc::SIGTERM] {
        let mut pw = Poolwatch::spawn(&config, Default::default());
        let seen = common::poll_until(WAIT, || async {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            pw.stderr().contains("listening on").then_some(())
        })
        .await;
        assert!(seen.is_some(), "{}", pw.logs());
        pw.signal(signal);
        if signal == libc::SIGHUP {
            let pid = pw.pid();
            let settled = common::poll_until(WAIT, || async {
                let reloaded = pw.stderr().contains("configuration reloaded");
                (reloaded || common::process_exited(pid)).then_some(reloaded)
            })
            .await;
            assert_eq!(settled, Some(true), "not reloaded\n{}", pw.logs());
            pw.sigterm();
        }
        let status = pw.wait_exit(WAIT).await;
        assert_eq!(status.code(), Some(0), "signal {signal}: {status:?}");
    }
}

#[tokio::test]
async fn reloads_that_change_a_target_reconnect_it_without_leaking_sessions() {
    let pg = monitored_cluster().await;
    let config = |interval: &str| {
        let t = target("db", pg.port(), "").replace("\"100ms\"", &format!("\"{interval}\""));
        [header(""), t].concat()
    };
    let pw = Poolwatch::start(&config("100ms")).await;
    let connects = [("target", "db")];
    expect_metric(&pw, "poolwatch_connects_total", &connects, 1.0).await;
    for (i, interval) in ["150ms", "100ms", "150ms", "100ms", "150ms"]
        .iter()
        .enumerate()
    {
        pw.config().write(&config(interval));
        pw.sighup();
        // A changed target gets a new source, hence a new connection; the old one is closed.
        expect_metric(&pw, "poolwatch_connects_total", &connects, i as f64 + 2.0).await;
        expect_metric(&pw, "poolwatch_target_up", &connects, 1.0).await;
    }
    let one = common::poll_until(WAIT, || async {
        (poolwatch_sessions(&pg).await == 1).then_some(())
    })
    .await;
    assert!(one.is_some(), "{} sessions", poolwatch_sessions(&pg).await);
}

#[tokio::test]
async fn a_taken_port_is_a_start_failure_with_exit_code_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let config = [header(""), target("db", 1, "")]
        .concat()
        .replace("127.0.0.1:0", &addr.to_string());
    let mut pw = Poolwatch::spawn(&config, Default::default());
    assert_eq!(pw.wait_exit(WAIT).await.code(), Some(1));
    assert!(
        pw.stderr()
            .contains(&format!("poolwatch: cannot listen on {addr}: ")),
        "{}",
        pw.stderr()
    );
}

#[tokio::test]
async fn a_reload_that_drops_external_url_goes_back_to_the_default() {
    let pg = monitored_cluster().await;
    let hook = Receiver::start().await;
    let body = [
        target("db", pg.port(), ""),
        idle_in_transaction_rule("IdleTx", 1),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat();
    let explicit = "[http]\nlisten = \"127.0.0.1:0\"\nexternal_url = \"http://pw.example:9\"\n\n";
    let pw = Poolwatch::start(&format!("{explicit}{body}")).await;
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_accepted_unordered(&hook, 0, &["firing IdleTx db"]).await;

    pw.config().write(&format!("{}{body}", header("")));
    pw.sighup();
    assert!(pw.wait_for_log("configuration reloaded", WAIT).await);
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    expect_accepted_unordered(&hook, 1, &["resolved IdleTx db"]).await;
    let urls: Vec<String> = hook
        .requests()
        .iter()
        .map(|r| r.json.as_ref().expect("JSON")["externalURL"].to_string())
        .collect();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let default = format!("\"http://{}:{}\"", host.trim(), pw.addr().port());
    assert_eq!(urls, ["\"http://pw.example:9\"".to_string(), default]);
    tx.close().await;
}

/// Whether an example receiver line stays when the block is uncommented: not the `*_file`
/// keys (each excludes its inline twin), not `routing_key` (pagerduty only).
fn documented_key_stays(line: &str) -> bool {
    let key = line.split_whitespace().next().unwrap_or("");
    !key.ends_with("_file") && key != "routing_key"
}
