use super::*;
use crate::config::values::Problem;

const TOKEN: &str = "T0KEN-s3cr3t";

fn receiver(toml_text: &str) -> ReceiverConfig {
    match toml::from_str(toml_text) {
        Ok(cfg) => cfg,
        Err(e) => panic!("test TOML does not parse: {e}"),
    }
}

fn validate(cfgs: &[ReceiverConfig]) -> (Vec<ReceiverSettings>, Vec<Problem>) {
    let mut problems = Problems::new("poolwatch.toml");
    let settings = settings_from_config(cfgs, &mut problems);
    (settings, problems.into_vec())
}

/// Validates one receiver and returns its problems as `key: message` lines, checking on the
/// way that no message quotes the token.
fn problems_of(toml_text: &str) -> Vec<String> {
    let (settings, problems) = validate(&[receiver(toml_text)]);
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.key.as_deref().unwrap_or("?"), p.message))
        .collect();
    for line in &lines {
        assert!(!line.contains(TOKEN), "secret leaked into: {line}");
    }
    assert_eq!(settings.is_empty(), !lines.is_empty(), "{lines:?}");
    lines
}

fn assert_one_problem(toml_text: &str, key: &str, needle: &str) {
    let lines = problems_of(toml_text);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("{key}: ")) && lines[0].contains(needle),
        "want {key}: ...{needle}..., got {lines:?}"
    );
}

#[test]
fn valid_receiver_is_resolved_with_defaults() {
    let text = format!(
        "name = \"ops\"\nurl = \"https://hooks.example.com/x/{TOKEN}\"\n\
         headers = {{ Authorization = \"Bearer {TOKEN}\" }}\nseverities = [\"critical\", \"critical\"]"
    );
    let (settings, problems) = validate(&[receiver(&text)]);
    assert!(problems.is_empty(), "{problems:?}");
    let s = &settings[0];
    assert_eq!(s.name, "ops");
    assert_eq!(
        s.url.expose(),
        format!("https://hooks.example.com/x/{TOKEN}")
    );
    assert_eq!(s.headers.len(), 1);
    assert_eq!(s.headers[0].0.as_str(), "authorization");
    assert_eq!(s.headers[0].1.expose(), format!("Bearer {TOKEN}"));
    assert_eq!(s.severities, vec![Severity::Critical]);
    assert_eq!(s.timeout, Duration::from_secs(10));
    assert_eq!(s.queue_capacity, 1000);
    assert!(s.send_resolved);
    // Debug output of the settings never shows the secrets.
    assert!(!format!("{s:?}").contains(TOKEN));
}

#[test]
fn url_from_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("url");
    std::fs::write(&path, format!("http://127.0.0.1:9/{TOKEN}\n")).expect("write");
    let text = format!("name = \"a\"\nurl_file = \"{}\"", path.display());
    let (settings, problems) = validate(&[receiver(&text)]);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        settings[0].url.expose(),
        format!("http://127.0.0.1:9/{TOKEN}")
    );

    std::fs::write(&path, format!("not a url {TOKEN}\n")).expect("write");
    assert_one_problem(&text, "receivers[0].url_file", "not a valid http(s) URL");
    let missing = format!(
        "name = \"a\"\nurl_file = \"{}\"",
        dir.path().join("nope").display()
    );
    assert_one_problem(&missing, "receivers[0].url_file", "cannot read secret file");
}

#[test]
fn names_must_be_unique_and_non_empty() {
    assert_one_problem(
        "name = \" \"\nurl = \"http://h/\"",
        "receivers[0].name",
        "must not be empty",
    );
    let a = receiver("name = \"a\"\nurl = \"http://h/\"");
    let (settings, problems) = validate(&[a.clone(), a]);
    assert_eq!(settings.len(), 1);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key.as_deref(), Some("receivers[1].name"));
    assert!(problems[0].message.contains("duplicate"));
}

