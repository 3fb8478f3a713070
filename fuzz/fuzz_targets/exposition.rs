//! The exposition parser on arbitrary bytes: it must never panic, and what it accepts must stay
//! within its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poolwatch::source::app_metrics::exposition::{parse, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_series: 100,
        max_value: 64,
        ..Limits::default()
    };
    if let Ok(e) = parse(data, &limits) {
        assert!(e.samples.len() <= limits.max_series);
        for s in &e.samples {
            assert!(s.name.len() <= limits.max_name);
            assert!(s.labels.len() <= limits.max_labels);
            assert!(s.labels.iter().all(|(n, v)| n.len() <= limits.max_name && v.len() <= limits.max_value));
        }
    }
});
