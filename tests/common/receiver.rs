//! A real HTTP/1.1 webhook receiver that records every request.
//!
//! It runs on a thread and runtime of its own, so it keeps answering whatever the test's
//! runtime is doing, and it can be stopped and restarted on the same port to play a receiver
//! that is down for a while.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::common::poll_until;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The path without the query, e.g. `/hook`.
    pub path: String,
    /// The query string without `?`, if any.
    pub query: Option<String>,
    /// Header names (lower case) and values, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The body parsed as JSON, when it is JSON.
    pub json: Option<serde_json::Value>,
    /// When the whole request had arrived (monotonic, for measuring delays).
    pub received_at: Instant,
    /// The same moment on the wall clock.
    pub received_wall: SystemTime,
    /// The status the receiver answered with.
    pub answered: u16,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8 text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the server shares with the handle.
#[derive(Debug)]
struct State {
    /// Every request received so far.
    requests: Vec<RecordedRequest>,
    /// The status to answer with; 200 unless a test says otherwise.
    status: u16,
    /// How long to wait before answering, to provoke client timeouts.
    delay: Duration,
}

/// A running (or stopped) webhook receiver on a fixed 127.0.0.1 port.
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Tells the serving thread to close the listener and every open connection.
    shutdown: Option<oneshot::Sender<()>>,
    /// The serving thread, joined on stop.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Starts a receiver on a free port of 127.0.0.1 answering 200 `{}`.
    pub async fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let state = Arc::new(Mutex::new(State {
            requests: Vec::new(),
            status: 200,
            delay: Duration::ZERO,
        }));
        let mut receiver = Receiver {
            addr,
            state,
            shutdown: None,
            thread: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: std::net::TcpListener) {
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let (tx, rx) = oneshot::channel();
        let state = Arc::clone(&self.state);
        let thread = std::thread::Builder::new()
            .name(format!("receiver-{}", self.addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("receiver runtime");
                runtime.block_on(accept_loop(listener, state, rx));
            })
            .expect("spawn receiver thread");
        self.shutdown = Some(tx);
        self.thread = Some(thread);
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers every following request with `status` (and body `{}`).
    pub fn set_status(&self, status: u16) {
        assert!((100..1000).contains(&status), "invalid status {status}");
        self.state.lock().expect("receiver state").status = status;
    }

    /// Waits `delay` before answering every following request.
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().expect("receiver state").delay = delay;
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().expect("receiver state").requests.clone()
    }

    /// Forgets the requests received so far.
    pub fn clear(&self) {
        self.state.lock().expect("receiver state").requests.clear();
    }

    /// Polls until `check` holds for the requests received so far; false after `timeout`.
    pub async fn wait_for(
        &self,
        check: impl Fn(&[RecordedRequest]) -> bool,
        timeout: Duration,
    ) -> bool {
        poll_until(timeout, || async {
            let state = self.state.lock().expect("receiver state");
            check(&state.requests).then_some(())
        })
        .await
        .is_some()
    }

    /// Closes the listener and every open connection: clients now get "connection refused".
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("receiver thread panicked");
        }
    }

    /// Listens again on the same port, keeping the recorded requests and status.
    /// The port may be taken meanwhile as the local port of some outgoing connection (it is an
    /// ephemeral port): binding is retried for a few seconds before giving up.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let listener = loop {
            match std::net::TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("rebind receiver on {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Whether it is currently listening.
    pub fn is_running(&self) -> bool {
        self.thread.is_some()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(state) = self.state.lock() {
                eprintln!(
                    "--- receiver {} got {} request(s)",
                    self.addr,
                    state.requests.len()
                );
                for r in &state.requests {
                    eprintln!(
                        "{} {} -> {}: {}",
                        r.method,
                        r.path,
                        r.answered,
                        String::from_utf8_lossy(&r.body)
                    );
                }
            }
            // Joining could hang or double-panic while unwinding; just signal the thread.
            if let Some(tx) = self.shutdown.take() {
                let _ = tx.send(());
            }
            return;
        }
        self.stop();
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    state: Arc<Mutex<State>>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = TcpListener::from_std(listener).expect("tokio listener");
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = Arc::clone(&state);
                connections.spawn(async move {
                    let service = service_fn(move |request| handle(request, Arc::clone(&state)));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Dropping the listener and aborting the connections closes every socket.
    drop(listener);
    connections.shutdown().await;
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let (status, delay) = {
        let state = state.lock().expect("receiver state");
        (state.status, state.delay)
    };
    let record = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        json: serde_json::from_slice(&body).ok(),
        body,
        received_at: Instant::now(),
        received_wall: SystemTime::now(),
        answered: status,
    };
    state.lock().expect("receiver state").requests.push(record);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("valid response");
    Ok(response)
}
