//! SIGHUP: the configuration file is read and validated off the loop (a read that hangs holds
//! up neither alert evaluation nor SIGTERM), then applied — or refused with every problem
//! logged, the running configuration kept.

use super::adopt::adopted_target;
use super::{
    capacity_horizon, labels_by_target, other_targets, push_targets, sample_window, unix_now,
    Daemon,
};
use crate::config::values::Problem;
use crate::fdlimit;
use crate::settings::{self, Config};
use std::path::Path;
use std::time::SystemTime;
use tokio::sync::oneshot;

impl Daemon {
    /// Applies a configuration read by [`read_config`], or keeps the running one when it is
    /// invalid.
    pub(super) async fn reload(&mut self, loaded: Result<Config, Vec<Problem>>) {
        let new = match loaded {
            Ok(c) => c,
            Err(problems) => {
                for p in &problems {
                    tracing::error!(problem = %p, "reload refused: invalid configuration");
                }
                tracing::error!(
                    problems = problems.len(),
                    "reload refused; the running configuration stays"
                );
                self.daemon_metrics.reload_ok.set(0);
                return;
            }
        };
        let Config {
            listen,
            alerting,
            history,
            mut targets,
            rules,
            receivers,
            routes,
            inhibit_rules,
            external_url,
            http,
            links,
            ..
        } = new;
        self.links = links;
        self.store.set_windows(
            sample_window(history.window.0, &rules),
            capacity_horizon(&rules),
        );
        self.http
            .set_limits(fdlimit::fit_http(http, targets.len(), receivers.len()));
        if listen != self.listen {
            tracing::warn!(old = %self.listen, new = %listen, "http.listen changed: takes effect after a restart");
        }
        let external_url = external_url.unwrap_or_else(|| self.default_external_url.clone());
        let now = SystemTime::now();
        // What was pushed for a push target that stays is kept, whatever else changed; so are
        // the applications created by pushes, while a push target still accepts them.
        let taken = other_targets(&targets);
        let adopted = self.pushed.configure(push_targets(&targets), &taken, now);
        let adopted: Vec<_> = adopted
            .iter()
            .filter_map(|a| adopted_target(&targets, a))
            .collect();
        targets.extend(adopted);
        let keep: Vec<String> = targets
            .iter()
            .filter(|t| {
                self.sources
                    .get(&t.name)
                    .is_some_and(|r| r.settings.same_polling(t))
            })
            .map(|t| t.name.clone())
            .collect();
        let removed: Vec<String> = self
            .sources
            .keys()
            .filter(|n| !keep.contains(n))
            .cloned()
            .collect();
        let new_names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
        let target_labels = labels_by_target(&targets);
        for name in &removed {
            // Awaited, so that the old session is closed before a replacement opens: never two.
            self.stop_source(name).await;
            self.labels.remove(name);
            if !new_names.contains(name) {
                self.source_metrics.remove_target(name);
                let notices = self.engine.remove_target(now, name);
                self.dispatch(notices);
            }
        }
        self.store.set_targets(new_names.iter().map(String::as_str));
        self.exposition.retain_targets(&new_names);
        for (name, entry) in self.store.targets() {
            if !keep.contains(&name) {
                self.exposition.set_target(&name, &entry);
            }
        }
        for t in targets {
            if keep.contains(&t.name) {
                self.labels.insert(t.name.clone(), t.labels.clone());
                if let Some(r) = self.sources.get_mut(&t.name) {
                    r.settings.labels = t.labels.clone();
                }
            } else {
                self.start_source(t);
            }
        }
        // Alerts whose labels change move to their new label set, firing state and start time
        // kept: a label-only change must not read as "resolved" nor page again after `for`.
        let notices = self.engine.set_rules(now, rules, &target_labels);
        self.dispatcher.set_routes(routes, now);
        self.dispatcher.set_inhibit_rules(inhibit_rules);
        let restarted_integrations =
            self.receivers
                .reconfigure(receivers, external_url, alerting.shutdown_flush_timeout.0);
        self.dispatch(notices);
        self.state_file = alerting.state_file;
        self.flush_timeout = alerting.shutdown_flush_timeout.0;
        self.publish_alerts();
        self.daemon_metrics.reload_ok.set(1);
        self.daemon_metrics.reload_time.set(unix_now());
        tracing::info!(
            targets = self.sources.len(),
            restarted = removed.len(),
            restarted_integrations,
            "configuration reloaded"
        );
    }
}

/// A configuration being read and validated on a thread of its own.
pub(super) type Reloading = oneshot::Receiver<Result<Config, Vec<Problem>>>;

/// Starts reading and validating the config file at `path` on a thread of its own. A plain
/// thread rather than `spawn_blocking`: a read that hangs (a dead network file system) must hold
/// up neither the loop nor the runtime's shutdown.
pub(super) fn read_config(path: &Path) -> Reloading {
    let (tx, rx) = oneshot::channel();
    let path = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("config-reload".into())
        .spawn(move || {
            let _ = tx.send(settings::load(&path));
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start a thread to read the configuration");
    }
    rx
}

/// The outcome of the running reload; never ready when there is none.
pub(super) async fn finish(
    reloading: &mut Option<Reloading>,
    path: &Path,
) -> Result<Config, Vec<Problem>> {
    let Some(rx) = reloading else {
        return std::future::pending().await;
    };
    rx.await.map_err(|_| {
        vec![Problem {
            file: path.to_path_buf(),
            line_col: None,
            key: None,
            message: "the configuration could not be read (the reading thread stopped)".into(),
        }]
    })?
}
