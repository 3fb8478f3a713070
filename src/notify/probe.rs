//! The reachability probe: is anything there to take this integration's notifications?
//!
//! Right after an integration starts (at start-up, or when a reload starts it) and every [`PERIOD`]
//! after, the probe opens a TCP connection to the receiver's host and port, plus a TLS
//! handshake (verified as deliveries verify it) for `https`, and closes it: nothing is posted.
//! The outcome is `poolwatch_receiver_reachable{receiver,integration}` (1 or 0) and a log line
//! when it changes: a warning naming the receiver and integration and a fixed reason (`refused`, `dns`, `timeout`,
//! `network`, `tls`), never its URL, host or port, which may carry a token.
//!
//! The probe runs on a task of its own, its blocking parts (name resolution, the handshake) on
//! the blocking pool, so it never delays start-up, polling or deliveries. When deliveries go
//! through a proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`), a direct connection says nothing
//! about them: the probe is skipped and the gauge stays absent.

use super::integrations::IntegrationSettings;
use super::metrics::ReachableGauge;
use reqwest::Url;
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How often a receiver is probed again after the first probe.
pub(crate) const PERIOD: Duration = Duration::from_secs(30);

/// Why a receiver could not be reached. The texts are fixed: no host, port or URL in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unreachable {
    /// Its host name does not resolve.
    Dns,
    /// The host answered, but nothing listens on the port.
    Refused,
    /// No answer (or no complete handshake) within the receiver's `timeout`.
    Timeout,
    /// Another network error (no route to the host or network, reset).
    Network,
    /// The TLS handshake failed, for the reason given.
    Tls(&'static str),
}

impl Unreachable {
    /// The `reason` log field.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Unreachable::Dns => "dns",
            Unreachable::Refused => "refused",
            Unreachable::Timeout => "timeout",
            Unreachable::Network => "network",
            Unreachable::Tls(_) => "tls",
        }
    }

    /// One sentence for the log line.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            Unreachable::Dns => "its host name does not resolve",
            Unreachable::Refused => "connection refused: nothing listens on its port",
            Unreachable::Timeout => "no answer within its timeout",
            Unreachable::Network => "network error (no route, or the connection was reset)",
            Unreachable::Tls(why) => why,
        }
    }
}

/// A running probe of one receiver; dropping it stops the probe.
pub(crate) struct Probe {
    task: Option<JoinHandle<()>>,
}

impl Probe {
    /// No probe at all.
    pub(crate) fn none() -> Probe {
        Probe { task: None }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts probing the service of `receiver`'s integration `settings` now and every
/// [`PERIOD`], reporting into `gauge`. Returns at once. The probe is skipped (logged once at
/// debug level) when a proxy carries this integration's deliveries, or when its URL cannot be
/// parsed (the notifier reports that).
pub(crate) fn start(
    receiver: &str,
    settings: &IntegrationSettings,
    gauge: ReachableGauge,
) -> Probe {
    let name = (receiver.to_string(), settings.name.clone());
    let Ok(url) = Url::parse(settings.url.expose()) else {
        return Probe { task: None };
    };
    if let Some(var) = proxy_for(url.scheme(), |k| std::env::var(k).ok()) {
        tracing::debug!(receiver = %name.0, integration = %name.1, proxy = var, "receiver reachability not probed: deliveries go through a proxy");
        return Probe { task: None };
    }
    let timeout = settings.timeout;
    let task = tokio::spawn(async move {
        let mut last: Option<Result<(), Unreachable>> = None;
        loop {
            let outcome = probe(&url, timeout).await;
            gauge.set(outcome.is_ok());
            report(&name, last, outcome);
            last = Some(outcome);
            tokio::time::sleep(PERIOD).await;
        }
    });
    Probe { task: Some(task) }
}

/// Logs the first outcome, and then only changes.
fn report(
    (receiver, integration): &(String, String),
    last: Option<Result<(), Unreachable>>,
    now: Result<(), Unreachable>,
) {
    match (last, now) {
        (Some(before), now) if before == now => {}
        (None, Ok(())) => {
            tracing::info!(receiver = %receiver, integration = %integration, "receiver reachable")
        }
        (Some(_), Ok(())) => {
            tracing::info!(receiver = %receiver, integration = %integration, "receiver reachable again")
        }
        (_, Err(why)) => tracing::warn!(
            receiver = %receiver, integration = %integration, reason = why.as_str(), detail = why.detail(),
            "receiver cannot be reached: notifications to it wait in its queue and are retried"
        ),
    }
}

/// The proxy environment variable that would carry a request to a `scheme` URL, if one is set
/// (reqwest's system-proxy rules; `NO_PROXY` is not consulted, so the probe errs towards
/// skipping).
fn proxy_for(scheme: &str, env: impl Fn(&str) -> Option<String>) -> Option<&'static str> {
    let vars: &[&'static str] = match scheme {
        "https" => &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"],
        _ => &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"],
    };
    vars.iter()
        .copied()
        .find(|v| env(v).is_some_and(|value| !value.trim().is_empty()))
}

/// One probe of `url` within about `timeout` (name resolution cannot be cut short, so the
/// answer is `Timeout` when it takes longer, and the lookup finishes in the background).
pub(crate) async fn probe(url: &Url, timeout: Duration) -> Result<(), Unreachable> {
    let url = url.clone();
    let blocking = tokio::task::spawn_blocking(move || probe_blocking(&url, timeout));
    match tokio::time::timeout(timeout + Duration::from_millis(100), blocking).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => Err(Unreachable::Network), // the blocking task panicked or was cancelled
        Err(_) => Err(Unreachable::Timeout),
    }
}

