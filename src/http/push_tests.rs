//! `POST /api/v1/pools` in-process: the real server on a port of its own, a real HTTP client,
//! the registry read back.

use super::super::{AppState, Limits, Server};
use crate::config::values::Secret;
use crate::source::push::{PushSettings, Registry};
use crate::store::Store;
use prometheus::Registry as Prom;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::watch;

struct Running {
    url: String,
    pushed: Arc<Registry>,
    prom: Prom,
    _stop: watch::Sender<bool>,
}

async fn start() -> Running {
    let prom = Prom::new();
    let limits = Limits {
        max_connections: 16,
        header_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        max_body_bytes: 2048,
    };
    let server = Server::new(limits, &prom).expect("metrics");
    let pushed = Arc::new(Registry::new(&prom).expect("push metrics"));
    let settings = |name: &str, token: Option<&str>| PushSettings {
        application: name.into(),
        token: token.map(Secret::new),
        ttl: Duration::from_secs(30),
        max_instances: 4,
        max_pools: 4,
        max_applications: 0,
    };
    let targets = [settings("checkout", Some("Zq9xK")), settings("open", None)];
    pushed.configure(&targets, &Default::default(), SystemTime::now());
    let state = Arc::new(AppState {
        store: Arc::new(Store::new(["checkout", "open"])),
        alerts: Arc::default(),
        exposition: Arc::default(),
        registry: prom.clone(),
        pushed: pushed.clone(),
        silences: Arc::default(),
        disabled: crate::notify::NotifyMetrics::new(&prom)
            .expect("notify metrics")
            .disabled(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!(
        "http://{}/api/v1/pools",
        listener.local_addr().expect("addr")
    );
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(server.serve(listener, state, stop_rx));
    Running {
        url,
        pushed,
        prom,
        _stop: stop,
    }
}

const PUSH: &str = r#"{"application": "checkout", "instance": "web-1",
    "pools": [{"name": "default", "capacity": 10, "in_use": 10, "idle": 0, "waiting": 4}]}"#;

impl Running {
    async fn post(&self, body: &str, headers: &[(&str, &str)]) -> (u16, String, Option<String>) {
        let mut req = reqwest::Client::new()
            .post(&self.url)
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("answer");
        let status = resp.status().as_u16();
        let auth = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        (status, resp.text().await.expect("body"), auth)
    }

    fn waiting(&self, target: &str) -> Option<u64> {
        let data = self.pushed.report(target, SystemTime::now()).ok()?;
        data.pools.first().map(|p| p.waiting)
    }

    fn refused(&self, reason: &str) -> f64 {
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&self.prom.gather())
            .expect("encode");
        let series = format!("poolwatch_push_refused_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series}in\n{text}"))
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");
const GOOD: (&str, &str) = ("authorization", "Bearer Zq9xK");

#[tokio::test]
async fn a_valid_push_is_stored_and_answered_with_counts() {
    let r = start().await;
    let (status, body, _) = r.post(PUSH, &[JSON, GOOD]).await;
    assert_eq!(status, 202, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        answer,
        serde_json::json!({"status": "success",
            "data": {"application": "checkout", "pools": 1, "instances": 1}})
    );
    assert_eq!(r.waiting("checkout"), Some(4));
}

#[tokio::test]
async fn refused_pushes_name_the_problem_and_store_nothing() {
    let r = start().await;
    let big = format!(
        r#"{{"application": "open", "instance": "{}", "pools": []}}"#,
        "x".repeat(3000)
    );
    let ct = ("content-type", "text/plain");
    // (body, headers, status, the error contains, counted reason)
    let cases = [
        (
            PUSH.to_string(),
            vec![JSON],
            401,
            "needs a bearer token",
            "unauthorized",
        ),
        (
            PUSH.to_string(),
            vec![JSON, ("authorization", "Bearer Zq9xK-")],
            401,
            "needs a bearer token",
            "unauthorized",
        ),
        (
            PUSH.replace("checkout", "nope"),
            vec![JSON, GOOD],
            404,
            "application: no push target has this name",
            "unknown_application",
        ),
        (
            PUSH.replace("\"capacity\": 10", "\"capacity\": 9"),
            vec![JSON, GOOD],
            400,
            "pools[0].capacity: must be ≥ in_use + idle (10 + 0)",
            "invalid",
        ),
        (
            PUSH.replace("\"waiting\": 4", "\"waiting\": \"4\""),
            vec![JSON, GOOD],
            400,
            "pools[0].waiting: invalid type",
            "invalid",
        ),
        (
            "{\"application\": ".into(),
            vec![JSON, GOOD],
            400,
            "application: EOF while parsing",
            "invalid",
        ),
        (
            PUSH.to_string(),
            vec![ct, GOOD],
            415,
            "Content-Type: application/json",
            "not_json",
        ),
        (big, vec![JSON], 413, "larger than", "too_large"),
    ];
    for (body, headers, status, message, reason) in &cases {
        let before = r.refused(reason);
        let (got, text, auth) = r.post(body, headers).await;
        assert_eq!(got, *status, "{text}");
        assert!(text.contains(message), "{status}: {text}");
        assert!(!text.contains("Zq9xK"), "{text}");
        assert_eq!(auth.is_some(), *status == 401, "{status}: {auth:?}");
        // A body whose declared length is too large is refused before routing (the client
        // sends Content-Length): the server answers it, the push counters never see it.
        let counted = if *reason == "too_large" { 0.0 } else { 1.0 };
        assert_eq!(r.refused(reason) - before, counted, "{reason}");
    }
    assert_eq!(r.waiting("checkout"), None);
    // GET lists the pools (see routes); other methods are not allowed.
    let put = reqwest::Client::new()
        .put(&r.url)
        .send()
        .await
        .expect("answer");
    assert_eq!(put.status().as_u16(), 405);
    assert_eq!(
        put.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, HEAD, POST")
    );
}
