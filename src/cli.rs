//! The command line: `run`, `check-config`, `snapshot`, `budget` ([`crate::budget::command`]),
//! and logging set-up.

use crate::settings;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use tracing::Level;
use tracing_subscriber::filter::LevelFilter;

const EXAMPLES: &str = "\
Examples:
  poolwatch run --config /etc/poolwatch/poolwatch.toml
  POOLWATCH_CONFIG=poolwatch.toml poolwatch run --log-format json
  poolwatch check-config poolwatch.toml
  poolwatch snapshot --config poolwatch.toml
  poolwatch snapshot --config poolwatch.toml --json | jq '.targets[].pools[]'
  poolwatch budget --config poolwatch.toml --propose checkout=20x6
  poolwatch test-receiver oncall --config poolwatch.toml
  poolwatch silence add --matcher 'target=\"orders-db\"' --author ana --comment deploy --duration 2h
  poolwatch silence list --url http://poolwatch-0:9671

Signals (run): SIGHUP reloads the configuration (an invalid one is refused and the running one
stays); SIGTERM/SIGINT stop polling, flush queued notifications and exit 0.
Exit codes: 0 success, 1 runtime failure (e.g. a target unreachable in snapshot), 2 invalid
configuration or usage.";

/// poolwatch — catches PostgreSQL connection-pool exhaustion before users do.
#[derive(Debug, Parser)]
#[command(name = "poolwatch", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Log format (logs go to standard error).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "POOLWATCH_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: poll targets, evaluate rules, serve /metrics, send notifications.
    Run {
        /// Configuration file.
        #[arg(long, short, env = "POOLWATCH_CONFIG")]
        config: PathBuf,
    },
    /// Validate a configuration file and summarise it; exit 2 listing every problem if invalid.
    CheckConfig {
        /// Configuration file.
        file: PathBuf,
    },
    /// Poll every target once and show pools, holders and the rules that would be pending or firing.
    Snapshot {
        /// Configuration file.
        #[arg(long, short, env = "POOLWATCH_CONFIG")]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Poll every target once and check the pool budget: what linked pools may open against
    /// each server's ceiling. Exit 0 fits, 1 over-committed, 2 invalid configuration or usage,
    /// 3 something could not be counted.
    Budget {
        /// Configuration file.
        #[arg(long, short, env = "POOLWATCH_CONFIG")]
        config: PathBuf,
        /// An application's pools as a deployment would make them, in place of what runs:
        /// `APP=SIZExREPLICAS` (or `APP/POOL=SIZExREPLICAS`); repeatable.
        #[arg(long, value_name = "APP=SIZExREPLICAS")]
        propose: Vec<crate::budget::Proposal>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Send a test notification (firing, then resolved) through every integration of one
    /// receiver and print what each answered. Exit 0 when all accepted, 1 when any refused or
    /// failed, 2 for an invalid configuration or an unknown receiver.
    TestReceiver {
        /// The receiver's `name`.
        name: String,
        /// Configuration file.
        #[arg(long, short, env = "POOLWATCH_CONFIG")]
        config: PathBuf,
    },
    /// Add, list or expire silences of a running poolwatch (through its HTTP API).
    Silence {
        /// Base URL of the running poolwatch.
        #[arg(
            long,
            env = "POOLWATCH_URL",
            default_value = "http://127.0.0.1:9671",
            global = true
        )]
        url: String,
        /// What to do.
        #[command(subcommand)]
        action: crate::silence_client::Action,
    },
}

/// Dependencies whose own log events may be written, each up to the most verbose level audited
/// safe; every other crate's events are dropped, whatever `POOLWATCH_LOG` asks for. The HTTP
/// client stack and the TLS library name the host they connect to at debug and trace
/// (`reqwest` "starting new connection", `hyper_util` connection-pool keys, the server name in
/// `rustls`' session cache and ClientHello), and a webhook's host name, like its path, can
/// carry a token: they are not listed. Their failures still reach the logs through poolwatch's
/// own lines, redacted.
///
/// * `tokio_postgres`: info is the server's notices; debug is the text of poolwatch's own
///   constant queries and their parameters (none); nothing at any level names the connection's
///   host, user or password. Trace (one line per protocol message) is left out as noise.
const DEPENDENCY_LOGS: [(&str, LevelFilter); 1] = [("tokio_postgres", LevelFilter::DEBUG)];

/// Whether an event or span of `target` (a module path, or a `log` record's target) at `level`
/// may be written at all: poolwatch's own at every level, the dependencies in `DEPENDENCY_LOGS` up to theirs.
/// `POOLWATCH_LOG` chooses within this, never beyond it.
pub fn may_log(target: &str, level: &Level) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    krate == env!("CARGO_CRATE_NAME")
        || DEPENDENCY_LOGS
            .iter()
            .any(|(name, most)| *name == krate && *most >= *level)
}

/// Sets up tracing on standard error; the level comes from `POOLWATCH_LOG` (default `info`),
/// within what [`may_log`] lets through.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::filter::{filter_fn, FilterExt};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, EnvFilter, Layer};
    let requested =
        EnvFilter::try_from_env("POOLWATCH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let allowed =
        filter_fn(|m| may_log(m.target(), m.level())).with_max_level_hint(LevelFilter::TRACE);
    let filter = requested.and(allowed);
    // Colours only for a person at a terminal: not in files, journald or log collectors.
    let layer = fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry();
    let _ = match format {
        LogFormat::Text => registry.with(layer.with_filter(filter)).try_init(),
        LogFormat::Json => registry
            .with(layer.json().flatten_event(true).with_filter(filter))
            .try_init(),
    };
}

