//! One HTTP/1.1 connection to an `app_metrics` endpoint: resolve, TCP with nodelay, TLS for an
//! `https` URL, hyper's handshake with a small read buffer, and the task that drives the
//! connection. The task is aborted when the [`Conn`] is dropped, so neither it nor its socket
//! outlives the scraper that owns it.
//!
//! TLS verifies the certificate and the URL's host name always: with one process-wide
//! configuration on the built-in web roots for every target without a `ca_file`, or one of the
//! target's own from its `ca_file`.

use crate::errtext;
use crate::model::{ErrorClass, PollError};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::client::conn::http1::{Builder, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tokio_rustls::TlsConnector;

/// hyper's read buffer per connection at most, bytes. A response is read through it in pieces
/// of at most this size, and its head (status line and headers) must fit in it; hyper's default
/// (about 400 KB, grown adaptively) kept about 64 KB per idle keep-alive connection.
/// BENCHMARKS.md 8.2 compares 4 KiB exact and 8 to 64 KiB: 8 and 16 KiB keep the least memory,
/// larger bodies read faster with more; 16 KiB, so that a proxy's longer headers still fit.
pub const READ_BUFFER: usize = 16 << 10;

/// The request body type: a scrape is a GET.
pub type Body = Empty<Bytes>;

/// Where to connect and how: the URL's host (an IPv6 literal without brackets), its port (or
/// the scheme's default), and TLS for `https`.
pub struct Endpoint {
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// An open connection: hyper's sender, the task driving it, and how many response bytes
/// (after TLS) it has read so far.
pub struct Conn {
    /// Sends requests on the connection.
    pub sender: SendRequest<Body>,
    read: Arc<AtomicU64>,
    task: AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Conn {
    /// Response bytes read on this connection so far (a reading before and after a request
    /// tells whether any of its answer arrived).
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

fn error(class: ErrorClass, message: impl Into<String>) -> PollError {
    PollError {
        class,
        message: message.into(),
    }
}

impl Endpoint {
    /// The endpoint of `url` (`http` or `https`, as config validation ensured), verified with
    /// the certificates of `ca` (its file name and PEM text) or else the built-in web roots.
    pub fn new(url: &reqwest::Url, ca: Option<&(PathBuf, Vec<u8>)>) -> Result<Self, PollError> {
        let (host, port) = host_port(url);
        let tls = match url.scheme() {
            "https" => {
                let config = match ca {
                    Some((path, pem)) => Arc::new(with_ca(path, pem)?),
                    None => web_roots(),
                };
                let name = ServerName::try_from(host.clone()).map_err(|_| {
                    error(ErrorClass::Tls, "the URL's host is not a valid TLS name")
                })?;
                Some((TlsConnector::from(config), name))
            }
            _ => None,
        };
        Ok(Endpoint { host, port, tls })
    }

    /// Opens a connection: TCP to the first address of the host that accepts, TLS when
    /// `https`, then hyper's HTTP/1.1 handshake; the connection task is spawned.
    pub async fn open(&self) -> Result<Conn, PollError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                error(
                    ErrorClass::Network,
                    format!("connect: {}", errtext::chain(&e)),
                )
            })?;
        tcp.set_nodelay(true)
            .map_err(|e| error(ErrorClass::Network, format!("connect: {e}")))?;
        match &self.tls {
            None => handshake(tcp).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| error(ErrorClass::Tls, tls_text(&e)))?;
                handshake(tls).await
            }
        }
    }
}

/// The host to resolve or connect to (an IPv6 literal without its brackets) and the port (the
/// scheme's default when the URL names none).
pub fn host_port(url: &reqwest::Url) -> (String, u16) {
    let bracketed = url.host_str().unwrap_or_default();
    let host = bracketed.trim_start_matches('[').trim_end_matches(']');
    (host.to_string(), url.port_or_known_default().unwrap_or(80))
}

/// hyper's handshake on `io`, counting the bytes read, and the connection's task.
async fn handshake<S>(io: S) -> Result<Conn, PollError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let read = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Counted {
        inner: io,
        read: read.clone(),
    });
    let (sender, connection) = Builder::new()
        .max_buf_size(READ_BUFFER)
        .handshake(io)
        .await
        .map_err(|e| error(ErrorClass::Network, errtext::chain(&e)))?;
    // Its end (the server closed, or an error) shows as a closed sender at the next scrape.
    let task = tokio::spawn(async move {
        let _ = connection.await;
    })
    .abort_handle();
    Ok(Conn { sender, read, task })
}

/// A TLS failure's text: rustls' error (a certificate problem, an alert) or the network's.
fn tls_text(e: &std::io::Error) -> String {
    format!("TLS handshake: {}", errtext::chain(e))
}

/// The configuration for every target without a `ca_file`: Mozilla's roots, built once.
fn web_roots() -> Arc<ClientConfig> {
    static SHARED: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            Arc::new(config(roots))
        })
        .clone()
}

/// A configuration trusting exactly the PEM certificates of a target's `ca_file`.
fn with_ca(path: &std::path::Path, pem: &[u8]) -> Result<ClientConfig, PollError> {
    let problem = |m: String| error(ErrorClass::Tls, format!("ca_file {}: {m}", path.display()));
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        let cert = cert.map_err(|e| problem(e.to_string()))?;
        roots.add(cert).map_err(|e| problem(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(problem("holds no PEM certificate".into()));
    }
    Ok(config(roots))
}

fn config(roots: RootCertStore) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// A stream that counts the bytes read through it.
struct Counted<S> {
    inner: S,
    read: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
