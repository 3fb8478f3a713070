//! The one table of method and path to handler.

use super::api::{self, json};
use super::{exposition, push, respond, silences, status, AppState, RequestBody};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};

/// Routes one request.
pub async fn handle(req: Request<RequestBody>, state: &AppState) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let read = method == Method::GET || method == Method::HEAD;
    match (req.uri().path(), read) {
        ("/metrics", true) => exposition::metrics(&req, state),
        ("/healthz", true) => respond(StatusCode::OK, "text/plain", "ok\n"),
        ("/readyz", true) => readyz(state),
        ("/api/v1/alerts", true) => json(
            StatusCode::OK,
            &serde_json::json!({
                "status": "success",
                "data": { "alerts": state.alerts.get() },
            }),
        ),
        ("/", true) => status::page(state, std::time::SystemTime::now()),
        ("/api/v1/pools", _) if method == Method::POST => push::post(req, state).await,
        ("/api/v1/pools", true) => pools(state),
        ("/api/v1/pools", false) => api::method_not_allowed("GET, HEAD, POST"),
        ("/api/v1/silences", true) => silences::list(state),
        ("/api/v1/silences", false) if method == Method::POST => silences::add(req, state).await,
        ("/api/v1/silences", false) => api::method_not_allowed("GET, HEAD, POST"),
        (p, false) if method == Method::DELETE && p.starts_with(silences::ONE) => {
            silences::expire(p, state)
        }
        ("/metrics" | "/healthz" | "/readyz" | "/api/v1/alerts" | "/", false) => {
            api::method_not_allowed("GET, HEAD")
        }
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// `/api/v1/pools`: every pool of every target that is up, as `snapshot --json` shows it, with
/// its server side (a linked application pool) and budget (a ceiling linked pools draw on).
fn pools(state: &AppState) -> Response<Full<Bytes>> {
    let pools: Vec<serde_json::Value> = state
        .store
        .targets()
        .values()
        .filter_map(|e| e.data.as_ref())
        .flat_map(|d| d.pools.iter().map(crate::snapshot::pool_json))
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({ "status": "success", "data": { "pools": pools } }),
    )
}

/// `/readyz`: 200 once every target has been polled at least once; then a line per
/// integration disabled by a 410 Gone (a detail: it does not make poolwatch unready, which
/// would only stop its scrapes).
fn readyz(state: &AppState) -> Response<Full<Bytes>> {
    let waiting = state.store.not_polled();
    let disabled: String = state
        .disabled
        .list()
        .into_iter()
        .map(|(r, i, why)| {
            format!(
                "integration disabled: receiver {r}, integration {i}: {why}; fix it and reload\n"
            )
        })
        .collect();
    if waiting.is_empty() {
        respond(StatusCode::OK, "text/plain", format!("ready\n{disabled}"))
    } else {
        let body = format!(
            "not ready: waiting for the first poll of {}\n{disabled}",
            waiting.join(", ")
        );
        respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", body)
    }
}
