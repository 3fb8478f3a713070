use crate::settings::parse;
use crate::source::target::SourceSettings;
use std::path::Path;

fn problems(src: &str) -> Vec<String> {
    match parse(Path::new("x.toml"), src) {
        Ok(_) => Vec::new(),
        Err(p) => p.iter().map(|p| p.to_string()).collect(),
    }
}

const BASE: &str = "[[targets]]\nname = \"orders\"\ntype = \"app_metrics\"\n";

#[test]
fn a_preset_target_resolves_with_its_defaults() {
    let src = format!(
        "{BASE}url = \"https://orders:8443/actuator/prometheus?token=abc\"\npreset = \"hikaricp\"\nbearer_token = \"s3cret\"\n"
    );
    let c = parse(Path::new("x.toml"), &src).expect("valid");
    let t = &c.targets[0];
    assert_eq!(
        (t.kind(), t.endpoint()),
        ("app_metrics", "https://orders:8443/actuator/prometheus")
    );
    assert_eq!(
        t.describe(),
        "orders               app_metrics every 1s, https://orders:8443/actuator/prometheus, preset hikaricp, timeout 2s"
    );
    let SourceSettings::AppMetrics(s) = &t.source else {
        panic!("{:?}", t.source);
    };
    assert_eq!(s.headers.len(), 1);
    assert_eq!(s.headers[0].1.expose(), "Bearer s3cret");
    // Neither the token nor the query shows in what is printed.
    let shown = format!("{} {:?}", t.describe(), s.headers);
    assert!(
        !shown.contains("s3cret") && !shown.contains("abc"),
        "{shown}"
    );
}

#[test]
fn a_custom_mapping_resolves() {
    let src = format!(
        "{BASE}url = \"http://app:9000/metrics\"\nmatch_labels = {{ app = \"orders\" }}\n[targets.mapping]\npool_label = \"pool\"\ncapacity = \"my_pool_max\"\nin_use = 'my_pool_conns{{state=\"busy\"}}'\ntimeouts = \"my_pool_timeouts_total\"\n"
    );
    let c = parse(Path::new("x.toml"), &src).expect("valid");
    let SourceSettings::AppMetrics(s) = &c.targets[0].source else {
        panic!("not app_metrics");
    };
    assert_eq!(s.mapping.name, "custom");
    let in_use = s.mapping.in_use.as_ref().expect("in_use");
    assert_eq!(in_use.labels, [("state".to_string(), "busy".to_string())]);
    assert_eq!(s.match_labels, [("app".to_string(), "orders".to_string())]);
}

#[test]
fn mistakes_are_located() {
    let url = "url = \"http://app:9000/metrics\"\n";
    // (extra lines, expected problem)
    let cases = [
        ("preset = \"hikaricp\"\n", "x.toml:1:1: targets[0].url: required: the application's metrics URL"),
        ("url = \"ftp://x/\"\npreset = \"hikaricp\"\n", "x.toml:4:1: targets[0].url: the scheme must be http or https"),
        ("url = \"http://u:p@x/\"\npreset = \"hikaricp\"\n", "x.toml:4:1: targets[0].url: credentials in the URL are refused: use bearer_token or headers"),
        ("url = \"not a url\"\npreset = \"hikaricp\"\n", "x.toml:4:1: targets[0].url: not a valid http(s) URL: relative URL without a base"),
        (url, "x.toml:1:1: targets[0].preset: required: one of hikaricp, go_sql, pgxpool, node_postgres, otel, otel_legacy (or a `[mapping]`)"),
        ("preset = \"hikari\"\n", "x.toml:5:1: targets[0].preset: unknown preset \"hikari\" (did you mean \"hikaricp\"?)"),
        ("preset = \"otel\"\n[targets.mapping]\ncapacity = \"x\"\nin_use = \"y\"\n", "targets[0].preset: set either `preset` or `[mapping]`, not both"),
        ("[targets.mapping]\nin_use = \"y\"\n", "targets[0].mapping.capacity: required: the series of the pool's maximum size"),
        ("[targets.mapping]\ncapacity = \"x\"\nidle = \"y\"\n", "targets[0].mapping.in_use: required: the series of connections in use"),
        ("[targets.mapping]\ncapacity = \"x{a=b}\"\nin_use = \"y\"\n", "x.toml:6:1: targets[0].mapping.capacity: \"x{a=b}\": found \"b\" where a quoted label value was expected"),
        ("[targets.mapping]\ncapcity = \"x\"\n", "targets[0].mapping.capcity: unknown field `capcity`"),
        ("preset = \"otel\"\ntimeout = \"0s\"\n", "x.toml:6:1: targets[0].timeout: must be greater than 0"),
        ("preset = \"otel\"\nmax_body_bytes = 10\n", "x.toml:6:1: targets[0].max_body_bytes: must be at least 1024"),
        ("preset = \"otel\"\nhost = \"db\"\n", "x.toml:6:1: targets[0].host: unknown field `host`"),
        ("preset = \"otel\"\nheaders = { \"bad header\" = \"x\" }\n", "targets[0].headers.bad header: \"bad header\" is not a valid HTTP header name"),
        ("preset = \"otel\"\nheaders = { Accept = \"x\" }\n", "targets[0].headers.Accept: \"Accept\" is set by poolwatch or twice"),
        ("preset = \"otel\"\nbearer_token = \"${POOLWATCH_UNSET_TOKEN_VAR}\"\n", "targets[0].bearer_token: `bearer_token`: environment variable POOLWATCH_UNSET_TOKEN_VAR is not set or empty"),
        ("preset = \"otel\"\nca_file = \"/nonexistent/ca.pem\"\n", "x.toml:6:1: targets[0].ca_file: cannot read /nonexistent/ca.pem:"),
    ];
    for (extra, want) in cases {
        let src = if extra.contains("url =") || want.contains(".url:") {
            format!("{BASE}{extra}")
        } else {
            format!("{BASE}{url}{extra}")
        };
        let got = problems(&src);
        assert!(
            got.len() == 1 && got[0].contains(want),
            "{extra}: want {want}\n got {got:?}"
        );
    }
}

/// The commented `app_metrics` example of `config.example.toml`, uncommented, is valid: with its
/// `preset`, and with its `[targets.mapping]` instead.
#[test]
fn the_example_file_documents_a_valid_target() {
    let example = include_str!("../../../config.example.toml");
    let start = example
        .find("# name = \"checkout\"")
        .expect("the app_metrics example");
    let block: Vec<&str> = example[start..]
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter(|l| l.starts_with("# ") && !l.starts_with("# Instead"))
        .map(|l| &l[2..])
        // Keys whose example reads the environment or a file of this machine.
        .filter(|l| !l.contains("${") && !l.contains("_file ="))
        .collect();
    let with_preset: Vec<&str> = block
        .iter()
        .take_while(|l| !l.starts_with("[targets.mapping]"))
        .copied()
        .collect();
    let src = format!("[[targets]]\n{}\n", with_preset.join("\n"));
    assert_eq!(problems(&src), Vec::<String>::new(), "{src}");
    let with_mapping: Vec<&str> = block
        .iter()
        .copied()
        .filter(|l| !l.starts_with("preset"))
        .collect();
    let src = format!("[[targets]]\n{}\n", with_mapping.join("\n"));
    assert_eq!(problems(&src), Vec::<String>::new(), "{src}");
}
