//! Benchmark 8.3 (in-process, no server): parsing a 10,000-series exposition with the
//! `app_metrics` parser within its default limits, in full and reading only a preset's names (as
//! a scrape does), alternated in each round; and mapping it with the preset.

use std::time::Instant;

use poolwatch::source::app_metrics::exposition::{parse, parse_only, Keep, Limits};
use poolwatch::source::app_metrics::{map, presets};

use crate::exposition_text;
use crate::stats::Summary;

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Series in the exposition.
    pub series: usize,
    /// Timed parses.
    pub rounds: usize,
}

/// Runs the benchmark and prints its results.
pub fn run(plan: Plan) {
    println!(
        "\n### 8.3 Parsing a {}-series exposition (issue 7, in-process)\n",
        plan.series
    );
    let text = exposition_text::large(plan.series);
    let body = text.as_bytes();
    let limits = Limits::default();
    let mapping = presets::preset("go_sql").expect("go_sql preset");
    let parsed = parse(body, &limits).expect("the exposition parses");
    assert_eq!(parsed.samples.len(), plan.series, "series generated");
    let escaped = parsed
        .samples
        .iter()
        .filter(|s| s.labels.iter().any(|(_, v)| v.contains('"')))
        .count();
    // Warm-up: page faults of the first allocations are not the parser's.
    for _ in 0..5 {
        std::hint::black_box(parse(body, &limits).expect("parse"));
    }
    let names = mapping.sample_names();
    let keep = Keep::Names(&names);
    let mut parse_ms = Vec::with_capacity(plan.rounds);
    let mut only_ms = Vec::with_capacity(plan.rounds);
    let mut map_ms = Vec::with_capacity(plan.rounds);
    for _ in 0..plan.rounds {
        let t0 = Instant::now();
        let expo = parse(std::hint::black_box(body), &limits).expect("parse");
        let t1 = Instant::now();
        drop(std::hint::black_box(expo));
        let t2 = Instant::now();
        let expo = parse_only(std::hint::black_box(body), &limits, keep).expect("parse");
        let t3 = Instant::now();
        let mapped = map::map(&expo, &mapping, &[], "bench").expect("pools");
        let t4 = Instant::now();
        assert_eq!(mapped.pools.len(), 5);
        drop(std::hint::black_box(expo));
        parse_ms.push((t1 - t0).as_secs_f64() * 1e3);
        only_ms.push((t3 - t2).as_secs_f64() * 1e3);
        map_ms.push((t4 - t3).as_secs_f64() * 1e3);
    }
    let parse_ms = Summary::new(parse_ms);
    let only_ms = Summary::new(only_ms);
    let map_ms = Summary::new(map_ms);
    println!(
        "{} bytes, {} samples ({escaped} with an escaped label value), {} lines; \
         `exposition::parse` with `Limits::default()`; `exposition::parse_only` with the \
         `go_sql` preset's names (what a scrape does), then `map::map` with the preset (5 pools); \
         {} rounds (the two parses alternated) after 5 warm-up parses\n",
        body.len(),
        parsed.samples.len(),
        text.lines().count(),
        plan.rounds
    );
    println!("| step | ms |\n|---|---|");
    println!("| parse | {parse_ms} |");
    println!("| parse, the preset's names only | {only_ms} |");
    println!("| map | {map_ms} |");
    println!(
        "\nThroughput at the median: {:.0} MB/s, {:.2} µs per series.",
        body.len() as f64 / 1e6 / (parse_ms.median() / 1e3),
        parse_ms.median() * 1e3 / plan.series as f64
    );
    let verdict = if parse_ms.median() < 10.0 {
        "MET"
    } else {
        "MISSED"
    };
    println!(
        "\nTarget \"parsing a 10,000-series exposition takes under 10 ms\": **{verdict}** \
         (median {:.3} ms, p99 {:.3} ms).",
        parse_ms.median(),
        parse_ms.pct(99.0)
    );
}
