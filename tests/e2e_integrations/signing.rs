//! Signed webhooks: every request of a firing and a resolved notification verifies with the
//! Standard Webhooks reference library and with Python's hmac for `X-Hub-Signature-256`; the
//! same headers on an altered body do not; the secrets are never logged.

use super::verifier::Verifier;
use super::{cluster, receiver_with, watch};
use serde_json::Value;

/// `whsec_` + base64 of "poolwatch-e2e-signing-key".
const WHSEC: &str = "whsec_cG9vbHdhdGNoLWUyZS1zaWduaW5nLWtleQ==";
const GITHUB: &str = "gh-e2e-S3CR3T-4242";

fn brief(r: &Value) -> String {
    let body = &r["body"];
    format!(
        "{} {}",
        body["status"].as_str().unwrap_or("?"),
        body["alerts"][0]["labels"]["alertname"]
            .as_str()
            .unwrap_or("?")
    )
}

#[tokio::test]
async fn signed_webhooks_verify_with_the_reference_implementations() {
    let pg = cluster().await;
    let verifier = Verifier::start(WHSEC, GITHUB).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let github_file = dir.path().join("github-secret");
    std::fs::write(&github_file, format!("{GITHUB}\n")).expect("write");
    let hook = format!(
        "type = \"webhook\"\nurl = \"{}\"\nsigning_secret = \"{WHSEC}\"\ngithub_secret_file = \"{}\"",
        verifier.url("/hook"),
        github_file.display()
    );
    let pw = watch(&pg, &receiver_with("signed", &[hook])).await;
    let tx = pg.open("postgres", "postgres").await.expect("connect");
    tx.client.batch_execute("BEGIN").await.expect("BEGIN");
    let got = verifier.wait_for(1).await;
    tx.client.batch_execute("COMMIT").await.expect("COMMIT");
    let got = verifier.wait_for(got.len() + 1).await;

    let briefs: Vec<String> = got.iter().map(brief).collect();
    assert!(briefs.contains(&"firing IdleTx".to_string()), "{briefs:?}");
    assert_eq!(briefs.last().map(String::as_str), Some("resolved IdleTx"));
    for r in &got {
        assert_eq!(r["standard"], "ok", "Standard Webhooks: {r}");
        assert_eq!(r["github"], "ok", "X-Hub-Signature-256: {r}");
        let headers = &r["headers"];
        assert_eq!(headers["webhook-id"], headers["idempotency-key"], "{r}");
        assert_eq!(r["body"]["version"], "4");
    }

    // The verifier is not a rubber stamp: the same headers on another body fail both checks.
    let first = &got[0];
    let altered = serde_json::to_vec(&serde_json::json!({"status": "resolved"})).expect("json");
    assert_eq!(verifier.replay(&first["headers"], &altered).await, 401);
    let replayed = verifier.results().await;
    let last = replayed.last().expect("the replay");
    assert_ne!(last["standard"], "ok", "{last}");
    assert_ne!(last["github"], "ok", "{last}");

    let logs = pw.logs();
    for secret in [WHSEC, &WHSEC["whsec_".len()..], GITHUB] {
        assert!(!logs.contains(secret), "secret logged:\n{logs}");
    }
}
