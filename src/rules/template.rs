//! Alert text templates: plain text with `{{name}}` placeholders (spaces inside the braces are
//! allowed), parsed and checked when the rules are built, rendered with live numbers when a
//! notice is sent. There is deliberately no logic in templates: every variable already renders
//! in the most useful human form (`97%`, `4m 12s`, `app=django holds 91`).

use crate::config::message::did_you_mean;
use crate::model::{ErrorClass, PollError, PoolSnapshot, Severity, TargetState};
use crate::rules::predict::{self, Prediction};
use crate::timefmt;
use std::fmt::Write as _;
use std::time::Duration;

/// A variable a template can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Target,
    Kind,
    Pool,
    Subject,
    Severity,
    Alertname,
    Value,
    Threshold,
    Capacity,
    ConfiguredCapacity,
    InUse,
    Idle,
    Waiting,
    LongestWait,
    Free,
    Utilization,
    IdleInTransaction,
    OldestIdleInTransaction,
    OldestTransaction,
    LockWaiting,
    CapacityNote,
    TopHolders,
    PoolDetails,
    PreviousCapacity,
    ErrorClass,
    Error,
    LastSeen,
    Duration,
    TargetState,
    ExhaustedIn,
    Slope,
    BudgetDemand,
    BudgetContributors,
    ServerSide,
}

/// Every variable by name; the README's list of template variables mirrors this table.
const VARS: [(&str, Var); 34] = [
    ("target", Var::Target),
    ("kind", Var::Kind),
    ("pool", Var::Pool),
    ("subject", Var::Subject),
    ("severity", Var::Severity),
    ("alertname", Var::Alertname),
    ("value", Var::Value),
    ("threshold", Var::Threshold),
    ("capacity", Var::Capacity),
    ("configured_capacity", Var::ConfiguredCapacity),
    ("in_use", Var::InUse),
    ("idle", Var::Idle),
    ("waiting", Var::Waiting),
    ("longest_wait", Var::LongestWait),
    ("free", Var::Free),
    ("utilization", Var::Utilization),
    ("idle_in_transaction", Var::IdleInTransaction),
    ("oldest_idle_in_transaction", Var::OldestIdleInTransaction),
    ("oldest_transaction", Var::OldestTransaction),
    ("lock_waiting", Var::LockWaiting),
    ("capacity_note", Var::CapacityNote),
    ("top_holders", Var::TopHolders),
    ("pool_details", Var::PoolDetails),
    ("previous_capacity", Var::PreviousCapacity),
    ("error_class", Var::ErrorClass),
    ("error", Var::Error),
    ("last_seen", Var::LastSeen),
    ("duration", Var::Duration),
    ("target_state", Var::TargetState),
    ("exhausted_in", Var::ExhaustedIn),
    ("slope", Var::Slope),
    ("budget_demand", Var::BudgetDemand),
    ("budget_contributors", Var::BudgetContributors),
    ("server_side", Var::ServerSide),
];

/// The names of every template variable, for documentation and error messages.
pub fn variable_names() -> impl Iterator<Item = &'static str> {
    VARS.iter().map(|(name, _)| *name)
}

/// Rendered where a number is not known (no snapshot of the pool yet, no such value).
const UNKNOWN: &str = "-";

/// How many applications and roles `top_holders` names.
const TOP_APPLICATIONS: usize = 3;
const TOP_ROLES: usize = 2;

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `source`. The error names the offending placeholder and, for a misspelled
    /// variable, the closest known one.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!(
                    "unclosed placeholder \"{{{{{}\": close it with \"}}}}\"",
                    after
                )
            })?;
            let name = after[..close].trim();
            let var = VARS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| unknown_variable(name))?;
            pieces.push(Piece::Var(var));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            pieces,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Fills in the placeholders.
    pub fn render(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => vars.write(*v, &mut out),
            }
        }
        out
    }
}

fn unknown_variable(name: &str) -> String {
    if name.is_empty() {
        return "empty placeholder \"{{}}\": put a variable name inside, e.g. {{target}}".into();
    }
    let hint = did_you_mean(name, variable_names())
        .map(|s| format!("did you mean {{{{{s}}}}}? "))
        .unwrap_or_default();
    let known: Vec<&str> = variable_names().collect();
    format!(
        "unknown template variable {{{{{name}}}}}; {hint}known variables: {}",
        known.join(", ")
    )
}

