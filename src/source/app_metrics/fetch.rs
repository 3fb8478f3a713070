//! One scrape over HTTP(S): a GET with the configured headers, certificates always verified,
//! redirects refused, the whole exchange within the timeout and the body within its cap. Error
//! texts are built here and carry neither header values nor the URL's query.

use super::config::AppMetricsSettings;
use crate::errtext;
use crate::model::{ErrorClass, PollError};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, LOCATION};
use reqwest::{Client, StatusCode};

/// What poolwatch asks for: OpenMetrics first, then the Prometheus text format, as Prometheus
/// itself does; the parser reads both.
pub const ACCEPT_EXPOSITION: &str =
    "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// A client for one endpoint, with its headers ready.
pub struct Scraper {
    client: Client,
    headers: HeaderMap,
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
    /// Builds the client: TLS with the configured CA (or the built-in web roots), no redirects,
    /// the scrape timeout on connecting and on the whole request.
    pub fn new(s: &AppMetricsSettings) -> Result<Scraper, PollError> {
        let mut builder = Client::builder()
            .use_rustls_tls()
            .user_agent(crate::notify::USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(s.timeout)
            .timeout(s.timeout)
            .pool_max_idle_per_host(1);
        if let Some((path, pem)) = &s.ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| error(ErrorClass::Tls, format!("ca_file {}: {e}", path.display())))?;
            builder = builder.tls_built_in_root_certs(false);
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder
            .build()
            .map_err(|e| error(ErrorClass::Tls, errtext::chain(&e.without_url())))?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_EXPOSITION));
        for (name, value) in &s.headers {
            let mut v = HeaderValue::from_str(value.expose())
                .map_err(|_| error(ErrorClass::Auth, format!("header {name}: invalid value")))?;
            v.set_sensitive(true);
            headers.insert(name.clone(), v);
        }
        Ok(Scraper { client, headers })
    }

    /// GETs the endpoint once.
    pub async fn get(&self, s: &AppMetricsSettings) -> Result<Answer, PollError> {
        let sent = self
            .client
            .get(s.url.clone())
            .headers(self.headers.clone())
            .send()
            .await;
        let mut response = sent.map_err(|e| classify(e, s))?;
        let status = response.status();
        check_status(status, response.headers().get(LOCATION))?;
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let cap = s.limits.max_body;
        if declared.is_some_and(|n| n > cap as u64) {
            return Err(too_large(cap));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type")
            .chars()
            .take(80)
            .collect::<String>();
        // Sized from the declared length (within the cap) instead of doubled chunk by chunk.
        let mut body = Vec::with_capacity(declared.map_or(0, |n| n.min(cap as u64) as usize));
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(e, s))? {
            if body.len() + chunk.len() > cap {
                return Err(too_large(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            body,
            peer: format!("HTTP {}, {content_type}", status.as_u16()),
        })
    }
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

/// A failed exchange: timed out, TLS, or the network.
fn classify(e: reqwest::Error, s: &AppMetricsSettings) -> PollError {
    if e.is_timeout() {
        return error(
            ErrorClass::Timeout,
            format!(
                "no complete answer within {}",
                crate::timefmt::human(s.timeout)
            ),
        );
    }
    // reqwest names the URL in its errors; its query may carry a token.
    let text = errtext::chain(&e.without_url());
    let lower = text.to_ascii_lowercase();
    let class = if ["certificate", "tls", "handshake", "ssl"]
        .iter()
        .any(|w| lower.contains(w))
    {
        ErrorClass::Tls
    } else {
        ErrorClass::Network
    };
    error(class, text)
}

#[cfg(test)]
mod tests {
    use super::*;

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
