//! `[[targets]]`: what every target has (`name`, `type`, `labels`), the poll loop's keys
//! (`interval`, `reconnect_max_backoff`), and the source's own keys, each group validated by
//! the part of the program that uses it. `type` picks the source (`postgres` when absent, so
//! files written before there were other sources keep working).
//!
//! Adding a source means one variant of [`SourceSettings`] and one arm in [`resolve`].

use super::app_metrics::{self, config::AppMetricsConfig, config::AppMetricsSettings};
use super::pgbouncer;
use super::pgbouncer::config::{BouncerConfig, BouncerSettings};
use super::pgwire::config::{check_timeout, ConnConfig, CONN_KEYS};
use super::postgres;
use super::postgres::config::{PgConfig, PgSettings};
use super::push::{self, PushConfig, PushSettings};
use super::{poll_loop, Cadence, SourceMetrics};
use crate::config::document::{struct_fields, Document};
use crate::config::values::{HumanDuration, Problems};
use crate::model::TargetReport;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// The source types, as `type` values.
pub const TYPES: [&str; 4] = ["postgres", "pgbouncer", "app_metrics", "push"];

/// Keys every target has.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    /// Unique name; the `target` label everywhere. Required.
    name: String,
    /// Extra labels put on this target's alerts (not on metrics, to keep series bounded), e.g.
    /// `{ env = "prod", team = "orders" }`.
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

const COMMON_KEYS: [&str; 2] = ["name", "labels"];

/// The poll loop's keys, the same for every polling source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoopConfig {
    /// How often to poll. Default `"1s"`, so that the built-in `PoolExhausted` (`for = "0s"`)
    /// pages a full pool within about a second; one poll costs the server well under a
    /// millisecond at normal connection counts (BENCHMARKS.md). At least `"100ms"`.
    #[serde(default = "default_interval")]
    interval: HumanDuration,
    /// Upper bound of the reconnect backoff. Default `"10s"`: short, because reconnecting is
    /// how poolwatch learns that a saturated target has room again.
    #[serde(default = "default_max_backoff")]
    reconnect_max_backoff: HumanDuration,
}

const LOOP_KEYS: [&str; 2] = ["interval", "reconnect_max_backoff"];

fn default_interval() -> HumanDuration {
    HumanDuration::secs(1)
}

fn default_max_backoff() -> HumanDuration {
    HumanDuration::secs(10)
}

/// Longest interval accepted: beyond that a monitor is blind.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// A validated target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSettings {
    /// Target name (`target` label).
    pub name: String,
    /// Extra alert labels.
    pub labels: BTreeMap<String, String>,
    /// Poll interval and reconnect backoff.
    pub cadence: Cadence,
    /// The source and its own settings.
    pub source: SourceSettings,
}

/// Each source's validated settings.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSettings {
    /// `type = "postgres"`.
    Postgres(PgSettings),
    /// `type = "pgbouncer"`.
    Pgbouncer(BouncerSettings),
    /// `type = "app_metrics"`.
    AppMetrics(Box<AppMetricsSettings>),
    /// `type = "push"`.
    Push(PushSettings),
}

