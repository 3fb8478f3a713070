//! The one table of method and path to handler.

use super::api::{self, json};
use super::{exposition, respond, silences, AppState, RequestBody};
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
        ("/", true) => respond(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<html><body><h1>poolwatch</h1><ul><li><a href=\"/metrics\">/metrics</a></li>\
             <li><a href=\"/api/v1/alerts\">/api/v1/alerts</a></li><li><a href=\"/healthz\">/healthz</a></li>\
             <li><a href=\"/readyz\">/readyz</a></li></ul></body></html>\n",
        ),
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

/// `/readyz`: 200 once every target has been polled at least once.
fn readyz(state: &AppState) -> Response<Full<Bytes>> {
    let waiting = state.store.not_polled();
    if waiting.is_empty() {
        respond(StatusCode::OK, "text/plain", "ready\n")
    } else {
        let body = format!(
            "not ready: waiting for the first poll of {}\n",
            waiting.join(", ")
        );
        respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", body)
    }
}
