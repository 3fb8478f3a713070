//! poolwatch: catches PostgreSQL connection-pool exhaustion before users do.
//!
//! # Layout
//!
//! Data flows one way, and every stage but the sources is source-agnostic:
//!
//! ```text
//! source ──TargetReport──▶ daemon ──▶ store (latest per target) ──▶ exporter (/metrics)
//!                            │
//!                            └──▶ alert::Engine (rules + pure state machine) ──Notice──▶ notify
//! ```
//!
//! * [`model`] — the uniform pool model: [`model::PoolSnapshot`], target state, error classes.
//! * [`notice`] — what the alert engine hands to the notifier, and alert fingerprints.
//! * [`config`] — TOML schema, secrets, durations, validation with file:line:column problems.
//! * [`source`] — pollers; [`source::postgres`] keeps one long-lived connection per server.
//! * [`rules`] — rule definitions (built-in defaults merged with the config), matchers,
//!   templates, and evaluation of a rule against a pool into an observation.
//! * [`alert`] — the pure alert state machine (`inactive → pending → firing → resolved`) and
//!   the engine that keys alerts by rule and pool and emits notices.
//! * [`notify`] — receivers: one bounded queue and worker each, Alertmanager v4 payloads, retries.
//! * [`store`] — the latest report of every target, shared with HTTP handlers.
//! * [`exporter`] — Prometheus metrics rendered from the store and engine at scrape time.
//! * [`http`] — the hyper server: `/metrics`, `/healthz`, `/readyz`, `/api/v1/alerts`;
//!   `[http]` schema, connection limit, per-phase deadlines, body cap.
//! * [`fdlimit`] — raises the open-file limit at start; the descriptor reserve that bounds HTTP.
//! * [`daemon`] — wiring, signals (SIGTERM/SIGINT shutdown, SIGHUP reload) and lifecycle.
//! * [`cli`] — the command line: `run`, `check-config`, `snapshot`, logging set-up.
//! * [`snapshot`] — `poolwatch snapshot`: poll once, print pools, holders and alerts.
//! * [`timefmt`] — RFC 3339 and human duration formatting.
//! * [`errtext`] — error text with its causes, for logs and alert text.

#![warn(missing_docs)]

pub mod alert;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod errtext;
pub mod exporter;
pub mod fdlimit;
pub mod http;
pub mod model;
pub mod notice;
pub mod notify;
pub mod rules;
pub mod settings;
pub mod snapshot;
pub mod source;
pub mod store;
pub mod timefmt;