/// Entry point; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    // Before the runtime's threads: they allocate from then on.
    crate::heap::return_large_blocks();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("poolwatch: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match cli.command {
        Command::Run { config } => {
            init_logging(cli.log_format);
            runtime.block_on(crate::daemon::run(&config))
        }
        Command::CheckConfig { file } => check_config(&file),
        Command::TestReceiver { name, config } => {
            init_logging(cli.log_format);
            with_config(&config, |c| runtime.block_on(test_receiver(c, &name)))
        }
        Command::Silence { url, action } => {
            runtime.block_on(crate::silence_client::run(&url, action))
        }
        Command::Snapshot { config, json } => {
            init_logging(cli.log_format);
            with_config(&config, |c| runtime.block_on(crate::snapshot::run(c, json)))
        }
        Command::Budget {
            config,
            propose,
            json,
        } => {
            init_logging(cli.log_format);
            with_config(&config, |c| {
                runtime.block_on(crate::budget::command::run(c, propose, json))
            })
        }
    }
}

/// `poolwatch test-receiver NAME`: exit 2 for an unknown receiver, else what
/// [`crate::notify::test_receiver::run`] says.
async fn test_receiver(c: settings::Config, name: &str) -> i32 {
    let Some(receiver) = c.receivers.iter().find(|r| r.name == name) else {
        let known: Vec<&str> = c.receivers.iter().map(|r| r.name.as_str()).collect();
        let known = if known.is_empty() {
            "there are no [[receivers]]".to_string()
        } else {
            format!("receivers are {}", known.join(", "))
        };
        eprintln!(
            "poolwatch: unknown receiver \"{name}\" in {}: {known}",
            c.path.display()
        );
        return 2;
    };
    let external_url = c
        .external_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", c.listen));
    crate::notify::test_receiver::run(receiver, &external_url).await
}

/// Loads `path` and runs `f` on it; exit 2 listing every problem if invalid.
fn with_config(path: &std::path::Path, f: impl FnOnce(settings::Config) -> i32) -> i32 {
    match settings::load(path) {
        Ok(c) => f(c),
        Err(problems) => {
            crate::daemon::print_problems(&problems);
            2
        }
    }
}

fn check_config(file: &std::path::Path) -> i32 {
    match settings::load(file) {
        Ok(c) => {
            println!("{}: valid", file.display());
            println!("targets ({}):", c.targets.len());
            for t in &c.targets {
                println!("  {}", t.describe());
            }
            println!("rules ({}):", c.rules.rules().len());
            for r in c.rules.rules() {
                println!("  {}", r.describe());
            }
            if !c.links.is_empty() {
                println!("links ({}):", c.links.len());
                for l in &c.links {
                    println!("  {}", l.describe());
                }
            }
            println!("receivers ({}):", c.receivers.len());
            for r in &c.receivers {
                let severities: Vec<&str> = r.severities.iter().map(|s| s.as_str()).collect();
                println!(
                    "  {:<20} severities {}, send_resolved {}, queue {}",
                    r.name,
                    severities.join("+"),
                    r.send_resolved,
                    r.queue_capacity,
                );
                for i in &r.integrations {
                    let signed = match (&i.signing.standard_webhooks, &i.signing.github) {
                        (Some(_), Some(_)) => ", signed (standard-webhooks, github)",
                        (Some(_), None) => ", signed (standard-webhooks)",
                        (None, Some(_)) => ", signed (github)",
                        (None, None) => "",
                    };
                    let resend = match &i.kind {
                        crate::notify::Kind::Alertmanager(p) => format!(
                            ", resend {}, firing alerts end {} after each push",
                            crate::timefmt::human(p.resend_interval),
                            crate::timefmt::human(p.horizon())
                        ),
                        _ => String::new(),
                    };
                    println!(
                        "    {:<18} {} url <redacted>, timeout {}, headers {}{signed}{resend}",
                        i.name,
                        i.kind.integration_type().as_str(),
                        crate::timefmt::human(i.timeout),
                        i.headers.len()
                    );
                }
            }
            println!("routes ({}):", c.routes.nodes().len());
            for line in c.routes.describe() {
                println!("  {line}");
            }
            0
        }
        Err(problems) => {
            crate::daemon::print_problems(&problems);
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::may_log;
    use tracing::Level;

    #[test]
    fn only_poolwatch_and_audited_dependencies_may_log() {
        // (target, level, may be written)
        let cases = [
            ("poolwatch", Level::TRACE, true),
            ("poolwatch::notify", Level::TRACE, true),
            ("poolwatch::daemon", Level::ERROR, true),
            ("tokio_postgres::connection", Level::INFO, true),
            ("tokio_postgres::query", Level::DEBUG, true),
            ("tokio_postgres::connection", Level::TRACE, false),
            ("tokio_postgres_rustls", Level::ERROR, false),
            ("poolwatcher", Level::ERROR, false),
            ("reqwest::connect", Level::DEBUG, false),
            ("reqwest::connect", Level::ERROR, false),
            ("hyper_util::client::legacy::pool", Level::DEBUG, false),
            (
                "hyper_util::client::legacy::connect::http",
                Level::WARN,
                false,
            ),
            ("rustls::client::hs", Level::DEBUG, false),
            ("rustls::common_state", Level::WARN, false),
            ("h2::codec", Level::TRACE, false),
            ("log", Level::INFO, false),
            ("", Level::ERROR, false),
        ];
        for (target, level, want) in cases {
            assert_eq!(may_log(target, &level), want, "{target} at {level}");
        }
    }
}
