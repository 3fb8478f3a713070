//! Section `predict`: what `PoolExhaustionPredicted` adds to evaluating one report with 500
//! pools, each with a full history (15 minutes polled every second), through the real
//! [`Engine`] and [`Store`]: the built-in rules with and without it, alternated so both get the
//! same noise, and the prediction alone.
//!
//! Section `status`: rendering the status page (`GET /`) with 100 pools and 15 minutes of history
//! each, and its weight.

use crate::stats::Summary;
use poolwatch::alert::Engine;
use poolwatch::config::values::Problems;
use poolwatch::model::{PgSessions, PollData, PoolId, PoolSnapshot, TargetReport};
use poolwatch::rules::config::RuleConfig;
use poolwatch::rules::predict::{predict, Predict};
use poolwatch::rules::RuleSet;
use poolwatch::source::postgres::pools::ROLE;
use poolwatch::store::capacity::PoolRef;
use poolwatch::store::Store;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How the sections run.
pub struct Plan {
    /// Evaluations timed per case.
    pub rounds: usize,
}

const TARGET: &str = "db";
/// Seconds of history before the timed evaluations (the store's default window).
const HISTORY: u64 = 900;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

/// A report of `pools` role pools at `secs`: every pool wanders around 45%, or with `ramps`
/// every third pool rises 2 a minute, from 40 to 80 over the timed rounds (those predict
/// exhaustion, and their alerts fire).
fn report(pools: usize, secs: u64, ramps: bool) -> TargetReport {
    let pools = (0..pools)
        .map(|i| {
            let in_use = match i % 3 {
                0 if ramps => 10 + secs / 30,
                _ => 40 + (secs * 7 + i as u64 * 13) % 11,
            };
            PoolSnapshot {
                postgres: Some(PgSessions::default()),
                ..PoolSnapshot::new(
                    PoolId {
                        target: TARGET.into(),
                        kind: ROLE,
                        name: format!("role_{i}"),
                    },
                    100,
                    in_use.min(99),
                )
            }
        })
        .collect();
    TargetReport {
        target: TARGET.into(),
        at: at(secs),
        duration: Duration::from_millis(3),
        outcome: Ok(std::sync::Arc::new(PollData {
            pools,
            ..PollData::default()
        })),
    }
}

/// A store holding `until` seconds of `pools` pools; returns it and the last report.
fn filled_store(pools: usize, ramps: bool, until: u64) -> (Store, TargetReport) {
    let store = Store::new([TARGET]);
    let mut last = report(pools, 0, ramps);
    for secs in 0..=until {
        last = report(pools, secs, ramps);
        store.apply(&last);
    }
    (store, last)
}

