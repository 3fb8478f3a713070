//! The source against a real HTTP server on loopback (a raw tokio listener that answers each
//! request as a test says: a library's exposition, a redirect, an endless or huge body,
//! garbage), through the same `poll_once` that `poolwatch snapshot` uses.

use super::config::AppMetricsSettings;
use super::fixtures::FIXTURES;
use super::AppMetricsSource;
use crate::model::{ErrorClass, PollData, PollError};
use crate::settings::parse;
use crate::source::target::SourceSettings;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the test server answers.
#[derive(Clone)]
enum Answer {
    /// A complete response: status line, extra headers, body (with Content-Length).
    Full(&'static str, &'static str, Vec<u8>),
    /// 200 with a chunked body of `n` bytes of sample lines.
    Chunked(usize),
    /// 200 that sends a line every 50 ms, forever.
    Trickle,
}

/// Starts the server; returns its address and the request heads it received.
async fn serve(answer: Answer) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (answer, log) = (answer.clone(), log.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                log.lock()
                    .expect("log")
                    .push(String::from_utf8_lossy(&head).into_owned());
                let _ = respond(&mut sock, answer).await;
            });
        }
    });
    (addr, seen)
}

async fn respond(sock: &mut tokio::net::TcpStream, answer: Answer) -> std::io::Result<()> {
    match answer {
        Answer::Full(status, headers, body) => {
            let head = format!(
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n",
                body.len()
            );
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(&body).await
        }
        Answer::Chunked(n) => {
            sock.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let line = b"filler_metric{a=\"b\"} 1\n";
            let mut sent = 0;
            while sent < n {
                let chunk = line.repeat(400);
                sock.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                sock.write_all(&chunk).await?;
                sock.write_all(b"\r\n").await?;
                sent += chunk.len();
            }
            sock.write_all(b"0\r\n\r\n").await
        }
        Answer::Trickle => {
            sock.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            loop {
                sock.write_all(b"6\r\nx 1\nx\n\r\n").await?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn settings(addr: &str, extra: &str) -> AppMetricsSettings {
    let src = format!(
        "[[targets]]\nname = \"app\"\ntype = \"app_metrics\"\nurl = \"http://{addr}/metrics?x=1\"\n{extra}"
    );
    let config = parse(Path::new("x.toml"), &src).expect("valid config");
    match &config.targets[0].source {
        SourceSettings::AppMetrics(s) => (**s).clone(),
        other => panic!("{other:?}"),
    }
}

async fn scrape(answer: Answer, extra: &str) -> (Result<PollData, PollError>, Vec<String>) {
    let (addr, seen) = serve(answer).await;
    let source = AppMetricsSource::new(settings(&addr, extra));
    let report = crate::source::poll_once("app", &source).await;
    let heads = seen.lock().expect("log").clone();
    (report.outcome.map(Arc::unwrap_or_clone), heads)
}

/// Polls `addr` once, expecting a failure.
async fn fail(addr: &str, extra: &str) -> PollError {
    let source = AppMetricsSource::new(settings(addr, extra));
    let outcome = crate::source::poll_once("app", &source).await.outcome;
    outcome.expect_err("the poll must fail")
}

fn fixture(name: &str) -> Vec<u8> {
    FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.as_bytes().to_vec())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_library_endpoint_gives_its_pools_and_is_asked_properly() {
    let answer = Answer::Full(
        "200 OK",
        "Content-Type: text/plain; version=0.0.4\r\n",
        fixture("hikaricp"),
    );
    let extra =
        "preset = \"hikaricp\"\nbearer_token = \"tok-123\"\nheaders = { X-Scope = \"orders\" }\n";
    let (outcome, heads) = scrape(answer, extra).await;
    let data = outcome.expect("polled");
    assert_eq!(data.pools.len(), 1);
    let p = &data.pools[0];
    assert_eq!(
        (p.id.name.as_str(), p.capacity, p.in_use, p.waiting),
        ("HikariPool-1", 10, 10, 7)
    );
    assert!(
        data.summary.contains("(hikaricp preset): 1 pools"),
        "{}",
        data.summary
    );
    // Connect scrapes once, the poll once more; each asks for OpenMetrics or text, with the
    // configured credentials.
    assert_eq!(heads.len(), 2, "{heads:?}");
    let head = heads[1].to_ascii_lowercase();
    assert!(head.starts_with("get /metrics?x=1 http/1.1"), "{head}");
    assert!(
        head.contains("accept: application/openmetrics-text;version=1.0.0"),
        "{head}"
    );
    assert!(head.contains("authorization: bearer tok-123"), "{head}");
    assert!(head.contains("x-scope: orders"), "{head}");
}

#[tokio::test]
async fn bad_endpoints_give_bounded_classified_errors() {
    let small = "preset = \"hikaricp\"\ntimeout = \"500ms\"\nmax_body_bytes = 65536\n";
    // (answer, class, start of the message)
    let cases = [
        (
            Answer::Full(
                "302 Found",
                "Location: https://sso.example/login?token=t0k\r\n",
                vec![],
            ),
            ErrorClass::HttpStatus,
            "HTTP 302: redirects are refused (to https://sso.example/login)",
        ),
        (
            Answer::Full("401 Unauthorized", "", vec![]),
            ErrorClass::Auth,
            "HTTP 401",
        ),
        (
            Answer::Full("500 Internal Server Error", "", b"boom".to_vec()),
            ErrorClass::HttpStatus,
            "HTTP 500",
        ),
        (
            Answer::Full(
                "200 OK",
                "",
                b"hikaricp_connections_max{pool=\"a\" 1\n".to_vec(),
            ),
            ErrorClass::BadExposition,
            "line 1: found \"1\" where ',' or '}' was expected",
        ),
        (
            Answer::Full("200 OK", "", vec![0xff; 100]),
            ErrorClass::BadExposition,
            "line 1: not UTF-8 text",
        ),
        (
            Answer::Full("200 OK", "", fixture("go_sql")),
            ErrorClass::NoPools,
            "no pool series found: preset hikaricp looks for",
        ),
        (
            Answer::Chunked(10 << 20),
            ErrorClass::BadExposition,
            "response body exceeds the limit of 65536 bytes",
        ),
        (
            Answer::Trickle,
            ErrorClass::Timeout,
            "no complete answer within 500ms",
        ),
    ];
    for (answer, class, start) in cases {
        let (outcome, _) = scrape(answer, small).await;
        let e = outcome.expect_err("must fail");
        assert_eq!(e.class, class, "{e}");
        assert!(e.message.starts_with(start), "{e}");
        assert!(!e.message.contains("t0k") && e.message.len() < 300, "{e}");
    }
}

#[tokio::test]
async fn a_declared_huge_body_is_refused_before_it_is_read() {
    // A server that declares 100 MB and sends nothing: refused at once, not after a timeout.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let big = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let e = fail(&big, "preset = \"otel\"\ntimeout = \"10s\"\n").await;
    assert_eq!(e.class, ErrorClass::BadExposition, "{e}");
}

#[tokio::test]
async fn an_endpoint_that_is_not_there_is_a_network_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let e = fail(&addr, "preset = \"otel\"\n").await;
    assert_eq!(e.class, ErrorClass::Network, "{e}");
    assert!(!e.message.contains("x=1"), "{e}");
}
