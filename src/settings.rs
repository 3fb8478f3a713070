//! The whole configuration: the file's top-level sections, each deserialized on its own and
//! validated by the part of the program that owns it (`[http]` by [`crate::http`], targets by
//! their sources, `[[rules]]` by [`crate::rules`], `[[receivers]]` by [`crate::notify`],
//! `[route]` by [`crate::dispatch`], `[alerting]` here), into one [`Config`]. Every problem of the file is listed at once, with
//! its location; nothing half-valid comes out, so a reload can swap configs atomically or keep
//! the running one. Reading and locating is [`crate::config`]'s.

use crate::config::document::{struct_fields, Document};
use crate::config::files;
use crate::config::values::{HumanDuration, Problem, Problems};
use crate::dispatch::config::RouteConfig;
use crate::dispatch::inhibit::{InhibitConfig, InhibitRule};
use crate::dispatch::RouteTree;
use crate::http::HttpConfig;
use crate::notify::{self, ReceiverConfig, ReceiverSettings};
use crate::rules::config::RuleConfig;
use crate::rules::RuleSet;
use crate::source::target::{self, TargetSettings};
use serde::Deserialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// The HTTP endpoint (`/metrics`, `/healthz`, `/readyz`, `/api/v1/alerts`).
    #[serde(default)]
    pub http: crate::http::HttpConfig,
    /// Alerting behaviour shared by all rules and receivers.
    #[serde(default)]
    pub alerting: AlertingConfig,
    /// How much of each pool's past is kept.
    #[serde(default)]
    pub history: HistoryConfig,
    /// Targets to watch, as written: each is validated by its source
    /// ([`crate::source::target::resolve`]), which knows its keys.
    #[serde(default)]
    pub targets: Vec<toml::Table>,
    /// Threshold rules; entries named like a built-in rule override or disable it.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// Webhook receivers that get firing and resolved notifications.
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    /// Which server each application (or PgBouncer) draws on ([`crate::link`]).
    #[serde(default)]
    pub links: Vec<crate::link::LinkConfig>,
    /// The routing tree: which receiver gets which alerts, grouped how, sent when. Default: every
    /// receiver gets every alert, one per notification, at once.
    #[serde(default)]
    pub route: Option<RouteConfig>,
    /// Inhibition rules: firing alerts that mute others (Alertmanager's keys).
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitConfig>,
}

/// `[history]`: each pool's recent past (in use and capacity, folded into slots of time), kept
/// in memory for rules that need a trend and for people who want to see one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// How far back the history goes. Default `"15m"`, between `"1m"` and `"24h"`; it is kept
    /// in 90 slots of a ninetieth of the window, whatever the poll interval (about 8 KB per
    /// pool).
    #[serde(default = "default_history_window")]
    pub window: HumanDuration,
}

fn default_history_window() -> HumanDuration {
    HumanDuration(crate::store::DEFAULT_WINDOW)
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            window: default_history_window(),
        }
    }
}

/// `[alerting]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    /// Load the built-in rules (see README "Rules and their defaults"). Default `true`.
    #[serde(default = "default_true")]
    pub builtin_rules: bool,
    /// While an alert keeps firing, notify again this often: the root route's default
    /// `repeat_interval`. Default `"4h"` (as Alertmanager).
    #[serde(default = "default_repeat_interval")]
    pub repeat_interval: HumanDuration,
    /// On SIGTERM/SIGINT, how long queued notifications may take to flush before exit.
    /// Default `"10s"`.
    #[serde(default = "default_flush_timeout")]
    pub shutdown_flush_timeout: HumanDuration,
    /// Where alert state is saved so that a restart neither forgets a firing alert nor pages
    /// again for it. Default: none (state lives in memory only).
    #[serde(default)]
    pub state_file: Option<PathBuf>,
}

fn default_true() -> bool {
    true
}
fn default_repeat_interval() -> HumanDuration {
    HumanDuration::secs(4 * 3600)
}
fn default_flush_timeout() -> HumanDuration {
    HumanDuration::secs(10)
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            builtin_rules: true,
            repeat_interval: default_repeat_interval(),
            shutdown_flush_timeout: default_flush_timeout(),
            state_file: None,
        }
    }
}

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
    /// `[history]`, as written.
    pub history: HistoryConfig,
    /// Targets, in file order.
    pub targets: Vec<TargetSettings>,
    /// Rules (built-ins merged with the file).
    pub rules: RuleSet,
    /// Receivers, with secrets resolved.
    pub receivers: Vec<ReceiverSettings>,
    /// Links from applications and PgBouncers to the servers they draw on.
    pub links: Vec<crate::link::Link>,
    /// The routing tree (`[route]`, or the implicit one).
    pub routes: RouteTree,
    /// Inhibition rules (the built-in one first with `builtin_rules`).
    pub inhibit_rules: Vec<InhibitRule>,
}

/// Reads and validates `path`: a regular file of at most
/// [`crate::config::files::MAX_CONFIG_BYTES`].
pub fn load(path: &Path) -> Result<Config, Vec<Problem>> {
    from_document(&crate::config::read(path)?)
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
    history: Option<HistoryConfig>,
    /// Every `[[targets]]` element that is a table, by index (each is validated by its source).
    targets: Vec<usize>,
    /// Rules are checked together (names, overrides of built-ins): all or nothing.
    rules: Option<Vec<RuleConfig>>,
    /// Receivers are checked together (unique names): all or nothing.
    receivers: Option<Vec<ReceiverConfig>>,
    /// Each link on its own, by index (checked against the targets).
    links: Vec<Option<crate::link::LinkConfig>>,
    /// `[route]`, if written; the outer `None` when it has problems.
    route: Option<Option<RouteConfig>>,
    /// `[[inhibit_rules]]`, checked together.
    inhibit_rules: Option<Vec<InhibitConfig>>,
}

