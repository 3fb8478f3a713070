//! The push body (`POST /api/v1/pools`) on arbitrary bytes, as the HTTP handler takes it: JSON
//! parsed into the schema, then validated and stored by the registry of two push targets (one
//! of them accepting unknown applications). It must never panic, refusals must stay short, and
//! every report must stay within the targets' limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poolwatch::http::api::parse_json;
use poolwatch::source::push::body::{PushBody, MAX_COUNT};
use poolwatch::source::push::{PushSettings, Refusal, Registry};
use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn settings() -> [PushSettings; 2] {
    let target = |name: &str, max_applications| PushSettings {
        application: name.into(),
        token: None,
        ttl: Duration::from_secs(5),
        max_instances: 4,
        max_pools: 3,
        max_applications,
    };
    [target("checkout", 0), target("open", 2)]
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let r = Registry::new(&prometheus::Registry::new()).expect("metrics");
        r.configure(&settings(), &BTreeSet::new(), UNIX_EPOCH);
        r
    })
}

fuzz_target!(|data: &[u8]| {
    // A clock that moves on with every input, so that instances go stale and are forgotten.
    static TICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tick = TICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now: SystemTime = UNIX_EPOCH + Duration::from_secs(1_764_612_000) + Duration::from_millis(tick * 100);
    let r = registry();
    let outcome = parse_json::<PushBody>(data)
        .map_err(Refusal::Invalid)
        .and_then(|body| r.accept(body, None, now));
    if let Err(refusal) = outcome {
        assert!(refusal.message().len() < 300);
    }
    for s in settings() {
        if let Ok(report) = r.report(&s.application, now) {
            assert!(report.pools.len() <= s.max_pools);
            for p in &report.pools {
                assert!(p.in_use + p.idle <= p.capacity);
                assert!(p.capacity <= MAX_COUNT * s.max_instances as u64);
            }
        }
    }
});
