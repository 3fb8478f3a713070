//! Probe tests against real sockets on 127.0.0.1: a closed port, a listener, a plain TCP server
//! where TLS is expected, one that never answers; the classes of handshake errors; proxies.

use super::*;
use std::net::TcpListener;

fn url(text: &str) -> Url {
    Url::parse(text).expect("url")
}

/// A port on 127.0.0.1 where nothing listens (bound once, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn a_closed_port_is_refused_and_a_listener_is_reachable() {
    let port = closed_port();
    let got = probe(
        &url(&format!("http://127.0.0.1:{port}/hook")),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(got, Err(Unreachable::Refused));

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got = probe(
        &url(&format!("http://127.0.0.1:{port}/hook")),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(got, Ok(()));
    // Nothing was sent: the probe only connected.
    let (mut accepted, _) = listener.accept().expect("the probe's connection");
    let mut buf = Vec::new();
    use std::io::Read;
    accepted.read_to_end(&mut buf).expect("read");
    assert!(buf.is_empty(), "{buf:?}");
}

#[tokio::test]
async fn https_to_a_server_that_is_not_tls_fails_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accepts, reads the ClientHello, answers like an HTTP server would, and closes.
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    let got = probe(
        &url(&format!("https://127.0.0.1:{port}/hook")),
        Duration::from_secs(2),
    )
    .await;
    assert!(matches!(got, Err(Unreachable::Tls(_))), "{got:?}");
    server.join().expect("server thread");
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let started = Instant::now();
    let got = probe(
        &url(&format!("https://127.0.0.1:{port}/hook")),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(got, Err(Unreachable::Timeout));
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_dns() {
    // `.invalid` never resolves (RFC 2606).
    let got = probe(
        &url("http://poolwatch-probe.invalid/hook"),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(got, Err(Unreachable::Dns | Unreachable::Timeout)),
        "{got:?}"
    );
}

#[test]
fn handshake_errors_have_fixed_texts_without_names() {
    let tls = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let cases = [
        (
            tls(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
            "unknown issuer",
        ),
        (
            tls(rustls::Error::InvalidCertificate(CertificateError::Expired)),
            "expired",
        ),
        (
            tls(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            )),
            "not valid for its host name",
        ),
        (
            tls(rustls::Error::General("secret.example.com".into())),
            "not a TLS server",
        ),
        (
            io::Error::new(io::ErrorKind::UnexpectedEof, "eof"),
            "closed the connection",
        ),
    ];
    for (error, fragment) in cases {
        let class = tls_class(&error);
        assert_eq!(class.as_str(), "tls", "{error}");
        assert!(
            class.detail().contains(fragment),
            "{error}: {}",
            class.detail()
        );
        assert!(!class.detail().contains("example"), "{}", class.detail());
    }
    assert_eq!(
        tls_class(&io::Error::new(io::ErrorKind::TimedOut, "t")),
        Unreachable::Timeout
    );
}

/// Environment variables set in one case.
type Vars = &'static [(&'static str, &'static str)];

#[test]
fn a_proxy_skips_the_probe() {
    let env = |set: Vars| {
        move |k: &str| {
            set.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let cases: [(&str, Vars, Option<&str>); 6] = [
        ("https", &[], None),
        (
            "https",
            &[("HTTPS_PROXY", "http://proxy:3128")],
            Some("HTTPS_PROXY"),
        ),
        ("https", &[("HTTP_PROXY", "http://proxy:3128")], None),
        (
            "http",
            &[("http_proxy", "http://proxy:3128")],
            Some("http_proxy"),
        ),
        (
            "http",
            &[("ALL_PROXY", "socks5://proxy")],
            Some("ALL_PROXY"),
        ),
        ("http", &[("HTTP_PROXY", " ")], None),
    ];
    for (scheme, vars, want) in cases {
        assert_eq!(proxy_for(scheme, env(vars)), want, "{scheme} {vars:?}");
    }
}