fn probe_blocking(url: &Url, timeout: Duration) -> Result<(), Unreachable> {
    let deadline = Instant::now() + timeout;
    let addrs = url.socket_addrs(|| None).map_err(|_| Unreachable::Dns)?;
    let mut outcome = Err(Unreachable::Dns);
    for addr in addrs {
        outcome = connect(addr, deadline);
        if outcome.is_ok() {
            break;
        }
    }
    let stream = outcome?;
    if url.scheme() == "https" {
        handshake(url, stream, deadline)?;
    }
    Ok(())
}

fn connect(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, Unreachable> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Unreachable::Timeout);
    }
    TcpStream::connect_timeout(&addr, left).map_err(|e| io_class(&e))
}

/// The class of a socket error.
fn io_class(e: &io::Error) -> Unreachable {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Unreachable::Refused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Unreachable::Timeout,
        _ => Unreachable::Network,
    }
}

/// A TLS handshake as deliveries make it: Mozilla's roots (reqwest's `rustls-tls`), the URL's
/// host as the name to verify.
fn handshake(url: &Url, mut stream: TcpStream, deadline: Instant) -> Result<(), Unreachable> {
    // A name or an IP address; an IPv6 address comes in brackets.
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| Unreachable::Tls("its host is not a valid TLS server name"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| Unreachable::Tls("TLS cannot be set up"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut conn = ClientConnection::new(Arc::new(config), name)
        .map_err(|_| Unreachable::Tls("TLS cannot be set up"))?;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Unreachable::Timeout);
        }
        let _ = stream.set_read_timeout(Some(left));
        let _ = stream.set_write_timeout(Some(left));
        conn.complete_io(&mut stream).map_err(|e| tls_class(&e))?;
    }
    Ok(())
}

/// The class of a handshake failure, with a fixed text (rustls' own texts may name the host).
fn tls_class(e: &io::Error) -> Unreachable {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(c)) => Unreachable::Tls(match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "TLS handshake failed: its certificate has expired"
            }
            CertificateError::UnknownIssuer => {
                "TLS handshake failed: its certificate is from an unknown issuer"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "TLS handshake failed: its certificate is not valid for its host name"
            }
            _ => "TLS handshake failed: its certificate was rejected",
        }),
        Some(_) => Unreachable::Tls("TLS handshake failed: not a TLS server, or it refused us"),
        None => match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Unreachable::Timeout,
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
                Unreachable::Tls("TLS handshake failed: it closed the connection")
            }
            _ => Unreachable::Network,
        },
    }
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