fn rules(predicted: bool) -> RuleSet {
    let mut problems = Problems::new("bench");
    let off = RuleConfig {
        name: "PoolExhaustionPredicted".into(),
        enabled: Some(false),
        ..RuleConfig::default()
    };
    let extra = if predicted { vec![] } else { vec![off] };
    RuleSet::build(&extra, true, &mut problems)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Prints the `predict` section: a quiet load (nothing predicted), then one where a third of
/// the pools ramp.
pub fn run_predict(plan: &Plan) {
    const POOLS: usize = 500;
    println!("\n## Prediction cost: one report with {POOLS} pools\n");
    println!("| load | case | µs per report |");
    println!("|---|---|---|");
    let mut lines = Vec::new();
    for (load, ramps) in [("quiet", false), ("a third ramping", true)] {
        lines.push(predict_case(plan, POOLS, load, ramps));
    }
    println!();
    for line in lines {
        println!("{line}");
    }
}

/// Times one load; prints its table rows and returns its summary line. Each round is the next
/// second's report, applied to the store, then evaluated by both engines (in alternating
/// order): one poll in twenty refits the trends (`predict::due`), as in the daemon at the default
/// interval.
fn predict_case(plan: &Plan, pools: usize, load: &str, ramps: bool) -> String {
    let (store, _) = filled_store(pools, ramps, HISTORY);
    let labels = BTreeMap::new();
    let mut with = Engine::new(rules(true));
    let mut without = Engine::new(rules(false));
    let (mut t_with, mut t_without, mut t_predict) = (Vec::new(), Vec::new(), Vec::new());
    let mut t_apply = Vec::new();
    let refs: Vec<PoolRef> = (0..pools)
        .map(|i| PoolRef::new(TARGET, "role", &format!("role_{i}")))
        .collect();
    let settings = Predict::default();
    let mut predicted = 0;
    for round in 0..(plan.rounds * 4) as u64 {
        let report = report(pools, HISTORY + 1 + round, ramps);
        let started = Instant::now();
        store.apply(&report);
        t_apply.push(micros(started.elapsed()));
        let now = report.at;
        let view = store.view();
        // Alternate which engine goes first: the second finds more of the store in cache.
        let time = |engine: &mut Engine| {
            let started = Instant::now();
            engine.observe(now, &report, &labels, &view);
            micros(started.elapsed())
        };
        let (w, wo) = if round % 2 == 0 {
            let wo = time(&mut without);
            (time(&mut with), wo)
        } else {
            let w = time(&mut with);
            (w, time(&mut without))
        };
        t_with.push(w);
        t_without.push(wo);
        let started = Instant::now();
        predicted = refs
            .iter()
            .filter_map(|r| view.history(r))
            .filter(|s| predict(s, now, &settings).is_ok())
            .count();
        t_predict.push(micros(started.elapsed()));
    }
    // The rule's own cost, robust to the machine's noise: per round, with minus without
    // (adjacent in time), split into the refit rounds and those between; amortized over the
    // refit period (20 reports).
    let (mut d_refit, mut d_between) = (Vec::new(), Vec::new());
    for (round, (w, wo)) in t_with.iter().zip(&t_without).enumerate() {
        let secs = HISTORY + 1 + round as u64;
        let refit = round == 0 || secs % 20 == 0;
        if refit { &mut d_refit } else { &mut d_between }.push(w - wo);
    }
    let (d_refit, d_between) = (Summary::new(d_refit), Summary::new(d_between));
    let amortized = (d_refit.median() + 19.0 * d_between.median()) / 20.0;
    println!("| {load} | the rule's own cost on a refit report (with − without, same round) | {d_refit} |");
    println!("| {load} | the rule's own cost on a report between refits | {d_between} |");
    let (w, wo, p, a) = (
        Summary::new(t_with),
        Summary::new(t_without),
        Summary::new(t_predict),
        Summary::new(t_apply),
    );
    println!("| {load} | the store taking the report in (`Store::apply`) | {a} |");
    println!("| {load} | built-in rules without PoolExhaustionPredicted | {wo} |");
    println!("| {load} | built-in rules with it (a refit every 20th poll) | {w} |");
    println!("| {load} | {pools} refits alone ({predicted} predict exhaustion) | {p} |");
    format!(
        "{load}: the rule's own cost, amortized over a refit period from the medians, is \
         {amortized:.1} µs per report, {:.2}% of the evaluation without it (median {:.0} µs); \
         with the rule the evaluation costs {:+.1}% at the mean ({:.0} vs {:.0} µs), \
         {:+.1}% at the median, {:+.1}% at the minimum; of taking the report in and evaluating \
         it, {:+.1}% at the mean; one refit of all {pools} pools is {:.1}% of an evaluation \
         without the rule (median), {:.2} µs per pool.",
        amortized / wo.median() * 100.0,
        wo.median(),
        (w.mean() / wo.mean() - 1.0) * 100.0,
        w.mean(),
        wo.mean(),
        (w.median() / wo.median() - 1.0) * 100.0,
        (w.min() / wo.min() - 1.0) * 100.0,
        ((w.mean() - wo.mean()) / (a.mean() + wo.mean())) * 100.0,
        p.median() / wo.median() * 100.0,
        p.median() / pools as f64,
    )
}

/// Prints the `status` section.
pub fn run_status(plan: &Plan) {
    const POOLS: usize = 100;
    println!("\n## Status page: {POOLS} pools with {HISTORY} s of history each\n");
    // A minute past the window, so that the ramping pools' predictions are within the
    // horizon (at `HISTORY` they are 30 minutes from full, just beyond it) and alerts show.
    let (store, last) = filled_store(POOLS, true, HISTORY + 60);
    let mut engine = Engine::new(rules(true));
    engine.observe(last.at, &last, &BTreeMap::new(), &store.view());
    let alerts = engine.alerts();
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..plan.rounds {
        let started = Instant::now();
        let page = poolwatch::http::status::render(&store, &alerts, &[], last.at);
        times.push(micros(started.elapsed()) / 1e3);
        bytes = page.len();
    }
    let t = Summary::new(times);
    println!("| measure | value |");
    println!("|---|---|");
    println!("| render time, ms | {t} |");
    println!(
        "| page weight | {bytes} bytes ({:.1} KB), {} alerts on it |",
        bytes as f64 / 1024.0,
        alerts.len()
    );
}
