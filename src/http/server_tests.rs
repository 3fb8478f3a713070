//! The server in-process on a port of its own, driven by raw TCP clients: what a hostile or
//! careless client can do to a slot, and how the slot is taken back. Waits are generous bounds
//! on events that must happen; which mechanism closed a connection is read from the counters.

use super::*;
use crate::store::Store;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Far above every deadline used here: only a failing test waits this long.
const WAIT: Duration = Duration::from_secs(20);

fn limits(max_connections: usize) -> Limits {
    Limits {
        max_connections,
        header_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_millis(300),
        max_body_bytes: 100,
    }
}

struct Running {
    addr: SocketAddr,
    registry: Registry,
    _stop: watch::Sender<bool>,
}

async fn start(limits: Limits) -> Running {
    let registry = Registry::new();
    let server = Server::new(limits, &registry).expect("metrics");
    run(server, registry).await
}

/// Serves `server` (whose metrics are in `registry`) on a free port.
async fn run(server: Server, registry: Registry) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let state = Arc::new(AppState {
        store: Arc::new(Store::new(["db"])),
        alerts: Arc::default(),
        exposition: Arc::default(),
        registry: registry.clone(),
        pushed: Arc::new(crate::source::push::Registry::new(&registry).expect("push metrics")),
        silences: Arc::default(),
        disabled: crate::notify::NotifyMetrics::new(&registry)
            .expect("notify metrics")
            .disabled(),
    });
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(server.serve(listener, state, stop_rx));
    Running {
        addr,
        registry,
        _stop: stop,
    }
}

impl Running {
    fn value(&self, name: &str, reason: Option<&str>) -> f64 {
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .expect("encode");
        let series = match reason {
            Some(r) => format!("{name}{{reason=\"{r}\"}} "),
            None => format!("{name} "),
        };
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample {series}in\n{text}"))
    }

    fn closed(&self, reason: &str) -> f64 {
        self.value("poolwatch_http_connections_closed_total", Some(reason))
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }
}

/// Reads until the server closes the connection; everything it sent, or `None` after [`WAIT`].
async fn until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

/// One request on a new connection; the whole answer.
async fn request(running: &Running, head: &str) -> String {
    let mut stream = running.connect().await;
    stream.write_all(head.as_bytes()).await.expect("write");
    until_closed(&mut stream).await.expect("answer within WAIT")
}

const GET_HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

#[tokio::test]
async fn a_connection_that_sends_nothing_or_trickles_is_closed() {
    let running = start(limits(8)).await;
    let mut silent = running.connect().await;
    let mut trickle = running.connect().await;
    let trickling = async {
        for b in GET_HEALTHZ.as_bytes() {
            if trickle.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        until_closed(&mut trickle).await
    };
    let (silent_end, trickle_end) = tokio::join!(until_closed(&mut silent), trickling);
    assert_eq!(silent_end.as_deref(), Some(""));
    assert_eq!(
        trickle_end.as_deref(),
        Some(""),
        "a trickled head was answered"
    );
    assert_eq!(running.closed("header_timeout"), 2.0);
    assert_eq!(running.value("poolwatch_http_connections", None), 0.0);
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_when_idle() {
    let running = start(limits(8)).await;
    let mut stream = running.connect().await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let answer = until_closed(&mut stream).await.expect("closed within WAIT");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(running.closed("idle_timeout"), 1.0);
    assert_eq!(running.closed("header_timeout"), 0.0);
}

#[tokio::test]
async fn a_client_that_does_not_read_its_answers_is_closed() {
    let running = start(limits(8)).await;
    let mut stream = running.connect().await;
    // Pipelined requests whose answers are never read fill every buffer on the way.
    let many = "GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n".repeat(20_000);
    let (mut rd, mut wr) = stream.split();
    let _ = tokio::time::timeout(WAIT, wr.write_all(many.as_bytes())).await;
    let timeouts = || running.closed("request_timeout") + running.closed("idle_timeout");
    let closed = wait_for(|| timeouts() == 1.0).await;
    assert!(closed, "still open; {} closed", timeouts());
    let mut buf = [0u8; 65536];
    let _ = rd.read(&mut buf).await;
}

/// Polls `done` every 10 ms for up to [`WAIT`].
async fn wait_for(done: impl Fn() -> bool) -> bool {
    let until = Instant::now() + WAIT;
    while Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

#[tokio::test]
async fn a_full_server_still_answers_by_closing_the_longest_waiting() {
    let running = start(Limits {
        header_timeout: Duration::from_secs(60),
        ..limits(4)
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(running.connect().await);
    }
    // The 6 oldest made room for the 4 newest; nobody waits for a timeout.
    assert!(wait_for(|| running.closed("evicted") == 6.0).await);
    let answer = request(&running, GET_HEALTHZ).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(running.closed("evicted"), 7.0);
    assert_eq!(running.closed("refused"), 0.0);
    for (i, stream) in idle.iter_mut().enumerate().take(7) {
        assert_eq!(
            until_closed(stream).await.as_deref(),
            Some(""),
            "connection {i}"
        );
    }
    assert_eq!(running.value("poolwatch_http_connection_limit", None), 4.0);
    assert_eq!(running.value("poolwatch_http_connections", None), 3.0);
}

#[tokio::test]
async fn a_declared_body_over_the_cap_is_refused_without_reading_it() {
    let running = start(limits(8)).await;
    let answer = request(
        &running,
        "POST /api/v1/alerts HTTP/1.1\r\nhost: x\r\ncontent-length: 101\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("larger than 100 bytes"), "{answer}");
    let answer = request(
        &running,
        "POST /api/v1/alerts HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
}

#[tokio::test]
async fn an_oversized_head_is_refused() {
    let running = start(limits(8)).await;
    let cookie = "a".repeat(MAX_BUF_BYTES + 1);
    let answer = request(
        &running,
        &format!("GET /healthz HTTP/1.1\r\nhost: x\r\ncookie: {cookie}\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[tokio::test]
async fn a_refused_connection_gets_a_whole_503() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut client = TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect");
    client
        .write_all(GET_HEALTHZ.as_bytes())
        .await
        .expect("write");
    let (accepted, _) = listener.accept().await.expect("accept");
    refuse(accepted);
    let answer = until_closed(&mut client).await.expect("closed");
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    assert!(
        head.starts_with("HTTP/1.1 503 Service Unavailable"),
        "{head}"
    );
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{answer}"
    );
    assert_eq!(body, "too many connections\n");
}

#[tokio::test]
async fn new_limits_apply_to_the_next_connections() {
    let registry = Registry::new();
    let server = Server::new(limits(8), &registry).expect("metrics");
    server.set_limits(Limits {
        max_body_bytes: 10,
        ..limits(2)
    });
    let running = run(server, registry).await;
    assert_eq!(running.value("poolwatch_http_connection_limit", None), 2.0);
    let answer = request(
        &running,
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 11\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}
