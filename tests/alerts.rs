//! `alerts/` for teams that alert from Prometheus: the alerting and recording rules, their
//! `promtool` unit tests, the Alertmanager example and the Grafana dashboard, checked with the
//! real tools (`promtool`, `amtool`, a Prometheus server) and against a real scrape of the real
//! binary polling a real PostgreSQL and PgBouncer.
//!
//! * `files` — `promtool check rules` / `test rules` (covering every rule, firing and not),
//!   `amtool check-config` and routing.
//! * `builtins` — the rules file kept in step with `poolwatch::rules::builtin_rules()`.
//! * `dashboard` — the dashboard's structure, and every expression parsed by `promtool`.
//! * `exported` — every metric the rules and the dashboard name is one poolwatch exports, with
//!   the labels they use; Prometheus scraping poolwatch fires PoolExhausted with the numbers.
//! * `promql` — selectors of an expression, Grafana variables.
//! * `tools` — promtool, amtool and a Prometheus server.

mod common;

#[path = "alerts/builtins.rs"]
mod builtins;
#[path = "alerts/dashboard.rs"]
mod dashboard;
#[path = "alerts/exported.rs"]
mod exported;
#[path = "alerts/files.rs"]
mod files;
#[path = "alerts/promql.rs"]
mod promql;
#[path = "alerts/tools.rs"]
mod tools;
