//! End-to-end: the `poolwatch` binary against a real PgBouncer in front of a real PostgreSQL
//! cluster, on the version `POOLWATCH_TEST_PGBOUNCER` selects (`scripts/test.sh` runs this
//! binary on 1.18 and 1.24), with a real webhook receiver.
//!
//! Every test starts its own cluster with the application role `app` and the monitoring role
//! `poolwatch` (in PgBouncer's `stats_users`), a PgBouncer with the database entry `appdb`,
//! and `poolwatch run` polling the admin console every 100 ms. Assertions are on exact numbers
//! and texts; waits are bounded polls for expected events. The one timing bound asserted (a
//! page within a poll plus a second) is a correctness bound, far from what is measured.

//!
//! # Layout
//!
//! * `scene` — the shared set-up and readers.
//! * `pools` — clients waiting, a smaller pool after `RELOAD`, `max_db_connections`, the
//!   reserve pool.
//! * `target` — `max_client_conn` reached, the console stopped, hung, or refusing a password.
//! * `cli` — `check-config` and `snapshot`.

mod common;

#[path = "e2e_pgbouncer/cli.rs"]
mod cli;
#[path = "e2e_pgbouncer/pools.rs"]
mod pools;
#[path = "e2e_pgbouncer/scene.rs"]
mod scene;
#[path = "e2e_pgbouncer/target.rs"]
mod target;
