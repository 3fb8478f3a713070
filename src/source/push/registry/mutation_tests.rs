//! Push bodies as the HTTP handler takes them (`parse_json`, then [`Registry::accept`]), mutated
//! at random from real ones, must be accepted or refused cleanly, and what is stored must stay
//! within the limits: no panic, refusals short and naming no value, never more instances or
//! pool names than allowed, every figure within its cap in every report. Seeded, so a failure
//! reproduces; `fuzz/fuzz_targets/push_body.rs` runs the same property for as long as one likes.

use super::*;
use crate::http::api::parse_json;
use crate::source::mutation::mutate;
use crate::source::push::body::{MAX_COUNT, MAX_NAME_BYTES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::UNIX_EPOCH;

/// Pieces of JSON (and of what breaks it) the mutations insert.
const TOKENS: [&[u8]; 16] = [
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"-1",
    b"1e309",
    b"18446744073709551616",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"\xff",
    b"\"final\": true,",
];

/// When the run starts; each input arrives 100 ms after the previous one.
const START: u64 = 1_764_612_000;

/// A value no refusal may quote.
const SECRET_VALUE: &str = "s3cr3t-v4lue";

/// Real pushes: the README's psycopg_pool and node-postgres shapes, every optional field,
/// several pools, a final push, the measurement time given.
fn seeds() -> Vec<String> {
    let pool = |name: &str, extra: &str| {
        format!(
            r#"{{"name": "{name}", "capacity": 10, "in_use": 4, "idle": 6, "waiting": 3{extra}}}"#
        )
    };
    let push = |app: &str, instance: &str, pools: &[String], extra: &str| {
        format!(
            r#"{{"application": "{app}", "instance": "{instance}", "pools": [{}]{extra}}}"#,
            pools.join(", ")
        )
    };
    let full = r#", "longest_wait_seconds": 1.5, "waits_total": 17, "wait_seconds_total": 0.8, "timeouts_total": 2"#;
    vec![
        push("checkout", "web-1", &[pool("default", "")], ""),
        push(
            "checkout",
            "web-2",
            &[pool("default", full), pool("replica", "")],
            "",
        ),
        push("checkout", "web-3", &[], r#", "final": true"#),
        push(
            "checkout",
            "web-4",
            &[pool("default", "")],
            &format!(r#", "measured_at": {START}.25"#),
        ),
        push("guarded", SECRET_VALUE, &[pool(SECRET_VALUE, full)], ""),
        push("newcomer", "pod-7", &[pool("default", full)], ""),
    ]
}

fn target(name: &str, token: Option<&str>, max_applications: usize) -> PushSettings {
    PushSettings {
        application: name.into(),
        token: token.map(Secret::new),
        ttl: Duration::from_secs(5),
        max_instances: 4,
        max_pools: 3,
        max_applications,
    }
}

/// Checks one report of `settings`' target: within its instance and pool limits.
fn check_report(r: &Registry, settings: &PushSettings, now: SystemTime) {
    let Ok(data) = r.report(&settings.application, now) else {
        return;
    };
    assert!(data.pools.len() <= settings.max_pools, "{data:?}");
    let most = MAX_COUNT * settings.max_instances as u64;
    for p in &data.pools {
        assert!(p.id.name.len() <= MAX_NAME_BYTES);
        assert!(
            p.capacity <= most && p.in_use <= most && p.waiting <= most,
            "{p:?}"
        );
        assert!(p.in_use + p.idle <= p.capacity, "{p:?}");
    }
}

#[test]
fn mutated_real_pushes_never_panic_and_stay_bounded() {
    let targets = [
        target("checkout", None, 0),
        target("guarded", Some("token"), 0),
        target("open", None, 2),
    ];
    let prom = prometheus::Registry::new();
    let r = Registry::new(&prom).expect("metrics");
    let at = |i: u64| UNIX_EPOCH + Duration::from_millis(START * 1000 + i * 100);
    r.configure(&targets, &BTreeSet::new(), at(0));
    let seeds = seeds();
    let mut rng = StdRng::seed_from_u64(0x9005_eed5);
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..4000u64 {
        let seed = seeds[rng.gen_range(0..seeds.len())].as_bytes();
        let input = mutate(seed, &TOKENS, &mut rng);
        let authorization: Option<&[u8]> = rng.gen_bool(0.5).then_some(b"Bearer token");
        let outcome = parse_json::<PushBody>(&input)
            .map_err(Refusal::Invalid)
            .and_then(|body| r.accept(body, authorization, at(i)));
        match outcome {
            Ok(done) => {
                accepted += 1;
                assert!(done.instances <= 4, "{done:?}");
            }
            Err(refusal) => {
                refused += 1;
                let m = refusal.message();
                assert!(m.len() < 300, "{m}");
                assert!(!m.contains(SECRET_VALUE), "{m}");
            }
        }
        if i % 10 == 0 {
            let adopted: Vec<String> = r.lock().keys().cloned().collect();
            assert!(adopted.len() <= targets.len() + 2, "{adopted:?}");
            for name in adopted {
                let settings = r.lock().get(&name).map(|s| s.settings.clone());
                if let Some(s) = settings {
                    check_report(&r, &s, at(i));
                }
            }
        }
    }
    // The generator must exercise both outcomes, or the test proves little.
    assert!(
        accepted > 100 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
}