impl TargetSettings {
    /// The source's `type`.
    pub fn kind(&self) -> &'static str {
        match &self.source {
            SourceSettings::Postgres(_) => "postgres",
            SourceSettings::Pgbouncer(_) => "pgbouncer",
            SourceSettings::AppMetrics(_) => "app_metrics",
            SourceSettings::Push(_) => "push",
        }
    }

    /// Where the target is, without secrets (`user@host:port/db`, a URL without its query).
    pub fn endpoint(&self) -> &str {
        match &self.source {
            SourceSettings::Postgres(s) => &s.conn.endpoint,
            SourceSettings::Pgbouncer(s) => &s.conn.endpoint,
            SourceSettings::AppMetrics(s) => &s.endpoint,
            SourceSettings::Push(_) => "POST /api/v1/pools",
        }
    }

    /// One line for `check-config`, as the source describes itself.
    pub fn describe(&self) -> String {
        let how = match &self.source {
            SourceSettings::Postgres(s) => s.describe(),
            SourceSettings::Pgbouncer(s) => s.describe(),
            SourceSettings::AppMetrics(s) => s.describe(),
            SourceSettings::Push(s) => s.describe(),
        };
        format!(
            "{:<20} {} every {}, {how}",
            self.name,
            self.kind(),
            crate::timefmt::human(self.cadence.interval)
        )
    }

    /// True when a reload would not change how this target is polled, so its session can be
    /// kept: everything but the alert `labels`, which apply without touching the session.
    pub fn same_polling(&self, other: &TargetSettings) -> bool {
        self.name == other.name && self.cadence == other.cadence && self.source == other.source
    }

    /// How long stopping its task may take at most (a safety net: it stops at once).
    pub fn stop_bound(&self) -> Duration {
        let (connect, poll) = match &self.source {
            SourceSettings::Postgres(s) => (s.conn.connect_timeout, s.statement_timeout),
            SourceSettings::Pgbouncer(s) => (s.conn.connect_timeout, s.poll_timeout),
            SourceSettings::AppMetrics(s) => (s.timeout, s.timeout),
            SourceSettings::Push(_) => (Duration::ZERO, Duration::ZERO),
        };
        connect + poll + Duration::from_secs(1)
    }

    /// Starts the polling task of the target; a push target reads what `pushed` holds.
    pub fn spawn(
        &self,
        pushed: &Arc<push::Registry>,
        metrics: SourceMetrics,
        reports: mpsc::Sender<TargetReport>,
        shutdown: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let id = poll_loop::Identity {
            name: self.name.clone(),
            endpoint: self.endpoint().to_string(),
        };
        let channels = poll_loop::Channels { reports, shutdown };
        let cadence = self.cadence;
        match &self.source {
            SourceSettings::Postgres(s) => {
                let source = postgres::PgSource::new(s.clone());
                tokio::spawn(poll_loop::run(id, source, cadence, metrics, channels))
            }
            SourceSettings::Pgbouncer(s) => {
                let source = pgbouncer::BouncerSource::new(s.clone());
                tokio::spawn(poll_loop::run(id, source, cadence, metrics, channels))
            }
            SourceSettings::AppMetrics(s) => {
                let source = app_metrics::AppMetricsSource::new((**s).clone());
                tokio::spawn(poll_loop::run(id, source, cadence, metrics, channels))
            }
            SourceSettings::Push(_) => {
                let source = push::PushSource::new(&self.name, pushed.clone());
                tokio::spawn(poll_loop::run(id, source, cadence, metrics, channels))
            }
        }
    }

    /// Polls the target once (connect, poll, disconnect): for `poolwatch snapshot`. A push
    /// target's pools live in the running daemon, not in this process: its report says so.
    pub async fn poll_once(&self) -> TargetReport {
        match &self.source {
            SourceSettings::Postgres(s) => {
                super::poll_once(&self.name, &postgres::PgSource::new(s.clone())).await
            }
            SourceSettings::Pgbouncer(s) => {
                super::poll_once(&self.name, &pgbouncer::BouncerSource::new(s.clone())).await
            }
            SourceSettings::AppMetrics(s) => {
                let source = app_metrics::AppMetricsSource::new((**s).clone());
                super::poll_once(&self.name, &source).await
            }
            // `snapshot` leaves push targets out; should one be polled, it says why it has no pools.
            SourceSettings::Push(_) => TargetReport {
                target: self.name.clone(),
                at: std::time::SystemTime::now(),
                duration: Duration::ZERO,
                outcome: Err(crate::model::PollError {
                    class: crate::model::ErrorClass::Stale,
                    message: "its pools are pushed to the running daemon; this process has none"
                        .into(),
                }),
            },
        }
    }
}

/// Validates `[[targets]]` entry `i` of `doc`, recording problems under `targets[i]`.
pub fn resolve(doc: &Document, i: usize, problems: &mut Problems) -> Option<TargetSettings> {
    let prefix = format!("targets[{i}]");
    let before = problems.len();
    let kind: String = doc
        .get(&format!("{prefix}.type"), problems)
        .unwrap_or_else(|| "postgres".to_string());
    if !TYPES.contains(&kind.as_str()) {
        let hint = crate::config::message::did_you_mean(&kind, TYPES)
            .map(|t| format!(" (did you mean \"{t}\"?)"))
            .unwrap_or_default();
        let expected: Vec<String> = TYPES.iter().map(|t| format!("\"{t}\"")).collect();
        problems.at(
            format!("{prefix}.type"),
            format!(
                "unknown target type \"{kind}\"{hint}: expected one of {}",
                expected.join(", ")
            ),
        );
        return None;
    }
    let common: Option<Common> = doc.get_keys(&prefix, &COMMON_KEYS, problems);
    let cadence: Option<LoopConfig> = doc.get_keys(&prefix, &LOOP_KEYS, problems);
    // Sources that reach their peer over the PostgreSQL wire protocol share its keys.
    let wire = kind == "postgres" || kind == "pgbouncer";
    let conn: Option<ConnConfig> = wire
        .then(|| doc.get_keys(&prefix, &CONN_KEYS, problems))
        .flatten();
    if let Some(c) = &common {
        check_common(c, &prefix, problems);
    }
    if let Some(c) = &cadence {
        check_cadence(c, &prefix, problems);
    }
    // Every group's problems are listed, even when another group has some.
    let name = common.as_ref().map_or("", |c| c.name.as_str());
    let conn = conn.as_ref();
    let source = match kind.as_str() {
        "app_metrics" => own_keys::<AppMetricsConfig>(doc, &prefix, false, problems)
            .and_then(|own| own.resolve(name, &prefix, problems))
            .map(|s| SourceSettings::AppMetrics(Box::new(s))),
        "postgres" => own_keys::<PgConfig>(doc, &prefix, true, problems)
            .and_then(|own| own.resolve(name, &prefix, conn, problems))
            .map(SourceSettings::Postgres),
        "push" => own_keys::<PushConfig>(doc, &prefix, false, problems)
            .and_then(|own| own.resolve(name, &prefix, problems))
            .map(SourceSettings::Push),
        _ => own_keys::<BouncerConfig>(doc, &prefix, true, problems)
            .and_then(|own| own.resolve(name, &prefix, conn, problems))
            .map(SourceSettings::Pgbouncer),
    };
    let (common, cadence, source) = (common?, cadence?, source?);
    if problems.len() > before {
        return None;
    }
    Some(TargetSettings {
        name: common.name,
        labels: common.labels,
        cadence: Cadence {
            interval: cadence.interval.0,
            max_backoff: cadence.reconnect_max_backoff.0,
        },
        source,
    })
}

