//! What every PgBouncer test shares: a cluster with the application role `app` and the
//! monitoring role `poolwatch` (in PgBouncer's `stats_users`), a PgBouncer in front of it, the
//! target's config, and readers for the receiver and `/metrics`.

use std::time::Duration;

use crate::common::pgbouncer::Database;
use crate::common::scenario::{
    bouncer_with_cluster, header, notifications, receiver, reports_over, target, Notification, WAIT,
};
use crate::common::{
    parse_exposition, PgBouncer, PgBouncerOptions, PgCluster, Poolwatch, Receiver, Sample,
};

/// The application role whose clients fill the pools.
pub const APP: &str = "app";
/// The target's name.
pub const TARGET: &str = "bouncer";
/// Its poll interval (the one [`target`] sets).
pub const INTERVAL: Duration = Duration::from_millis(100);
/// The pool of [`APP`] on `appdb`, as `/metrics` labels it.
pub const POOL: [(&str, &str); 3] = pool_of("pgbouncer_pool", "appdb/app");

/// The labels of [`TARGET`]'s pool `kind`/`name` in `/metrics`.
pub const fn pool_of(kind: &'static str, name: &'static str) -> [(&'static str, &'static str); 3] {
    [("target", TARGET), ("kind", kind), ("pool", name)]
}

/// A cluster with [`APP`] and the monitoring role, and a PgBouncer in front of it with
/// `databases` and `options` otherwise.
pub async fn bouncer(
    databases: Vec<Database>,
    options: PgBouncerOptions,
) -> (PgCluster, PgBouncer) {
    bouncer_with_cluster(APP, databases, options).await
}

/// `appdb` for the cluster's database `postgres`, with `pool_size`.
pub fn appdb(pool_size: u32) -> Database {
    Database::new("appdb", "postgres").pool_size(pool_size)
}

/// The `[[targets]]` table of [`TARGET`]: PgBouncer's console on `port`; `extra` lines appended.
pub fn bouncer_target(port: u16, extra: &str) -> String {
    target(TARGET, port, &format!("type = \"pgbouncer\"\n{extra}"))
}

/// A config polling `pgb` and paging `hook`.
pub fn config(pgb: &PgBouncer, hook: &Receiver) -> String {
    [
        header(""),
        bouncer_target(pgb.port(), ""),
        receiver("oncall", &hook.url("/hook"), ""),
    ]
    .concat()
}

/// The notifications of rule `alertname` the receiver got so far, oldest first.
pub fn pages(hook: &Receiver, alertname: &str) -> Vec<Notification> {
    notifications(&hook.requests())
        .into_iter()
        .filter(|n| n.alertname == alertname)
        .collect()
}

/// Waits until the receiver got `n` notifications of `alertname`; returns them, oldest first.
pub async fn expect_pages(hook: &Receiver, alertname: &str, n: usize) -> Vec<Notification> {
    let arrived = hook
        .wait_for(
            |r| {
                notifications(r)
                    .iter()
                    .filter(|x| x.alertname == alertname)
                    .count()
                    >= n
            },
            WAIT,
        )
        .await;
    let got = pages(hook, alertname);
    assert!(
        arrived,
        "expected {n} {alertname} notifications, got {got:?}"
    );
    got
}

/// The value of the one sample `name{labels}` in `samples`, if there is exactly one.
pub fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    crate::common::metrics::find_sample(samples, name, labels).ok()
}

/// Scrapes `/metrics` until `check` holds for its samples; returns that scrape's text and
/// samples.
pub async fn wait_scrape(
    pw: &Poolwatch,
    check: impl Fn(&[Sample]) -> bool,
) -> (String, Vec<Sample>) {
    let found = crate::common::poll_until(WAIT, || async {
        let (_, body) = pw.get("/metrics").await;
        let samples = parse_exposition(&body).ok()?;
        check(&samples).then_some((body, samples))
    })
    .await;
    found.unwrap_or_else(|| panic!("no scrape matched within {WAIT:?}"))
}

/// `TargetDown` overridden to fire 300 ms after the first failed poll.
pub const FAST_TARGET_DOWN: &str = "[[rules]]\nname = \"TargetDown\"\nfor = \"300ms\"\n\n";

/// Checks that reports keep coming at about one per interval for a second (a loose bound: the
/// conformance test checks the cadence itself).
pub async fn expect_reports_every_tick(pw: &Poolwatch) {
    let second = Duration::from_secs(1);
    let (made, ticks) = reports_over(pw, TARGET, INTERVAL, second).await;
    assert!(
        made >= ticks / 2.0 && made <= ticks + 2.0,
        "{made} reports in {ticks} ticks"
    );
}
