use super::*;
use crate::config::values::Problem;
use crate::notify::Kind;

const TOKEN: &str = "T0KEN-s3cr3t";

fn receiver(toml_text: &str) -> ReceiverConfig {
    match toml::from_str(toml_text) {
        Ok(cfg) => cfg,
        Err(e) => panic!("test TOML does not parse: {e}"),
    }
}

/// A receiver named `a` with `receiver_keys`, and one webhook integration with
/// `integration_keys`.
fn hook(receiver_keys: &str, integration_keys: &str) -> String {
    format!(
        "name = \"a\"\n{receiver_keys}\n[[integrations]]\ntype = \"webhook\"\n{integration_keys}\n"
    )
}

/// Key path of the first integration's `key`.
const I0: &str = "receivers[0].integrations[0]";

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
        "name = \"ops\"\nseverities = [\"critical\", \"critical\"]\n\
         [[integrations]]\ntype = \"webhook\"\nurl = \"https://hooks.example.com/x/{TOKEN}\"\n\
         headers = {{ Authorization = \"Bearer {TOKEN}\" }}\n\
         [[integrations]]\ntype = \"webhook\"\nurl = \"http://h/\"\ntimeout = \"3s\"\n\
         [[integrations]]\ntype = \"webhook\"\nname = \"backup\"\nurl = \"http://h/\"\n"
    );
    let (settings, problems) = validate(&[receiver(&text)]);
    assert!(problems.is_empty(), "{problems:?}");
    let s = &settings[0];
    assert_eq!(s.name, "ops");
    assert_eq!(s.integration_names(), ["webhook", "webhook-2", "backup"]);
    let i = &s.integrations[0];
    assert_eq!(i.kind, Kind::Webhook);
    assert_eq!(
        i.url.expose(),
        format!("https://hooks.example.com/x/{TOKEN}")
    );
    assert_eq!(i.headers.len(), 1);
    assert_eq!(i.headers[0].0.as_str(), "authorization");
    assert_eq!(i.headers[0].1.expose(), format!("Bearer {TOKEN}"));
    assert_eq!(i.timeout, Duration::from_secs(10));
    assert_eq!(s.integrations[1].timeout, Duration::from_secs(3));
    assert_eq!(s.severities, vec![Severity::Critical]);
    assert_eq!(s.queue_capacity, 1000);
    assert!(s.send_resolved);
    // Debug output of the settings never shows the secrets.
    assert!(!format!("{s:?}").contains(TOKEN));
    assert_eq!(s.only(1).integration_names(), ["webhook-2"]);
}

#[test]
fn keys_that_moved_to_integrations_are_refused_saying_where_they_went() {
    for key in ["url", "url_file", "headers", "timeout"] {
        let value = match key {
            "headers" => format!("{{ A = \"{TOKEN}\" }}"),
            _ => format!("\"{TOKEN}\""),
        };
        let text = format!("name = \"a\"\n{key} = {value}\n[[integrations]]\ntype = \"webhook\"\nurl = \"http://h/\"\n");
        assert_one_problem(
            &text,
            &format!("receivers[0].{key}"),
            "moved from [[receivers]] into [[receivers.integrations]]",
        );
    }
}

#[test]
fn a_receiver_needs_an_integration_with_unique_names() {
    assert_one_problem("name = \"a\"", "receivers[0].integrations", "required");
    let twice = hook("", "name = \"x\"\nurl = \"http://h/\"\n[[integrations]]\ntype = \"webhook\"\nname = \"x\"\nurl = \"http://h/\"");
    assert_one_problem(
        &twice,
        "receivers[0].integrations[1].name",
        "duplicate integration name \"x\"",
    );
    // A default name taken by an explicit one.
    let taken = hook("", "name = \"webhook-2\"\nurl = \"http://h/\"\n[[integrations]]\ntype = \"webhook\"\nurl = \"http://h/\"");
    assert_one_problem(&taken, "receivers[0].integrations[1].name", "\"webhook-2\"");
    let clash = hook("", "url = \"http://h/\"\n[[integrations]]\ntype = \"webhook\"\nname = \"webhook\"\nurl = \"http://h/\"");
    assert_one_problem(&clash, "receivers[0].integrations[1].name", "duplicate");
}

