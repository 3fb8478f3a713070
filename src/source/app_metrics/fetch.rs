//! One scrape over HTTP(S): a GET with the configured headers, certificates always verified,
//! redirects refused, the whole exchange within the timeout and the body within its cap. A
//! [`Scraper`] keeps at most one connection ([`super::conn`]) open between scrapes. Error texts
//! are built here and carry neither header values nor the URL's query.

use super::config::AppMetricsSettings;
use super::conn::{Conn, Endpoint};
use crate::errtext;
use crate::model::{ErrorClass, PollError};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION, USER_AGENT,
};
use hyper::{Request, Response, StatusCode, Uri};

/// What poolwatch asks for: OpenMetrics first, then the Prometheus text format, as Prometheus
/// itself does; the parser reads both.
pub const ACCEPT_EXPOSITION: &str =
    "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A client for one endpoint: where it is, the request ready to send, and the connection kept
/// alive between scrapes (none before the first scrape and after a failed one).
pub struct Scraper {
    endpoint: Endpoint,
    uri: Uri,
    headers: HeaderMap,
    conn: Option<Conn>,
}

/// What one scrape got: the body, and what answered (status and content type), for the log.
#[derive(Debug)]
pub struct Answer {
    /// The body, at most the cap.
    pub body: Vec<u8>,
    /// E.g. `HTTP 200, text/plain; version=0.0.4`.
    pub peer: String,
}

fn error(class: ErrorClass, message: impl Into<String>) -> PollError {
    PollError {
        class,
        message: message.into(),
    }
}

impl Scraper {
    /// Prepares the endpoint (TLS with the configured CA or the shared web roots) and the
    /// request: its target, `Host`, `Accept`, `User-Agent` and the configured headers. Nothing
    /// is connected until the first [`get`](Scraper::get).
    pub fn new(s: &AppMetricsSettings) -> Result<Scraper, PollError> {
        let endpoint = Endpoint::new(&s.url, s.ca.as_ref())?;
        let uri = Uri::try_from(request_target(&s.url)).map_err(|_| {
            error(
                ErrorClass::Network,
                "the URL's path is not a valid request target",
            )
        })?;
        Ok(Scraper {
            endpoint,
            uri,
            headers: request_headers(s)?,
            conn: None,
        })
    }

    /// GETs the endpoint once, within the timeout (connecting included). After a failure the
    /// connection is closed; the next scrape opens a new one.
    pub async fn get(&mut self, s: &AppMetricsSettings) -> Result<Answer, PollError> {
        let got = tokio::time::timeout(s.timeout, self.exchange(s.limits.max_body)).await;
        let got = got.unwrap_or_else(|_| {
            Err(error(
                ErrorClass::Timeout,
                format!(
                    "no complete answer within {}",
                    crate::timefmt::human(s.timeout)
                ),
            ))
        });
        if got.is_err() {
            self.conn = None;
        }
        got
    }

    async fn exchange(&mut self, cap: usize) -> Result<Answer, PollError> {
        let response = self.send().await?;
        let status = response.status();
        let headers = response.headers();
        check_status(status, headers.get(LOCATION))?;
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > cap as u64) {
            return Err(too_large(cap));
        }
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type")
            .chars()
            .take(80)
            .collect::<String>();
        let body = read_body(response.into_body(), cap, declared).await?;
        Ok(Answer {
            body,
            peer: format!("HTTP {}, {content_type}", status.as_u16()),
        })
    }

    /// Sends the GET on the kept connection if it is still open, else on a new one. A kept
    /// connection that fails before any byte of the answer arrived (the server closed it under
    /// us) is replaced once: a GET is idempotent, and Go's and reqwest's pools do the same.
    async fn send(&mut self) -> Result<Response<Incoming>, PollError> {
        let mut reused = self.conn.as_ref().is_some_and(|c| !c.sender.is_closed());
        loop {
            if !reused {
                self.conn = None;
                self.conn = Some(self.endpoint.open().await?);
            }
            let mut request = Request::new(Default::default());
            *request.uri_mut() = self.uri.clone();
            *request.headers_mut() = self.headers.clone();
            let conn = self.conn.as_mut().expect("a connection was opened above");
            let before = conn.bytes_read();
            let sent = match conn.sender.ready().await {
                Ok(()) => conn.sender.send_request(request).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(response) => return Ok(response),
                Err(_) if reused && conn.bytes_read() == before => {
                    tracing::debug!("the kept connection closed before answering; reconnecting");
                    reused = false;
                }
                Err(e) => {
                    let text = format!("request: {}", errtext::chain(&e));
                    return Err(error(ErrorClass::Network, text));
                }
            }
        }
    }
}

