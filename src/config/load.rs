//! Loading a configuration file into a fully validated [`Config`]. The file is read with a size
//! cap (a FIFO, a device or a directory is refused at once), parsed once, and each section and
//! each array element is deserialised on its own ([`Document`]), so that every type error is
//! listed with its key path and position; then every semantic problem is added. Nothing
//! half-valid comes out, so a reload can swap configs atomically or keep the running one.

use super::document::{struct_fields, Document};
use super::files::{self, read_limited, MAX_CONFIG_BYTES};
use super::schema::{
    AlertingConfig, RawConfig, ReceiverConfig, RuleConfig, TargetConfig,
};
use super::target::{self, TargetSettings};
use super::values::{Problem, Problems};
use crate::http::HttpConfig;
use crate::notify::{self, ReceiverSettings};
use crate::rules::RuleSet;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// `externalURL` for payloads; `None` means derive it from the host name and bound port.
    pub external_url: Option<String>,
    /// HTTP connection limits as configured (the daemon lowers `max_connections` to fit the
    /// open-file limit).
    pub http: crate::http::Limits,
    /// `[alerting]`, as written (all fields have defaults and need no resolving).
    pub alerting: AlertingConfig,
    /// Targets, in file order.
    pub targets: Vec<TargetSettings>,
    /// Rules (built-ins merged with the file).
    pub rules: RuleSet,
    /// Receivers, with secrets resolved.
    pub receivers: Vec<ReceiverSettings>,
}

/// Reads and validates `path`: a regular file of at most [`MAX_CONFIG_BYTES`].
pub fn load(path: &Path) -> Result<Config, Vec<Problem>> {
    let bytes = read_limited(path, MAX_CONFIG_BYTES).map_err(|e| {
        vec![Problem {
            file: path.to_path_buf(),
            line_col: None,
            key: None,
            message: format!("cannot read config file: {e}"),
        }]
    })?;
    from_document(&Document::from_bytes(path, bytes).map_err(|p| vec![p])?)
}

/// Validates `src` as the content of `path`.
pub fn parse(path: &Path, src: &str) -> Result<Config, Vec<Problem>> {
    from_document(&Document::parse(path, src.to_string()).map_err(|p| vec![p])?)
}

fn from_document(doc: &Document) -> Result<Config, Vec<Problem>> {
    let mut problems = Problems::new(doc.file());
    let sections = Sections::read(doc, &mut problems);
    let config = validate(doc, sections, &mut problems);
    problems.locate_in(doc);
    match config {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(problems.into_vec()),
    }
}

/// The sections of the file, each deserialised on its own; `None` where one has problems
/// (already recorded), so that the others are still checked.
struct Sections {
    http: Option<HttpConfig>,
    alerting: Option<AlertingConfig>,
    /// One entry per `[[targets]]` element, in file order, so that indices match the file.
    targets: Vec<Option<TargetConfig>>,
    /// Rules are checked together (names, overrides of built-ins): all or nothing.
    rules: Option<Vec<RuleConfig>>,
    /// Receivers are checked together (unique names): all or nothing.
    receivers: Option<Vec<ReceiverConfig>>,
}

impl Sections {
    fn read(doc: &Document, problems: &mut Problems) -> Sections {
        doc.deny_unknown_keys("", struct_fields::<RawConfig>(), problems);
        Sections {
            http: doc.get_or_default("http", problems),
            alerting: doc.get_or_default("alerting", problems),
            targets: doc.elements("targets", problems),
            rules: doc.elements("rules", problems).into_iter().collect(),
            receivers: doc.elements("receivers", problems).into_iter().collect(),
        }
    }
}

fn validate(doc: &Document, s: Sections, problems: &mut Problems) -> Option<Config> {
    let listen = s.http.as_ref().and_then(|h| h.validate(problems));
    if let Some(a) = &s.alerting {
        check_alerting(a, problems);
    }
    let targets = check_targets(&s.targets, problems);
    // With `[alerting]` refused, its `builtin_rules` may still be fine (its problem is listed).
    let builtin = match &s.alerting {
        Some(a) => a.builtin_rules,
        None => doc
            .get("alerting.builtin_rules", &mut Problems::new(doc.file()))
            .unwrap_or(true),
    };
    let rules = s.rules.map(|r| RuleSet::build(&r, builtin, problems));
    let receivers = s
        .receivers
        .map(|r| notify::settings_from_config(&r, problems));
    let http = s.http?;
    Some(Config {
        path: doc.file().to_path_buf(),
        listen: listen?,
        external_url: http.external_url.clone(),
        http: http.limits(),
        alerting: s.alerting?,
        targets,
        rules: rules?,
        receivers: receivers?,
    })
}

