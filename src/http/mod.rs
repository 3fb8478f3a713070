//! The HTTP endpoint (hyper 1, HTTP/1.1): `/metrics`, `/healthz`, `/readyz`, `/api/v1/alerts`.
//! The server takes an already bound listener and a shutdown signal, so tests bind port 0.
//!
//! The port is open to whoever can reach it, so it must never starve the daemon of the
//! descriptors, memory or time that polling, delivery and state saves need:
//!
//! * [`config`] — `[http]`: the listen address and the limits below, with their defaults.
//! * [`slots`] — at most `max_connections` connections (lowered to fit the open-file limit by
//!   [`crate::fdlimit`]); at the limit the one waiting longest for a request makes room, and
//!   when all are mid-request the newcomer is answered 503 and closed at once.
//! * [`server`] — the accept loop and connection tasks: a deadline for every phase (first
//!   request head, keep-alive wait, request to response), request heads up to 64 KiB, bodies up
//!   to `max_body_bytes`.
//! * [`metrics`] — `poolwatch_http_connections`, `poolwatch_http_connection_limit`,
//!   `poolwatch_http_connections_closed_total{reason}`.

pub mod config;
pub mod metrics;
pub mod server;
pub mod slots;

pub use config::{HttpConfig, Limits};
pub use server::Server;

use crate::store::Store;
use http_body_util::{Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use prometheus::Registry;
use std::sync::Arc;

/// A request body as handlers see it: reading past `max_body_bytes` is an error.
pub type RequestBody = Limited<Incoming>;

/// What the handlers read.
pub struct AppState {
    /// What is known of the targets and pools.
    pub store: Arc<Store>,
    /// The pending and firing alerts, as last published by the daemon.
    pub alerts: Arc<crate::alert::Board>,
    /// The rendered store, for `/metrics`.
    pub exposition: Arc<crate::exporter::Exposition>,
    /// Process-lifetime metric families.
    pub registry: Registry,
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

/// `/metrics`, gzip-compressed when the client accepts it (Prometheus does): the exposition of
/// hundreds of pools shrinks about tenfold.
fn metrics(req: &Request<RequestBody>, state: &AppState) -> Response<Full<Bytes>> {
    let text = state.exposition.render(&state.registry);
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    if !accepts_gzip(req.headers()) {
        return respond(StatusCode::OK, content_type, text);
    }
    match gzip(text.as_bytes()) {
        Ok(body) => {
            let mut resp = respond(StatusCode::OK, content_type, body);
            resp.headers_mut().insert(
                hyper::header::CONTENT_ENCODING,
                hyper::header::HeaderValue::from_static("gzip"),
            );
            resp
        }
        Err(e) => {
            tracing::warn!(error = %e, "compressing /metrics failed; sending it uncompressed");
            respond(StatusCode::OK, content_type, text)
        }
    }
}

/// Whether `Accept-Encoding` lists gzip with a non-zero quality.
pub fn accepts_gzip(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all(hyper::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';').map(str::trim);
            let coding = it.next().unwrap_or("");
            let zero = it.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero
        })
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes)?;
    enc.finish()
}

/// Routes one request.
pub fn handle(req: &Request<RequestBody>, state: &AppState) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET and HEAD\n",
        );
    }
    match req.uri().path() {
        "/metrics" => metrics(req, state),
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
                "data": { "alerts": state.alerts.get() },
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

#[cfg(test)]
mod gzip_tests {
    use super::*;

    #[test]
    fn gzip_is_used_when_accepted() {
        // (Accept-Encoding values, want gzip)
        let cases: [(&[&str], bool); 8] = [
            (&[], false),
            (&["gzip"], true),
            (&["identity"], false),
            (&["deflate, gzip;q=0.5"], true),
            (&["GZIP"], true),
            (&["gzip;q=0"], false),
            (&["br", "gzip"], true),
            (&["*"], true),
        ];
        for (values, want) in cases {
            let mut headers = hyper::HeaderMap::new();
            for v in values {
                headers.append(
                    hyper::header::ACCEPT_ENCODING,
                    hyper::header::HeaderValue::from_static(v),
                );
            }
            assert_eq!(accepts_gzip(&headers), want, "{values:?}");
        }
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read;
        let text = "poolwatch_pool_capacity{target=\"a\",kind=\"server\",pool=\"server\"} 97\n"
            .repeat(500);
        let packed = gzip(text.as_bytes()).expect("gzip");
        assert!(
            packed.len() * 10 < text.len(),
            "{} of {}",
            packed.len(),
            text.len()
        );
        let mut unpacked = String::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .read_to_string(&mut unpacked)
            .expect("gunzip");
        assert_eq!(unpacked, text);
    }
}
