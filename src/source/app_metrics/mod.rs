//! The `app_metrics` source: scrapes an application's Prometheus text / OpenMetrics endpoint
//! and maps the series of its connection-pool library to pools of kind
//! [`app`](crate::source::app::APP).
//!
//! # Layout
//!
//! * [`exposition`] — the bounded, hand-written parser of the exposition text.
//! * [`fixtures`] — expositions in each supported library's shape, for tests and fuzzing.
//! * [`presets`] — which series give which pool number: the built-in presets (HikariCP, Go's
//!   `database/sql`, pgxpool, node-postgres, OpenTelemetry in both generations) and custom
//!   mappings.
//! * [`map`] — applies a mapping to an exposition (pure).
//! * [`config`] — the target's keys (`url`, `preset` or `[mapping]`, secrets, `ca_file`, ...).
//! * [`fetch`] — one scrape over HTTP(S): verified TLS, no redirects, timeout, body cap; the
//!   [`Scraper`] keeps one connection alive between scrapes.
//! * [`conn`] — opens that connection: TCP, TLS (one shared configuration for the web roots),
//!   hyper's HTTP/1.1 handshake with a small read buffer, the task that drives it.

pub mod config;
pub mod conn;
pub mod exposition;
pub mod fetch;
pub mod fixtures;
pub mod map;
pub mod presets;

use super::{PollFailure, PollingSource, Session};
use crate::model::{ErrorClass, PollData, PollError};
use config::AppMetricsSettings;
use fetch::Scraper;

/// How many left-out pools a summary names at most.
const LEFT_OUT_SHOWN: usize = 3;

/// An `app_metrics` target as a [`PollingSource`]. A session is a [`Scraper`] (with its one
/// kept-alive connection) whose first scrape answered (so "connected" means the endpoint
/// answers); it is kept across HTTP errors and unreadable answers, and dropped when the endpoint
/// cannot be reached, so that the loop's backoff paces the retries.
pub struct AppMetricsSource {
    settings: AppMetricsSettings,
}

impl AppMetricsSource {
    /// A source for `settings`; nothing is fetched until the loop connects.
    pub fn new(settings: AppMetricsSettings) -> AppMetricsSource {
        AppMetricsSource { settings }
    }
}

/// Reads one answer into pools: parse within the limits (reading only the samples the mapping
/// reads), then map.
pub fn to_poll_data(s: &AppMetricsSettings, body: &[u8]) -> Result<PollData, PollError> {
    let names = s.mapping.sample_names();
    let keep = exposition::Keep::Names(&names);
    let expo = exposition::parse_only(body, &s.limits, keep).map_err(|e| PollError {
        class: ErrorClass::BadExposition,
        message: e.to_string(),
    })?;
    let mapped =
        map::map(&expo, &s.mapping, &s.match_labels, &s.name).map_err(|message| PollError {
            class: ErrorClass::NoPools,
            message,
        })?;
    let mut summary = format!(
        "{} ({} preset): {} pools from {} samples",
        s.endpoint,
        s.mapping.name,
        mapped.pools.len(),
        expo.series
    );
    if !mapped.left_out.is_empty() {
        let shown: Vec<&str> = mapped
            .left_out
            .iter()
            .take(LEFT_OUT_SHOWN)
            .map(|w| w.as_str())
            .collect();
        summary.push_str(&format!("; left out: {}", shown.join("; ")));
    }
    Ok(PollData {
        summary,
        pools: mapped.pools,
        facts: Vec::new(),
        refusing: None,
    })
}

impl PollingSource for AppMetricsSource {
    type Conn = Scraper;

    async fn connect(&self) -> Result<Session<Scraper>, PollError> {
        let mut scraper = Scraper::new(&self.settings)?;
        let answer = scraper.get(&self.settings).await?;
        Ok(Session {
            conn: scraper,
            peer: answer.peer,
        })
    }

    async fn poll(&self, scraper: &mut Scraper) -> Result<PollData, PollFailure> {
        let failure = |error: PollError| PollFailure {
            keep_session: !matches!(
                error.class,
                ErrorClass::Network | ErrorClass::Timeout | ErrorClass::Tls
            ),
            error,
        };
        let answer = scraper.get(&self.settings).await.map_err(failure)?;
        to_poll_data(&self.settings, &answer.body).map_err(failure)
    }
}

#[cfg(test)]
mod source_tests;

#[cfg(test)]
mod fetch_tests;
