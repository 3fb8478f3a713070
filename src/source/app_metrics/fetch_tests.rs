//! The scrape client against real servers on loopback: hyper's own server (plain and over TLS
//! with a throwaway CA made by the `openssl` CLI) for keep-alive and certificates, and raw tokio
//! listeners for servers that close connections at awkward moments. Each counts the connections
//! it accepted and those still open.

use super::config::AppMetricsSettings;
use super::fetch::Scraper;
use crate::model::ErrorClass;
use crate::settings::parse;
use crate::source::target::SourceSettings;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

const BODY: &str = "hikaricp_connections_max{pool=\"p\"} 10\n";

fn settings(url: &str, extra: &str) -> AppMetricsSettings {
    let src = format!(
        "[[targets]]\nname = \"app\"\ntype = \"app_metrics\"\nurl = \"{url}\"\n\
         preset = \"hikaricp\"\ntimeout = \"2s\"\nmax_body_bytes = 65536\n{extra}"
    );
    let config = parse(Path::new("x.toml"), &src).expect("valid config");
    match &config.targets[0].source {
        SourceSettings::AppMetrics(s) => (**s).clone(),
        other => panic!("{other:?}"),
    }
}

/// What a test server counts.
#[derive(Default)]
struct Counts {
    /// Connections accepted.
    accepted: AtomicUsize,
    /// Connections open now (served, and not yet closed by either side).
    open: AtomicUsize,
}

/// Listens on `addr` and runs `handle` on each accepted connection; returns the port and the
/// counts of connections.
async fn listen<F, Fut>(addr: &str, handle: F) -> (u16, Arc<Counts>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            c.accepted.fetch_add(1, Ordering::SeqCst);
            c.open.fetch_add(1, Ordering::SeqCst);
            let (served, c) = (handle(sock), c.clone());
            tokio::spawn(async move {
                served.await;
                c.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (port, counts)
}

/// hyper's HTTP/1.1 server with keep-alive, over TLS when `tls` is given.
async fn hyper_server(addr: &str, tls: Option<TlsAcceptor>) -> (u16, Arc<Counts>) {
    listen(addr, move |sock| {
        let tls = tls.clone();
        async move {
            match tls {
                Some(tls) => {
                    if let Ok(s) = tls.accept(sock).await {
                        serve_http(TokioIo::new(s)).await
                    }
                }
                None => serve_http(TokioIo::new(sock)).await,
            }
        }
    })
    .await
}

async fn serve_http<I>(io: I)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(|_req| async {
        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(BODY))))
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

/// What a raw server does on each connection.
#[derive(Clone, Copy, Debug)]
enum Raw {
    /// Answers one request, then closes the (idle) connection.
    CloseIdle,
    /// Answers the first request; reads the second and closes without a byte of answer.
    CloseOnSecond,
    /// Answers the first request; to the second, half of the declared body, then closes.
    CutSecondBody,
    /// Answers with a chunked body of this many bytes.
    Chunked(usize),
    /// Answers with a head (status line and headers) of about this many bytes.
    LongHead(usize),
}

async fn raw_server(mode: Raw) -> (u16, Arc<Counts>) {
    listen("127.0.0.1:0", move |sock| async move {
        let _ = raw_connection(sock, mode).await;
    })
    .await
}

async fn raw_connection(mut sock: TcpStream, mode: Raw) -> std::io::Result<()> {
    let mut n = 0;
    while read_head(&mut sock).await? {
        n += 1;
        match (mode, n) {
            (Raw::CloseOnSecond, 2) => return Ok(()),
            (Raw::CutSecondBody, 2) => {
                let half = &BODY.as_bytes()[..BODY.len() / 2];
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", BODY.len());
                sock.write_all(head.as_bytes()).await?;
                return sock.write_all(half).await;
            }
            (Raw::Chunked(size), _) => return chunked(&mut sock, size).await,
            (Raw::LongHead(size), _) => {
                let filler = "x".repeat(size);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nX-Filler: {filler}\r\nContent-Length: {}\r\n\r\n",
                    BODY.len()
                );
                sock.write_all(head.as_bytes()).await?;
                sock.write_all(BODY.as_bytes()).await?;
            }
            _ => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", BODY.len());
                sock.write_all(head.as_bytes()).await?;
                sock.write_all(BODY.as_bytes()).await?;
            }
        }
        if matches!(mode, Raw::CloseIdle) {
            return Ok(());
        }
    }
    Ok(())
}

