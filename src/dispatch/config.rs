//! `[route]`: the routing tree as written, resolved and validated into a [`RouteTree`].
//!
//! Every route may set `receiver`, `group_by`, `group_wait`, `group_interval`,
//! `repeat_interval` and `send_resolved`; what it does not set it inherits from its parent.
//! The root also supplies the defaults: Alertmanager's (`group_wait = "30s"`,
//! `group_interval = "5m"`, one group per route) with `repeat_interval` from
//! `[alerting] repeat_interval` and `send_resolved` from the receiver.
//!
//! Without `[route]`, the tree keeps poolwatch's behaviour before routes existed: every
//! receiver gets every alert of its `severities`, each alert its own group
//! (`group_by = ["..."]`), sent at once (`group_wait = group_interval = "0s"`).
//!
//! A receiver's `severities` act as one more matcher on every route to it (not part of the
//! route's key).

use super::route::{GroupBy, Route, RouteTree, Timing};
use crate::config::values::{HumanDuration, Problems};
use crate::model::Severity;
use crate::notify::ReceiverSettings;
use crate::rules::matcher::{is_valid_label_name, Matcher};
use serde::Deserialize;
use std::time::Duration;

/// `[route]` and each `[[route.routes]]` entry, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The receiver of this route's notifications (a `[[receivers]]` name). Required at the
    /// root; inherited below.
    #[serde(default)]
    pub receiver: Option<String>,
    /// Prometheus matchers an alert must satisfy to take this route (`severity="critical"`,
    /// `target=~"orders-.*"`). Not at the root, which takes every alert.
    #[serde(default)]
    pub matchers: Vec<String>,
    /// After this route matched, try its next siblings too. Default `false`. Not at the root.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Labels whose values make an alert's group; `["..."]` groups by every label (one alert per
    /// group). Default at the root: `[]`, one group per route. Inherited.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    /// How long a new group waits for more alerts before its first notification. Default
    /// `"30s"` at the root. Inherited.
    #[serde(default)]
    pub group_wait: Option<HumanDuration>,
    /// How long after a notification the group's changes are sent. Default `"5m"` at the root.
    /// Inherited.
    #[serde(default)]
    pub group_interval: Option<HumanDuration>,
    /// How often an unchanged, still-firing group is notified again. Default at the root:
    /// `[alerting] repeat_interval`. Inherited.
    #[serde(default)]
    pub repeat_interval: Option<HumanDuration>,
    /// Whether notifications telling that alerts resolved are sent. Default: the receiver's
    /// `send_resolved`. Inherited.
    #[serde(default)]
    pub send_resolved: Option<bool>,
    /// Child routes, tried in order.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// What a route hands down to its children.
struct Inherited {
    receiver: Option<String>,
    group_by: GroupBy,
    timing: Timing,
    send_resolved: Option<bool>,
}

/// Builds the routing tree from `[route]` (`None`: the implicit tree, see the module
/// documentation). Problems are recorded at their key paths (`route.routes[1].matchers[0]`);
/// `None` when there was any.
pub fn build(
    cfg: Option<&RouteConfig>,
    receivers: &[ReceiverSettings],
    repeat_interval: Duration,
    problems: &mut Problems,
) -> Option<RouteTree> {
    let Some(cfg) = cfg else {
        return Some(implicit(receivers, repeat_interval));
    };
    let before = problems.len();
    if cfg.receiver.is_none() {
        problems.at(
            "route.receiver",
            "the root route needs a receiver: name one of [[receivers]]",
        );
    }
    if !cfg.matchers.is_empty() {
        problems.at(
            "route.matchers",
            "the root route takes every alert: it cannot have matchers",
        );
    }
    if cfg.continue_matching {
        problems.at(
            "route.continue",
            "the root route has no siblings: `continue` is not allowed",
        );
    }
    let root = Inherited {
        receiver: None,
        group_by: GroupBy::Labels(Vec::new()),
        timing: Timing {
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval,
        },
        send_resolved: None,
    };
    let mut ck = Checker {
        receivers,
        problems,
    };
    let route = ck.route(cfg, &root, "route");
    (problems.len() == before).then(|| {
        RouteTree::new(route)
            .with_integrations(integrations(receivers))
            .with_resend(resend(receivers))
    })
}

/// Each receiver's integration names, for the tree.
fn integrations(receivers: &[ReceiverSettings]) -> Vec<(String, Vec<String>)> {
    receivers
        .iter()
        .map(|r| (r.name.clone(), r.integration_names()))
        .collect()
}

/// The integrations that re-send still-firing groups on a schedule of their own (an
/// Alertmanager's `resend_interval`), for the tree.
fn resend(receivers: &[ReceiverSettings]) -> Vec<((String, String), Duration)> {
    receivers
        .iter()
        .flat_map(|r| {
            r.integrations.iter().filter_map(|i| {
                let every = i.kind.resend_interval()?;
                Some(((r.name.clone(), i.name.clone()), every))
            })
        })
        .collect()
}

