//! End-to-end replays of the incidents poolwatch exists for, through the real `poolwatch`
//! binary against real PostgreSQL clusters and a real webhook receiver.
//!
//! Every test starts its own cluster with a small `max_connections`, a non-superuser monitoring
//! role with `pg_monitor`, and `poolwatch run` polling every 100 ms with short `for` durations.
//! Assertions are on exact numbers and texts; waits are bounded polls for expected events,
//! never claims about speed.
//!
//! poolwatch's own session is not load (not in `in_use`, the holders or the ages), but the slot
//! it holds is taken out of the server pool's capacity: `max_connections` 14 with 3 reserved
//! for superusers is a pool of 10, and 10 application connections fill it (10/10, 100%).
//!
//! # Layout
//!
//! * `scene` — the shared set-up, readers of webhook payloads (checked against the
//!   Alertmanager v4 shape), `/metrics` and `/api/v1/alerts`.
//! * `exhaustion` — incident 1: a pool of 10 exhausted at peak, on the server and on a role.
//! * `shrink` — incident 2: a deployment lowers a pool's size; flagged before any saturation,
//!   across a server restart, and across a restart of poolwatch itself (state file).
//! * `saturated` — a server that refuses poolwatch itself (53300), one that fills while
//!   poolwatch is connected, and poolwatch locked out after losing its session.
//! * `snapshot` — `poolwatch snapshot` on held, idle-in-transaction, stopped and full servers.

mod common;

#[path = "e2e_incidents/exhaustion.rs"]
mod exhaustion;
#[path = "e2e_incidents/saturated.rs"]
mod saturated;
#[path = "e2e_incidents/scene.rs"]
mod scene;
#[path = "e2e_incidents/shrink.rs"]
mod shrink;
#[path = "e2e_incidents/snapshot.rs"]
mod snapshot;
