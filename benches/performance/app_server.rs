//! A real HTTP/1.1 server (hyper, keep-alive, on loopback) inside the benchmark process that
//! plays many applications' metrics endpoints: `GET /app/N/metrics` serves application N's
//! exposition, rebuilt every second so that its numbers move; and hostile endpoints for the
//! caps: `/huge` (100 MB with its `Content-Length`), `/huge-chunked` (100 MB, chunked, no
//! length), `/million` (1,000,000 series), `/long-label` (a 1 MB label value).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::stream;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::exposition_text::{self, Library};

/// Size of the 100 MB bodies.
pub const HUGE_BYTES: usize = 100 << 20;
/// Series of `/million`.
pub const MILLION: usize = 1_000_000;
/// Bytes of the label value of `/long-label`.
pub const LONG_LABEL_BYTES: usize = 1 << 20;

/// What the applications look like.
#[derive(Debug, Clone, Copy)]
pub struct Apps {
    /// How many endpoints `/app/0/metrics` … `/app/{count-1}/metrics`.
    pub count: usize,
    /// Pools per application.
    pub pools: usize,
    /// HTTP routes per application (14 series each) besides runtime and pool series.
    pub routes: usize,
}

impl Apps {
    /// The library application `n` uses: even ones Go `database/sql`, odd ones HikariCP.
    pub fn library(n: usize) -> Library {
        if n % 2 == 0 {
            Library::GoSql
        } else {
            Library::Hikari
        }
    }
}

/// The running server; stopped on drop.
pub struct AppServer {
    addr: SocketAddr,
    bodies: Arc<RwLock<Vec<Bytes>>>,
    accepted: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl AppServer {
    /// Binds a free loopback port and serves `apps`.
    pub async fn start(apps: Apps) -> AppServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let bodies = Arc::new(RwLock::new(render(apps, 0)));
        let hostile = Arc::new(Hostile::new());
        let shared = bodies.clone();
        let refresh = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for t in 1.. {
                tick.tick().await;
                let fresh = render(apps, t);
                *shared.write().expect("bodies") = fresh;
            }
        });
        let shared = bodies.clone();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let accept = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                let (bodies, hostile) = (shared.clone(), hostile.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let answer = answer(&req, &bodies, &hostile);
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(sock), service)
                        .await;
                });
            }
        });
        AppServer {
            addr,
            bodies,
            accepted,
            tasks: vec![refresh, accept],
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// TCP connections accepted since the start, all applications together.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Bytes and series (sample lines) of application `n`'s current exposition.
    pub fn size_of(&self, n: usize) -> (usize, usize) {
        let bodies = self.bodies.read().expect("bodies");
        let body = &bodies[n];
        let series = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty() && l[0] != b'#')
            .count();
        (body.len(), series)
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn render(apps: Apps, tick: u64) -> Vec<Bytes> {
    (0..apps.count)
        .map(|n| {
            let text =
                exposition_text::application(Apps::library(n), n, apps.pools, apps.routes, tick);
            Bytes::from(text)
        })
        .collect()
}

/// The hostile bodies, built once.
struct Hostile {
    /// 64 KiB of sample lines, repeated to make 100 MB.
    chunk: Bytes,
    million: Bytes,
    long_label: Bytes,
}

impl Hostile {
    fn new() -> Hostile {
        let line = b"filler_series_total 1\n";
        let chunk: Vec<u8> = line.iter().copied().cycle().take(64 << 10).collect();
        let mut million = String::with_capacity(MILLION * 12);
        for i in 0..MILLION {
            million.push_str(&format!("s{i} 1\n"));
        }
        let long_label = format!(
            "pool_in_use{{pool=\"{}\"}} 1\n",
            "x".repeat(LONG_LABEL_BYTES)
        );
        Hostile {
            chunk: Bytes::from(chunk),
            million: Bytes::from(million),
            long_label: Bytes::from(long_label),
        }
    }

    /// 100 MB as a stream of 64 KiB frames, never held whole.
    fn huge(&self) -> BoxBody<Bytes, Infallible> {
        let chunk = self.chunk.clone();
        let frames = HUGE_BYTES / chunk.len();
        let s = stream::iter((0..frames).map(move |_| Ok(Frame::data(chunk.clone()))));
        StreamBody::new(s).boxed()
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).boxed()
}

fn answer<B>(req: &Request<B>, bodies: &RwLock<Vec<Bytes>>, hostile: &Hostile) -> Response<Body> {
    let path = req.uri().path();
    let text = |body: Body| {
        Response::builder()
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .body(body)
            .expect("response")
    };
    match path {
        "/huge" => {
            let mut r = text(hostile.huge());
            r.headers_mut().insert(
                "content-length",
                HUGE_BYTES.to_string().parse().expect("length"),
            );
            r
        }
        "/huge-chunked" => text(hostile.huge()),
        "/million" => text(full(hostile.million.clone())),
        "/long-label" => text(full(hostile.long_label.clone())),
        _ => {
            let n = path
                .strip_prefix("/app/")
                .and_then(|p| p.strip_suffix("/metrics"))
                .and_then(|n| n.parse::<usize>().ok());
            let body = n.and_then(|n| bodies.read().expect("bodies").get(n).cloned());
            match body {
                Some(b) => text(full(b)),
                None => Response::builder()
                    .status(404)
                    .body(full(Bytes::from_static(b"not found\n")))
                    .expect("response"),
            }
        }
    }
}
