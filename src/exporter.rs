//! Prometheus exposition.
//!
//! Pool, target and fact families are rendered from the model per target, **at most once per
//! report**: a report only hands the target's entry to the [`Exposition`] (an `Arc` copy, no
//! text), and the first scrape after it renders the target's piece and caches it until the
//! target's next report. With 100 targets reporting every second and Prometheus scraping every
//! 15 – 60 s, most reports are never read, so rendering on report wasted most of its work
//! (BENCHMARKS.md 8.2). A scrape renders only the targets that reported since the last scrape,
//! outside every lock, then assembles the cached pieces and appends the process registry
//! (counters and histograms of polls, notifications and reloads). So a scrape costs at most one
//! render per target, and series of vanished pools and removed targets disappear by
//! construction. Per-pool families come from one table over the model
//! ([`POOL_FAMILIES`]); target-level families from each source's [`Fact`]s.

use crate::alert::AlertView;
use crate::model::metric::{FamilyType, POOL_FAMILIES};
use crate::model::{Fact, TargetState};
use crate::store::TargetEntry;
use prometheus::{Encoder, GaugeVec, IntGauge, Opts, Registry, TextEncoder};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

/// Process-lifetime gauges owned by the daemon (reload status, build info).
#[derive(Clone)]
pub struct DaemonMetrics {
    /// 1 when the last configuration reload succeeded.
    pub reload_ok: IntGauge,
    /// Unix time of the last successful (re)load.
    pub reload_time: IntGauge,
}

impl DaemonMetrics {
    /// Registers the daemon's own families, including `poolwatch_build_info`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let reload_ok = IntGauge::new(
            "poolwatch_config_last_reload_successful",
            "Whether the last configuration reload succeeded (1) or was refused (0).",
        )?;
        let reload_time = IntGauge::new(
            "poolwatch_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
        )?;
        let build = GaugeVec::new(
            Opts::new(
                "poolwatch_build_info",
                "poolwatch build information; always 1.",
            ),
            &["version"],
        )?;
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        registry.register(Box::new(reload_ok.clone()))?;
        registry.register(Box::new(reload_time.clone()))?;
        registry.register(Box::new(build))?;
        Ok(DaemonMetrics {
            reload_ok,
            reload_time,
        })
    }
}

/// A family's header: its HELP text and type.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Header {
    help: &'static str,
    kind: FamilyType,
}

/// Sample lines by family name, for one part of the exposition (a target, the alerts).
type Piece = BTreeMap<&'static str, (Header, String)>;

/// The rendered store: one piece per target and one for the alerts, replaced as reports
/// and alert changes come in (by the daemon loop, the only writer) and assembled per scrape.
#[derive(Debug, Default)]
pub struct Exposition {
    inner: RwLock<Pieces>,
}

#[derive(Debug, Default)]
struct Pieces {
    targets: BTreeMap<String, Slot>,
    alerts: Arc<Piece>,
    /// Stamps each target's entry, so that a piece rendered outside the lock is cached only if
    /// no report replaced its entry meanwhile.
    reports: u64,
}

/// A target's latest entry and, once a scrape rendered it, its piece.
#[derive(Debug)]
struct Slot {
    entry: TargetEntry,
    stamp: u64,
    piece: Option<Arc<Piece>>,
}

impl Exposition {
    /// Keeps `entry` as what target `name` shows; its piece is rendered by the next scrape.
    pub fn set_target(&self, name: &str, entry: &TargetEntry) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.reports += 1;
        let slot = Slot {
            entry: entry.clone(),
            stamp: inner.reports,
            piece: None,
        };
        inner.targets.insert(name.to_string(), slot);
    }

    /// Keeps only the pieces of `names` (after a reload removed targets).
    pub fn retain_targets(&self, names: &[String]) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.targets.retain(|n, _| names.contains(n));
    }

    /// Renders the pending and firing alerts.
    pub fn set_alerts(&self, alerts: &[AlertView]) {
        let piece = Arc::new(render_alerts(alerts));
        self.inner.write().unwrap_or_else(|p| p.into_inner()).alerts = piece;
    }

    /// The whole text exposition: every target's piece (rendered now for the targets that
    /// reported since the last scrape) and the alerts', then everything in `process`.
    pub fn render(&self, process: &Registry) -> String {
        let mut out = String::new();
        let pieces = self.pieces();
        let mut families: BTreeMap<&'static str, (Header, Vec<&str>)> = BTreeMap::new();
        for piece in &pieces {
            for (name, (header, lines)) in piece.iter() {
                let family = families.entry(name).or_insert((*header, Vec::new()));
                family.1.push(lines);
            }
        }
        for (name, (header, lines)) in families {
            let kind = match header.kind {
                FamilyType::Gauge => "gauge",
                FamilyType::Counter => "counter",
            };
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", header.help);
            lines.into_iter().for_each(|l| out.push_str(l));
        }
        let mut bytes = Vec::new();
        match TextEncoder::new().encode(&process.gather(), &mut bytes) {
            Ok(()) => out.push_str(&String::from_utf8_lossy(&bytes)),
            Err(e) => tracing::error!(error = %e, "encoding process metrics failed"),
        }
        out
    }
}

