//! The notification log acknowledges per receiver and integration: after `kill -9`, only the
//! integration that had not acknowledged is sent the group again, with the same id; the one
//! that had is not paged twice.

use super::{cluster, receiver_with};
use crate::common::scenario::{
    expect_accepted, expect_metric, header, idle_in_transaction_rule, target, WAIT,
};
use crate::common::{Poolwatch, Receiver};

#[tokio::test]
async fn after_kill_9_only_the_integration_that_had_not_acknowledged_is_sent_again() {
    let pg = cluster().await;
    let up = Receiver::start().await;
    let down = Receiver::start().await;
    down.set_status(503);
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state.json");
    let config = [
        header(&format!(
            "builtin_rules = false\nstate_file = \"{}\"",
            state.display()
        )),
        target("db", pg.port(), ""),
        idle_in_transaction_rule("IdleTx", 1),
        receiver_with(
            "oncall",
            &[
                format!(
                    "type = \"webhook\"\nname = \"up\"\nurl = \"{}\"",
                    up.url("/hook")
                ),
                format!(
                    "type = \"webhook\"\nname = \"down\"\nurl = \"{}\"",
                    down.url("/hook")
                ),
            ],
        ),
    ]
    .concat();
    let first = Poolwatch::start(&config).await;
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    expect_accepted(&up, &["firing IdleTx db"]).await;
    assert!(
        down.wait_for(|r| r.len() >= 2, WAIT).await,
        "the failing one is retried"
    );
    let sent_id = down.requests()[0]
        .header("idempotency-key")
        .unwrap_or_default()
        .to_string();
    // The acknowledgement of `up` is saved with the log, per integration.
    let saved = crate::common::poll_until(WAIT, || async {
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        let st: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        st["dispatch"]["log"]["entries"]["oncall"]["up"]
            .as_object()
            .is_some_and(|g| g.len() == 1)
            .then_some(st)
    })
    .await;
    let saved = saved.expect("the acknowledgement of `up` saved");
    assert!(
        saved["dispatch"]["log"]["entries"]["oncall"]["down"].is_null(),
        "{saved}"
    );

    drop(first); // kill -9
    down.set_status(200);
    let second = Poolwatch::start(&config).await;
    expect_accepted(&down, &["firing IdleTx db"]).await;
    let resent = down.requests().last().cloned().expect("request");
    assert_eq!(
        resent.header("idempotency-key"),
        Some(sent_id.as_str()),
        "the same id"
    );
    // `up` is checked against its acknowledgement and found up to date: not paged twice.
    second
        .wait_for_metric(
            "poolwatch_notification_decisions_total",
            &[
                ("receiver", "oncall"),
                ("integration", "up"),
                ("reason", "up_to_date"),
            ],
            |v| v >= 1.0,
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    expect_metric(
        &second,
        "poolwatch_notifications_delivered_total",
        &[("integration", "down")],
        1.0,
    )
    .await;
    assert_eq!(up.requests().len(), 1, "{:?}", up.requests().len());
    tx.close().await;
}
