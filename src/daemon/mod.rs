//! The daemon: wires sources, store, alert engine, notifier and HTTP server together, and owns
//! the lifecycle — SIGTERM/SIGINT stop polling, flush notifications up to a deadline and exit 0;
//! SIGHUP reloads, keeping the running configuration when the new one is invalid. An application
//! that pushes without a target of its own may be given one (`adopt.rs`).
//!
//! One task (this loop) is the only writer of alert state, the dispatcher and the store; sources
//! only send reports, the notifier only receives notifications and reports deliveries back, so
//! nothing here waits on a receiver. After every report (and every second) the engine's alert
//! set goes through the [`Dispatcher`]; its notifications go to the receivers.

use crate::alert::{Board, Engine};
use crate::config::values::Problem;
use crate::dispatch::silence::SilenceStore;
use crate::dispatch::{Dispatcher, Outcome};
use crate::exporter::{DaemonMetrics, Exposition};
use crate::fdlimit;
use crate::http::{self, AppState};
use crate::model::TargetReport;
use crate::notice::Notice;
use crate::notify::{NotifyMetrics, ReceiverSet};
use crate::settings::{self, Config};
use crate::source::target::SourceSettings;
use crate::source::{push, SourceMetrics, TargetSettings};
use crate::store::Store;
use prometheus::Registry;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

mod adopt;
mod reload;
mod state;

use reload::{finish, read_config, Reloading};
use state::{load_state, StateWriter};

/// A running source task.
struct Running {
    settings: TargetSettings,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Everything the loop owns.
struct Daemon {
    /// The config file, read again on SIGHUP.
    path: PathBuf,
    /// What HTTP handlers read; written only here.
    store: Arc<Store>,
    /// The alerts published for `/api/v1/alerts`; written only here.
    board: Arc<Board>,
    /// The store as `/metrics` shows it: each report hands over its target's entry, a scrape
    /// renders what changed; written only here.
    exposition: Arc<Exposition>,
    /// All alert state; owned by this loop alone.
    engine: Engine,
    /// Routes, groups and the notification log; owned by this loop alone.
    dispatcher: Dispatcher,
    /// The silences, changed by the HTTP API; applied and saved here.
    silences: Arc<SilenceStore>,
    /// The version of `silences` the dispatcher has.
    silences_seen: u64,
    /// One notifier per receiver: a reload replaces only the receivers that changed, so an
    /// unchanged receiver that is down keeps what is queued for it.
    receivers: ReceiverSet,
    /// The running source task of every target.
    sources: BTreeMap<String, Running>,
    /// Each target's extra alert labels, applied without restarting its source.
    labels: HashMap<String, BTreeMap<String, String>>,
    /// `[[links]]`: each report's ceiling pools carry the budget of what is linked to them.
    links: Vec<crate::link::Link>,
    /// Cloned into every source task.
    reports: mpsc::Sender<TargetReport>,
    /// Registered once; shared by source tasks across reloads.
    source_metrics: SourceMetrics,
    /// What applications pushed, shared with the HTTP handler; kept across reloads.
    pushed: Arc<push::Registry>,
    /// Reload status gauges.
    daemon_metrics: DaemonMetrics,
    /// `http://<hostname>:<bound port>`: the `external_url` of a config that sets none.
    default_external_url: String,
    /// Where alert state is saved, if anywhere.
    state_file: Option<PathBuf>,
    /// Writes the state file off this loop.
    state_writer: StateWriter,
    /// How long queued notices may take to flush at shutdown.
    flush_timeout: Duration,
    /// The bound address (a reload cannot move it).
    listen: std::net::SocketAddr,
    /// The HTTP server's limits, changed by a reload.
    http: http::Server,
}

/// Prints configuration problems, one per line, to standard error.
pub fn print_problems(problems: &[Problem]) {
    for p in problems {
        eprintln!("{p}");
    }
    eprintln!("{} problem(s) found", problems.len());
}

/// Runs the daemon until SIGTERM/SIGINT. Returns the process exit code: 0 after a clean
/// shutdown, 2 for an invalid configuration, 1 when it cannot start (e.g. the port is taken).
pub async fn run(path: &Path) -> i32 {
    let config = match settings::load(path) {
        Ok(c) => c,
        Err(problems) => {
            print_problems(&problems);
            return 2;
        }
    };
    match start(config).await {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "poolwatch cannot start");
            eprintln!("poolwatch: {e:#}");
            1
        }
    }
}

