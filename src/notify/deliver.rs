//! One delivery attempt of one integration and its classification by the integration's kind
//! (by default: retryable for 5xx, 408, 429, timeouts, network; permanent for other 4xx and
//! redirects, which are not followed). Error texts are built here and redacted of the
//! integration's secrets (URL, its path and query, header values) before anyone sees them.

use super::integrations::{Class, IntegrationSettings, Kind, Signing};
use super::retry::parse_retry_after;
use crate::errtext;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, StatusCode, Url};
use std::time::Duration;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("poolwatch/", env!("CARGO_PKG_VERSION"));

/// The header carrying the notification id, the same across retries and restarts.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// How much of an error response's body goes into the error text.
const BODY_EXCERPT_BYTES: usize = 256;

/// Why an attempt failed. The message is already redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttemptError {
    /// A later attempt may succeed; `retry_after` is the receiver's `Retry-After`, if any.
    Retryable {
        /// What went wrong, redacted.
        message: String,
        /// The receiver's wish, honoured up to `max_backoff`.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help: the receiver rejected the request.
    Permanent {
        /// What went wrong, redacted.
        message: String,
    },
    /// The service answered 410 Gone: the integration is to be disabled.
    Gone {
        /// What went wrong, redacted.
        message: String,
    },
}

/// Where and how to post one integration's notifications. Holds secrets, so it has no `Debug`.
pub(crate) struct Endpoint {
    /// One client per integration: its own connection pool, so a slow service cannot starve
    /// another's connections.
    client: Client,
    /// Classifies answers.
    kind: Kind,
    /// Signs each request.
    signing: Signing,
    /// The webhook URL (secret).
    url: Url,
    /// `Content-Type` and the configured headers, values marked sensitive.
    headers: HeaderMap,
    /// Per-attempt timeout, connection included.
    timeout: Duration,
    /// Scrubs this receiver's secrets out of every error text.
    redactor: Redactor,
}

impl Endpoint {
    /// Builds the HTTP client and request parts. Fails (with a redacted message) only on
    /// settings that [`super::settings_from_config`] would have refused, or if TLS cannot be
    /// initialised.
    pub(crate) fn new(settings: &IntegrationSettings) -> Result<Self, String> {
        let mut redactor = Redactor::default();
        redactor.add(settings.url.expose());
        let url = Url::parse(settings.url.expose())
            .map_err(|e| format!("not a valid http(s) URL: {e}"))?;
        redactor.add(url.as_str());
        // A host name can carry a token too, and TLS errors name it.
        redactor.add(url.host_str().unwrap_or_default());
        redactor.add(url.path());
        redactor.add(url.query().unwrap_or_default());
        redactor.add(url.username());
        redactor.add(url.password().unwrap_or_default());
        if let Kind::PagerDuty { routing_key } = &settings.kind {
            // In the body, not in errors; but a service may echo what it was sent.
            redactor.add(routing_key.expose());
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &settings.headers {
            redactor.add(value.expose());
            value
                .expose()
                .split_whitespace()
                .for_each(|w| redactor.add(w));
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| format!("header {name}: not a valid HTTP header value"))?;
            value.set_sensitive(true);
            headers.insert(name.clone(), value);
        }
        let client = Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(settings.timeout)
            // A redirected POST turns into a bodiless GET, and custom secret headers would follow
            // it to another host: a 3xx is a permanent error instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| redactor.redact(&errtext::chain(&e)))?;
        Ok(Endpoint {
            client,
            kind: settings.kind.clone(),
            signing: settings.signing.clone(),
            url,
            headers,
            timeout: settings.timeout,
            redactor,
        })
    }

    /// Posts `body` once, within the per-attempt timeout, with the notification's `id` as
    /// `Idempotency-Key`. Returns the response status on 2xx.
    pub(crate) async fn attempt(
        &self,
        body: Vec<u8>,
        id: &str,
    ) -> Result<StatusCode, AttemptError> {
        let mut headers = self.headers.clone();
        if let Ok(v) = HeaderValue::from_str(id) {
            headers.insert(IDEMPOTENCY_KEY, v);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        headers.extend(self.signing.headers(id, now, &body));
        let sent = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .timeout(self.timeout)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Err(self.classify_error(e)),
        };
        let status = response.status();
        let class = self.kind.classify(status);
        if class == Class::Accepted {
            return Ok(status);
        }
        let retry_after = match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
            _ => None,
        };
        let excerpt = body_excerpt(response).await;
        let message = self.redactor.redact(&format!("HTTP {status}{excerpt}"));
        Err(match class {
            Class::Retryable => AttemptError::Retryable {
                message,
                retry_after,
            },
            Class::Gone => AttemptError::Gone { message },
            Class::Accepted | Class::Permanent => AttemptError::Permanent { message },
        })
    }

    fn classify_error(&self, e: reqwest::Error) -> AttemptError {
        let permanent = e.is_builder() || e.is_redirect();
        let message = if e.is_timeout() {
            format!("timed out after {:?}", self.timeout)
        } else {
            self.redactor.redact(&errtext::chain(&e.without_url()))
        };
        if permanent {
            AttemptError::Permanent { message }
        } else {
            AttemptError::Retryable {
                message,
                retry_after: None,
            }
        }
    }
}

/// `: <start of the body>` with control characters flattened, or nothing for an empty body.
async fn body_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(BODY_EXCERPT_BYTES);
    let text: String = String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// Replaces known secret strings with `<redacted>`, longest first, so that a secret echoed in
/// an error body or an error chain cannot reach a log line.
#[derive(Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Strings shorter than this are not treated as secrets (a path `/` would blank all slashes).
    const MIN_LEN: usize = 4;

    /// Adds a secret string.
    pub(crate) fn add(&mut self, secret: &str) {
        if secret.len() >= Self::MIN_LEN && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_string());
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every secret replaced.
    pub(crate) fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "<redacted>"))
    }
}

#[cfg(test)]
#[path = "deliver_tests.rs"]
mod tests;
