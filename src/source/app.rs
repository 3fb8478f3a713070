//! What application-pool sources share (`app_metrics`, which scrapes an application's metrics
//! endpoint, and `push`, which takes pool stats the application posts): the kind of their
//! pools. An application pool queues a client when it is full (HikariCP, Go's `database/sql`,
//! pgxpool, node-postgres, psycopg_pool all do), so its page is clients waiting, not fullness.

use crate::model::{PoolKind, WhenFull};

/// A pool inside an application (a connection pool library's pool), named by the pool's own
/// name (`HikariPool-1`, `default`, a `db_name` label).
pub const APP: PoolKind = PoolKind {
    name: "app",
    whole_target: false,
    when_full: WhenFull::Queues,
};
