//! Prometheus exposition. Pool and target gauges are rendered from the [`Store`] at scrape time
//! into a fresh registry, so series of vanished pools and removed targets disappear by
//! construction; counters and histograms (polls, notifications, reloads) live in the process
//! registry and are gathered alongside.

use crate::model::TargetState;
use crate::store::Store;
use prometheus::{Encoder, GaugeVec, IntGauge, Opts, Registry, TextEncoder};

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

struct Families {
    reg: Registry,
}

impl Families {
    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        let g = GaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
        self.reg
            .register(Box::new(g.clone()))
            .expect("unique metric name");
        g
    }
}

/// Renders the text exposition: store-derived gauges plus everything in `process`.
pub fn render(store: &Store, process: &Registry) -> String {
    let f = Families {
        reg: Registry::new(),
    };
    let pool_labels = &["target", "kind", "pool"];
    let up = f.gauge(
        "poolwatch_target_up",
        "Whether the last poll of the target succeeded.",
        &["target"],
    );
    let state = f.gauge(
        "poolwatch_target_state",
        "Target state, one series per state, 1 for the current one (saturated = refusing connections with SQLSTATE 53300).",
        &["target", "state"],
    );
    let last_error = f.gauge(
        "poolwatch_target_error",
        "1 for the error class of the last failed poll, present while the target is not up.",
        &["target", "class"],
    );
    let last_success = f.gauge(
        "poolwatch_target_last_success_timestamp_seconds",
        "Unix time of the last successful poll.",
        &["target"],
    );
    let max_conn = f.gauge(
        "poolwatch_server_max_connections",
        "The server's max_connections.",
        &["target"],
    );
    let reserved = f.gauge(
        "poolwatch_server_reserved_connections",
        "Connection slots reserved: for superusers, and (PostgreSQL 16+) for pg_use_reserved_connections.",
        &["target", "for"],
    );
    let capacity = f.gauge(
        "poolwatch_pool_capacity",
        "Usable connection limit of the pool.",
        pool_labels,
    );
    let in_use = f.gauge(
        "poolwatch_pool_in_use",
        "Connections taken out of the pool's capacity (server-side pools: every client backend, whatever its state).",
        pool_labels,
    );
    let idle = f.gauge(
        "poolwatch_pool_idle",
        "Open connections doing no work.",
        pool_labels,
    );
    let waiting = f.gauge(
        "poolwatch_pool_waiting",
        "Clients queued for a connection.",
        pool_labels,
    );
    let util = f.gauge(
        "poolwatch_pool_utilization_ratio",
        "in_use / capacity.",
        pool_labels,
    );
    let iit = f.gauge(
        "poolwatch_pool_idle_in_transaction",
        "Sessions idle in transaction (holding a slot and locks while doing nothing).",
        pool_labels,
    );
    let oldest_iit = f.gauge(
        "poolwatch_pool_oldest_idle_in_transaction_seconds",
        "Age of the oldest idle-in-transaction session's current state; 0 when there is none.",
        pool_labels,
    );
    let oldest_xact = f.gauge(
        "poolwatch_pool_oldest_transaction_seconds",
        "Age of the oldest open transaction; 0 when there is none.",
        pool_labels,
    );
    let locks = f.gauge(
        "poolwatch_pool_lock_waiting",
        "Sessions waiting on a lock.",
        pool_labels,
    );
    let by_state = f.gauge(
        "poolwatch_server_connections",
        "Client backends on the server by state (poolwatch's own session excluded).",
        &["target", "state"],
    );
    let alerts = f.gauge(
        "poolwatch_alerts",
        "Pending and firing alerts, 1 per alert.",
        &["alertname", "severity", "target", "kind", "pool", "state"],
    );

    for (name, entry) in store.targets() {
        up.with_label_values(&[&name])
            .set(f64::from(u8::from(entry.state == TargetState::Up)));
        for s in TargetState::ALL {
            state
                .with_label_values(&[&name, s.as_str()])
                .set(f64::from(u8::from(entry.state == s)));
        }
        if let Some(e) = &entry.error {
            last_error
                .with_label_values(&[&name, e.class.as_str()])
                .set(1.0);
        }
        if let Some(t) = entry.last_success {
            let secs = t
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            last_success.with_label_values(&[&name]).set(secs);
        }
        let Some(data) = &entry.data else { continue };
        max_conn
            .with_label_values(&[&name])
            .set(data.server.max_connections as f64);
        reserved
            .with_label_values(&[&name, "superuser"])
            .set(data.server.superuser_reserved_connections as f64);
        reserved
            .with_label_values(&[&name, "pg_use_reserved_connections"])
            .set(data.server.reserved_connections as f64);
        for p in &data.pools {
            let l = [p.id.target.as_str(), p.id.kind.as_str(), p.id.name.as_str()];
            capacity.with_label_values(&l).set(p.capacity as f64);
            in_use.with_label_values(&l).set(p.in_use as f64);
            idle.with_label_values(&l).set(p.idle as f64);
            waiting.with_label_values(&l).set(p.waiting as f64);
            util.with_label_values(&l).set(p.utilization());
            iit.with_label_values(&l).set(p.idle_in_transaction as f64);
            oldest_iit.with_label_values(&l).set(
                p.oldest_idle_in_transaction
                    .map_or(0.0, |d| d.as_secs_f64()),
            );
            oldest_xact
                .with_label_values(&l)
                .set(p.oldest_transaction.map_or(0.0, |d| d.as_secs_f64()));
            locks.with_label_values(&l).set(p.lock_waiting as f64);
            if p.id.kind == crate::model::PoolKind::Server {
                for (st, n) in &p.by_state {
                    by_state.with_label_values(&[&name, st]).set(*n as f64);
                }
            }
        }
    }
    for a in store.alerts() {
        let get = |k: &str| a.labels.get(k).map(String::as_str).unwrap_or("");
        alerts
            .with_label_values(&[
                get("alertname"),
                get("severity"),
                get("target"),
                get("kind"),
                get("pool"),
                a.state,
            ])
            .set(1.0);
    }

    let mut families = f.reg.gather();
    families.extend(process.gather());
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    String::from_utf8(out).unwrap_or_default()
}
