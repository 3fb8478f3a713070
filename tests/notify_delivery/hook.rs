//! The test receiver: a small hyper server on 127.0.0.1 that records every request and answers
//! from a script.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::eventually;

/// How the test receiver answers one request.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// Echo the request path and `Authorization` header in the body, as a careless receiver
    /// might: the notifier must keep them out of its logs.
    pub echo: bool,
    /// Hold the response until the test releases it: an attempt deterministically in flight.
    pub hold: Option<Arc<tokio::sync::Notify>>,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            echo: false,
            hold: None,
        }
    }
}

/// One request the receiver got, and what it answered.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub json: Value,
    pub status: u16,
}

impl Received {
    pub fn alertname(&self) -> String {
        self.json["alerts"][0]["labels"]["alertname"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    }
}

#[derive(Default)]
pub struct HookState {
    pub script: Mutex<VecDeque<Reply>>,
    pub received: Mutex<Vec<Received>>,
}

/// A webhook receiver on 127.0.0.1; it stops (connections included) when dropped.
pub struct Hook {
    pub addr: SocketAddr,
    pub state: Arc<HookState>,
    pub task: JoinHandle<()>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hook {
    /// Listens on `port` (0: any) and answers `script` in order, then 200.
    pub async fn start(port: u16, script: Vec<Reply>) -> Hook {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(HookState {
            script: Mutex::new(script.into()),
            ..HookState::default()
        });
        let task = tokio::spawn(serve(listener, Arc::clone(&state)));
        Hook { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// The alert names of the requests answered 2xx, in order.
    pub fn accepted(&self) -> Vec<String> {
        let received = self.received();
        received
            .iter()
            .filter(|r| r.status < 300)
            .map(Received::alertname)
            .collect()
    }

    pub async fn wait_for_requests(&self, n: usize) -> Vec<Received> {
        eventually(&format!("{n} requests"), || self.received().len() >= n).await;
        self.received()
    }
}

pub async fn serve(listener: TcpListener, state: Arc<HookState>) {
    // Owned here so that aborting this task also closes kept-alive connections.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = service_fn(move |req| answer(Arc::clone(&state), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

pub async fn answer(
    state: Arc<HookState>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let reply = state
        .script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(Reply::status(200));
    let path = parts.uri.path().to_string();
    let text = if reply.echo {
        let auth = parts
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap_or(""));
        format!("no such hook {path} for {}", auth.unwrap_or(""))
    } else {
        String::new()
    };
    state.received.lock().expect("lock").push(Received {
        at: Instant::now(),
        path,
        headers: parts.headers,
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status: reply.status,
    });
    if let Some(gate) = &reply.hold {
        gate.notified().await;
    }
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    Ok(response
        .body(Full::new(Bytes::from(text)))
        .expect("response"))
}

/// A port nobody listens on (until a test starts a [`Hook`] on it).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
