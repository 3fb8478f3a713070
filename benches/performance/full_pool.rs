//! The stage of the detection benchmark: a cluster whose server pool an application fills up,
//! the daemon watching it with a given configuration, and readers of what the receiver got.
//!
//! The cluster has `max_connections = 23` and 3 slots reserved for superusers: 20 slots for
//! ordinary roles. poolwatch's own session (role `poolwatch`, not a superuser) takes one of them,
//! so applications are refused (SQLSTATE 53300) once they hold 19. poolwatch leaves its own
//! session out of `in_use` and takes its slot out of `capacity`, so at that moment it reports
//! 19/19 = 1.0: the built-in `PoolExhausted` (utilization >= 1) fires on the connection that
//! fills the pool, and not on the one before (18/19 = 0.947).

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use crate::clients::{self, PASSWORD};
use crate::common::pg::hold::with_application_name;
use crate::common::{poll_until, ConnectionHold, PgCluster, PgOptions, Poolwatch, RecordedRequest};
use crate::common::{Receiver, Sample};

/// Slots for ordinary roles (`max_connections - superuser_reserved_connections`).
const SLOTS: usize = 20;
/// Connections applications can hold, and the capacity poolwatch reports: its own session
/// takes one slot.
pub const APP_MAX: usize = SLOTS - 1;

/// A cluster and a receiver, shared by every daemon of the section.
pub struct Stage {
    pub pg: PgCluster,
    pub receiver: Receiver,
}

impl Stage {
    pub async fn start() -> Stage {
        let pg = PgCluster::start(PgOptions {
            max_connections: SLOTS as u32 + 3,
            superuser_reserved_connections: 3,
            ..PgOptions::default()
        })
        .await;
        clients::prepare(&pg).await;
        Stage {
            pg,
            receiver: Receiver::start().await,
        }
    }

    /// A config with the target polled every `interval` (`None`: the key is left out, so the
    /// default applies), `rules` appended, and the receiver with its defaults.
    fn config(&self, interval: Option<Duration>, rules: &str) -> String {
        let interval = interval.map_or(String::new(), |i| {
            format!("interval = \"{}ms\"\n", i.as_millis())
        });
        format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n\n[[targets]]\nname = \"db\"\nhost = \"127.0.0.1\"\n\
             port = {}\nuser = \"poolwatch\"\npassword = \"{PASSWORD}\"\nsslmode = \"disable\"\n\
             {interval}\n{rules}\n[[receivers]]\nname = \"oncall\"\n[[receivers.integrations]]\ntype = \"webhook\"\nurl = \"{}\"\n",
            self.pg.port(),
            self.receiver.url("/hook")
        )
    }

    /// Starts a daemon and waits until it has polled the target.
    pub async fn daemon(&self, interval: Option<Duration>, rules: &str) -> Poolwatch {
        let daemon = Poolwatch::start(&self.config(interval, rules)).await;
        daemon
            .wait_for_metric(
                "poolwatch_target_up",
                &[("target", "db")],
                |v| v == 1.0,
                Duration::from_secs(20),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", daemon.logs()));
        daemon
    }

    /// Stops the daemon and waits until its session has left the server.
    pub async fn stop(&self, daemon: Poolwatch) {
        drop(daemon);
        let gone = poll_until(Duration::from_secs(10), || async {
            let rows = self
                .pg
                .query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'poolwatch'")
                .await;
            (rows[0].get::<_, i64>(0) == 0).then_some(())
        })
        .await;
        assert!(gone.is_some(), "poolwatch's session still on the server");
    }

    /// Fills the pool: `APP_MAX - 1` connections, a pause of three polls, a random delay within
    /// one `interval` (so the last connection lands at a random phase of the poll ticker), then
    /// the last one. Returns the sessions and the instant the pool became full: when `connect`
    /// returned, i.e. the client had the server's ReadyForQuery (the harness's tracked
    /// connections would add a `pg_backend_pid()` round trip before that instant).
    pub async fn fill(&self, interval: Duration) -> Full {
        let bulk = self
            .pg
            .hold_connections("app", APP_MAX - 1, "web")
            .await
            .expect("all but the last connection");
        tokio::time::sleep(3 * interval).await;
        tokio::time::sleep(interval.mul_f64(rand::random::<f64>())).await;
        let url = with_application_name(
            &self.pg.url_with_password("app", PASSWORD, "postgres"),
            "web",
        );
        let last = crate::common::pg::connect(&url)
            .await
            .expect("the last connection");
        Full {
            bulk,
            last,
            at: Instant::now(),
        }
    }

    /// Whether one more ordinary connection is refused with 53300.
    pub async fn refused_as_full(&self) -> bool {
        let url = self.pg.url_with_password("app", PASSWORD, "postgres");
        match crate::common::pg::connect(&url).await {
            Ok(_) => false,
            Err(e) => e.code() == Some(&SqlState::TOO_MANY_CONNECTIONS),
        }
    }
}

/// The sessions of a full pool, and when it became full.
pub struct Full {
    bulk: ConnectionHold,
    last: tokio_postgres::Client,
    pub at: Instant,
}

impl Full {
    /// Ends the sessions; the bulk's backends are gone when it returns.
    pub async fn release(self) {
        drop(self.last);
        self.bulk.close_all().await;
    }
}

/// Whether `r` announces `alertname` with `status` (`firing` or `resolved`).
pub fn announces(r: &RecordedRequest, alertname: &str, status: &str) -> bool {
    let Some(json) = &r.json else { return false };
    json["alerts"].as_array().is_some_and(|alerts| {
        alerts
            .iter()
            .any(|a| a["status"] == status && a["labels"]["alertname"] == alertname)
    })
}

/// The server pool's `name` gauge in a scrape; NaN when absent.
pub fn pool_gauge(samples: &[Sample], name: &str) -> f64 {
    crate::common::metrics::find_sample(samples, name, &[("target", "db"), ("pool", "server")])
        .unwrap_or(f64::NAN)
}

/// The `summary` annotation of the first alert named `alertname` in a webhook.
pub fn summary_of(r: &RecordedRequest, alertname: &str) -> Option<String> {
    let alerts = r.json.as_ref()?["alerts"].as_array()?.clone();
    alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == alertname)
        .and_then(|a| a["annotations"]["summary"].as_str().map(str::to_string))
}
