//! The routing tree, with Alertmanager's semantics: an alert enters at the root; a route whose
//! matchers hold tries its children in order; the first child that matches takes the alert
//! (and its own children do the same), unless that child has `continue`, in which case the next
//! siblings are tried too; a matching route none of whose children match takes the alert itself.
//!
//! Settings (`receiver`, `group_by`, timing, `send_resolved`) are inherited when the tree is
//! built ([`super::config`]), so every [`Route`] here holds its effective values.

use super::gofmt;
use super::Labels;
use crate::rules::matcher::Matcher;
use std::collections::BTreeMap;
use std::time::Duration;

/// Which labels make an alert's group within a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// `group_by = ["..."]`: every label, so every alert is its own group.
    All,
    /// These labels (a label an alert lacks is left out of its group's labels); empty: one group
    /// per route.
    Labels(Vec<String>),
}

impl GroupBy {
    /// The group labels of an alert with `labels`.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match self {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        }
    }
}

/// When a group is flushed and a notification repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a new group waits for more alerts before its first notification.
    pub group_wait: Duration,
    /// How long after a flush the group is looked at again (changes are sent then).
    pub group_interval: Duration,
    /// How long after a notification an unchanged, still-firing group is notified again.
    pub repeat_interval: Duration,
}

/// One route with its effective (inherited) settings.
#[derive(Debug, Clone)]
pub struct Route {
    /// Who gets this route's notifications; `None` drops them (a root without receiver).
    pub receiver: Option<String>,
    /// What an alert must satisfy to take this route; part of the route's key.
    pub matchers: Vec<Matcher>,
    /// Further conditions that are not part of the key: the receiver's `severities`.
    pub filter: Vec<Matcher>,
    /// After this route matched, its next siblings are tried too.
    pub continue_matching: bool,
    /// How its alerts are grouped.
    pub group_by: GroupBy,
    /// Its timing.
    pub timing: Timing,
    /// Whether notifications that resolve alerts are sent.
    pub send_resolved: bool,
    /// Children, tried in order.
    pub routes: Vec<Route>,
}

/// A route of a built tree: the route's settings, its key and its children's indices.
#[derive(Debug, Clone)]
pub struct Node {
    /// Alertmanager's route key: the parent's key, `/`, the matchers (`{}` for the root).
    pub key: String,
    /// The route's settings (its `routes` emptied: see `children`).
    pub route: Route,
    /// Indices of the children in [`RouteTree::nodes`].
    children: Vec<usize>,
}

/// The routing tree, flattened in pre-order (the root is node 0), and the integrations of the
/// receivers it names.
#[derive(Debug, Clone)]
pub struct RouteTree {
    nodes: Vec<Node>,
    /// Each receiver's integration names: a route to a receiver makes one group per
    /// integration. A receiver without any gets no groups.
    integrations: BTreeMap<String, Vec<String>>,
    /// (receiver, integration) that must be sent a still-firing group at least this often
    /// (an Alertmanager's `resend_interval`).
    resend: BTreeMap<(String, String), Duration>,
}

impl RouteTree {
    /// Builds the tree under `root`, with no integrations yet (see
    /// [`RouteTree::with_integrations`]).
    pub fn new(root: Route) -> RouteTree {
        let mut tree = RouteTree {
            nodes: Vec::new(),
            integrations: BTreeMap::new(),
            resend: BTreeMap::new(),
        };
        tree.add(root, None);
        tree
    }

    /// The tree with each receiver's integration names (receiver name, integration names).
    pub fn with_integrations(
        mut self,
        integrations: impl IntoIterator<Item = (String, Vec<String>)>,
    ) -> RouteTree {
        self.integrations = integrations.into_iter().collect();
        self
    }

    /// The tree with the integrations (receiver name, integration name) that re-send a
    /// still-firing group at least every so often.
    pub fn with_resend(
        mut self,
        resend: impl IntoIterator<Item = ((String, String), Duration)>,
    ) -> RouteTree {
        self.resend = resend.into_iter().collect();
        self
    }

