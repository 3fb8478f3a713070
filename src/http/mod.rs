//! The HTTP endpoint (hyper 1, HTTP/1.1): `/` (status page), `/metrics`, `/healthz`, `/readyz`,
//! `/api/v1/alerts`, `POST /api/v1/pools`.
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
//!
//! What is served:
//!
//! * [`routes`] — the one table of method and path to handler; a feature adds its handler
//!   module and one line there.
//! * [`exposition`] — `/metrics`, gzip-compressed when accepted.
//! * [`status`] — `/`: the live status page (targets, pools, sparklines, holders, alerts).
//! * [`api`] — JSON answers and bounded JSON request bodies for the `/api/v1/` endpoints, with
//!   errors that name the field.
//! * [`push`] — `POST /api/v1/pools`: pool stats applications push (see
//!   [`crate::source::push`]).

pub mod api;
pub mod config;
pub mod exposition;
pub mod metrics;
pub mod push;
pub mod routes;
pub mod server;
pub mod silences;
pub mod slots;
pub mod status;

pub use config::{HttpConfig, Limits};
pub use routes::handle;
pub use server::Server;

use crate::store::Store;
use http_body_util::{Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Response, StatusCode};
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
    /// Where `POST /api/v1/pools` stores what applications push.
    pub pushed: Arc<crate::source::push::Registry>,
    /// Silences, created and expired through `/api/v1/silences`.
    pub silences: Arc<crate::dispatch::silence::SilenceStore>,
    /// Integrations disabled by a 410 Gone, listed by `/readyz`.
    pub disabled: crate::notify::Disabled,
}

/// A response with `status`, `content_type` and `body`.
pub fn respond(
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