fn check_alerting(a: &AlertingConfig, problems: &mut Problems) {
    if let Some(file) = &a.state_file {
        if let Err(e) = files::check_state_file(file) {
            problems.at("alerting.state_file", e);
        }
    }
    if a.repeat_interval.0.is_zero() {
        problems.at("alerting.repeat_interval", "must be greater than 0");
    }
}

/// Validates every target that deserialised, under its own index.
fn check_targets(targets: &[Option<TargetConfig>], problems: &mut Problems) -> Vec<TargetSettings> {
    if targets.is_empty() {
        problems.at(
            "targets",
            "no [[targets]]: add at least one PostgreSQL server to watch",
        );
    }
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let Some(t) = t else { continue };
        if !names.insert(t.name.as_str()) {
            problems.at(
                format!("targets[{i}].name"),
                format!("duplicate target name \"{}\"", t.name),
            );
        }
        out.extend(target::resolve(i, t, problems));
    }
    out
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// The example file documents every key; it must stay valid as the code changes.
    #[test]
    fn example_config_is_valid() {
        let src = include_str!("../../config.example.toml");
        let config = parse(Path::new("config.example.toml"), src).unwrap_or_else(|problems| {
            let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            panic!("config.example.toml is invalid:\n{}", text.join("\n"))
        });
        assert_eq!(config.targets.len(), 1);
        assert_eq!(config.targets[0].name, "local");
        assert_eq!(
            config.targets[0].endpoint,
            "poolwatch@127.0.0.1:5432/postgres"
        );
        // The receiver is commented out: a local run must not retry against nothing.
        assert!(config.receivers.is_empty());
        let names: Vec<&str> = config
            .rules
            .rules()
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        for builtin in [
            "PoolUtilizationHigh",
            "PoolNearFull",
            "PoolExhausted",
            "PoolCapacityDropped",
            "TargetSaturated",
            "TargetDown",
        ] {
            assert!(names.contains(&builtin), "{builtin} missing from {names:?}");
        }
        assert!(names.contains(&"IdleInTransactionTooLong"));
    }

    #[test]
    fn problems_are_located_and_all_reported() {
        let src = "[http]\nlisten = \"nope\"\n\n[[targets]]\nname = \"a\"\ninterval = \"10ms\"\n\n[[targets]]\nname = \"a\"\n";
        let problems = parse(Path::new("x.toml"), src).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("x.toml:2:1: http.listen")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("x.toml:6:1: targets[0].interval: must be at least 100ms")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("x.toml:9:1: targets[1].name: duplicate")),
            "{text:?}"
        );
    }

    #[test]
    fn target_labels_are_checked_like_rule_labels() {
        let src = "[[targets]]\nname = \"a\"\nlabels = { severity = \"x\", \"2x\" = \"y\", env = \"prod\" }\n";
        let problems = parse(Path::new("x.toml"), src).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text.iter().any(|t| t.starts_with("x.toml:3:")
                && t.contains("targets[0].labels.severity: `severity` is set by poolwatch")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("targets[0].labels.2x: `2x` is not a valid label name")),
            "{text:?}"
        );
    }

    #[test]
    fn syntax_and_unknown_keys_carry_positions() {
        let problems = parse(
            Path::new("x.toml"),
            "[[targets]]\nname = \"a\"\nintervall = \"5s\"\n",
        )
        .unwrap_err();
        let text = problems[0].to_string();
        assert!(text.starts_with("x.toml:3:1:"), "{text}");
        assert!(text.contains("did you mean `interval`?"), "{text}");
        let problems = parse(Path::new("x.toml"), "[[targets]\n").unwrap_err();
        assert!(
            problems[0].to_string().starts_with("x.toml:1:"),
            "{}",
            problems[0]
        );
    }
}
