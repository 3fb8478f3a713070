use super::*;
use std::time::UNIX_EPOCH;

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_764_612_000 + secs)
}

const TTL: Duration = Duration::from_secs(30);

/// A pool `name` with capacity, in use, idle, waiting.
fn p(name: &str, figures: [u64; 4]) -> PushedPool {
    let [capacity, in_use, idle, waiting] = figures;
    PushedPool {
        name: name.into(),
        capacity,
        in_use,
        idle,
        waiting,
        longest_wait: None,
        waits: None,
        wait_seconds: None,
        timeouts: None,
    }
}

fn instances(list: &[(&str, u64, Vec<PushedPool>)]) -> BTreeMap<String, Instance> {
    list.iter()
        .map(|(name, at, pools)| {
            let i = Instance {
                at: t(*at),
                pools: pools.clone(),
            };
            (name.to_string(), i)
        })
        .collect()
}

/// (pool name, capacity, configured capacity, in use, idle, waiting) of every pool.
fn figures(data: &PollData) -> Vec<(String, u64, u64, u64, u64, u64)> {
    data.pools
        .iter()
        .map(|q| {
            let f = (
                q.capacity,
                q.configured_capacity,
                q.in_use,
                q.idle,
                q.waiting,
            );
            (q.id.name.clone(), f.0, f.1, f.2, f.3, f.4)
        })
        .collect()
}

#[test]
fn fresh_instances_are_summed_by_pool_name_and_stale_ones_leave() {
    let a = || p("default", [10, 4, 6, 0]);
    let b = || p("default", [10, 10, 0, 3]);
    // (instances, now, expected pools, expected summary)
    let cases = [
        (
            instances(&[("web-1", 0, vec![a()])]),
            5,
            vec![("default", 10, 10, 4, 6, 0)],
            "1 instance pushing, ttl 30s",
        ),
        (
            instances(&[("web-1", 0, vec![a()]), ("web-2", 2, vec![b()])]),
            5,
            vec![("default", 20, 10, 14, 6, 3)],
            "2 instances pushing, ttl 30s",
        ),
        // web-1's push is exactly ttl old: still counted.
        (
            instances(&[("web-1", 0, vec![a()]), ("web-2", 20, vec![b()])]),
            30,
            vec![("default", 20, 10, 14, 6, 3)],
            "2 instances pushing, ttl 30s",
        ),
        // One second later it is stale and leaves the sums.
        (
            instances(&[("web-1", 0, vec![a()]), ("web-2", 20, vec![b()])]),
            31,
            vec![("default", 10, 10, 10, 0, 3)],
            "1 instance pushing (1 stale), ttl 30s",
        ),
        // Pools of other names stay apart; instances need not have the same pools.
        (
            instances(&[
                ("web-1", 0, vec![a(), p("replica", [5, 1, 1, 0])]),
                ("web-2", 0, vec![b()]),
            ]),
            1,
            vec![("default", 20, 10, 14, 6, 3), ("replica", 5, 5, 1, 1, 0)],
            "2 instances pushing, ttl 30s",
        ),
        // Instances of different sizes (a rolling deployment): the smallest is configured.
        (
            instances(&[
                ("web-1", 0, vec![a()]),
                ("web-2", 0, vec![p("default", [5, 5, 0, 2])]),
            ]),
            1,
            vec![("default", 15, 5, 9, 6, 2)],
            "2 instances pushing, ttl 30s",
        ),
        // A push from the future (the clock went back) counts as fresh.
        (
            instances(&[("web-1", 100, vec![a()])]),
            5,
            vec![("default", 10, 10, 4, 6, 0)],
            "1 instance pushing, ttl 30s",
        ),
    ];
    for (list, now, want, summary) in cases {
        let data = aggregate("checkout", &list, t(0), TTL, t(now)).expect("fresh");
        let want: Vec<_> = want
            .into_iter()
            .map(|(n, c, cc, u, i, w)| (n.to_string(), c, cc, u, i, w))
            .collect();
        assert_eq!(figures(&data), want, "{list:?} at {now}");
        assert_eq!(data.summary, summary);
        assert!(data
            .pools
            .iter()
            .all(|q| q.id.kind == APP && q.id.target == "checkout"));
        assert!(data.refusing.is_none());
    }
}

#[test]
fn queued_counts_each_instances_own_queue() {
    // (the instances' pools [capacity, in use, idle, waiting], queued, waiting - free of the sum)
    let cases = [
        // web-1 is full with 3 waiting, web-2 has 10 free slots it cannot lend: 3 queued.
        (vec![[10, 10, 0, 3], [10, 0, 10, 0]], 3, 0),
        // Both full.
        (vec![[10, 10, 0, 3], [10, 10, 0, 2]], 5, 5),
        // A pool growing to its maximum: its clients wait for a connection being opened.
        (vec![[10, 2, 0, 1]], 0, 0),
        (vec![[5, 5, 0, 15]], 15, 15),
    ];
    for (figures, queued, naive) in cases {
        let list: Vec<(String, u64, Vec<PushedPool>)> = figures
            .iter()
            .enumerate()
            .map(|(i, f)| (format!("web-{i}"), 0, vec![p("default", *f)]))
            .collect();
        let list: Vec<(&str, u64, Vec<PushedPool>)> = list
            .iter()
            .map(|(n, at, ps)| (n.as_str(), *at, ps.clone()))
            .collect();
        let data = aggregate("app", &instances(&list), t(0), TTL, t(1)).expect("fresh");
        let q = &data.pools[0];
        assert_eq!(q.queued(), queued, "{figures:?}");
        assert_eq!(q.waiting.saturating_sub(q.free()), naive, "{figures:?}");
        let metric = crate::model::PoolMetric::Queued.value(q);
        assert_eq!(metric, Some(queued as f64), "{figures:?}");
    }
}

