//! `/api/v1/silences`: list (`GET`), create (`POST` a JSON [`NewSilence`]) and expire
//! (`DELETE /api/v1/silences/<id>`). The daemon applies a change within a second and saves it
//! with the state file.

use super::api::{self, json};
use super::{AppState, RequestBody};
use crate::dispatch::silence::NewSilence;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use std::time::SystemTime;

/// The path prefix of one silence.
pub const ONE: &str = "/api/v1/silences/";

/// `GET`: every silence (active and recently expired), with its state.
pub fn list(state: &AppState) -> Response<Full<Bytes>> {
    let now = SystemTime::now();
    let silences: Vec<serde_json::Value> = state
        .silences
        .get()
        .0
        .list()
        .into_iter()
        .map(|s| {
            let st = s.state(now);
            let mut v = serde_json::to_value(s).unwrap_or_default();
            v["state"] = st.into();
            v
        })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({ "status": "success", "data": { "silences": silences } }),
    )
}

/// `POST`: creates a silence; 200 with it, or 400 saying what is wrong.
pub async fn add(req: Request<RequestBody>, state: &AppState) -> Response<Full<Bytes>> {
    let new: NewSilence = match api::read_json(req).await {
        Ok(n) => n,
        Err(resp) => return resp,
    };
    match state.silences.update(|s| s.add(new, SystemTime::now())) {
        Ok(s) => {
            tracing::info!(id = %s.id, created_by = %s.created_by, matchers = ?s.matchers, "silence created");
            json(
                StatusCode::OK,
                &serde_json::json!({ "status": "success", "data": s }),
            )
        }
        Err(e) => api::error(StatusCode::BAD_REQUEST, e),
    }
}

/// `DELETE /api/v1/silences/<id>`: expires it now; 404 if there is no such active silence.
pub fn expire(path: &str, state: &AppState) -> Response<Full<Bytes>> {
    let id = path.trim_start_matches(ONE);
    if state.silences.update(|s| s.expire(id, SystemTime::now())) {
        tracing::info!(id, "silence expired");
        json(StatusCode::OK, &serde_json::json!({ "status": "success" }))
    } else {
        api::error(StatusCode::NOT_FOUND, "no active silence has this id")
    }
}
