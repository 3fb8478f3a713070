//! Loading a configuration file into a fully validated [`Config`]: syntax and type errors with
//! their line and column, then every semantic problem at once. Nothing half-valid comes out, so a
//! reload can swap configs atomically or keep the running one.

use super::schema::{AlertingConfig, RawConfig};
use super::target::{self, TargetSettings};
use super::values::{Problem, Problems};
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
    /// `[alerting]`, as written (all fields have defaults and need no resolving).
    pub alerting: AlertingConfig,
    /// Targets, in file order.
    pub targets: Vec<TargetSettings>,
    /// Rules (built-ins merged with the file).
    pub rules: RuleSet,
    /// Receivers, with secrets resolved.
    pub receivers: Vec<ReceiverSettings>,
}

/// Reads and validates `path`.
pub fn load(path: &Path) -> Result<Config, Vec<Problem>> {
    match std::fs::read_to_string(path) {
        Ok(src) => parse(path, &src),
        Err(e) => Err(vec![Problem {
            file: path.to_path_buf(),
            line_col: None,
            key: None,
            message: format!("cannot read config file: {e}"),
        }]),
    }
}

/// Validates `src` as the content of `path`.
pub fn parse(path: &Path, src: &str) -> Result<Config, Vec<Problem>> {
    let mut problems = Problems::new(path);
    let raw: RawConfig = match toml::from_str(src) {
        Ok(raw) => raw,
        Err(e) => {
            let pos = e.span().map(|s| super::locate::line_col(src, s.start));
            problems.located(pos, with_suggestion(e.message()));
            return Err(problems.into_vec());
        }
    };
    let config = validate(path, &raw, &mut problems);
    problems.locate_in(src);
    match config {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(problems.into_vec()),
    }
}

fn validate(path: &Path, raw: &RawConfig, problems: &mut Problems) -> Option<Config> {
    let listen = match raw.http.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            problems.at(
                "http.listen",
                format!(
                    "\"{}\" is not an address like \"0.0.0.0:9671\"",
                    raw.http.listen
                ),
            );
            None
        }
    };
    if let Some(url) = &raw.http.external_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.at("http.external_url", "must start with http:// or https://");
        }
    }
    let a = &raw.alerting;
    if let Some(file) = &a.state_file {
        let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir.filter(|d| !d.is_dir()) {
            problems.at(
                "alerting.state_file",
                format!("directory {} does not exist", dir.display()),
            );
        }
    }
    if a.repeat_interval.0.is_zero() {
        problems.at("alerting.repeat_interval", "must be greater than 0");
    }
    if raw.targets.is_empty() {
        problems.at(
            "targets",
            "no [[targets]]: add at least one PostgreSQL server to watch",
        );
    }
    let mut names = HashSet::new();
    let mut targets = Vec::new();
    for (i, t) in raw.targets.iter().enumerate() {
        if !names.insert(t.name.as_str()) {
            problems.at(
                format!("targets[{i}].name"),
                format!("duplicate target name \"{}\"", t.name),
            );
        }
        if let Some(s) = target::resolve(i, t, problems) {
            targets.push(s);
        }
    }
    let rules = RuleSet::build(&raw.rules, a.builtin_rules, problems);
    let receivers = notify::settings_from_config(&raw.receivers, problems);
    Some(Config {
        path: path.to_path_buf(),
        listen: listen?,
        external_url: raw.http.external_url.clone(),
        alerting: raw.alerting.clone(),
        targets,
        rules,
        receivers,
    })
}

/// Adds "did you mean" to serde's unknown-field and unknown-variant messages.
fn with_suggestion(message: &str) -> String {
    let Some(rest) = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))
    else {
        return message.to_string();
    };
    let Some((got, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    match crate::rules::did_you_mean(got, expected.split('`').skip(1).step_by(2)) {
        Some(cand) => format!("{message} (did you mean `{cand}`?)"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let m = "unknown field `intervall`, expected one of `name`, `url`, `interval`";
        assert!(with_suggestion(m).ends_with("(did you mean `interval`?)"));
        let m = "unknown field `zzz`, expected one of `name`, `url`";
        assert_eq!(with_suggestion(m), m);
        assert_eq!(with_suggestion("other"), "other");
    }
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