/// Every request's headers: `Host`, `Accept`, `User-Agent`, then the configured ones (secrets,
/// marked sensitive).
fn request_headers(s: &AppMetricsSettings) -> Result<HeaderMap, PollError> {
    let mut headers = HeaderMap::new();
    let host = HeaderValue::from_str(&host_header(&s.url)).map_err(|_| {
        error(
            ErrorClass::Network,
            "the URL's host is not a valid Host header",
        )
    })?;
    headers.insert(HOST, host);
    headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_EXPOSITION));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(crate::notify::USER_AGENT),
    );
    for (name, value) in &s.headers {
        let mut v = HeaderValue::from_str(value.expose())
            .map_err(|_| error(ErrorClass::Auth, format!("header {name}: invalid value")))?;
        v.set_sensitive(true);
        headers.insert(name.clone(), v);
    }
    Ok(headers)
}

/// The request target: the URL's path and query (never its fragment).
fn request_target(url: &reqwest::Url) -> String {
    let mut target = url.path().to_string();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    target
}

/// The `Host` header: the URL's host (an IPv6 literal in brackets), with the port unless it is
/// the scheme's default.
fn host_header(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Reads the whole body, refusing it as soon as it passes `cap` (chunked bodies included).
async fn read_body(
    mut body: Incoming,
    cap: usize,
    declared: Option<u64>,
) -> Result<Vec<u8>, PollError> {
    // Sized from the declared length (within the cap) instead of doubled chunk by chunk.
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n.min(cap as u64) as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            error(
                ErrorClass::Network,
                format!("response body: {}", errtext::chain(&e)),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > cap {
                return Err(too_large(cap));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

fn too_large(cap: usize) -> PollError {
    error(
        ErrorClass::BadExposition,
        format!("response body exceeds the limit of {cap} bytes (max_body_bytes)"),
    )
}

/// 2xx is an answer; a redirect is refused (naming where it pointed, without its query); 401
/// and 403 are an authentication problem; anything else is an HTTP error.
fn check_status(status: StatusCode, location: Option<&HeaderValue>) -> Result<(), PollError> {
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    if status.is_redirection() {
        let to = location
            .and_then(|l| l.to_str().ok())
            .map(|l| l.split(['?', '#']).next().unwrap_or_default())
            .map(|l| l.chars().take(200).collect::<String>())
            .unwrap_or_else(|| "nowhere".into());
        return Err(error(
            ErrorClass::HttpStatus,
            format!("HTTP {code}: redirects are refused (to {to}); configure the final URL"),
        ));
    }
    let class = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ErrorClass::Auth,
        _ => ErrorClass::HttpStatus,
    };
    Err(error(class, format!("HTTP {status}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_the_address_the_host_header_and_the_target() {
        // (URL, host and port to connect to, Host header, request target)
        let cases = [
            ("http://app/metrics", ("app", 80), "app", "/metrics"),
            (
                "https://app/m?a=1&b=2#top",
                ("app", 443),
                "app",
                "/m?a=1&b=2",
            ),
            ("http://app:80/", ("app", 80), "app", "/"),
            ("https://app:8443", ("app", 8443), "app:8443", "/"),
            (
                "http://127.0.0.1:9187/x",
                ("127.0.0.1", 9187),
                "127.0.0.1:9187",
                "/x",
            ),
            (
                "http://[::1]:8080/metrics",
                ("::1", 8080),
                "[::1]:8080",
                "/metrics",
            ),
            (
                "https://[fe80::1]/metrics",
                ("fe80::1", 443),
                "[fe80::1]",
                "/metrics",
            ),
            (
                "http://App.Example/a%20b",
                ("app.example", 80),
                "app.example",
                "/a%20b",
            ),
        ];
        for (url, (host, port), header, target) in cases {
            let url = reqwest::Url::parse(url).expect("url");
            let got = super::super::conn::host_port(&url);
            assert_eq!((got.0.as_str(), got.1), (host, port), "{url}");
            assert_eq!(host_header(&url), header, "{url}");
            assert_eq!(request_target(&url), target, "{url}");
        }
    }

    #[test]
    fn statuses_are_classified() {
        let loc = HeaderValue::from_static("https://login.example/sso?token=secret#x");
        // (status, location, want)
        let cases = [
            (200, None, None),
            (204, None, None),
            (
                302,
                Some(&loc),
                Some((ErrorClass::HttpStatus, "HTTP 302: redirects are refused (to https://login.example/sso); configure the final URL")),
            ),
            (
                301,
                None,
                Some((ErrorClass::HttpStatus, "HTTP 301: redirects are refused (to nowhere); configure the final URL")),
            ),
            (401, None, Some((ErrorClass::Auth, "HTTP 401 Unauthorized"))),
            (403, None, Some((ErrorClass::Auth, "HTTP 403 Forbidden"))),
            (404, None, Some((ErrorClass::HttpStatus, "HTTP 404 Not Found"))),
            (503, None, Some((ErrorClass::HttpStatus, "HTTP 503 Service Unavailable"))),
        ];
        for (code, location, want) in cases {
            let status = StatusCode::from_u16(code).expect("status");
            let got = check_status(status, location).err();
            let got = got.as_ref().map(|e| (e.class, e.message.as_str()));
            assert_eq!(got, want, "{code}");
        }
    }
}
