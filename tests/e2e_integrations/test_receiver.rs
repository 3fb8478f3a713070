//! `poolwatch test-receiver NAME --config FILE` against real local receivers: a sample firing
//! and resolved notification through every integration, what each answered printed, exit 0
//! when all accepted, 1 when one refused, 2 for an unknown receiver or an invalid file; no
//! secret printed.

use super::receiver_with;
use crate::common::poolwatch::run_cli;
use crate::common::{ConfigFile, Receiver};

const TOKEN: &str = "t3st-T0KEN-77";
const ROUTING_KEY: &str = "R0UTING-test-receiver-88";

/// Runs `poolwatch test-receiver NAME --config FILE`: (exit code, stdout, stderr).
async fn test_receiver(name: &str, file: &ConfigFile) -> (Option<i32>, String, String) {
    let path = file.path().display().to_string();
    let out = run_cli(&["test-receiver", name, "--config", &path]).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn test_receiver_sends_a_marked_firing_and_resolved_through_every_integration() {
    let hook = Receiver::start().await;
    let pager = Receiver::start().await;
    pager.set_status(202);
    let integrations = [
        format!(
            "type = \"webhook\"\nurl = \"{}\"",
            hook.url(&format!("/hook/{TOKEN}"))
        ),
        format!(
            "type = \"pagerduty\"\nurl = \"{}\"\nrouting_key = \"{ROUTING_KEY}\"",
            pager.url("/v2/enqueue")
        ),
    ];
    let config = format!(
        "[[targets]]\nname = \"db\"\nhost = \"127.0.0.1\"\n\n{}",
        receiver_with("oncall", &integrations)
    );
    let file = ConfigFile::new(&config);

    let (code, stdout, stderr) = test_receiver("oncall", &file).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    for want in [
        "oncall/webhook (webhook): firing: accepted: HTTP 200 OK",
        "oncall/webhook (webhook): resolved: accepted: HTTP 200 OK",
        "oncall/pagerduty (pagerduty): firing: accepted: HTTP 202 Accepted",
        "oncall/pagerduty (pagerduty): resolved: accepted: HTTP 202 Accepted",
    ] {
        assert!(stdout.contains(want), "{want}\n{stdout}");
    }
    let bodies: Vec<serde_json::Value> =
        hook.requests().into_iter().filter_map(|r| r.json).collect();
    let seen: Vec<String> = bodies
        .iter()
        .map(|b| format!("{} {}", b["status"], b["alerts"][0]["labels"]["alertname"]))
        .collect();
    assert_eq!(
        seen,
        [
            "\"firing\" \"PoolwatchTestNotification\"",
            "\"resolved\" \"PoolwatchTestNotification\""
        ]
    );
    let events: Vec<serde_json::Value> = pager
        .requests()
        .into_iter()
        .filter_map(|r| r.json)
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event_action"], "trigger");
    assert_eq!(events[1]["event_action"], "resolve");
    assert_eq!(events[0]["dedup_key"], events[1]["dedup_key"]);

    // One integration refusing: exit 1, its answer printed, no secret.
    pager.set_status(400);
    let (code, stdout, stderr) = test_receiver("oncall", &file).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("oncall/pagerduty (pagerduty): firing: failed: HTTP 400 Bad Request"),
        "{stdout}"
    );
    assert!(
        stdout.contains("oncall/webhook (webhook): firing: accepted"),
        "{stdout}"
    );
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains(TOKEN) && !text.contains(ROUTING_KEY),
            "{text}"
        );
    }

    // An unknown receiver and an invalid file: exit 2.
    let (code, _, stderr) = test_receiver("nobody", &file).await;
    assert_eq!(code, Some(2));
    assert!(stderr.contains("unknown receiver \"nobody\""), "{stderr}");
    assert!(stderr.contains("receivers are oncall"), "{stderr}");
    let invalid = ConfigFile::new(
        "[[targets]]\nname = \"db\"\n[[receivers]]\nname = \"oncall\"\nurl = \"http://h/\"\n",
    );
    let (code, _, stderr) = test_receiver("oncall", &invalid).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("receivers[0].url"), "{stderr}");
}
