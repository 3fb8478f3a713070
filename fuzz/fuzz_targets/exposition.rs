//! The exposition parser on arbitrary bytes: it must never panic, and what it accepts must stay
//! within its limits; reading only some names (as a scrape does) must read exactly the samples
//! of those names that a full parse reads, whenever the full parse accepts the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poolwatch::source::app_metrics::exposition::{parse, parse_only, Keep, Limits};

/// Names the selective parse reads: a preset's shape (a name, one that extends it).
const NAMES: [&str; 3] = ["go_sql_max_open_connections", "x", "x_total"];

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_series: 100,
        max_value: 64,
        ..Limits::default()
    };
    let only = parse_only(data, &limits, Keep::Names(&NAMES));
    if let Ok(e) = &only {
        assert!(e.series <= limits.max_series);
        assert!(e.samples.iter().all(|s| NAMES.contains(&s.name.as_ref())));
    }
    if let Ok(e) = parse(data, &limits) {
        assert!(e.samples.len() <= limits.max_series);
        for s in &e.samples {
            assert!(s.name.len() <= limits.max_name);
            assert!(s.labels.len() <= limits.max_labels);
            assert!(s.labels.iter().all(|(n, v)| n.len() <= limits.max_name && v.len() <= limits.max_value));
        }
        let only = only.expect("a body the full parse accepts is accepted when read selectively");
        let wanted: Vec<_> = e.samples.into_iter().filter(|s| NAMES.contains(&s.name.as_ref())).collect();
        assert_eq!(wanted, only.samples);
        assert_eq!(e.series, only.series);
    }
});