fn check_common(c: &Common, prefix: &str, problems: &mut Problems) {
    let at = |k: &str| format!("{prefix}.{k}");
    if c.name.trim().is_empty() {
        problems.at(at("name"), "must not be empty");
    } else if !c
        .name
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
    {
        problems.at(at("name"), "use letters, digits, '-', '_' and '.' only");
    }
    for name in c.labels.keys() {
        if let Some(problem) = crate::rules::extra_label_problem(name) {
            problems.at(at(&format!("labels.{name}")), problem);
        }
    }
}

fn check_cadence(c: &LoopConfig, prefix: &str, problems: &mut Problems) {
    let at = |k: &str| format!("{prefix}.{k}");
    if c.interval.0 < poll_loop::MIN_INTERVAL {
        problems.at(
            at("interval"),
            format!("must be at least 100ms (got {})", c.interval),
        );
    } else if c.interval.0 > MAX_INTERVAL {
        problems.at(
            at("interval"),
            format!("must be at most 1h (got {})", c.interval),
        );
    }
    check_timeout(
        problems,
        at("reconnect_max_backoff"),
        c.reconnect_max_backoff,
    );
}

/// The source's own keys of the target at `prefix`; a key that no part of the target takes is
/// unknown, and the suggestion for it is chosen among every key a target of this type has
/// (the wire-protocol connection keys when `wire`).
fn own_keys<T: DeserializeOwned>(
    doc: &Document,
    prefix: &str,
    wire: bool,
    problems: &mut Problems,
) -> Option<T> {
    let own = struct_fields::<T>();
    let conn: &[&str] = if wire { &CONN_KEYS } else { &[] };
    let known: Vec<&str> = ["type"]
        .iter()
        .chain(&COMMON_KEYS)
        .chain(&LOOP_KEYS)
        .chain(conn)
        .chain(own)
        .copied()
        .collect();
    doc.deny_unknown_keys(prefix, &known, problems);
    doc.get_keys(prefix, own, problems)
}

#[cfg(test)]
mod tests {
    use crate::settings::parse;
    use std::path::Path;

