//! poolwatch: catches database connection-pool exhaustion before users do.
//!
//! # Layout
//!
//! Data flows one way, and nothing after the sources names a source:
//!
//! ```text
//! sources ──TargetReport──▶ daemon ──▶ store (latest report, last pools, history per pool)
//! (postgres, pgbouncer,       │              │          └──▶ exporter (/metrics, per scrape)
//!  app_metrics, push;         │              ▼
//!  one poll loop)             │              │
//!                             └──▶ alert::Engine (rules + pure state machine)
//!                                        │ alert set (pending, firing, resolved)
//!                                        ▼
//!                                  dispatch::Dispatcher (routes, groups, notification log)
//!                                        │ Notification ▲ Outcome (delivered or given up)
//!                                        ▼              │
//!                                  notify (one queue + worker per receiver integration)
//! ```
//!
//! * [`model`] — the uniform pool model: [`model::PoolSnapshot`] (capacity, in use, idle,
//!   waiting, longest wait, counters and their rates, a PostgreSQL part), pool identity and
//!   kinds, target facts, error classes; [`model::metric`] is the one table of pool numbers
//!   rules and `/metrics` read.
//! * [`source`] — every source as one module behind one trait, run by one poll loop:
//!   [`source::postgres`], [`source::pgbouncer`], their shared wire-protocol parts
//!   ([`source::pgwire`]), [`source::app_metrics`] (an application's metrics endpoint: its
//!   own bounded exposition parser, presets per pool library), [`source::push`] (pools
//!   applications post, summed over their fresh instances); `[[targets]]` and its `type`
//!   ([`source::target`]).
//! * [`store`] — what is known of every target and pool: latest report, last pools seen, a short
//!   history per pool, capacity changes, counter rates since a pool's previous sample; shared
//!   with the HTTP handlers.
//! * [`rules`] — rule definitions and their `[[rules]]` schema (built-ins merged with the
//!   config), matchers, templates, and evaluation of a rule against a pool.
//! * [`alert`] — the pure alert state machine (`inactive → pending → firing → resolved`) and the
//!   engine that keys alerts by rule and pool, reads the store, reports transitions and
//!   publishes the current alert set.
//! * [`notice`] — one alert transition as the engine reports it (logged), and fingerprints.
//! * [`dispatch`] — Alertmanager-shaped dispatch, pure: `[route]` tree, aggregation groups (per
//!   receiver integration), the notification log and `should_notify`, group notifications with
//!   stable ids.
//! * [`notify`] — receivers and their `[[receivers]]` schema, each with one or more
//!   integrations ([`notify::integrations`]: one module per kind — the grouped Alertmanager
//!   v4 webhook, alerts pushed to Alertmanagers' `/api/v2/alerts`): one bounded queue (newest state per group) and worker per
//!   integration, retries, a reachability probe, delivery outcomes back to the dispatcher.
//! * [`exporter`] — Prometheus exposition, rendered on scrape from what each report handed over.
//! * [`http`] — the hyper server: `/` (the live status page), `/metrics`, `/healthz`, `/readyz`,
//!   `/api/v1/alerts`, `/api/v1/pools` (GET: every pool with its link and budget; POST: pushed
//!   pool stats);
//!   `[http]` schema, connection limit, per-phase deadlines, body cap.
//! * [`fdlimit`] — raises the open-file limit at start; the descriptor reserve that bounds HTTP.
//! * [`heap`] — the allocator hands large blocks back (a hostile input's memory is returned).
//! * [`config`] — the machinery every section uses: bounded file reads, durations, secrets,
//!   problems located as `file:line:column: key: message`. It knows no section.
//! * [`link`] — `[[links]]`: which server (directly or through PgBouncer) each application or
//!   PgBouncer draws on.
//! * [`budget`] — the pool budget: what the linked pools may open against each server's (and
//!   role's, database's, PgBouncer's) ceiling; the `poolwatch budget` command.
//! * [`settings`] — the whole configuration: each section validated by its component, put
//!   together into one [`settings::Config`].
//! * [`daemon`] — wiring, signals (SIGTERM/SIGINT shutdown, SIGHUP reload off the loop), the
//!   state file, lifecycle.
//! * [`cli`] — the command line: `run`, `check-config`, `snapshot`, `budget`, `test-receiver`
//!   (in [`notify::test_receiver`]), logging set-up.
//! * [`snapshot`] — `poolwatch snapshot`: poll once, print pools, holders and alerts.
//! * [`silence_client`] — `poolwatch silence add|list|expire`: a client of `/api/v1/silences`.
//! * [`timefmt`] — RFC 3339 and human duration formatting.
//! * [`errtext`] — error text with its causes, for logs and alert text.

#![warn(missing_docs)]

pub mod alert;
pub mod budget;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod errtext;
pub mod exporter;
pub mod fdlimit;
pub mod heap;
pub mod http;
pub mod link;
pub mod model;
pub mod notice;
pub mod notify;
pub mod rules;
pub mod settings;
pub mod silence_client;
pub mod snapshot;
pub mod source;
pub mod store;
pub mod timefmt;
