//! The accept loop and the connection tasks: every connection holds a slot ([`super::slots`])
//! and lives only as long as its phase allows.

use super::metrics::HttpMetrics;
use super::slots::{CloseReason, Slot, Slots, Tracker};
use super::{handle, AppState, Limits, RequestBody};
use http_body_util::{Full, Limited};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::Registry;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// Longest a new connection waits for an evicted one to close. Closing is immediate once the
/// evicted connection's task runs; this only bounds a pathological case.
const EVICTION_WAIT: Duration = Duration::from_millis(500);

/// Largest request head (and read buffer) per connection: 64 KiB fits browsers' cookies
/// several times over and bounds memory at `max_connections` × 64 KiB. hyper's minimum is 8 KiB.
const MAX_BUF_BYTES: usize = 64 * 1024;

/// What a refused connection gets: written without waiting, then the socket is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 21\r\nconnection: close\r\nretry-after: 1\r\n\r\ntoo many connections\n";

/// The HTTP server: its slots and metrics. Cloning shares them, so that the daemon keeps a
/// handle to change the limits on reload while the accept loop runs.
#[derive(Clone)]
pub struct Server {
    slots: Arc<Slots>,
    metrics: HttpMetrics,
}

impl Server {
    /// A server under `limits`, its metric families registered in `registry`.
    pub fn new(limits: Limits, registry: &Registry) -> prometheus::Result<Server> {
        let metrics = HttpMetrics::new(registry)?;
        metrics.limit.set(gauge_value(limits.max_connections));
        Ok(Server {
            slots: Slots::new(limits, metrics.open.clone()),
            metrics,
        })
    }

    /// Replaces the limits; open connections keep their slots, new deadlines use the new
    /// timeouts.
    pub fn set_limits(&self, limits: Limits) {
        self.metrics.limit.set(gauge_value(limits.max_connections));
        self.slots.set_limits(limits);
    }

    /// Serves `listener` until `shutdown` turns true. Connections in flight finish on their
    /// own, within their deadlines.
    pub async fn serve(
        self,
        listener: TcpListener,
        state: Arc<AppState>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => {
                    // An answer of more than one write (a streamed body) would otherwise wait
                    // for the client's delayed ACK after its first (Nagle's algorithm).
                    let _ = stream.set_nodelay(true);
                    stream
                }
                Err(e) => {
                    // EMFILE cannot come from HTTP connections (their limit leaves descriptors
                    // in reserve), but another part of the process may cause it: back off.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Accept first, then decide: a connection left in the kernel's backlog would keep
            // its client waiting (and new ones queued behind it) instead of getting an answer.
            match self.slots.admit(EVICTION_WAIT).await {
                Some(slot) => {
                    tokio::spawn(connection(
                        stream,
                        slot,
                        state.clone(),
                        self.metrics.clone(),
                    ));
                }
                None => {
                    refuse(stream);
                    self.metrics.closed(CloseReason::Refused);
                }
            }
        }
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Answers 503 and closes, without waiting on the client: one non-blocking write, one
/// non-blocking read (so that a request already received does not turn the close into a
/// reset that discards the answer), and the close.
fn refuse(stream: TcpStream) {
    let Ok(mut stream) = stream.into_std() else {
        return;
    };
    let _ = stream.write(REFUSAL);
    let _ = stream.read(&mut [0u8; 4096]);
}

/// Serves one connection until it ends, is evicted, or overruns the deadline of its phase.
async fn connection(stream: TcpStream, slot: Slot, state: Arc<AppState>, metrics: HttpMetrics) {
    let tracker = slot.tracker();
    let service = hyper::service::service_fn(move |req| {
        let (state, tracker) = (state.clone(), tracker.clone());
        async move { Ok::<_, Infallible>(answer(req, &state, tracker).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        // Every timeout is the slot's deadline below; hyper's own would be a second clock.
        .header_read_timeout(None)
        .max_buf_size(MAX_BUF_BYTES)
        .max_header_size(MAX_BUF_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let closed = loop {
        let (at, _) = slot.deadline();
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                break None;
            }
            _ = slot.evicted() => break Some(CloseReason::Evicted),
            _ = tokio::time::sleep_until(at) => {
                // The phase may have moved on since the deadline was read.
                let (at, reason) = slot.deadline();
                if at <= Instant::now() {
                    break Some(reason);
                }
            }
        }
    };
    if let Some(reason) = closed {
        metrics.closed(reason);
    }
}

/// Handles one request: the connection is busy until the response body is handed over.
async fn answer(
    req: Request<Incoming>,
    state: &AppState,
    tracker: Tracker,
) -> Response<TrackedBody> {
    tracker.busy();
    let max_body = tracker.limits().max_body_bytes;
    let response = if declared_length(&req).is_some_and(|n| n > max_body) {
        too_large(max_body)
    } else {
        let cap = usize::try_from(max_body).unwrap_or(usize::MAX);
        let req: Request<RequestBody> = req.map(|body| Limited::new(body, cap));
        handle(req, state).await
    };
    response.map(|body| TrackedBody {
        inner: body,
        tracker,
    })
}

/// The `content-length` a request declares, if any.
fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(hyper::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// 413, closing the connection rather than reading (or skipping) the body.
fn too_large(max_body: u64) -> Response<Full<Bytes>> {
    let mut resp = super::respond(
        StatusCode::PAYLOAD_TOO_LARGE,
        "text/plain",
        format!("request body larger than {max_body} bytes\n"),
    );
    resp.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    resp
}

/// A response body that marks its connection idle once hyper has taken all of it.
pub struct TrackedBody {
    inner: Full<Bytes>,
    tracker: Tracker,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.tracker.idle();
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
