//! End-to-end: receiver integrations through the binary, against a real PostgreSQL cluster
//! (an idle transaction fires the alert, its commit resolves it) and real local HTTP
//! receivers: signed webhooks verified by an independent implementation (the
//! `standardwebhooks` package from PyPI, Python's hmac), Slack and PagerDuty bodies and
//! independent delivery, acknowledgements per integration across `kill -9`, 410 Gone, and
//! `poolwatch test-receiver`.

mod common;
#[path = "e2e_integrations/formats.rs"]
mod formats;
#[path = "e2e_integrations/gone.rs"]
mod gone;
#[path = "e2e_integrations/restart.rs"]
mod restart;
#[path = "e2e_integrations/signing.rs"]
mod signing;
#[path = "e2e_integrations/test_receiver.rs"]
mod test_receiver;
#[path = "e2e_integrations/verifier.rs"]
mod verifier;

use common::scenario::{
    expect_metric, header, idle_in_transaction_rule, monitored_cluster, target,
};
use common::{PgCluster, Poolwatch};

/// A `[[receivers]]` table named `name` with fast retries and `integrations` (each a
/// `[[receivers.integrations]]` table's keys) appended.
pub fn receiver_with(name: &str, integrations: &[String]) -> String {
    let mut out = format!(
        "[[receivers]]\nname = \"{name}\"\ninitial_backoff = \"50ms\"\nmax_backoff = \"500ms\"\n"
    );
    for keys in integrations {
        out.push_str(&format!(
            "[[receivers.integrations]]\ntimeout = \"5s\"\n{keys}\n"
        ));
    }
    out
}

/// Poolwatch watching `pg` with the `IdleTx` rule (fires on one idle transaction, warning)
/// and `receivers`; returns once the target is up.
pub async fn watch(pg: &PgCluster, receivers: &str) -> Poolwatch {
    let config = [
        header("builtin_rules = false"),
        target("db", pg.port(), ""),
        idle_in_transaction_rule("IdleTx", 1),
        receivers.to_string(),
    ]
    .concat();
    let pw = Poolwatch::start(&config).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "db")], 1.0).await;
    pw
}

/// A cluster with the monitoring role, and a connection whose `BEGIN` fires `IdleTx`.
pub async fn cluster() -> PgCluster {
    monitored_cluster().await
}
