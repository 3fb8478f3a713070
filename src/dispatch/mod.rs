//! Alert dispatch shaped like Alertmanager's: the engine's current alert set goes through a
//! tree of routes into aggregation groups; each group, when due, is checked against the
//! notification log and, if something is worth telling, becomes one [`Notification`] for its
//! route's receiver.
//!
//! # Layout
//!
//! * [`route`] — [`RouteTree`]: matchers choosing receivers, `continue`, `group_by`, timing.
//! * [`config`] — `[route]` and `[[route.routes]]` resolved and validated into a [`RouteTree`];
//!   without `[route]`, a tree that gives every receiver every alert, one per notification.
//! * [`nflog`] — the notification log and [`should_notify`], the pure dedup decision.
//! * [`group`] — one aggregation group: the alerts it holds and when it flushes next.
//! * [`inhibit`] — `[[inhibit_rules]]` and the built-in one: which firing alerts are muted.
//! * [`silence`] — silences (matchers, author, comment, end): more muted alerts.
//! * [`notification`] — [`Notification`]: a group's state as sent, with its stable id.
//! * [`dispatcher`] — [`Dispatcher`]: alert set in, notifications out, acknowledgements in.
//! * [`gofmt`] — label sets and matchers printed as Alertmanager prints them (group keys).
//!
//! Everything here is pure: time is an argument, nothing does I/O. The daemon owns the
//! [`Dispatcher`], hands notifications to [`crate::notify`] and feeds delivery outcomes back.

pub mod config;
pub mod dispatcher;
pub mod gofmt;
pub mod group;
pub mod inhibit;
pub mod nflog;
pub mod notification;
pub mod route;
pub mod silence;

pub use dispatcher::{Dispatcher, Outcome, SavedDispatch};
pub use nflog::{should_notify, Reason};
pub use notification::Notification;
pub use route::RouteTree;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// A label set.
pub type Labels = BTreeMap<String, String>;

/// Where an alert of the published set is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Its condition holds, not yet for `for`: published, never dispatched.
    Pending,
    /// It fires.
    Firing,
    /// It stopped firing at `ends_at` (kept for a retention period).
    Resolved,
}

/// One alert of the set the engine publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Identifying labels.
    pub labels: Labels,
    /// `summary` and `description` as last rendered.
    pub annotations: Labels,
    /// Pending, firing or resolved.
    pub state: AlertState,
    /// When its condition started holding.
    pub starts_at: SystemTime,
    /// When it resolved; `None` unless resolved.
    pub ends_at: Option<SystemTime>,
    /// Stable fingerprint of `labels` ([`crate::notice::fingerprint`]).
    pub fingerprint: String,
}

impl Alert {
    /// True while firing.
    pub fn is_firing(&self) -> bool {
        self.state == AlertState::Firing
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::route::{GroupBy, Route, Timing};
    use super::{Alert, AlertState, Labels};
    use crate::notice::fingerprint;
    use crate::rules::fixtures::t;
    use crate::rules::matcher::Matcher;
    use std::time::Duration;

    /// A firing alert named `name` with extra `pairs`, active since `t(start)`.
    pub(crate) fn firing(name: &str, pairs: &[(&str, &str)], start: u64) -> Alert {
        let mut labels: Labels = crate::rules::fixtures::labels(pairs);
        labels.insert("alertname".into(), name.into());
        Alert {
            fingerprint: fingerprint(&labels),
            labels,
            annotations: Labels::from([("summary".into(), format!("{name} fires"))]),
            state: AlertState::Firing,
            starts_at: t(start),
            ends_at: None,
        }
    }

    /// A first notification of `alerts` to `receiver`'s `integration`, group `group_key`, id
    /// `id`, with no group labels and nothing acknowledged yet.
    pub(crate) fn notification(
        receiver: &str,
        integration: &str,
        group_key: &str,
        alerts: Vec<Alert>,
    ) -> super::Notification {
        super::Notification {
            receiver: receiver.into(),
            integration: integration.into(),
            group_key: group_key.into(),
            id: "0123456789abcdef".into(),
            reason: super::Reason::FirstNotification,
            group_labels: Labels::new(),
            alerts,
            firing: Default::default(),
            resolved: Default::default(),
        }
    }

    /// A route to `receiver` with `matchers`, no grouping, no waits, a 1 h repeat.
    pub(crate) fn route(
        receiver: &str,
        matchers: &[&str],
        cont: bool,
        routes: Vec<Route>,
    ) -> Route {
        Route {
            receiver: Some(receiver.into()),
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap())
                .collect(),
            filter: Vec::new(),
            continue_matching: cont,
            group_by: GroupBy::Labels(vec![]),
            timing: Timing {
                group_wait: Duration::ZERO,
                group_interval: Duration::ZERO,
                repeat_interval: Duration::from_secs(3600),
            },
            send_resolved: true,
            routes,
        }
    }

    /// The tree under `root`, every receiver it names with one integration, `webhook`.
    pub(crate) fn tree(root: Route) -> super::RouteTree {
        fn names(r: &Route, out: &mut Vec<String>) {
            out.extend(r.receiver.clone());
            r.routes.iter().for_each(|c| names(c, out));
        }
        let mut receivers = Vec::new();
        names(&root, &mut receivers);
        super::RouteTree::new(root).with_integrations(
            receivers
                .into_iter()
                .map(|r| (r, vec!["webhook".to_string()])),
        )
    }

    /// `alert` resolved at `t(end)`.
    pub(crate) fn resolved(mut alert: Alert, end: u64) -> Alert {
        alert.state = AlertState::Resolved;
        alert.ends_at = Some(t(end));
        alert
    }
}