impl Exposition {
    /// Every target's piece, in target order, then the alerts'. The targets not rendered since
    /// their last report are rendered here, outside the lock, so the daemon loop replacing
    /// entries does not wait for them; a piece is cached unless a newer report came in
    /// meanwhile (it still serves this scrape). Only a target whose first report lands between
    /// the two looks is rendered under the lock.
    fn pieces(&self) -> Vec<Arc<Piece>> {
        let stale: Vec<(String, u64, TargetEntry)> = {
            let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
            let unrendered = inner.targets.iter().filter(|(_, s)| s.piece.is_none());
            unrendered
                .map(|(n, s)| (n.clone(), s.stamp, s.entry.clone()))
                .collect()
        };
        let rendered: Vec<(String, u64, Arc<Piece>)> = stale
            .into_iter()
            .map(|(name, stamp, entry)| {
                let piece = Arc::new(render_target(&name, &entry));
                (name, stamp, piece)
            })
            .collect();
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let mut fresh = BTreeMap::new();
        for (name, stamp, piece) in rendered {
            if let Some(slot) = inner.targets.get_mut(&name).filter(|s| s.stamp == stamp) {
                slot.piece = Some(piece.clone());
            }
            fresh.insert(name, piece);
        }
        let mut out: Vec<Arc<Piece>> = inner
            .targets
            .iter()
            .map(|(name, slot)| match (&slot.piece, fresh.remove(name)) {
                (Some(cached), _) => cached.clone(),
                (None, Some(rendered)) => rendered,
                (None, None) => Arc::new(render_target(name, &slot.entry)),
            })
            .collect();
        out.push(inner.alerts.clone());
        out
    }
}

/// Builds one piece: adds samples to families by name.
struct PieceBuilder {
    piece: Piece,
}

impl PieceBuilder {
    fn new() -> Self {
        PieceBuilder {
            piece: Piece::new(),
        }
    }

    fn sample(&mut self, name: &'static str, header: Header, labels: &[(&str, &str)], value: f64) {
        let (_, lines) = self
            .piece
            .entry(name)
            .or_insert_with(|| (header, String::new()));
        lines.push_str(name);
        if !labels.is_empty() {
            lines.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    lines.push(',');
                }
                let _ = write!(lines, "{k}=\"{}\"", escape(v));
            }
            lines.push('}');
        }
        let _ = writeln!(lines, " {}", number(value));
    }

    fn gauge(&mut self, name: &'static str, help: &'static str, labels: &[(&str, &str)], v: f64) {
        let header = Header {
            help,
            kind: FamilyType::Gauge,
        };
        self.sample(name, header, labels, v);
    }
}

/// A label value escaped for the text format (backslash, double quote, line feed).
pub fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// A sample value in the text format.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn bool_value(b: bool) -> f64 {
    f64::from(u8::from(b))
}

/// The target's state families, and its pools and facts while it is up.
fn render_target(name: &str, entry: &TargetEntry) -> Piece {
    let mut b = PieceBuilder::new();
    let t = [("target", name)];
    b.gauge(
        "poolwatch_target_up",
        "Whether the last poll of the target succeeded.",
        &t,
        // A target that answers its poll but refuses new clients because it is full (PgBouncer
        // at max_client_conn) is saturated and still polled: up.
        bool_value(entry.data.is_some()),
    );
    for s in TargetState::ALL {
        b.gauge(
            "poolwatch_target_state",
            "Target state, one series per state, 1 for the current one (saturated = refusing new clients because it is full).",
            &[("target", name), ("state", s.as_str())],
            bool_value(entry.state == s),
        );
    }
    if let Some(e) = &entry.error {
        b.gauge(
            "poolwatch_target_error",
            "1 for the error class of the last failed poll (too_many_connections for a target polled while it refuses new clients), present while the target's state is not up.",
            &[("target", name), ("class", e.class.as_str())],
            1.0,
        );
    }
    if let Some(t) = entry.last_success {
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        b.gauge(
            "poolwatch_target_last_success_timestamp_seconds",
            "Unix time of the last successful poll.",
            &[("target", name)],
            secs,
        );
    }
    let Some(data) = &entry.data else {
        return b.piece;
    };
    for f in &data.facts {
        fact(&mut b, name, f);
    }
    for family in &POOL_FAMILIES {
        let header = Header {
            help: family.help,
            kind: family.kind,
        };
        for p in &data.pools {
            if let Some(v) = (family.value)(p) {
                let labels = [
                    ("target", name),
                    ("kind", p.id.kind.as_str()),
                    ("pool", p.id.name.as_str()),
                ];
                b.sample(family.name, header, &labels, v);
            }
        }
    }
    b.piece
}

