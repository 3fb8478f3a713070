//! [`AlertView`]: one pending or firing alert as `/api/v1/alerts` shows it, in the shape of
//! Prometheus' own alerts API (`labels`, `annotations`, `state`, `activeAt`, `value`), plus the
//! fingerprint and severity that receivers and people filter on.

use super::state::State;
use super::{Instance, Labels};
use crate::model::Severity;
use crate::notice::fingerprint;
use serde::{Serialize, Serializer};
use std::time::SystemTime;

/// One pending or firing alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    /// The alert's identifying labels.
    pub labels: Labels,
    /// `summary` and `description`, as last rendered.
    pub annotations: Labels,
    /// `pending` or `firing`.
    pub state: &'static str,
    /// When the condition started holding.
    #[serde(with = "crate::timefmt::rfc3339")]
    pub active_at: SystemTime,
    /// While kept firing after the condition stopped holding: since when.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_rfc3339"
    )]
    pub keep_firing_since: Option<SystemTime>,
    /// The last evaluated value, formatted as Prometheus does (`9.7000000000e-01`).
    pub value: String,
    /// Stable fingerprint of `labels`, as in notices.
    pub fingerprint: String,
    /// The alert's severity.
    pub severity: Severity,
    /// Fingerprints of the firing alerts that mute this one (inhibition); it is left out of
    /// notifications meanwhile. Absent when not muted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inhibited_by: Vec<String>,
    /// Ids of the active silences that mute this alert. Absent when not silenced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub silenced_by: Vec<String>,
}

fn optional_rfc3339<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&crate::timefmt::rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// The pending and firing alerts as last published, shared with the HTTP handlers.
#[derive(Debug, Default)]
pub struct Board {
    alerts: std::sync::RwLock<Vec<AlertView>>,
}

impl Board {
    /// Replaces the published alerts.
    pub fn set(&self, alerts: Vec<AlertView>) {
        *self.alerts.write().unwrap_or_else(|p| p.into_inner()) = alerts;
    }

    /// A copy of the published alerts.
    pub fn get(&self) -> Vec<AlertView> {
        self.alerts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The view of an instance; `None` for an inactive one (never stored).
pub(super) fn view(labels: &Labels, i: &Instance) -> Option<AlertView> {
    let (active_at, keep_firing_since) = match i.state {
        State::Inactive => return None,
        State::Pending { active_at } => (active_at, None),
        State::Firing {
            active_at,
            keep_firing_since,
            ..
        } => (active_at, keep_firing_since),
    };
    Some(AlertView {
        labels: labels.clone(),
        annotations: i.annotations.clone(),
        state: i.state.as_str(),
        active_at,
        keep_firing_since,
        value: go_float(i.value),
        fingerprint: fingerprint(labels),
        severity: i.severity,
        inhibited_by: Vec::new(),
        silenced_by: Vec::new(),
    })
}

/// Formats like Go's `strconv.FormatFloat(v, 'e', 10, 64)`, which Prometheus' API uses for
/// alert values: `9.7000000000e-01`, `+Inf`, `NaN`.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = format!("{v:.10e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::go_float;

    #[test]
    fn values_format_like_prometheus() {
        let cases = [
            (0.97, "9.7000000000e-01"),
            (1.0, "1.0000000000e+00"),
            (0.0, "0.0000000000e+00"),
            (50.0, "5.0000000000e+01"),
            (-3.5, "-3.5000000000e+00"),
            (1e-100, "1.0000000000e-100"),
            (f64::INFINITY, "+Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(go_float(v), want, "{v}");
        }
    }
}
