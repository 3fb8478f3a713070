//! The command line: `run`, `check-config`, `snapshot`, and logging set-up.

use crate::config;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  poolwatch run --config /etc/poolwatch/poolwatch.toml
  POOLWATCH_CONFIG=poolwatch.toml poolwatch run --log-format json
  poolwatch check-config poolwatch.toml
  poolwatch snapshot --config poolwatch.toml
  poolwatch snapshot --config poolwatch.toml --json | jq '.targets[].pools[]'

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
}

/// Sets up tracing on standard error; the level comes from `POOLWATCH_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POOLWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: not in files, journald or log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
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
        Command::Snapshot { config, json } => {
            init_logging(cli.log_format);
            match config::load(&config) {
                Ok(c) => runtime.block_on(crate::snapshot::run(c, json)),
                Err(problems) => {
                    crate::daemon::print_problems(&problems);
                    2
                }
            }
        }
    }
}

fn check_config(file: &std::path::Path) -> i32 {
    match config::load(file) {
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
            println!("receivers ({}):", c.receivers.len());
            for r in &c.receivers {
                let severities: Vec<&str> = r.severities.iter().map(|s| s.as_str()).collect();
                println!(
                    "  {:<20} url <redacted>, severities {}, send_resolved {}, queue {}, headers {}",
                    r.name,
                    severities.join("+"),
                    r.send_resolved,
                    r.queue_capacity,
                    r.headers.len()
                );
            }
            0
        }
        Err(problems) => {
            crate::daemon::print_problems(&problems);
            2
        }
    }
}