#[test]
fn url_from_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("url");
    std::fs::write(&path, format!("http://127.0.0.1:9/{TOKEN}\n")).expect("write");
    let text = hook("", &format!("url_file = \"{}\"", path.display()));
    let (settings, problems) = validate(&[receiver(&text)]);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        settings[0].integrations[0].url.expose(),
        format!("http://127.0.0.1:9/{TOKEN}")
    );

    std::fs::write(&path, format!("not a url {TOKEN}\n")).expect("write");
    assert_one_problem(&text, &format!("{I0}.url_file"), "not a valid http(s) URL");
    let missing = hook(
        "",
        &format!("url_file = \"{}\"", dir.path().join("nope").display()),
    );
    assert_one_problem(
        &missing,
        &format!("{I0}.url_file"),
        "cannot read secret file",
    );
}

#[test]
fn names_must_be_unique_and_non_empty() {
    assert_one_problem(
        "name = \" \"\n[[integrations]]\ntype = \"webhook\"\nurl = \"http://h/\"",
        "receivers[0].name",
        "must not be empty",
    );
    let a = receiver(&hook("", "url = \"http://h/\""));
    let (settings, problems) = validate(&[a.clone(), a]);
    assert_eq!(settings.len(), 1);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key.as_deref(), Some("receivers[1].name"));
    assert!(problems[0].message.contains("duplicate"));
}

#[test]
fn exactly_one_of_url_and_url_file() {
    assert_one_problem(&hook("", ""), &format!("{I0}.url"), "required");
    assert_one_problem(
        &hook("", "url = \"http://h/\"\nurl_file = \"/tmp/x\""),
        &format!("{I0}.url"),
        "not both",
    );
}

#[test]
fn url_secret_must_resolve() {
    assert_one_problem(
        &hook("", "url = \"${POOLWATCH_TEST_CERTAINLY_UNSET_VAR}\""),
        &format!("{I0}.url"),
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
        let text = hook("", &format!("url = \"{url}\""));
        assert_one_problem(&text, &format!("{I0}.url"), needle);
    }
}

#[test]
fn headers_must_be_valid_and_not_reserved() {
    let with = |headers: &str| hook("", &format!("url = \"http://h/\"\nheaders = {headers}"));
    assert_one_problem(
        &with("{ \"X Bad\" = \"v\" }"),
        &format!("{I0}.headers.X Bad"),
        "not a valid HTTP header name",
    );
    assert_one_problem(
        &with(&format!("{{ X-Token = \"{TOKEN}\\n\" }}")),
        &format!("{I0}.headers.X-Token"),
        "not a valid HTTP header value",
    );
    assert_one_problem(
        &with("{ Content-Type = \"text/plain\" }"),
        &format!("{I0}.headers.Content-Type"),
        "set by poolwatch",
    );
    assert_one_problem(
        &with("{ X-A = \"1\", x-a = \"2\" }"),
        &format!("{I0}.headers.x-a"),
        "set twice",
    );
    assert_one_problem(
        &with("{ X-A = \"${POOLWATCH_TEST_NO_SUCH_VAR}\" }"),
        &format!("{I0}.headers.X-A"),
        "POOLWATCH_TEST_NO_SUCH_VAR",
    );
}

#[test]
fn severities_and_capacity() {
    assert_one_problem(
        &hook("severities = []", "url = \"http://h/\""),
        "receivers[0].severities",
        "must not be empty",
    );
    assert_one_problem(
        &hook("queue_capacity = 0", "url = \"http://h/\""),
        "receivers[0].queue_capacity",
        "at least 1",
    );
}