async fn start(config: Config) -> anyhow::Result<i32> {
    use anyhow::Context;
    // Before anything is announced: a SIGHUP or SIGTERM sent once the `listening on` line is
    // out must not meet the default action (which kills the process), however long the rest
    // of the start-up takes. A signal that arrives before the loop runs waits for it.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let registry = Registry::new();
    let source_metrics = SourceMetrics::new(&registry)?;
    let notify_metrics = NotifyMetrics::new(&registry)?;
    let daemon_metrics = DaemonMetrics::new(&registry)?;
    let pushed = Arc::new(push::Registry::new(&registry)?);
    let taken = other_targets(&config.targets);
    pushed.configure(push_targets(&config.targets), &taken, SystemTime::now());
    // Applications created by their first push (`accept_unknown`) are started by this loop.
    let (adopt_tx, mut adopted) = mpsc::unbounded_channel::<String>();
    pushed.set_adopter(adopt_tx);
    // Before any descriptor is opened for targets, receivers or HTTP clients.
    fdlimit::raise_soft_to_hard();
    let http_limits = fdlimit::fit_http(config.http, config.targets.len(), config.receivers.len());
    let http_server = http::Server::new(http_limits, &registry)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let bound = listener.local_addr()?;
    tracing::info!("listening on {bound}");
    let default_external_url = format!("http://{}:{}", hostname(), bound.port());
    let external_url = config
        .external_url
        .clone()
        .unwrap_or_else(|| default_external_url.clone());

    let store = Arc::new(Store::new(config.targets.iter().map(|t| t.name.as_str())));
    let exposition = Arc::new(Exposition::default());
    for (name, entry) in store.targets() {
        exposition.set_target(&name, &entry);
    }
    let (stop_http, http_stop_rx) = watch::channel(false);
    let board = Arc::new(Board::default());
    let silences = Arc::new(SilenceStore::default());
    let app = Arc::new(AppState {
        silences: silences.clone(),
        disabled: notify_metrics.disabled(),
        store: store.clone(),
        alerts: board.clone(),
        exposition: exposition.clone(),
        registry: registry.clone(),
        pushed: pushed.clone(),
    });
    let http_task = tokio::spawn(http_server.clone().serve(listener, app, http_stop_rx));

    let (tx, mut rx) = mpsc::channel::<TargetReport>(1024);
    let Config {
        path,
        listen,
        alerting,
        history,
        targets,
        rules,
        receivers,
        links,
        routes,
        inhibit_rules,
        ..
    } = config;
    store.set_windows(
        sample_window(history.window.0, &rules),
        capacity_horizon(&rules),
    );
    let mut engine = Engine::new(rules);
    let mut dispatcher = Dispatcher::new(routes);
    dispatcher.set_inhibit_rules(inhibit_rules);
    if let Some(file) = &alerting.state_file {
        load_state(&mut engine, &mut dispatcher, &silences, &store, file);
    }
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel::<Outcome>();
    let receivers = ReceiverSet::start(receivers, external_url, notify_metrics, outcomes_tx);
    let mut d = Daemon {
        path,
        store,
        board,
        exposition,
        engine,
        dispatcher,
        silences,
        silences_seen: u64::MAX,
        receivers,
        sources: BTreeMap::new(),
        labels: HashMap::new(),
        links,
        reports: tx,
        source_metrics,
        pushed,
        daemon_metrics,
        default_external_url,
        state_file: alerting.state_file.clone(),
        state_writer: StateWriter::start().context("cannot start the state file writer")?,
        flush_timeout: alerting.shutdown_flush_timeout.0,
        listen,
        http: http_server,
    };
    // Alerts restored from the state file for targets no longer configured would otherwise
    // stay firing for ever: resolve them now.
    let configured: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    let mut gone: Vec<String> = d
        .engine
        .alerts()
        .iter()
        .filter_map(|a| a.labels.get("target"))
        .filter(|t| !configured.contains(&t.as_str()))
        .cloned()
        .collect();
    gone.sort();
    gone.dedup();
    for name in gone {
        let notices = d.engine.remove_target(SystemTime::now(), &name);
        d.dispatch(notices);
    }
    // Restored alerts of rules that are gone, or saved under other labels, are brought in line
    // with this configuration as a reload would.
    let notices = d
        .engine
        .reconcile(SystemTime::now(), &labels_by_target(&targets));
    d.dispatch(notices);
    for t in targets {
        d.start_source(t);
    }
    d.daemon_metrics.reload_ok.set(1);
    d.daemon_metrics.reload_time.set(unix_now());
    d.publish_alerts();
    d.route_alerts();
    tracing::info!(targets = d.sources.len(), "poolwatch started");

    // A source task only ends when told to; one that ended by itself (a panic) is restarted,
    // so that a bug in polling one target never leaves it frozen as "up" with stale numbers.
    let mut watchdog = tokio::time::interval(Duration::from_secs(1));
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Alert state is saved with every notice; pending alerts and capacity history change
    // without one, so they are saved every 30 seconds too.
    let mut periodic_save = tokio::time::interval(Duration::from_secs(30));
    periodic_save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Groups are due at their own times (group_wait, group_interval, repeat_interval): looked
    // at every second, and after every report.
    let mut dispatch_tick = tokio::time::interval(Duration::from_secs(1));
    dispatch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A reload reads files (config, secrets, certificates) off this loop: while it runs, reports
    // are still evaluated and SIGTERM still ends the daemon. A SIGHUP meanwhile reads again
    // once the running reload is applied, so the last file written is the one that counts.
    let mut reloading: Option<Reloading> = None;
    let mut reload_again = false;
    loop {
        tokio::select! {
            Some(report) = rx.recv() => d.on_report(report),
            Some(application) = adopted.recv() => d.adopt(application),
            _ = watchdog.tick() => d.restart_dead_sources(),
            _ = periodic_save.tick() => d.save_state(),
            _ = dispatch_tick.tick() => { d.route_alerts(); }
            Some(outcome) = outcomes.recv() => d.on_outcome(&outcome),
            _ = sighup.recv() => match reloading {
                Some(_) => reload_again = true,
                None => reloading = Some(read_config(&d.path)),
            },
            loaded = finish(&mut reloading, &d.path), if reloading.is_some() => {
                reloading = None;
                d.reload(loaded).await;
                if std::mem::take(&mut reload_again) {
                    reloading = Some(read_config(&d.path));
                }
            }
            _ = sigterm.recv() => { tracing::info!("SIGTERM: shutting down"); break }
            _ = sigint.recv() => { tracing::info!("SIGINT: shutting down"); break }
        }
    }
    d.shutdown(&mut outcomes).await;
    let _ = stop_http.send(true);
    let _ = http_task.await;
    tracing::info!("poolwatch stopped");
    Ok(0)
}

