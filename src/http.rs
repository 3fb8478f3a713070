//! The HTTP endpoint (hyper 1, HTTP/1.1): `/metrics`, `/healthz`, `/readyz`, `/api/v1/alerts`.
//! The server takes an already bound listener and a shutdown signal, so tests bind port 0.

use crate::store::Store;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::Registry;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the handlers read.
pub struct AppState {
    /// Targets and alerts.
    pub store: Arc<Store>,
    /// The rendered store, for `/metrics`.
    pub exposition: Arc<crate::exporter::Exposition>,
    /// Process-lifetime metric families.
    pub registry: Registry,
}

/// Serves until `shutdown` turns true. Connections in flight finish on their own.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an HTTP connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&req, &state)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
}

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// Routes one request.
pub fn handle(req: &Request<Incoming>, state: &AppState) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET and HEAD\n",
        );
    }
    match req.uri().path() {
        "/metrics" => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state.exposition.render(&state.registry),
        ),
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => {
            let waiting = state.store.not_polled();
            if waiting.is_empty() {
                respond(StatusCode::OK, "text/plain", "ready\n")
            } else {
                let body = format!("not ready: waiting for the first poll of {}\n", waiting.join(", "));
                respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", body)
            }
        }
        "/api/v1/alerts" => {
            let body = serde_json::json!({
                "status": "success",
                "data": { "alerts": state.store.alerts() },
            });
            respond(StatusCode::OK, "application/json", body.to_string())
        }
        "/" => respond(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<html><body><h1>poolwatch</h1><ul><li><a href=\"/metrics\">/metrics</a></li>\
             <li><a href=\"/api/v1/alerts\">/api/v1/alerts</a></li><li><a href=\"/healthz\">/healthz</a></li>\
             <li><a href=\"/readyz\">/readyz</a></li></ul></body></html>\n",
        ),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}