/// The tree used without `[route]`.
fn implicit(receivers: &[ReceiverSettings], repeat_interval: Duration) -> RouteTree {
    let timing = Timing {
        group_wait: Duration::ZERO,
        group_interval: Duration::ZERO,
        repeat_interval,
    };
    let child = |r: &ReceiverSettings| Route {
        receiver: Some(r.name.clone()),
        matchers: Vec::new(),
        filter: severity_filter(r),
        continue_matching: true,
        group_by: GroupBy::All,
        timing,
        send_resolved: r.send_resolved,
        routes: Vec::new(),
    };
    RouteTree::new(Route {
        receiver: None,
        matchers: Vec::new(),
        filter: Vec::new(),
        continue_matching: false,
        group_by: GroupBy::All,
        timing,
        send_resolved: true,
        routes: receivers.iter().map(child).collect(),
    })
    .with_integrations(integrations(receivers))
    .with_resend(resend(receivers))
}

/// The receiver's `severities` as a matcher; none when it takes every severity.
fn severity_filter(r: &ReceiverSettings) -> Vec<Matcher> {
    if Severity::ALL.iter().all(|s| r.severities.contains(s)) {
        return Vec::new();
    }
    let names: Vec<&str> = r.severities.iter().map(|s| s.as_str()).collect();
    Matcher::parse(&format!("severity=~\"{}\"", names.join("|")))
        .into_iter()
        .collect()
}

struct Checker<'a> {
    receivers: &'a [ReceiverSettings],
    problems: &'a mut Problems,
}

impl<'a> Checker<'a> {
    fn route(&mut self, cfg: &RouteConfig, parent: &Inherited, at: &str) -> Route {
        let matchers = self.matchers(cfg, at);
        let receiver = self.receiver(cfg, parent, at);
        let here = Inherited {
            receiver: receiver.map(|r| r.name.clone()),
            group_by: self.group_by(cfg, parent, at),
            timing: self.timing(cfg, parent.timing, at),
            send_resolved: cfg.send_resolved.or(parent.send_resolved),
        };
        let routes = cfg
            .routes
            .iter()
            .enumerate()
            .map(|(i, c)| self.route(c, &here, &format!("{at}.routes[{i}]")))
            .collect();
        Route {
            receiver: here.receiver.clone(),
            matchers,
            filter: receiver.map(severity_filter).unwrap_or_default(),
            continue_matching: cfg.continue_matching,
            group_by: here.group_by,
            timing: here.timing,
            send_resolved: here
                .send_resolved
                .unwrap_or_else(|| receiver.is_none_or(|r| r.send_resolved)),
            routes,
        }
    }

    fn matchers(&mut self, cfg: &RouteConfig, at: &str) -> Vec<Matcher> {
        let mut out = Vec::new();
        for (j, text) in cfg.matchers.iter().enumerate() {
            match Matcher::parse(text) {
                Ok(m) => out.push(m),
                Err(e) => self.problems.at(format!("{at}.matchers[{j}]"), e),
            }
        }
        out
    }

    fn receiver(
        &mut self,
        cfg: &RouteConfig,
        parent: &Inherited,
        at: &str,
    ) -> Option<&'a ReceiverSettings> {
        let name = cfg.receiver.as_ref().or(parent.receiver.as_ref())?;
        let receivers: &'a [ReceiverSettings] = self.receivers;
        let found = receivers.iter().find(|r| &r.name == name);
        if found.is_none() && cfg.receiver.is_some() {
            let known: Vec<String> = self
                .receivers
                .iter()
                .map(|r| format!("\"{}\"", r.name))
                .collect();
            let known = if known.is_empty() {
                "there are no [[receivers]]".to_string()
            } else {
                format!("receivers are {}", known.join(", "))
            };
            self.problems.at(
                format!("{at}.receiver"),
                format!("no receiver is named \"{name}\"; {known}"),
            );
        }
        found
    }

    fn group_by(&mut self, cfg: &RouteConfig, parent: &Inherited, at: &str) -> GroupBy {
        let Some(names) = &cfg.group_by else {
            return parent.group_by.clone();
        };
        if names.iter().any(|n| n == "...") {
            if names.len() > 1 {
                self.problems.at(
                    format!("{at}.group_by"),
                    "\"...\" groups by every label: it cannot be combined with other labels",
                );
            }
            return GroupBy::All;
        }
        for (j, n) in names.iter().enumerate() {
            if !is_valid_label_name(n) {
                self.problems.at(
                    format!("{at}.group_by[{j}]"),
                    format!("\"{n}\" is not a label name (letters, digits and _), nor \"...\""),
                );
            }
        }
        let mut names = names.clone();
        names.sort();
        names.dedup();
        GroupBy::Labels(names)
    }

    fn timing(&mut self, cfg: &RouteConfig, parent: Timing, at: &str) -> Timing {
        let pick = |v: &Option<HumanDuration>, d: Duration| v.as_ref().map_or(d, |h| h.0);
        let t = Timing {
            group_wait: pick(&cfg.group_wait, parent.group_wait),
            group_interval: pick(&cfg.group_interval, parent.group_interval),
            repeat_interval: pick(&cfg.repeat_interval, parent.repeat_interval),
        };
        if cfg.repeat_interval.is_some() && t.repeat_interval.is_zero() {
            self.problems
                .at(format!("{at}.repeat_interval"), "must be greater than 0");
        }
        t
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
