//! The one table of method and path to handler.

use super::api::{self, json};
use super::{exposition, push, respond, status, AppState, RequestBody};
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
        ("/api/v1/pools", _) => api::method_not_allowed("POST"),
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