#[test]
fn exactly_one_of_url_and_url_file() {
    assert_one_problem("name = \"a\"", "receivers[0].url", "required");
    assert_one_problem(
        "name = \"a\"\nurl = \"http://h/\"\nurl_file = \"/tmp/x\"",
        "receivers[0].url",
        "not both",
    );
}

#[test]
fn url_secret_must_resolve() {
    assert_one_problem(
        "name = \"a\"\nurl = \"${POOLWATCH_TEST_CERTAINLY_UNSET_VAR}\"",
        "receivers[0].url",
        "POOLWATCH_TEST_CERTAINLY_UNSET_VAR is not set",
    );
}

#[test]
fn url_must_be_absolute_http_with_host_and_is_never_quoted() {
    let cases = [
        (format!("/hooks/{TOKEN}"), "relative URL without a base"),
        (
            format!("ftp://files.example.com/{TOKEN}"),
            "not http or https",
        ),
        (format!("{TOKEN}:opaque"), "not http or https"),
        ("http://".to_string(), "empty host"),
        (format!("http://[::1/{TOKEN}"), "invalid IPv6"),
    ];
    for (url, needle) in cases {
        let text = format!("name = \"a\"\nurl = \"{url}\"");
        assert_one_problem(&text, "receivers[0].url", needle);
    }
}

#[test]
fn headers_must_be_valid_and_not_reserved() {
    let bad_name = "name = \"a\"\nurl = \"http://h/\"\nheaders = { \"X Bad\" = \"v\" }";
    assert_one_problem(
        bad_name,
        "receivers[0].headers.X Bad",
        "not a valid HTTP header name",
    );
    let bad_value =
        format!("name = \"a\"\nurl = \"http://h/\"\nheaders = {{ X-Token = \"{TOKEN}\\n\" }}");
    assert_one_problem(
        &bad_value,
        "receivers[0].headers.X-Token",
        "not a valid HTTP header value",
    );
    let reserved = "name = \"a\"\nurl = \"http://h/\"\nheaders = { Content-Type = \"text/plain\" }";
    assert_one_problem(
        reserved,
        "receivers[0].headers.Content-Type",
        "set by poolwatch",
    );
    let twice = "name = \"a\"\nurl = \"http://h/\"\nheaders = { X-A = \"1\", x-a = \"2\" }";
    assert_one_problem(twice, "receivers[0].headers.x-a", "set twice");
    let unset =
        "name = \"a\"\nurl = \"http://h/\"\nheaders = { X-A = \"${POOLWATCH_TEST_NO_SUCH_VAR}\" }";
    assert_one_problem(
        unset,
        "receivers[0].headers.X-A",
        "POOLWATCH_TEST_NO_SUCH_VAR",
    );
}

#[test]
fn severities_and_capacity() {
    let base = "name = \"a\"\nurl = \"http://h/\"\n";
    assert_one_problem(
        &format!("{base}severities = []"),
        "receivers[0].severities",
        "must not be empty",
    );
    assert_one_problem(
        &format!("{base}queue_capacity = 0"),
        "receivers[0].queue_capacity",
        "at least 1",
    );
}

#[test]
fn durations_must_be_positive_and_ordered() {
    let base = "name = \"a\"\nurl = \"http://h/\"\n";
    for key in ["timeout", "max_retry_age", "max_backoff"] {
        let text = format!("{base}{key} = \"0s\"\ninitial_backoff = \"0s\"");
        let lines = problems_of(&text);
        assert!(
            lines.contains(&format!("receivers[0].{key}: must be greater than 0")),
            "{lines:?}"
        );
    }
    assert_one_problem(
        &format!("{base}initial_backoff = \"0s\""),
        "receivers[0].initial_backoff",
        "greater than 0",
    );
    assert_one_problem(
        &format!("{base}initial_backoff = \"1m\"\nmax_backoff = \"10s\""),
        "receivers[0].initial_backoff",
        "larger than max_backoff (10s)",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = "name = \"\"\nurl = \"nope\"\nqueue_capacity = 0\nseverities = []\ntimeout = \"0s\"";
    assert_eq!(problems_of(text).len(), 5);
}
