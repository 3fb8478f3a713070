//! `POST /api/v1/pools`: an application instance posts its pools' stats (the schema is
//! [`crate::source::push::body`]). The body is bounded by `http.max_body_bytes` and read within
//! the connection's request deadline; the answer is 202 with what was stored, or a JSON error
//! naming the field or the limit. Nothing is stored unless everything is valid.

use super::api::{self, json};
use super::{AppState, RequestBody};
use crate::source::push::body::PushBody;
use crate::source::push::Refusal;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use std::time::SystemTime;

/// Handles one push.
pub async fn post(req: Request<RequestBody>, state: &AppState) -> Response<Full<Bytes>> {
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    let body: PushBody = match api::read_json(req).await {
        Ok(body) => body,
        Err(answer) => {
            state.pushed.refused(&refusal_of(&answer));
            return answer;
        }
    };
    let application = body.application.clone();
    match state
        .pushed
        .accept(body, authorization.as_deref(), SystemTime::now())
    {
        Ok(done) => json(
            StatusCode::ACCEPTED,
            &serde_json::json!({
                "status": "success",
                "data": {
                    "application": application,
                    "pools": done.pools,
                    "instances": done.instances,
                },
            }),
        ),
        Err(refusal) => answer(&refusal),
    }
}

/// The answer to a refused push.
fn answer(refusal: &Refusal) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = api::error(status, refusal.message());
    if *refusal == Refusal::Unauthorized {
        resp.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
    }
    resp
}

/// The refusal behind an answer [`api::read_json`] gave.
fn refusal_of(answer: &Response<Full<Bytes>>) -> Refusal {
    match answer.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Refusal::TooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Refusal::NotJson,
        _ => Refusal::Invalid(String::new()),
    }
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
