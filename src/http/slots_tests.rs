use super::*;

fn limits() -> Limits {
    Limits {
        max_connections: 2,
        header_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(30),
        request_timeout: Duration::from_secs(10),
        max_body_bytes: 1024,
    }
}

#[test]
fn each_phase_has_its_own_deadline() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let cases = [
        (
            Phase::Head { since: t0 },
            t0 + s(5),
            CloseReason::HeaderTimeout,
        ),
        (
            Phase::Busy { since: t0 },
            t0 + s(10),
            CloseReason::RequestTimeout,
        ),
        (
            Phase::Idle { since: t0 },
            t0 + s(30),
            CloseReason::IdleTimeout,
        ),
        (
            Phase::Idle { since: t0 + s(7) },
            t0 + s(37),
            CloseReason::IdleTimeout,
        ),
    ];
    for (phase, at, reason) in cases {
        assert_eq!(deadline(phase, &limits()), (at, reason), "{phase:?}");
    }
}

/// One step of a ledger script: an operation at `t0 + seconds`, and what it must answer.
enum Step {
    Admit(u64, Admission),
    Busy(u64, u64),
    Idle(u64, u64),
    Remove(u64),
    Limit(usize),
    Open(usize),
}

fn run(limit: usize, script: &[Step]) {
    use Step::*;
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let mut ledger = Ledger::new(limit);
    for (i, step) in script.iter().enumerate() {
        match *step {
            Admit(secs, want) => assert_eq!(ledger.admit(at(secs)), want, "step {i}"),
            Busy(id, secs) => ledger.set_phase(id, Phase::Busy { since: at(secs) }),
            Idle(id, secs) => ledger.set_phase(id, Phase::Idle { since: at(secs) }),
            Remove(id) => ledger.remove(id),
            Limit(n) => ledger.set_limit(n),
            Open(n) => assert_eq!(ledger.open(), n, "step {i}"),
        }
    }
}

#[test]
fn admissions_fill_then_evict_silent_connections_first_then_the_longest_idle() {
    use Admission::*;
    use Step::*;
    let cases: Vec<(&str, usize, Vec<Step>)> = vec![
        (
            "free slots admit",
            2,
            vec![Admit(0, Admitted(0)), Admit(1, Admitted(1)), Open(2)],
        ),
        (
            "full: the oldest without a request is told to close, then its slot is reused",
            2,
            vec![
                Admit(0, Admitted(0)),
                Admit(1, Admitted(1)),
                Admit(2, Evict(0)),
                Admit(2, Wait),
                Remove(0),
                Admit(2, Admitted(2)),
                Open(2),
            ],
        ),
        (
            "busy connections are never chosen",
            2,
            vec![
                Admit(0, Admitted(0)),
                Admit(1, Admitted(1)),
                Busy(0, 1),
                Admit(2, Evict(1)),
                Remove(1),
                Admit(3, Admitted(2)),
                Busy(2, 3),
                Admit(4, Refuse),
            ],
        ),
        (
            "a kept-alive connection waits from its last response, not from its accept",
            2,
            vec![
                Admit(0, Admitted(0)),
                Admit(1, Admitted(1)),
                Busy(0, 2),
                Idle(0, 3),
                Admit(4, Evict(1)),
            ],
        ),
        (
            "a connection that never sent a request goes before a kept-alive scraper",
            2,
            vec![
                Admit(0, Admitted(0)),
                Busy(0, 0),
                Idle(0, 1),
                // The scraper idles from 1 s; a silent connection arrives at 10 s.
                Admit(10, Admitted(1)),
                Admit(11, Evict(1)),
                Remove(1),
                Admit(11, Admitted(2)),
                // With no silent connection left, the kept-alive one makes room.
                Busy(2, 11),
                Admit(12, Evict(0)),
            ],
        ),
        (
            "a connection told to close stays closing whatever it does next",
            1,
            vec![
                Admit(0, Admitted(0)),
                Admit(1, Evict(0)),
                Busy(0, 1),
                Idle(0, 2),
                Admit(3, Wait),
                Remove(0),
                Open(0),
                Admit(3, Admitted(1)),
            ],
        ),
        (
            "a lowered limit makes room one eviction at a time",
            3,
            vec![
                Admit(0, Admitted(0)),
                Admit(1, Admitted(1)),
                Admit(2, Admitted(2)),
                Limit(1),
                Admit(3, Evict(0)),
                Remove(0),
                Admit(3, Evict(1)),
                Remove(1),
                Admit(3, Evict(2)),
                Remove(2),
                Admit(3, Admitted(3)),
                Open(1),
            ],
        ),
        (
            "a limit of 0 is taken as 1",
            0,
            vec![Admit(0, Admitted(0)), Admit(0, Evict(0))],
        ),
        (
            "removing an unknown id changes nothing",
            1,
            vec![Remove(7), Admit(0, Admitted(0)), Remove(7), Open(1)],
        ),
    ];
    for (name, limit, script) in cases {
        eprintln!("case: {name}");
        run(limit, &script);
    }
}

#[tokio::test]
async fn an_admission_waits_for_the_evicted_connection_to_let_go() {
    let gauge = IntGauge::new("g", "g").expect("gauge");
    let slots = Slots::new(
        Limits {
            max_connections: 1,
            ..limits()
        },
        gauge.clone(),
    );
    let first = slots.admit(Duration::ZERO).await.expect("a free slot");
    assert_eq!(gauge.get(), 1);
    // The holder closes when told to, as a connection task does.
    let holder = tokio::spawn(async move {
        first.evicted().await;
        drop(first);
    });
    let second = slots.admit(Duration::from_secs(5)).await;
    assert!(
        second.is_some(),
        "the evicted connection's slot was not handed over"
    );
    assert!(holder.is_finished() || holder.await.is_ok());
    assert_eq!(gauge.get(), 1);
    // Busy: nothing can be evicted, the newcomer is refused without waiting.
    let second = second.expect("slot");
    second.tracker().busy();
    assert!(slots.admit(Duration::from_secs(5)).await.is_none());
    drop(second);
    assert_eq!(gauge.get(), 0);
}