    fn problems(src: &str) -> Vec<String> {
        match parse(Path::new("x.toml"), src) {
            Ok(_) => Vec::new(),
            Err(p) => p.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// `src` with each case's extra lines has exactly that one problem (its text starts so).
    fn expect_one_problem_each(src: &str, cases: &[(&str, &str)]) {
        for (extra, want) in cases {
            let got = problems(&format!("{src}{extra}"));
            assert!(
                got.len() == 1 && got[0].starts_with(want),
                "{extra}: {got:?}"
            );
        }
    }

    #[test]
    fn a_file_without_type_keeps_working_as_postgres() {
        let c = parse(Path::new("x.toml"), "[[targets]]\nname = \"db\"\n").expect("valid");
        let t = &c.targets[0];
        assert_eq!(
            (t.kind(), t.endpoint()),
            ("postgres", "poolwatch@localhost:5432/postgres")
        );
        assert_eq!(t.cadence.interval, std::time::Duration::from_secs(1));
    }

    #[test]
    fn pgbouncer_targets_have_their_own_defaults_and_keys() {
        let src = "[[targets]]\nname = \"b\"\ntype = \"pgbouncer\"\nuser = \"mon\"\n";
        let c = parse(Path::new("x.toml"), src).expect("valid");
        let t = &c.targets[0];
        assert_eq!(
            (t.kind(), t.endpoint()),
            ("pgbouncer", "mon@localhost:6432/pgbouncer")
        );
        assert!(t.describe().contains("(admin console)"), "{}", t.describe());
        // (extra lines, expected problem)
        let cases = [
            (
                "dbname = \"app\"\n",
                "x.toml:5:1: targets[0].dbname: a pgbouncer target reads",
            ),
            (
                "statement_timeout = \"1s\"\n",
                "x.toml:5:1: targets[0].statement_timeout: unknown field `statement_timeout`",
            ),
            (
                "poll_timeout = \"0s\"\n",
                "x.toml:5:1: targets[0].poll_timeout: must be greater than 0",
            ),
        ];
        expect_one_problem_each(src, &cases);
    }

    #[test]
    fn push_targets_take_no_connection_keys_and_check_their_own() {
        let src = "[[targets]]\nname = \"checkout\"\ntype = \"push\"\n";
        let c = parse(Path::new("x.toml"), src).expect("valid");
        let t = &c.targets[0];
        assert_eq!((t.kind(), t.endpoint()), ("push", "POST /api/v1/pools"));
        assert!(
            t.describe()
                .contains("application \"checkout\", ttl 30s, no token"),
            "{}",
            t.describe()
        );
        let c = parse(Path::new("x.toml"), &format!("{src}token = \"Zq9xK\"\n")).expect("valid");
        assert!(c.targets[0].describe().contains("bearer token required"));
        assert!(!format!("{:?} {}", c.targets[0], c.targets[0].describe()).contains("Zq9xK"));
        // (extra lines, expected problem)
        let cases = [
            ("host = \"db\"\n", "x.toml:4:1: targets[0].host: unknown field `host`"),
            ("ttl = \"500ms\"\n", "x.toml:4:1: targets[0].ttl: must be between 1s and 1h"),
            ("max_pools = 0\n", "x.toml:4:1: targets[0].max_pools: must be between 1 and 10000"),
            (
                "max_instances = 20000\n",
                "x.toml:4:1: targets[0].max_instances: must be between 1 and 10000",
            ),
            (
                "token = \"a\"\ntoken_file = \"/x\"\n",
                "x.toml:4:1: targets[0].token: set either `token` or `token_file`, not both",
            ),
            (
                "token = \"${POOLWATCH_TEST_UNSET_VAR}\"\n",
                "x.toml:4:1: targets[0].token: `token`: environment variable POOLWATCH_TEST_UNSET_VAR is not set",
            ),
            (
                "token_file = \"/nonexistent/token\"\n",
                "x.toml:4:1: targets[0].token_file: `token_file`: cannot read secret file /nonexistent/token",
            ),
            (
                "token = 5\n",
                "x.toml:4:9: targets[0].token: invalid type: integer, expected a string",
            ),
        ];
        expect_one_problem_each(src, &cases);
    }

    #[test]
    fn one_push_target_at_most_accepts_unknown_applications() {
        let push = |name: &str, extra: &str| {
            format!("[[targets]]\nname = \"{name}\"\ntype = \"push\"\n{extra}")
        };
        let src = push("apps", "accept_unknown = true\nmax_applications = 3\n");
        let c = parse(Path::new("x.toml"), &src).expect("valid");
        assert!(
            c.targets[0]
                .describe()
                .ends_with("; accepts up to 3 unknown applications as targets of their own"),
            "{}",
            c.targets[0].describe()
        );
        let src = [
            src,
            push("other", "max_applications = 5\n"),
            push("more", "accept_unknown = true\n"),
        ]
        .concat();
        assert_eq!(
            problems(&src),
            ["x.toml:13:1: targets[2].accept_unknown: only one push target may accept unknown applications, and \"apps\" does"]
        );
    }

    #[test]
    fn the_type_is_checked_and_every_group_of_keys_reports_its_problems() {
        let got = problems("[[targets]]\nname = \"b\"\ntype = \"pgbouncr\"\n");
        assert_eq!(
            got,
            ["x.toml:3:1: targets[0].type: unknown target type \"pgbouncr\" (did you mean \"pgbouncer\"?): expected one of \"postgres\", \"pgbouncer\", \"app_metrics\", \"push\""]
        );
        // A common key, a loop key, a connection key and a source key, all wrong at once.
        let got = problems(
            "[[targets]]\nname = \"a b\"\ninterval = \"10ms\"\nport = \"x\"\nstatement_timeout = \"0s\"\n",
        );
        assert_eq!(got.len(), 4, "{got:?}");
        for key in ["name", "interval", "port", "statement_timeout"] {
            assert!(
                got.iter()
                    .any(|p| p.contains(&format!("targets[0].{key}:"))),
                "{key}: {got:?}"
            );
        }
    }
}
