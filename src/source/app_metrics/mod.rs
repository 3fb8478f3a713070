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

pub mod exposition;
pub mod fixtures;
pub mod map;
pub mod presets;