/// Reads a request head; false at the end of the stream.
async fn read_head(sock: &mut TcpStream) -> std::io::Result<bool> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if sock.read(&mut byte).await? == 0 {
            return Ok(false);
        }
        head.push(byte[0]);
    }
    Ok(true)
}

async fn chunked(sock: &mut TcpStream, size: usize) -> std::io::Result<()> {
    sock.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await?;
    let chunk = BODY.repeat(100);
    let mut sent = 0;
    while sent < size {
        sock.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await?;
        sent += chunk.len();
    }
    sock.write_all(b"0\r\n\r\n").await
}

/// Scrapes `times` times with one scraper; the outcome classes (None for an answer).
async fn scrapes(s: &AppMetricsSettings, times: usize, pause: Duration) -> Vec<Option<ErrorClass>> {
    let mut scraper = Scraper::new(s).expect("scraper");
    let mut got = Vec::new();
    for _ in 0..times {
        let answer = scraper.get(s).await;
        if let Ok(a) = &answer {
            assert_eq!(a.body, BODY.as_bytes());
        }
        got.push(answer.err().map(|e| e.class));
        tokio::time::sleep(pause).await;
    }
    got
}

#[tokio::test]
async fn many_scrapes_use_one_kept_alive_connection() {
    let (port, counts) = hyper_server("127.0.0.1:0", None).await;
    let s = settings(&format!("http://127.0.0.1:{port}/metrics"), "");
    let got = scrapes(&s, 20, Duration::ZERO).await;
    assert_eq!(got, vec![None; 20]);
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_ipv6_literal_is_scraped_and_a_dropped_scraper_closes_its_connection() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        return; // no IPv6 loopback here
    }
    let (port, counts) = hyper_server("[::1]:0", None).await;
    let s = settings(&format!("http://[::1]:{port}/metrics"), "");
    let mut scraper = Scraper::new(&s).expect("scraper");
    for _ in 0..3 {
        assert_eq!(scraper.get(&s).await.expect("answer").body, BODY.as_bytes());
    }
    assert_eq!(counts.open.load(Ordering::SeqCst), 1);
    drop(scraper);
    // The connection's task is aborted with the scraper: the server sees the socket close.
    for _ in 0..100 {
        if counts.open.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(counts.open.load(Ordering::SeqCst), 0);
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_the_server_closed_is_replaced_without_an_error() {
    // (server, pause between scrapes): closed while idle and seen before the next scrape, or
    // closed under the request (the retry on a new connection).
    let cases = [
        (Raw::CloseIdle, Duration::from_millis(50)),
        (Raw::CloseOnSecond, Duration::ZERO),
    ];
    for (mode, pause) in cases {
        let (port, counts) = raw_server(mode).await;
        let s = settings(&format!("http://127.0.0.1:{port}/metrics"), "");
        let got = scrapes(&s, 4, pause).await;
        assert_eq!(got, vec![None; 4], "{mode:?}");
        assert_eq!(counts.accepted.load(Ordering::SeqCst), 4, "{mode:?}");
    }
}

#[tokio::test]
async fn broken_answers_are_classified_errors_without_a_retry_loop() {
    // (server, outcome of each scrape, connections accepted): a body cut by the server is a
    // network error (not retried: part of the answer arrived); a chunked body over the cap is
    // refused.
    let cases = [
        (Raw::CutSecondBody, vec![None, Some(ErrorClass::Network)], 1),
        (
            Raw::Chunked(1 << 20),
            vec![Some(ErrorClass::BadExposition)],
            1,
        ),
    ];
    for (mode, want, connections) in cases {
        let (port, counts) = raw_server(mode).await;
        let s = settings(&format!("http://127.0.0.1:{port}/metrics"), "");
        let got = scrapes(&s, want.len(), Duration::ZERO).await;
        assert_eq!(got, want, "{mode:?}");
        assert_eq!(
            counts.accepted.load(Ordering::SeqCst),
            connections,
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn a_head_must_fit_the_read_buffer() {
    // (head size, refused): a proxy's long headers fit; a head past READ_BUFFER is a network
    // error that says why, not a hang or a growing buffer.
    let cap = super::conn::READ_BUFFER;
    for (size, refused) in [(cap / 2, false), (cap * 2, true)] {
        let (port, _) = raw_server(Raw::LongHead(size)).await;
        let s = settings(&format!("http://127.0.0.1:{port}/metrics"), "");
        let got = Scraper::new(&s).expect("scraper").get(&s).await;
        match got {
            Ok(answer) => {
                assert!(!refused, "{size}: answered");
                assert_eq!(answer.body, BODY.as_bytes());
            }
            Err(e) => {
                assert!(refused, "{size}: {e}");
                assert_eq!(e.class, ErrorClass::Network, "{e}");
                assert!(e.message.contains("too large"), "{e}");
            }
        }
    }
}

#[tokio::test]
async fn tls_verifies_the_certificate_and_the_host_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acceptor = make_certificates(dir.path());
    let (port, counts) = hyper_server("127.0.0.1:0", Some(acceptor)).await;
    let ca = format!("ca_file = \"{}\"\n", dir.path().join("ca.crt").display());
    let good = settings(&format!("https://localhost:{port}/metrics"), &ca);
    assert_eq!(scrapes(&good, 3, Duration::ZERO).await, vec![None; 3]);
    assert_eq!(counts.accepted.load(Ordering::SeqCst), 1);
    // (URL, extra keys): the certificate names localhost only; the web roots do not know the CA.
    let cases = [
        (format!("https://127.0.0.1:{port}/metrics"), ca.clone()),
        (format!("https://localhost:{port}/metrics"), String::new()),
    ];
    for (url, extra) in cases {
        let s = settings(&url, &extra);
        let e = Scraper::new(&s)
            .expect("scraper")
            .get(&s)
            .await
            .expect_err("refused");
        assert_eq!(e.class, ErrorClass::Tls, "{url}: {e}");
        assert!(e.message.contains("certificate"), "{url}: {e}");
    }
}

/// A CA and a certificate for `localhost` (ECDSA P-256), made with the `openssl` CLI in `dir`;
/// returns an acceptor serving the certificate.
fn make_certificates(dir: &Path) -> TlsAcceptor {
    let ext = "basicConstraints = CA:FALSE\nsubjectAltName = DNS:localhost\n";
    std::fs::write(dir.join("ext.cnf"), ext).expect("write ext.cnf");
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let steps: [&[&str]; 3] = [
        &[
            &["req", "-x509", "-new", "-days", "2", "-subj", "/CN=test CA"][..],
            &key,
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign"],
            &["-keyout", "ca.key", "-out", "ca.crt"],
        ]
        .concat(),
        &[
            &["req", "-new", "-subj", "/CN=localhost"][..],
            &key,
            &["-keyout", "server.key", "-out", "server.csr"],
        ]
        .concat(),
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "7",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.crt",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }
    let read = |name: &str| std::fs::read(dir.join(name)).expect("read PEM");
    let certs = rustls_pemfile::certs(&mut &read("server.crt")[..])
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate");
    let key = rustls_pemfile::private_key(&mut &read("server.key")[..])
        .expect("key")
        .expect("a key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    TlsAcceptor::from(Arc::new(config))
}