#[test]
fn counters_and_longest_waits_combine_over_the_instances_that_have_them() {
    let with =
        |wait_ms: Option<u64>, waits: Option<u64>, secs: Option<f64>, timeouts: Option<u64>| {
            let mut q = p("default", [10, 10, 0, 1]);
            q.longest_wait = wait_ms.map(Duration::from_millis);
            (q.waits, q.wait_seconds, q.timeouts) = (waits, secs, timeouts);
            q
        };
    // (the two instances' pools, longest wait, waits, wait seconds, timeouts)
    let cases = [
        (
            [with(None, None, None, None), with(None, None, None, None)],
            None,
            None,
            None,
            None,
        ),
        (
            [
                with(Some(1500), Some(3), Some(1.5), Some(1)),
                with(Some(200), Some(4), Some(0.5), Some(0)),
            ],
            Some(1500),
            Some(7),
            Some(2.0),
            Some(1),
        ),
        (
            [
                with(Some(0), Some(3), None, None),
                with(None, None, Some(0.25), Some(2)),
            ],
            Some(0),
            Some(3),
            Some(0.25),
            Some(2),
        ),
    ];
    for ([x, y], longest, waits, secs, timeouts) in cases {
        let list = instances(&[("a", 0, vec![x]), ("b", 0, vec![y])]);
        let data = aggregate("app", &list, t(0), TTL, t(1)).expect("fresh");
        let q = &data.pools[0];
        assert_eq!(q.longest_wait, longest.map(Duration::from_millis));
        assert_eq!(
            (
                q.counters.waits,
                q.counters.wait_seconds,
                q.counters.timeouts
            ),
            (waits, secs, timeouts)
        );
    }
}

#[test]
fn capacity_notes_and_instance_facts_say_how_the_sum_was_made() {
    let list = instances(&[
        ("a", 0, vec![p("default", [10, 0, 0, 0])]),
        ("b", 0, vec![p("default", [10, 0, 0, 0])]),
        (
            "c",
            0,
            vec![p("default", [5, 0, 0, 0]), p("x", [4, 0, 0, 0])],
        ),
        ("old", 0, vec![p("default", [50, 0, 0, 0])]),
    ]);
    let mut list = list;
    if let Some(i) = list.get_mut("old") {
        i.at = t(0) - Duration::from_secs(60);
    }
    let data = aggregate("app", &list, t(0), TTL, t(1)).expect("fresh");
    let notes: Vec<&str> = data
        .pools
        .iter()
        .map(|q| q.capacity_note.as_str())
        .collect();
    assert_eq!(notes, ["3 instances, 5 to 10 each", "1 instance × 4"]);
    let facts: Vec<(String, f64)> = data
        .facts
        .iter()
        .map(|f| (format!("{}{:?}", f.name, f.labels), f.value))
        .collect();
    assert_eq!(
        facts,
        [
            (
                r#"poolwatch_push_instances[("state", "fresh")]"#.to_string(),
                3.0
            ),
            (
                r#"poolwatch_push_instances[("state", "stale")]"#.to_string(),
                1.0
            ),
        ]
    );
}

/// Instances, watched since, now, `Ok(summary)` or `Err(message)`.
type Case = (
    BTreeMap<String, Instance>,
    u64,
    u64,
    Result<&'static str, &'static str>,
);

#[test]
fn with_no_fresh_instance_the_target_waits_then_is_stale() {
    let gone = instances(&[
        ("web-1", 0, vec![p("default", [10, 1, 1, 0])]),
        ("web-2", 10, vec![]),
    ]);
    // (instances, watched since, now, Ok(summary) or Err(message))
    let cases: [Case; 5] = [
        (BTreeMap::new(), 0, 0, Ok("waiting for the first push")),
        (BTreeMap::new(), 0, 30, Ok("waiting for the first push")),
        (
            BTreeMap::new(),
            0,
            31,
            Err("no instance has pushed since poolwatch began watching this target 31s ago"),
        ),
        (
            gone.clone(),
            0,
            41,
            Err("no instance pushed within the ttl (30s); the last push was read 31s ago, from instance web-2"),
        ),
        // Stale instances are stale even while the target is new.
        (
            gone,
            40,
            45,
            Err("no instance pushed within the ttl (30s); the last push was read 35s ago, from instance web-2"),
        ),
    ];
    for (list, since, now, want) in cases {
        let got = aggregate("app", &list, t(since), TTL, t(now));
        match (got, want) {
            (Ok(data), Ok(summary)) => {
                assert_eq!(data.summary, summary);
                assert!(data.pools.is_empty());
            }
            (Err(e), Err(message)) => {
                assert_eq!(e.class, ErrorClass::Stale);
                assert_eq!(e.message, message);
            }
            (got, want) => panic!("since {since}, now {now}: got {got:?}, want {want:?}"),
        }
    }
}
