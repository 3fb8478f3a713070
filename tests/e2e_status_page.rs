//! End-to-end: the status page (`GET /`) in a real browser. The real daemon watches a real
//! PostgreSQL cluster whose role `app` (CONNECTION LIMIT 5) is filled by `checkout-web`, one
//! connection at a time, so `PoolExhausted` fires; Debian's `chromium`, headless, then loads the
//! page. It must show the pools, their holders and the firing alert, log nothing to the console
//! (the detector is checked against a page that does), and carry no secret. Its screenshot goes
//! to a temporary folder; with `POOLWATCH_UPDATE_SCREENSHOT=1` it replaces `docs/status-page.png`,
//! the one the README shows (a test run leaves the source tree as it was).
//!
//! `chromium` is installed by `scripts/install-test-deps.sh`.

mod common;

use common::scenario::{header, monitored_cluster, target, MONITOR_PASSWORD, WAIT};
use common::{poll_until, Poolwatch};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

const APP_ROLE: &str = "app";
const APP_PASSWORD: &str = "app-secret-pw";
const LIMIT: usize = 5;

/// Runs headless chromium on `url` with `args`; a fresh profile each time.
async fn chromium(url: &str, args: &[&str]) -> Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = tokio::process::Command::new("chromium");
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(url)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("chromium finished within 60s")
        .expect("chromium runs (scripts/install-test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What the page logged to the browser console (chromium's `CONSOLE` log lines): the page has
/// no script, so any line is an error of the page (a failed resource, a blocked load).
fn console_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect()
}

/// Whether `/api/v1/alerts` lists `alertname` firing on the role pool `app`.
async fn firing_on_app(pw: &Poolwatch, alertname: &str) -> bool {
    let (_, body) = pw.get("/api/v1/alerts").await;
    let Ok(json) = serde_json::from_str::<Value>(&body) else {
        return false;
    };
    json["data"]["alerts"].as_array().is_some_and(|alerts| {
        alerts.iter().any(|a| {
            a["labels"]["alertname"] == alertname
                && a["labels"]["pool"] == APP_ROLE
                && a["state"] == "firing"
        })
    })
}

/// Where the screenshot goes (see the module documentation); the folder is kept alive with it.
fn screenshot_path() -> (PathBuf, Option<tempfile::TempDir>) {
    if std::env::var_os("POOLWATCH_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status-page.png");
        return (path, None);
    }
    let dir = tempfile::tempdir().expect("temporary folder");
    (dir.path().join("status-page.png"), Some(dir))
}

#[tokio::test]
async fn the_status_page_shows_a_filled_pool_and_its_alert_in_a_real_browser() {
    // The console detector sees a page that logs and throws.
    let noisy = chromium(
        "data:text/html,<p>x</p><script>console.error('bad');throw new Error('boom')</script>",
        &["--dump-dom"],
    )
    .await;
    let noise = console_lines(&noisy);
    assert!(
        noise.iter().any(|l| l.contains("Uncaught Error: boom")) && noise.len() >= 2,
        "the console detector misses errors: {noise:?}"
    );

    let pg = monitored_cluster().await;
    pg.create_role(APP_ROLE, APP_PASSWORD, Some(LIMIT as i32))
        .await;
    let config = [header(""), target("orders-db", pg.port(), "")].concat();
    let pw = Poolwatch::start(&config).await;
    // A ramp for the sparkline: one connection every 400 ms until the role's limit.
    // A second role, 6 of 10 held by another application.
    pg.create_role("reports", "reports-pw", Some(10)).await;
    let mut holds = vec![pg
        .hold_connections("reports", 6, "metabase")
        .await
        .expect("reports connections")];
    for _ in 0..LIMIT {
        let hold = pg
            .hold_connections(APP_ROLE, 1, "checkout-web")
            .await
            .expect("app connection");
        holds.push(hold);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let fired = poll_until(WAIT, || async {
        firing_on_app(&pw, "PoolExhausted").await.then_some(())
    })
    .await;
    assert!(fired.is_some(), "PoolExhausted did not fire: {}", pw.logs());
    let url = pw.url("/");
    // A sparkline draws the peaks of the history's slots (10 s each by default): it shows once
    // the pools' history spans two of them.
    let drawn = poll_until(WAIT, || async {
        let page = reqwest::get(&url).await.ok()?.text().await.ok()?;
        page.contains("<svg").then_some(())
    })
    .await;
    assert!(drawn.is_some(), "no sparkline within {WAIT:?}");

    let dom_run = chromium(&url, &["--dump-dom"]).await;
    let dom = String::from_utf8_lossy(&dom_run.stdout).to_string();
    for want in [
        "1 target · ",
        "orders-db",
        "PoolExhausted",
        "5 / 5 in use · 100% · 0 waiting",
        "app=checkout-web holds 5",
        "6 / 10 in use · 60%",
        "app=metabase holds 6",
        "role",
        "<svg",
        "http-equiv=\"refresh\"",
    ] {
        assert!(dom.contains(want), "{want} not on the page:\n{dom}");
    }
    assert!(
        dom.contains("class=\"pool hot\""),
        "the full pool is marked: {dom}"
    );
    for secret in [MONITOR_PASSWORD, APP_PASSWORD, "reports-pw"] {
        assert!(!dom.contains(secret), "a password on the page");
    }
    assert_eq!(
        console_lines(&dom_run),
        Vec::<String>::new(),
        "console output"
    );

    let (shot, _dir) = screenshot_path();
    std::fs::create_dir_all(shot.parent().expect("a folder")).expect("its folder");
    let _ = std::fs::remove_file(&shot);
    let shot_run = chromium(
        &url,
        &[
            "--hide-scrollbars",
            "--window-size=1000,580",
            &format!("--screenshot={}", shot.display()),
        ],
    )
    .await;
    assert_eq!(
        console_lines(&shot_run),
        Vec::<String>::new(),
        "console output"
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "not a PNG of a page ({} bytes)",
        png.len()
    );
    drop(holds);
}
