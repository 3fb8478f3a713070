//! The `app_metrics` source: scrapes an application's Prometheus text / OpenMetrics endpoint
//! and maps the series of its connection-pool library to pools of kind
//! [`app`](crate::source::app::APP).
//!
//! # Layout
//!
//! * [`exposition`] — the bounded, hand-written parser of the exposition text.
//! * [`fixtures`] — expositions in each supported library's shape, for tests and fuzzing.

pub mod exposition;
pub mod fixtures;
