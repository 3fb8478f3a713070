//! Benchmark 8.5 (in-process, no server): the daemon's work per report of section 8.2's
//! applications, outside fetching: reading the answer into pools (parse and map), the store's
//! `fill_rates` and `apply`, the exporter taking the target's entry, and the render of
//! `/metrics` by a scrape (one scrape per `reports_per_scrape` reports of every target, as
//! Prometheus scraping every 15 s at a 1 s interval). Run it under
//! `valgrind --tool=callgrind` for a repeatable count of instructions.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use poolwatch::exporter::Exposition;
use poolwatch::model::TargetReport;
use poolwatch::source::app_metrics::config::AppMetricsSettings;
use poolwatch::source::app_metrics::to_poll_data;
use poolwatch::source::target::SourceSettings;
use poolwatch::store::Store;

use crate::app_server::Apps;
use crate::exposition_text;
use crate::stats::Summary;

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// The applications, as section 8.2 serves them.
    pub apps: Apps,
    /// Rounds: each round is one report of every application.
    pub rounds: usize,
    /// Reports of every target between two scrapes of `/metrics`.
    pub reports_per_scrape: usize,
}

/// One target's settings, through the config parser as the daemon gets them.
fn settings(n: usize) -> AppMetricsSettings {
    let src = format!(
        "[[targets]]\nname = \"app{n}\"\ntype = \"app_metrics\"\n\
         url = \"http://127.0.0.1:1/app/{n}/metrics\"\npreset = \"{}\"\n",
        Apps::library(n).preset()
    );
    let config =
        poolwatch::settings::parse(std::path::Path::new("bench.toml"), &src).expect("valid config");
    match &config.targets[0].source {
        SourceSettings::AppMetrics(s) => (**s).clone(),
        other => panic!("{other:?}"),
    }
}

/// Runs the benchmark and prints its results.
pub fn run(plan: Plan) {
    let apps = plan.apps;
    println!(
        "\n### 8.5 The daemon's work per report of {} application endpoints, in-process\n",
        apps.count
    );
    let targets: Vec<AppMetricsSettings> = (0..apps.count).map(settings).collect();
    // Two bodies per application, alternated, so that the numbers move between reports.
    let bodies: Vec<[String; 2]> = (0..apps.count)
        .map(|n| {
            let lib = Apps::library(n);
            [0, 1].map(|tick| exposition_text::application(lib, n, apps.pools, apps.routes, tick))
        })
        .collect();
    let store = Store::new(targets.iter().map(|t| t.name.as_str()));
    let exposition = Exposition::default();
    let registry = prometheus::Registry::new();
    let mut steps: [Vec<Duration>; 4] = Default::default();
    let start = SystemTime::now();
    for round in 0..plan.rounds {
        let at = start + Duration::from_secs(round as u64);
        for (n, s) in targets.iter().enumerate() {
            let t = Instant::now();
            let body = bodies[n][round % 2].as_bytes();
            let data = to_poll_data(s, body).expect("pools");
            steps[0].push(t.elapsed());
            let t = Instant::now();
            let mut report = TargetReport {
                target: s.name.clone(),
                at,
                duration: Duration::from_millis(1),
                outcome: Ok(Arc::new(data)),
            };
            store.fill_rates(&mut report);
            let entry = store.apply(&report).expect("entry");
            steps[1].push(t.elapsed());
            let t = Instant::now();
            exposition.set_target(&s.name, &entry);
            steps[2].push(t.elapsed());
        }
        if (round + 1) % plan.reports_per_scrape == 0 {
            let t = Instant::now();
            std::hint::black_box(exposition.render(&registry));
            steps[3].push(t.elapsed());
        }
    }
    println!(
        "{} rounds of one report per application ({} pools each), a `/metrics` render every {} \
         rounds; µs per step:\n",
        plan.rounds, apps.pools, plan.reports_per_scrape
    );
    println!("| step | when | min | p50 | p95 | total per report |\n|---|---|---:|---:|---:|---:|");
    let reports = (plan.rounds * apps.count) as f64;
    let names = [
        ("read the answer into pools (parse, map)", "per report"),
        ("store: `fill_rates` and `apply`", "per report"),
        ("exporter: take the target's entry", "per report"),
        ("exporter: `/metrics` (renders what changed)", "per scrape"),
    ];
    for ((name, when), times) in names.iter().zip(&steps) {
        let s = Summary::of_durations_ms(times);
        let total: f64 = times.iter().map(Duration::as_secs_f64).sum();
        println!(
            "| {name} | {when} | {:.1} | {:.1} | {:.1} | {:.1} |",
            s.min() * 1e3,
            s.median() * 1e3,
            s.pct(95.0) * 1e3,
            total * 1e6 / reports
        );
    }
}
