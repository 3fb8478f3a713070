//! 410 Gone disables the integration loudly — an error log line without its URL, the gauge
//! `poolwatch_integration_disabled` at 1, a `/readyz` detail — and its notifications are
//! dropped (`disabled`) while the receiver's other integration keeps delivering; a reload that
//! changes it enables it again.

use super::{cluster, receiver_with, watch};
use crate::common::scenario::{expect_accepted, expect_metric, metric, WAIT};
use crate::common::Receiver;

const TOKEN: &str = "g0ne-T0KEN-123";

#[tokio::test]
async fn gone_disables_the_integration_until_a_reload_changes_it() {
    let pg = cluster().await;
    let gone = Receiver::start().await;
    gone.set_status(410);
    let backup = Receiver::start().await;
    let gone_hook = format!(
        "type = \"webhook\"\nurl = \"{}\"",
        gone.url(&format!("/hook/{TOKEN}"))
    );
    let backup_hook = format!(
        "type = \"webhook\"\nname = \"backup\"\nurl = \"{}\"",
        backup.url("/hook")
    );
    let receivers = receiver_with("oncall", &[gone_hook.clone(), backup_hook.clone()]);
    let pw = watch(&pg, &receivers).await;
    let disabled = "poolwatch_integration_disabled";
    let this = [("receiver", "oncall"), ("integration", "webhook")];
    let other = [("receiver", "oncall"), ("integration", "backup")];
    expect_metric(&pw, disabled, &this, 0.0).await;

    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_accepted(&backup, &["firing IdleTx db"]).await;
    expect_metric(&pw, disabled, &this, 1.0).await;
    expect_metric(&pw, disabled, &other, 0.0).await;
    let (status, body) = pw.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("integration disabled: receiver oncall, integration webhook: its service answered 410 Gone"),
        "{body}"
    );
    assert!(!body.contains("backup"), "{body}");
    assert!(
        pw.wait_for_log("integration disabled: its service answered 410 Gone", WAIT)
            .await,
        "{}",
        pw.logs()
    );

    // The resolution and a new firing reach the other integration; the disabled one drops
    // the new firing unsent (it was never told the first fired: no resolution for it).
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    expect_accepted(&backup, &["firing IdleTx db", "resolved IdleTx db"]).await;
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_accepted(
        &backup,
        &["firing IdleTx db", "resolved IdleTx db", "firing IdleTx db"],
    )
    .await;
    let dropped = [
        ("receiver", "oncall"),
        ("integration", "webhook"),
        ("reason", "disabled"),
    ];
    pw.wait_for_metric(
        "poolwatch_notifications_dropped_total",
        &dropped,
        |v| v >= 2.0,
        WAIT,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gone.requests().len(), 1, "tried once, then disabled");
    let logs = pw.logs();
    assert!(!logs.contains(TOKEN), "URL logged:\n{logs}");

    // A reload that leaves it unchanged keeps it disabled; one that changes it enables it.
    pw.sighup();
    assert!(
        pw.wait_for_log("configuration reloaded", WAIT).await,
        "{}",
        pw.logs()
    );
    assert_eq!(metric(&pw, disabled, &this).await, 1.0);
    let changed = receiver_with(
        "oncall",
        &[
            format!("{gone_hook}\nheaders = {{ X-Fixed = \"yes\" }}"),
            backup_hook,
        ],
    );
    let text = std::fs::read_to_string(pw.config().path()).expect("config");
    pw.config().write(&text.replace(&receivers, &changed));
    pw.sighup();
    expect_metric(&pw, disabled, &this, 0.0).await;
    let (_, body) = pw.get("/readyz").await;
    assert!(!body.contains("integration disabled"), "{body}");
}