    /// The timing of a group of route `index` for `receiver`'s `integration`: the route's,
    /// with `group_interval` and `repeat_interval` at most the integration's resend interval.
    /// `None` for an index out of range.
    pub fn timing(&self, index: usize, receiver: &str, integration: &str) -> Option<Timing> {
        let mut timing = self.nodes.get(index)?.route.timing;
        let key = (receiver.to_string(), integration.to_string());
        if let Some(&every) = self.resend.get(&key) {
            timing.group_interval = timing.group_interval.min(every);
            timing.repeat_interval = timing.repeat_interval.min(every);
        }
        Some(timing)
    }

    /// Whether `receiver`'s `integration` re-sends still-firing groups on a schedule of its own.
    pub fn resends(&self, receiver: &str, integration: &str) -> bool {
        self.resend
            .contains_key(&(receiver.to_string(), integration.to_string()))
    }

    /// The integration names of `receiver`, in configuration order.
    pub fn integrations(&self, receiver: &str) -> &[String] {
        self.integrations.get(receiver).map_or(&[], Vec::as_slice)
    }

    fn add(&mut self, mut route: Route, parent_key: Option<&str>) -> usize {
        let key = match parent_key {
            None => gofmt::matchers(&route.matchers),
            Some(p) => format!("{p}/{}", gofmt::matchers(&route.matchers)),
        };
        let children = std::mem::take(&mut route.routes);
        let index = self.nodes.len();
        self.nodes.push(Node {
            key: key.clone(),
            route,
            children: Vec::new(),
        });
        for child in children {
            let c = self.add(child, Some(&key));
            self.nodes[index].children.push(c);
        }
        index
    }

    /// Every route, root first.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The routes that take an alert with `labels`, as node indices in match order.
    pub fn matching(&self, labels: &Labels) -> Vec<usize> {
        self.match_node(0, labels)
    }

    /// The tree as text, one line per route, children indented under their parent: matchers,
    /// receiver and its integrations, `continue`, grouping and timing (for `check-config`).
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.nodes.len());
        self.describe_node(0, 0, &mut out);
        out
    }

    fn describe_node(&self, index: usize, depth: usize, out: &mut Vec<String>) {
        let Some(node) = self.nodes.get(index) else {
            return;
        };
        let r = &node.route;
        let mut line = format!("{}{}", "  ".repeat(depth), gofmt::matchers(&r.matchers));
        if !r.filter.is_empty() {
            line += &format!(" and {}", gofmt::matchers(&r.filter));
        }
        match &r.receiver {
            Some(name) => {
                line += &format!(" -> {name} ({})", self.integrations(name).join(", "));
            }
            None => line += " -> (no receiver)",
        }
        if r.continue_matching {
            line += ", continue";
        }
        let group_by = match &r.group_by {
            GroupBy::All => "...".to_string(),
            GroupBy::Labels(names) => names.join(", "),
        };
        let human = crate::timefmt::human;
        line += &format!(
            ", group_by [{group_by}], wait {}, interval {}, repeat {}",
            human(r.timing.group_wait),
            human(r.timing.group_interval),
            human(r.timing.repeat_interval)
        );
        if !r.send_resolved {
            line += ", resolved not sent";
        }
        out.push(line);
        for &child in &node.children {
            self.describe_node(child, depth + 1, out);
        }
    }

    fn match_node(&self, index: usize, labels: &Labels) -> Vec<usize> {
        let node = &self.nodes[index];
        let r = &node.route;
        if !r
            .matchers
            .iter()
            .chain(&r.filter)
            .all(|m| m.matches(labels))
        {
            return Vec::new();
        }
        let mut all = Vec::new();
        for &c in &node.children {
            let matched = self.match_node(c, labels);
            let stop = !matched.is_empty() && !self.nodes[c].route.continue_matching;
            all.extend(matched);
            if stop {
                break;
            }
        }
        if all.is_empty() {
            all.push(index);
        }
        all
    }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
