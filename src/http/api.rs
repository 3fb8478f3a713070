//! JSON answers and bounded JSON request bodies for the `/api/v1/` endpoints. A body is read up
//! to `max_body_bytes` (beyond it: 413) and within the request deadline of its connection; a
//! body that is not the expected JSON is a 400 whose message names the field, never echoing a
//! value (it may be a secret).

use super::{respond, RequestBody};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A JSON answer.
pub fn json(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec(body) {
        Ok(bytes) => respond(status, "application/json", bytes),
        Err(e) => {
            tracing::error!(error = %e, "encoding a JSON answer failed");
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "internal error\n",
            )
        }
    }
}

/// A JSON error answer: `{"status": "error", "error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    json(
        status,
        &serde_json::json!({ "status": "error", "error": message.into() }),
    )
}

/// 405 listing the methods the path answers.
pub fn method_not_allowed(allowed: &'static str) -> Response<Full<Bytes>> {
    let mut resp = respond(
        StatusCode::METHOD_NOT_ALLOWED,
        "text/plain",
        format!("only {allowed}\n"),
    );
    resp.headers_mut().insert(
        hyper::header::ALLOW,
        hyper::header::HeaderValue::from_static(allowed),
    );
    resp
}

/// Reads the request body as JSON of type `T`; the error is the answer to send (413 beyond
/// the body limit, 415 without a JSON content type, 400 for anything else, naming the field).
pub async fn read_json<T: DeserializeOwned>(
    req: Request<RequestBody>,
) -> Result<T, Response<Full<Bytes>>> {
    let is_json = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    let bytes = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return Err(if too_large {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the body is larger than max_body_bytes",
                )
            } else {
                error(StatusCode::BAD_REQUEST, "the body could not be read")
            });
        }
    };
    parse_json(&bytes).map_err(|message| error(StatusCode::BAD_REQUEST, message))
}

/// Longest error message [`parse_json`] gives, in bytes: an unknown key is quoted in it (twice),
/// and a key may be as long as the body.
pub const MAX_MESSAGE_BYTES: usize = 240;

/// Parses `bytes` as `T`; the message names the field and position, never a value, and is at
/// most [`MAX_MESSAGE_BYTES`] long.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = shortened(e.path().to_string(), MAX_MESSAGE_BYTES / 3);
        let inner = e.into_inner();
        let what = without_values(&inner.to_string());
        let message = if matches!(path.as_str(), "" | "." | "?") {
            format!("invalid body: {what}")
        } else {
            format!("{path}: {what}")
        };
        shortened(message, MAX_MESSAGE_BYTES)
    })
}

/// `message` cut to at most `max` bytes (on a character boundary), ending with `…` if cut.
fn shortened(mut message: String, max: usize) -> String {
    if message.len() > max {
        let ellipsis = '…';
        let mut end = max - ellipsis.len_utf8();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push(ellipsis);
    }
    message
}

/// serde_json's message without the value it quotes (it may be a secret), in JSON's words.
fn without_values(message: &str) -> String {
    crate::config::message::describe(message, None)
        .replace("a table", "an object")
        .replace("table,", "object,")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Push {
        application: String,
        pools: Vec<Pool>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Pool {
        name: String,
        capacity: u32,
    }

    #[test]
    fn errors_name_the_field_and_never_a_value() {
        // (body, want error starting with)
        let cases = [
            (
                r#"{"application": 5, "pools": []}"#,
                "application: invalid type",
            ),
            (
                r#"{"application": "a", "pools": [{"name": "p", "capacity": "secret-ish"}]}"#,
                "pools[0].capacity: invalid type",
            ),
            (
                r#"{"application": "a", "pools": [{"name": "p"}]}"#,
                "pools[0]: missing field `capacity`",
            ),
            (
                r#"{"application": "a"}"#,
                "invalid body: missing field `pools`",
            ),
            (
                r#"{"application": "a", "pools": [], "x": 1}"#,
                "x: unknown field `x`",
            ),
            ("{", "invalid body: EOF"),
        ];
        for (body, want) in cases {
            let err = parse_json::<Push>(body.as_bytes()).unwrap_err();
            assert!(err.starts_with(want), "{body}: {err}");
            assert!(!err.contains("secret-ish"), "{err}");
        }
        assert!(parse_json::<Push>(br#"{"application": "a", "pools": []}"#).is_ok());
    }

    #[test]
    fn errors_stay_short_whatever_the_key() {
        let long_key = "k".repeat(10_000);
        let body = format!(r#"{{"application": "a", "pools": [], "{long_key}": 1}}"#);
        let err = parse_json::<Push>(body.as_bytes()).unwrap_err();
        assert!(err.len() <= MAX_MESSAGE_BYTES, "{} bytes", err.len());
        assert!(err.ends_with('…') && err.contains("unknown field"), "{err}");
        // Multi-byte characters are never cut in half.
        for max in 5..12 {
            let cut = shortened("aéééééé".into(), max);
            assert!(cut.len() <= max && cut.ends_with('…'), "{cut}");
        }
        assert_eq!(shortened("short".into(), 240), "short");
    }
}