/// Everything a template can refer to, for one alert at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    /// The rule's name.
    pub alertname: &'a str,
    /// The alert's severity.
    pub severity: Severity,
    /// Target name.
    pub target: &'a str,
    /// Pool kind label; empty for target-level alerts.
    pub kind: &'a str,
    /// Pool name label; empty for target-level alerts.
    pub pool: &'a str,
    /// How people name the pool (`orders-db`, `orders-db role app`) or the target.
    pub subject: &'a str,
    /// The pool's numbers: current, or the last known when the target cannot be polled; for
    /// target-level alerts, the last known numbers of the pool that stands for the target.
    pub snapshot: Option<&'a PoolSnapshot>,
    /// The alert's value (metric value, current capacity, or 1 for target conditions).
    pub value: Option<f64>,
    /// The threshold compared with (threshold rules).
    pub threshold: Option<f64>,
    /// The highest capacity within the window (capacity_dropped).
    pub previous_capacity: Option<u64>,
    /// Why the target cannot be polled (target conditions): the error that made the alert
    /// active, also in its resolved notice, when the target answers again.
    pub error: Option<&'a PollError>,
    /// How long the alert has been active (since `activeAt`), up to this notice.
    pub duration: Option<Duration>,
    /// The target as of its last poll: `None` before the first one, `Ok` when it succeeded,
    /// else the class of its error.
    pub target_state: Option<Result<(), ErrorClass>>,
    /// The predicted exhaustion (`exhaustion_predicted` rules, while it is predicted).
    pub prediction: Option<Prediction>,
}

/// `up`, `saturated`, `down (network)`, or `unknown` before the first poll.
fn target_state(state: Option<Result<(), ErrorClass>>) -> String {
    match state {
        None => TargetState::Unknown.to_string(),
        Some(Ok(())) => TargetState::Up.to_string(),
        Some(Err(class)) => match TargetState::from_error(class) {
            TargetState::Down => format!("down ({class})"),
            other => other.to_string(),
        },
    }
}

impl Vars<'_> {
    fn write(&self, var: Var, out: &mut String) {
        let snap = self.snapshot;
        let pg = snap.and_then(|s| s.postgres.as_ref());
        // Writing to a String cannot fail.
        let _ = match var {
            Var::Target => write!(out, "{}", self.target),
            Var::Kind => write!(out, "{}", self.kind),
            Var::Pool => write!(out, "{}", self.pool),
            Var::Subject => write!(out, "{}", self.subject),
            Var::Severity => write!(out, "{}", self.severity),
            Var::Alertname => write!(out, "{}", self.alertname),
            Var::Value => write!(out, "{}", opt_num(self.value)),
            Var::Threshold => write!(out, "{}", opt_num(self.threshold)),
            Var::Capacity => write!(out, "{}", count(snap.map(|s| s.capacity))),
            Var::ConfiguredCapacity => {
                write!(out, "{}", count(snap.map(|s| s.configured_capacity)))
            }
            Var::InUse => write!(out, "{}", count(snap.map(|s| s.in_use))),
            Var::Idle => write!(out, "{}", count(snap.map(|s| s.idle))),
            Var::Waiting => write!(out, "{}", count(snap.map(|s| s.waiting))),
            Var::LongestWait => write!(out, "{}", age(snap.and_then(|s| s.longest_wait))),
            Var::Free => write!(out, "{}", count(snap.map(|s| s.free()))),
            Var::Utilization => match snap {
                Some(s) => write!(out, "{}", percent(s.utilization())),
                None => write!(out, "{UNKNOWN}"),
            },
            Var::IdleInTransaction => write!(out, "{}", count(pg.map(|s| s.idle_in_transaction))),
            Var::OldestIdleInTransaction => {
                write!(
                    out,
                    "{}",
                    age(pg.and_then(|s| s.oldest_idle_in_transaction))
                )
            }
            Var::OldestTransaction => write!(out, "{}", age(pg.and_then(|s| s.oldest_transaction))),
            Var::LockWaiting => write!(out, "{}", count(pg.map(|s| s.lock_waiting))),
            Var::CapacityNote => match snap {
                Some(s) if !s.capacity_note.is_empty() => write!(out, "{}", s.capacity_note),
                Some(s) => write!(out, "capacity {}", s.capacity),
                None => write!(out, "{UNKNOWN}"),
            },
            Var::TopHolders => write!(out, "{}", top_holders(snap)),
            Var::PoolDetails => match snap {
                Some(s) => write!(out, "{}", pool_details(s)),
                None => write!(out, "{UNKNOWN}"),
            },
            Var::PreviousCapacity => write!(out, "{}", count(self.previous_capacity)),
            Var::ErrorClass => match self.error {
                Some(e) => write!(out, "{}", e.class),
                None => write!(out, "{UNKNOWN}"),
            },
            Var::Error => match self.error {
                Some(e) => write!(out, "{}", e.message),
                None => write!(out, "{UNKNOWN}"),
            },
            Var::LastSeen => match snap {
                Some(s) => write!(
                    out,
                    "Last seen: {}/{} usable connections in use ({}); {}",
                    s.in_use,
                    s.capacity,
                    if s.capacity_note.is_empty() {
                        "-"
                    } else {
                        &s.capacity_note
                    },
                    pool_details(s)
                ),
                None => write!(out, "poolwatch has not seen its pools yet"),
            },
            Var::Duration => write!(out, "{}", age(self.duration)),
            Var::TargetState => write!(out, "{}", target_state(self.target_state)),
            Var::ExhaustedIn => match self.prediction {
                Some(p) => write!(out, "{}", predict::approx(p.exhausted_in)),
                None => write!(out, "{UNKNOWN}"),
            },
            Var::Slope => match self.prediction {
                Some(p) => write!(out, "{}", predict::signed(p.slope_per_minute)),
                None => write!(out, "{UNKNOWN}"),
            },
            Var::BudgetDemand => {
                write!(
                    out,
                    "{}",
                    count(snap.and_then(|s| s.budget.as_ref()).map(|b| b.demand))
                )
            }
            Var::BudgetContributors => match snap.and_then(|s| s.budget.as_ref()) {
                Some(b) => write!(out, "{}", b.contributors),
                None => write!(out, "{UNKNOWN}"),
            },
            Var::ServerSide => match snap.and_then(|s| s.server_side.as_deref()) {
                Some(side) => write!(out, "{side}"),
                None => write!(out, "{UNKNOWN}"),
            },
        };
    }
}

