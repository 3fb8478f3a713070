//! The push source (`type = "push"`): pools that live only in an application's memory
//! (psycopg_pool, SQLAlchemy, node-postgres, deadpool, sqlx...), posted by each instance of the
//! application to `POST /api/v1/pools`. The HTTP handler stores pushes in the shared
//! [`Registry`]; the target's source is an ordinary [`PollingSource`] whose poll reads the
//! registry, so the one poll loop gives push targets the cadence, the report on every tick and
//! the events every target has.
//!
//! * [`body`] — the JSON schema and its validation (pure).
//! * [`aggregate`] — fresh instances summed into the target's pools, or the target stale
//!   (pure).
//! * [`counters`] — pool counters that stay cumulative as instances leave, return or restart
//!   (pure).
//! * [`registry`] — the bounded store of pushes, the bearer-token check, the push counters.
//! * [`config`] — the target's keys (`token`, `ttl`, `max_instances`, `max_pools`).

pub mod aggregate;
pub mod body;
pub mod config;
pub mod counters;
pub mod registry;

pub use config::{PushConfig, PushSettings};
pub use registry::{Refusal, Registry};

use super::{PollFailure, PollingSource, Session};
use crate::model::{PollData, PollError};
use std::sync::Arc;
use std::time::SystemTime;

/// A push target as a [`PollingSource`]: "connecting" always succeeds, a poll reads what its
/// application's instances pushed.
pub struct PushSource {
    target: String,
    registry: Arc<Registry>,
}

impl PushSource {
    /// The source of push target `target`, reading `registry`.
    pub fn new(target: &str, registry: Arc<Registry>) -> PushSource {
        PushSource {
            target: target.to_string(),
            registry,
        }
    }
}

impl PollingSource for PushSource {
    type Conn = ();

    async fn connect(&self) -> Result<Session<()>, PollError> {
        Ok(Session {
            conn: (),
            peer: "pushes to POST /api/v1/pools".into(),
        })
    }

    async fn poll(&self, _: &mut ()) -> Result<PollData, PollFailure> {
        self.registry
            .report(&self.target, SystemTime::now())
            .map_err(|error| PollFailure {
                error,
                keep_session: true,
            })
    }
}