#[test]
fn durations_must_be_positive_and_ordered() {
    for key in ["max_retry_age", "max_backoff"] {
        let text = hook(
            &format!("{key} = \"0s\"\ninitial_backoff = \"0s\""),
            "url = \"http://h/\"",
        );
        let lines = problems_of(&text);
        assert!(
            lines.contains(&format!("receivers[0].{key}: must be greater than 0")),
            "{lines:?}"
        );
    }
    assert_one_problem(
        &hook("", "url = \"http://h/\"\ntimeout = \"0s\""),
        &format!("{I0}.timeout"),
        "greater than 0",
    );
    assert_one_problem(
        &hook("initial_backoff = \"0s\"", "url = \"http://h/\""),
        "receivers[0].initial_backoff",
        "greater than 0",
    );
    assert_one_problem(
        &hook(
            "initial_backoff = \"1m\"\nmax_backoff = \"10s\"",
            "url = \"http://h/\"",
        ),
        "receivers[0].initial_backoff",
        "larger than max_backoff (10s)",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = "name = \"\"\nqueue_capacity = 0\nseverities = []\n\
                [[integrations]]\ntype = \"webhook\"\nurl = \"nope\"\ntimeout = \"0s\"";
    assert_eq!(problems_of(text).len(), 5);
}

#[test]
fn signing_secrets_are_read_checked_and_never_quoted() {
    let whsec = "whsec_cG9vbHdhdGNoLWtleQ==";
    let text = hook(
        "",
        &format!("url = \"http://h/\"\nsigning_secret = \"{whsec}\"\ngithub_secret = \"{TOKEN}\""),
    );
    let (settings, problems) = validate(&[receiver(&text)]);
    assert!(problems.is_empty(), "{problems:?}");
    let signing = &settings[0].integrations[0].signing;
    assert_eq!(
        signing.standard_webhooks,
        Some(crate::notify::integrations::signing::Key::new(
            *b"poolwatch-key"
        ))
    );
    assert!(signing.github.is_some());
    assert!(!format!("{signing:?}").contains(TOKEN));
    // Not `whsec_...`: refused without quoting it.
    let bad = hook(
        "",
        &format!("url = \"http://h/\"\nsigning_secret = \"{TOKEN}\""),
    );
    assert_one_problem(
        &bad,
        &format!("{I0}.signing_secret"),
        "starts with `whsec_`",
    );
    let both = hook(
        "",
        &format!("url = \"http://h/\"\ngithub_secret = \"{TOKEN}\"\ngithub_secret_file = \"/x\""),
    );
    assert_one_problem(&both, &format!("{I0}.github_secret"), "not both");
    let missing = hook(
        "",
        "url = \"http://h/\"\nsigning_secret_file = \"/nonexistent/whsec\"",
    );
    assert_one_problem(
        &missing,
        &format!("{I0}.signing_secret_file"),
        "cannot read secret file",
    );
    // Signature headers are poolwatch's to set.
    for name in ["webhook-signature", "X-Hub-Signature-256", "webhook-id"] {
        let text = hook(
            "",
            &format!("url = \"http://h/\"\nheaders = {{ {name} = \"x\" }}"),
        );
        assert_one_problem(&text, &format!("{I0}.headers.{name}"), "set by poolwatch");
    }
}

#[test]
fn slack_and_pagerduty_take_their_own_keys_only() {
    let integration = |keys: &str| format!("name = \"a\"\n[[integrations]]\n{keys}\n");
    let text = integration(&format!("type = \"pagerduty\"\nrouting_key = \"{TOKEN}\""));
    let (settings, problems) = validate(&[receiver(&text)]);
    assert!(problems.is_empty(), "{problems:?}");
    let pd = &settings[0].integrations[0];
    assert_eq!(pd.name, "pagerduty");
    assert_eq!(pd.url.expose(), "https://events.pagerduty.com/v2/enqueue");
    assert!(matches!(&pd.kind, Kind::PagerDuty { routing_key } if routing_key.expose() == TOKEN));
    assert!(!format!("{pd:?}").contains(TOKEN));
    assert_one_problem(
        &integration("type = \"pagerduty\""),
        &format!("{I0}.routing_key"),
        "required for type = \"pagerduty\"",
    );
    assert_one_problem(
        &integration(&format!(
            "type = \"webhook\"\nurl = \"http://h/\"\nrouting_key = \"{TOKEN}\""
        )),
        &format!("{I0}.routing_key"),
        "only for type = \"pagerduty\"",
    );
    assert_one_problem(
        &integration("type = \"slack\""),
        &format!("{I0}.url"),
        "required",
    );
    assert_one_problem(
        &integration("type = \"slack\"\nurl = \"http://h/\"\nsigning_secret = \"whsec_eA==\""),
        &format!("{I0}.signing_secret"),
        "only for type = \"webhook\"",
    );
}
