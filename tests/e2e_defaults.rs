//! The defaults page when it matters: with a configuration that sets neither `interval` nor any
//! rule, a PostgreSQL server that fills up completely pages within about a second (the
//! built-in `PoolExhausted` at the default poll interval), while the 95 % rule (`PoolNearFull`,
//! `for = "15s"`) stays patient. Through the real binary, a real cluster and a real receiver.
//!
//! The timing assertions are correctness bounds (interval + 1 s), not performance claims; the
//! benchmark (`cargo bench --bench performance -- latency`) prints the distribution.

mod common;

use std::time::{Duration, Instant};

use common::pg::hold::with_application_name;
use common::scenario::{create_monitor_role, MONITOR_PASSWORD, MONITOR_ROLE, WAIT};
use common::{poll_until, PgCluster, PgOptions, Poolwatch, Receiver, RecordedRequest};
use serde_json::Value;

/// The default poll interval the bound is derived from (`default_interval()`).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// `max_connections` 24 with 3 reserved for superusers: 21 ordinary slots, one held by
/// poolwatch, so the server pool is 20 and 19 application sessions are exactly 95 %.
const MAX_CONNECTIONS: u32 = 24;
const USABLE: usize = 20;

const APP: &str = "app";
const APP_PASSWORD: &str = "app-pw-3";

/// Only what cannot be defaulted: where the server is, who to log in as, where to page.
fn defaults_only(pg: &PgCluster, receiver: &Receiver) -> String {
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n[[targets]]\nname = \"db\"\nhost = \"127.0.0.1\"\n\
         port = {port}\nuser = \"{MONITOR_ROLE}\"\npassword = \"{MONITOR_PASSWORD}\"\n\
         sslmode = \"disable\"\n\n[[receivers]]\nname = \"oncall\"\n[[receivers.integrations]]\ntype = \"webhook\"\nurl = \"{url}\"\n",
        port = pg.port(),
        url = receiver.url("/hook"),
    );
    assert!(!config.contains("interval") && !config.contains("[[rules]]"));
    config
}

/// The alert names and statuses of every request the receiver got.
fn announced(requests: &[RecordedRequest]) -> Vec<String> {
    requests
        .iter()
        .filter_map(|r| r.json.as_ref())
        .filter_map(|j| j["alerts"].as_array().cloned())
        .flatten()
        .map(|a| {
            format!(
                "{} {}",
                a["labels"]["alertname"].as_str().unwrap_or_default(),
                a["status"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// The state of `alertname` on the server pool in `/api/v1/alerts`, if it is there.
async fn api_state(pw: &Poolwatch, alertname: &str) -> Option<String> {
    let (_, body) = pw.get("/api/v1/alerts").await;
    let json: Value = serde_json::from_str(&body).ok()?;
    json["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == alertname && a["labels"]["pool"] == "server")
        .and_then(|a| a["state"].as_str().map(str::to_string))
}

/// How many polls of `db` poolwatch has made (the poll-duration histogram's count).
async fn polls(pw: &Poolwatch) -> f64 {
    let samples = pw.metrics().await.expect("metrics");
    common::metrics::find_sample(
        &samples,
        "poolwatch_poll_duration_seconds_count",
        &[("target", "db")],
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn defaults_only_page_a_full_server_within_about_a_second() {
    let pg = PgCluster::start(PgOptions {
        max_connections: MAX_CONNECTIONS,
        superuser_reserved_connections: 3,
        ..PgOptions::default()
    })
    .await;
    create_monitor_role(&pg).await;
    pg.create_role(APP, APP_PASSWORD, None).await;
    let receiver = Receiver::start().await;
    let pw = Poolwatch::start(&defaults_only(&pg, &receiver)).await;
    let server = [("target", "db"), ("kind", "server"), ("pool", "server")];
    pw.wait_for_metric(
        "poolwatch_pool_capacity",
        &server,
        |v| v == USABLE as f64,
        WAIT,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // The default cadence: about one poll a second (5 s would make at most one here).
    let (before, since) = (polls(&pw).await, Instant::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let made = polls(&pw).await - before;
    assert!(
        made >= 2.0,
        "{made} polls in {:?}: the default interval is not about 1 s",
        since.elapsed()
    );

    // 95 %, one slot left: PoolNearFull is pending, and stays quiet (a burst may pass).
    let bulk = pg
        .hold_connections(APP, USABLE - 1, "web")
        .await
        .expect("19 application sessions");
    let pending = poll_until(WAIT, || async {
        (api_state(&pw, "PoolNearFull").await.as_deref() == Some("pending")).then_some(())
    })
    .await;
    assert!(pending.is_some(), "PoolNearFull not pending at 95 %");
    assert_eq!(api_state(&pw, "PoolExhausted").await, None);
    assert!(
        receiver.requests().is_empty(),
        "{:?}",
        announced(&receiver.requests())
    );

    // The last slot: the next application connection will be refused. The page follows.
    let url = with_application_name(&pg.url_with_password(APP, APP_PASSWORD, "postgres"), "web");
    let last = common::pg::connect(&url).await.expect("the last slot");
    let full_at = Instant::now();
    let paged = receiver
        .wait_for(
            |rs| announced(rs).iter().any(|a| a == "PoolExhausted firing"),
            WAIT,
        )
        .await;
    assert!(paged, "no PoolExhausted page\n{}", pw.logs());
    let page = receiver
        .requests()
        .into_iter()
        .find(|r| announced(std::slice::from_ref(r)) == ["PoolExhausted firing"])
        .expect("the page");
    let latency = page.received_at.saturating_duration_since(full_at);
    let bound = DEFAULT_INTERVAL + Duration::from_secs(1);
    assert!(
        latency <= bound,
        "paged {latency:?} after the server filled (bound {bound:?})"
    );
    let json = page.json.as_ref().expect("json");
    assert_eq!(json["alerts"][0]["labels"]["severity"], "critical");
    assert_eq!(
        json["alerts"][0]["annotations"]["summary"],
        "db: 20/20 usable connections in use (100%)"
    );
    // One page for one incident so far: the 95 % rule is still waiting for its 15 s.
    assert_eq!(announced(&receiver.requests()), ["PoolExhausted firing"]);
    assert_eq!(
        api_state(&pw, "PoolNearFull").await.as_deref(),
        Some("pending")
    );

    drop(last);
    bulk.close_all().await;
    let resolved = receiver
        .wait_for(
            |rs| announced(rs).iter().any(|a| a == "PoolExhausted resolved"),
            WAIT,
        )
        .await;
    assert!(resolved, "{:?}", announced(&receiver.requests()));
    assert_eq!(
        announced(&receiver.requests()),
        ["PoolExhausted firing", "PoolExhausted resolved"],
        "PoolNearFull never paged: the burst was shorter than its 15 s"
    );
}