impl Daemon {
    fn start_source(&mut self, t: TargetSettings) {
        let (stop, stop_rx) = watch::channel(false);
        self.source_metrics.init_target(&t.name);
        self.labels.insert(t.name.clone(), t.labels.clone());
        let task = t.spawn(
            &self.pushed,
            self.source_metrics.clone(),
            self.reports.clone(),
            stop_rx,
        );
        tracing::info!(target_name = %t.name, kind = t.kind(), endpoint = %t.endpoint(), interval = ?t.cadence.interval, "watching target");
        self.sources.insert(
            t.name.clone(),
            Running {
                settings: t,
                stop,
                task,
            },
        );
    }

    fn restart_dead_sources(&mut self) {
        let dead: Vec<String> = self
            .sources
            .iter()
            .filter(|(_, r)| r.task.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        for name in dead {
            if let Some(r) = self.sources.remove(&name) {
                tracing::error!(target_name = %name, "the polling task of this target stopped unexpectedly; restarting it");
                self.start_source(r.settings);
            }
        }
    }

    async fn stop_source(&mut self, name: &str) {
        if let Some(r) = self.sources.remove(name) {
            let _ = r.stop.send(true);
            // A source stops at once, even mid-connect or mid-poll; this limit is a safety net.
            let limit = r.settings.stop_bound();
            let abort = r.task.abort_handle();
            if tokio::time::timeout(limit, r.task).await.is_err() {
                abort.abort();
            }
        }
    }

    fn on_report(&mut self, mut report: TargetReport) {
        if !self.sources.contains_key(&report.target) {
            return; // from a source stopped by a reload
        }
        self.store.fill_rates(&mut report);
        if !self.links.is_empty() {
            let latest: Vec<_> = self
                .store
                .targets()
                .into_values()
                .filter_map(|e| e.data)
                .collect();
            let others: Vec<_> = latest.iter().flat_map(|d| d.pools.iter()).collect();
            crate::budget::annotate::annotate(&mut report, &others, &self.links);
        }
        if let Some(entry) = self.store.apply(&report) {
            self.exposition.set_target(&report.target, &entry);
        }
        let empty = BTreeMap::new();
        let labels = self.labels.get(&report.target).unwrap_or(&empty);
        // Evaluated at the report's time (its tick), not when it arrived here.
        let notices = {
            let view = self.store.view();
            self.engine.observe(report.at, &report, labels, &view)
        };
        self.dispatch(notices);
        self.publish_alerts();
    }

    /// Logs each alert transition once, routes the alert set, and saves state when it changed.
    fn dispatch(&mut self, notices: Vec<Notice>) {
        let sent = self.route_alerts();
        if notices.is_empty() {
            if sent {
                self.save_state();
            }
            return;
        }
        for n in &notices {
            let get = |k: &str| n.labels.get(k).cloned().unwrap_or_default();
            tracing::info!(
                alertname = %get("alertname"),
                severity = %n.severity,
                target_name = %get("target"),
                pool = %get("pool"),
                status = n.status.as_str(),
                reason = n.reason.as_str(),
                summary = %n.annotations.get("summary").cloned().unwrap_or_default(),
                "alert notice"
            );
        }
        self.save_state();
    }

    /// Hands the engine's alert set to the dispatcher and the notifications of due groups to
    /// the receivers; every decision is counted, every notification logged. True when a
    /// notification was handed over.
    fn route_alerts(&mut self) -> bool {
        let now = SystemTime::now();
        let (silences, version) = self.silences.get();
        let silences_changed = version != self.silences_seen;
        if silences_changed {
            self.dispatcher.set_silences(silences);
            self.silences_seen = version;
        }
        let alerts = self.engine.alert_set(now);
        self.dispatcher.ingest(&alerts, now);
        let mut sent = false;
        for d in self.dispatcher.flush(now) {
            self.receivers
                .metrics()
                .decided(&d.receiver, &d.integration, d.reason);
            let Some(n) = d.notification else { continue };
            tracing::info!(
                receiver = %n.receiver, integration = %n.integration, group_key = %n.group_key, id = %n.id,
                reason = d.reason.as_str(), alerts = n.alerts.len(),
                firing = n.firing.len(), resolved = n.resolved.len(),
                "group notification"
            );
            self.receivers.notify(&n);
            sent = true;
        }
        if silences_changed {
            self.publish_alerts();
            self.save_state();
        }
        sent
    }

    /// Records a delivery (or a give-up) in the notification log, durably.
    fn on_outcome(&mut self, o: &Outcome) {
        tracing::debug!(receiver = %o.receiver, integration = %o.integration, group_key = %o.group_key, id = %o.id, delivered = o.delivered, "notification outcome");
        self.dispatcher.outcome(o);
        if o.delivered {
            self.save_state();
        }
    }

    fn publish_alerts(&self) {
        let mut alerts = self.engine.alerts();
        let (muted, silenced) = (self.dispatcher.muted(), self.dispatcher.silenced());
        for a in &mut alerts {
            a.inhibited_by = muted.get(&a.fingerprint).into_iter().cloned().collect();
            a.silenced_by = silenced.get(&a.fingerprint).cloned().unwrap_or_default();
        }
        self.exposition.set_alerts(&alerts);
        self.board.set(alerts);
    }

    async fn shutdown(mut self, outcomes: &mut mpsc::UnboundedReceiver<Outcome>) {
        let names: Vec<String> = self.sources.keys().cloned().collect();
        for name in &names {
            if let Some(r) = self.sources.get(name) {
                let _ = r.stop.send(true);
            }
        }
        for name in names {
            self.stop_source(&name).await;
        }
        self.route_alerts();
        self.save_state();
        self.receivers.shutdown(self.flush_timeout).await;
        // What was delivered while flushing is acknowledged: recorded before exit.
        while let Ok(o) = outcomes.try_recv() {
            self.dispatcher.outcome(&o);
        }
        self.save_state();
        let writer = self.state_writer;
        if tokio::task::spawn_blocking(move || writer.finish())
            .await
            .is_err()
        {
            tracing::error!("the state file writer failed");
        }
    }
}

/// The settings of the push targets among `targets`.
pub(super) fn push_targets(
    targets: &[TargetSettings],
) -> impl Iterator<Item = &push::PushSettings> {
    targets.iter().filter_map(|t| match &t.source {
        SourceSettings::Push(s) => Some(s),
        _ => None,
    })
}

/// The names of the targets that are not push targets: an application created by a push
/// cannot take one.
pub(super) fn other_targets(targets: &[TargetSettings]) -> std::collections::BTreeSet<String> {
    targets
        .iter()
        .filter(|t| !matches!(t.source, SourceSettings::Push(_)))
        .map(|t| t.name.clone())
        .collect()
}

/// Every target's extra alert labels, by target name.
pub(super) fn labels_by_target(
    targets: &[TargetSettings],
) -> BTreeMap<String, BTreeMap<String, String>> {
    targets
        .iter()
        .map(|t| (t.name.clone(), t.labels.clone()))
        .collect()
}

/// How far back pools' history goes: `[history] window`, or the longest `exhaustion_predicted`
/// window when that is longer (a trend needs its whole window).
pub(super) fn sample_window(history: Duration, rules: &crate::rules::RuleSet) -> Duration {
    rules
        .max_prediction_window()
        .map_or(history, |w| w.max(history))
}

/// How long capacity changes are kept: the longest `capacity_dropped` window.
pub(super) fn capacity_horizon(rules: &crate::rules::RuleSet) -> Duration {
    rules
        .max_window()
        .unwrap_or(crate::store::DEFAULT_CAPACITY_HORIZON)
}

pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}