fn fact(b: &mut PieceBuilder, target: &str, f: &Fact) {
    let mut labels: Vec<(&str, &str)> = vec![("target", target)];
    labels.extend(f.labels.iter().map(|(k, v)| (*k, v.as_str())));
    b.gauge(f.name, f.help, &labels, f.value);
}

fn render_alerts(alerts: &[AlertView]) -> Piece {
    let mut b = PieceBuilder::new();
    for a in alerts {
        let get = |k: &str| a.labels.get(k).map(String::as_str).unwrap_or("");
        b.gauge(
            "poolwatch_alerts",
            "Pending and firing alerts, 1 per alert.",
            &[
                ("alertname", get("alertname")),
                ("severity", get("severity")),
                ("target", get("target")),
                ("kind", get("kind")),
                ("pool", get("pool")),
                ("state", a.state),
            ],
            1.0,
        );
    }
    b.piece
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_labels_are_written_in_the_text_format() {
        let cases = [
            (1.0, "1"),
            (0.5, "0.5"),
            (97.0, "97"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(number(v), want);
        }
        assert_eq!(escape(r#"a"b\c"#.to_owned().as_str()), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), r"x\ny");
    }

    /// An entry of `target` up with one pool of `in_use` of 10.
    fn entry(target: &str, in_use: u64) -> TargetEntry {
        let id = crate::model::PoolId {
            target: target.into(),
            kind: crate::source::app::APP,
            name: "p".into(),
        };
        let data = crate::model::PollData {
            pools: vec![crate::model::PoolSnapshot::new(id, 10, in_use)],
            ..Default::default()
        };
        TargetEntry {
            state: TargetState::polled(&data),
            data: Some(Arc::new(data)),
            polled: true,
            ..Default::default()
        }
    }

    fn in_use_lines(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| l.starts_with("poolwatch_pool_in_use{"))
            .collect()
    }

    /// A report is rendered by the next scrape, cached until the target's next report, and a
    /// removed target's piece is gone; the text is the same as a render on every report gave.
    #[test]
    fn a_scrape_renders_what_was_reported_since_the_last_one() {
        let (x, registry) = (Exposition::default(), Registry::new());
        x.set_target("b", &entry("b", 2));
        x.set_target("a", &entry("a", 1));
        let first = x.render(&registry);
        let want = [
            r#"poolwatch_pool_in_use{target="a",kind="app",pool="p"} 1"#,
            r#"poolwatch_pool_in_use{target="b",kind="app",pool="p"} 2"#,
        ];
        assert_eq!(in_use_lines(&first), want);
        let pieces = |x: &Exposition| {
            let inner = x.inner.read().unwrap();
            inner.targets.values().filter(|s| s.piece.is_some()).count()
        };
        assert_eq!(pieces(&x), 2, "both cached");
        assert_eq!(x.render(&registry), first, "a second scrape is the same");
        x.set_target("a", &entry("a", 7));
        assert_eq!(pieces(&x), 1, "a's report dropped its cached piece");
        let second = x.render(&registry);
        assert_eq!(in_use_lines(&second)[0], want[0].replace("} 1", "} 7"));
        x.retain_targets(&["a".to_string()]);
        assert_eq!(in_use_lines(&x.render(&registry)).len(), 1);
        // The render on report, as it was: the same text.
        let mut by_hand = Exposition::default();
        by_hand.inner.get_mut().unwrap().targets.insert(
            "a".into(),
            Slot {
                entry: entry("a", 7),
                stamp: 0,
                piece: Some(Arc::new(render_target("a", &entry("a", 7)))),
            },
        );
        assert_eq!(by_hand.render(&registry), x.render(&registry));
    }
}