impl Sections {
    fn read(doc: &Document, problems: &mut Problems) -> Sections {
        doc.deny_unknown_keys("", struct_fields::<RawConfig>(), problems);
        Sections {
            http: doc.get_or_default("http", problems),
            alerting: doc.get_or_default("alerting", problems),
            history: doc.get_or_default("history", problems),
            targets: doc
                .elements::<toml::Table>("targets", problems)
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.as_ref().map(|_| i))
                .collect(),
            rules: doc.elements("rules", problems).into_iter().collect(),
            receivers: doc.elements("receivers", problems).into_iter().collect(),
            links: doc.elements("links", problems),
            route: doc.get_or_default("route", problems),
            inhibit_rules: doc
                .elements("inhibit_rules", problems)
                .into_iter()
                .collect(),
        }
    }
}

fn validate(doc: &Document, s: Sections, problems: &mut Problems) -> Option<Config> {
    let listen = s.http.as_ref().and_then(|h| h.validate(problems));
    if let Some(a) = &s.alerting {
        check_alerting(a, problems);
    }
    let targets = check_targets(doc, &s.targets, problems);
    let refs: Vec<crate::link::config::TargetRef> = targets
        .iter()
        .map(|t| crate::link::config::TargetRef {
            name: &t.name,
            kind: t.kind(),
        })
        .collect();
    let links = crate::link::resolve(&s.links, &refs, problems);
    // With `[alerting]` refused, its `builtin_rules` may still be fine (its problem is listed).
    let builtin = match &s.alerting {
        Some(a) => a.builtin_rules,
        None => doc
            .get("alerting.builtin_rules", &mut Problems::new(doc.file()))
            .unwrap_or(true),
    };
    let rules = s.rules.map(|r| RuleSet::build(&r, builtin, problems));
    let inhibit_rules = s
        .inhibit_rules
        .map(|r| crate::dispatch::inhibit::build(&r, builtin, problems));
    let longest_interval = targets.iter().map(|t| t.cadence.interval).max();
    let receivers = s.receivers.map(|r| {
        let mut receivers = notify::settings_from_config(&r, problems);
        notify::integrations::alertmanager::set_evaluation_interval(
            &mut receivers,
            longest_interval.unwrap_or_default(),
        );
        receivers
    });
    let routes = match (&s.route, &receivers, &s.alerting) {
        (Some(route), Some(receivers), Some(a)) => {
            crate::dispatch::config::build(route.as_ref(), receivers, a.repeat_interval.0, problems)
        }
        _ => None,
    };
    let http = s.http?;
    Some(Config {
        path: doc.file().to_path_buf(),
        listen: listen?,
        external_url: http.external_url.clone(),
        http: http.limits(),
        alerting: s.alerting?,
        history: check_history(s.history?, problems)?,
        targets,
        rules: rules?,
        receivers: receivers?,
        links,
        routes: routes?,
        inhibit_rules: inhibit_rules?,
    })
}

fn check_history(h: HistoryConfig, problems: &mut Problems) -> Option<HistoryConfig> {
    let (min, max) = (Duration::from_secs(60), Duration::from_secs(24 * 3600));
    if h.window.0 < min || h.window.0 > max {
        problems.at(
            "history.window",
            format!("must be between 1m and 24h (got {})", h.window),
        );
        return None;
    }
    Some(h)
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

/// Validates every target that is a table, under its own index.
fn check_targets(
    doc: &Document,
    targets: &[usize],
    problems: &mut Problems,
) -> Vec<TargetSettings> {
    if doc.array_len("targets") == 0 {
        problems.at(
            "targets",
            "no [[targets]]: add at least one target (a PostgreSQL server or a PgBouncer) to watch",
        );
    }
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for &i in targets {
        let name: Option<String> = doc.get(
            &format!("targets[{i}].name"),
            &mut Problems::new(doc.file()),
        );
        if let Some(name) = name {
            if !names.insert(name.clone()) {
                problems.at(
                    format!("targets[{i}].name"),
                    format!("duplicate target name \"{name}\""),
                );
            }
        }
        let resolved = target::resolve(doc, i, problems);
        if let Some(first) = resolved.as_ref().and_then(|t| accepting(&out, t)) {
            problems.at(
                format!("targets[{i}].accept_unknown"),
                format!(
                    "only one push target may accept unknown applications, and \"{first}\" does"
                ),
            );
        }
        out.extend(resolved);
    }
    out
}

/// The target among `earlier` that accepts unknown applications when `t` does too.
fn accepting<'a>(earlier: &'a [TargetSettings], t: &TargetSettings) -> Option<&'a str> {
    let accepts = |t: &TargetSettings| matches!(&t.source, target::SourceSettings::Push(s) if s.max_applications > 0);
    if !accepts(t) {
        return None;
    }
    earlier.iter().find(|e| accepts(e)).map(|e| e.name.as_str())
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// The example file documents every key; it must stay valid as the code changes.
    #[test]
    fn example_config_is_valid() {
        let src = include_str!("../config.example.toml");
        let config = parse(Path::new("config.example.toml"), src).unwrap_or_else(|problems| {
            let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            panic!("config.example.toml is invalid:\n{}", text.join("\n"))
        });
        assert_eq!(config.targets.len(), 1);
        assert_eq!(config.targets[0].name, "local");
        assert_eq!(
            config.targets[0].endpoint(),
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
            "PoolBudgetExceeded",
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
