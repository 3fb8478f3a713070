use super::*;
use crate::config::values::Secret;
use crate::notify::integrations::default_class;

const TOKEN: &str = "xoxb-S3CR3T-T0K3N";

#[test]
fn status_classes() {
    for code in [200, 201, 202, 204] {
        let status = StatusCode::from_u16(code).expect("status");
        assert_eq!(default_class(status), Class::Accepted, "{code}");
    }
    for code in [500, 502, 503, 504, 599, 429, 408] {
        let status = StatusCode::from_u16(code).expect("status");
        assert_eq!(default_class(status), Class::Retryable, "{code}");
    }
    assert_eq!(default_class(StatusCode::GONE), Class::Gone);
    for code in [400, 401, 403, 404, 405, 413, 422, 301, 302, 304] {
        let status = StatusCode::from_u16(code).expect("status");
        assert_eq!(default_class(status), Class::Permanent, "{code}");
    }
}

#[test]
fn redactor_replaces_longest_first_and_ignores_trivia() {
    let mut r = Redactor::default();
    r.add("/");
    r.add("abcd");
    r.add("abcdefgh");
    r.add("abcd");
    assert_eq!(
        r.redact("x abcdefgh y abcd /z"),
        "x <redacted> y <redacted> /z"
    );
}

/// A connection refused by a closed port: retryable, and neither the URL's token nor a header
/// secret appears in the message.
#[tokio::test]
async fn network_error_is_retryable_and_redacted() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let mut settings = IntegrationSettings::webhook(Secret::new(format!(
        "http://user:{TOKEN}@127.0.0.1:{port}/hooks/{TOKEN}?key={TOKEN}"
    )));
    settings.headers.push((
        reqwest::header::AUTHORIZATION,
        Secret::new(format!("Bearer {TOKEN}")),
    ));
    settings.timeout = Duration::from_secs(5);
    let endpoint = Endpoint::new(&settings).expect("endpoint");
    let err = endpoint
        .attempt(b"{}".to_vec(), "id")
        .await
        .expect_err("port is closed");
    let AttemptError::Retryable {
        message,
        retry_after,
    } = &err
    else {
        panic!("want retryable, got {err:?}");
    };
    assert_eq!(*retry_after, None);
    assert!(!message.is_empty());
    assert!(!message.contains(TOKEN), "{message}");
    assert!(!format!("{err:?}").contains(TOKEN));
}

#[test]
fn endpoint_rejects_what_validation_would() {
    let bad = IntegrationSettings::webhook(Secret::new(format!("/relative/{TOKEN}")));
    let err = Endpoint::new(&bad).err().expect("relative URL");
    assert!(
        err.contains("relative URL without a base") && !err.contains(TOKEN),
        "{err}"
    );
}

/// The host is part of the secret URL: an error that names it (rustls' "certificate not valid
/// for name ...", with the host as parsed, in lower case) must not carry it into a log line.
#[test]
fn the_host_is_redacted_too() {
    let url = format!("https://{TOKEN}.hooks.example/x");
    let settings = IntegrationSettings::webhook(Secret::new(url));
    let endpoint = Endpoint::new(&settings).expect("endpoint");
    let host = format!("{}.hooks.example", TOKEN.to_ascii_lowercase());
    let text = endpoint.redactor.redact(&format!(
        "invalid peer certificate: certificate not valid for name \"{host}\""
    ));
    assert!(!text.to_ascii_lowercase().contains(&host), "{text}");
}