/// A number for people: integers without decimals, others with at most three.
pub fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let s = format!("{v:.3}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn opt_num(v: Option<f64>) -> String {
    v.map(number).unwrap_or_else(|| UNKNOWN.into())
}

fn count(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_else(|| UNKNOWN.into())
}

fn age(d: Option<Duration>) -> String {
    d.map(timefmt::human).unwrap_or_else(|| UNKNOWN.into())
}

/// A ratio as a whole percentage, rounded down so that a pool shows 100% only when it is full.
pub fn percent(ratio: f64) -> String {
    // The epsilon keeps 0.29 * 100 = 28.999... at 29.
    format!("{:.0}%", (ratio * 100.0 + 1e-9).floor())
}

/// What the pool's source tells beyond capacity and in use: for PostgreSQL, who holds the
/// connections and the sessions idle in transaction (`app=django holds 91 (12 idle in
/// transaction); role=app 95; 12 idle in transaction (oldest 4m)`); for pools that queue, the
/// queue (`15 waiting, the longest for 1.2s`); for a linked application pool, its server side.
pub fn pool_details(s: &PoolSnapshot) -> String {
    let mut parts = Vec::new();
    if let Some(pg) = &s.postgres {
        parts.push(top_holders(Some(s)));
        parts.push(match pg.oldest_idle_in_transaction {
            Some(oldest) if pg.idle_in_transaction > 0 => format!(
                "{} idle in transaction (oldest {})",
                pg.idle_in_transaction,
                timefmt::human(oldest)
            ),
            _ => format!("{} idle in transaction", pg.idle_in_transaction),
        });
    }
    if s.postgres.is_none() || s.waiting > 0 {
        parts.push(match s.longest_wait {
            Some(w) if s.waiting > 0 => {
                format!(
                    "{} waiting, the longest for {}",
                    s.waiting,
                    timefmt::human(w)
                )
            }
            _ => format!("{} waiting", s.waiting),
        });
    }
    parts.extend(s.server_side.clone());
    parts.join("; ")
}

/// `app=django holds 91 (12 idle in transaction), app=celery holds 4; role=app 95`.
fn top_holders(snap: Option<&PoolSnapshot>) -> String {
    let Some(s) = snap else {
        return UNKNOWN.into();
    };
    let Some(pg) = &s.postgres else {
        return "no breakdown by holder".into();
    };
    let apps: Vec<String> = pg
        .holders
        .applications
        .iter()
        .take(TOP_APPLICATIONS)
        .map(|h| {
            let name = if h.name.is_empty() { "\"\"" } else { &h.name };
            match h.idle_in_transaction {
                0 => format!("app={name} holds {}", h.connections),
                n => format!(
                    "app={name} holds {} ({n} idle in transaction)",
                    h.connections
                ),
            }
        })
        .collect();
    let roles: Vec<String> = pg
        .holders
        .roles
        .iter()
        .take(TOP_ROLES)
        .map(|h| format!("role={} {}", h.name, h.connections))
        .collect();
    let parts: Vec<String> = [apps.join(", "), roles.join(", ")]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        "no breakdown by holder".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
