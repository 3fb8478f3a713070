//! The poll loop driven in-process with `tokio::time::pause`: a scripted source (connect and poll
//! delays and results set per test) stands in for the peer, so the loop's timing rules are
//! checked in microseconds. Every real source passes the conformance tests against its real
//! peer as well (`tests/e2e_conformance.rs`).

use super::*;
use std::cell::Cell;
use std::sync::Mutex;

/// What the scripted source does; changed by the test while the loop runs.
#[derive(Debug, Clone)]
struct Script {
    connect_delay: Duration,
    connect_error: Option<ErrorClass>,
    poll_delay: Duration,
    poll_error: Option<(ErrorClass, bool)>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            connect_delay: Duration::from_millis(5),
            connect_error: None,
            poll_delay: Duration::from_millis(2),
            poll_error: None,
        }
    }
}

#[derive(Default)]
struct Counts {
    connects: usize,
    polls: usize,
    open_sessions: usize,
}

#[derive(Clone, Default)]
struct Scripted {
    script: Arc<Mutex<Script>>,
    counts: Arc<Mutex<Counts>>,
}

/// A session of the scripted source; counts itself open until dropped.
struct Conn(Arc<Mutex<Counts>>);

impl Drop for Conn {
    fn drop(&mut self) {
        lock(&self.0).open_sessions -= 1;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn error(class: ErrorClass) -> PollError {
    PollError {
        class,
        message: format!("scripted {class}"),
    }
}

impl PollingSource for Scripted {
    type Conn = Conn;

    async fn connect(&self) -> Result<Session<Conn>, PollError> {
        let script = lock(&self.script).clone();
        tokio::time::sleep(script.connect_delay).await;
        lock(&self.counts).connects += 1;
        if let Some(class) = script.connect_error {
            return Err(error(class));
        }
        lock(&self.counts).open_sessions += 1;
        Ok(Session {
            conn: Conn(Arc::clone(&self.counts)),
            peer: "scripted".into(),
        })
    }

    async fn poll(&self, _conn: &mut Conn) -> Result<PollData, PollFailure> {
        let script = lock(&self.script).clone();
        tokio::time::sleep(script.poll_delay).await;
        lock(&self.counts).polls += 1;
        match script.poll_error {
            Some((class, keep_session)) => Err(PollFailure {
                error: error(class),
                keep_session,
            }),
            None => Ok(PollData::default()),
        }
    }
}

thread_local! {
    static START: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Wall-clock time that follows tokio's (paused) clock.
fn paused_now() -> SystemTime {
    let start = START.with(|s| *s.get().get_or_insert_with(Instant::now));
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + start.elapsed()
}

const MS: fn(u64) -> Duration = Duration::from_millis;

struct Running {
    reports: mpsc::Receiver<TargetReport>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start(source: Scripted, interval: Duration) -> Running {
    START.with(|s| s.set(Some(Instant::now())));
    let (tx, reports) = mpsc::channel(1024);
    let (stop, shutdown) = watch::channel(false);
    let metrics = SourceMetrics::new(&prometheus::Registry::new()).expect("metrics");
    let id = Identity {
        name: "t1".into(),
        endpoint: "scripted".into(),
    };
    let cadence = Cadence {
        interval,
        max_backoff: Duration::from_secs(10),
    };
    let channels = Channels {
        reports: tx,
        shutdown,
    };
    let task = tokio::spawn(run_on(paused_now, id, source, cadence, metrics, channels));
    Running {
        reports,
        stop,
        task,
    }
}

/// Reports received until `until` (paused time), with their arrival time.
async fn collect(r: &mut Running, until: Duration) -> Vec<(Duration, TargetReport)> {
    let t0 = START.with(|s| s.get()).unwrap_or_else(Instant::now);
    let mut out = Vec::new();
    while let Ok(Some(report)) = tokio::time::timeout_at(t0 + until, r.reports.recv()).await {
        out.push((t0.elapsed(), report));
    }
    out
}

fn gaps(reports: &[(Duration, TargetReport)]) -> Vec<Duration> {
    reports
        .windows(2)
        .map(|w| w[1].1.at.duration_since(w[0].1.at).unwrap_or_default())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn reports_are_exactly_one_interval_apart_whatever_each_poll_takes() {
    let source = Scripted::default();
    let mut r = start(source.clone(), MS(500));
    let mut got = collect(&mut r, MS(1_000)).await;
    for delay in [1, 90, 7, 300, 44] {
        lock(&source.script).poll_delay = MS(delay);
        got.extend(collect(&mut r, MS(1_000 + 500 * got.len() as u64)).await);
    }
    assert!(got.len() >= 6, "{}", got.len());
    assert!(got.iter().all(|(_, rep)| rep.outcome.is_ok()));
    // The first report comes at once; the next at the target's phase offset (below one
    // interval: no tick of the schedule is skipped); then exact intervals.
    let gaps = gaps(&got);
    assert!(gaps[0] < MS(500), "{gaps:?}");
    assert!(gaps[1..].iter().all(|g| *g == MS(500)), "{gaps:?}");
    let _ = r.stop.send(true);
}

#[tokio::test(start_paused = true)]
async fn a_hung_connection_attempt_does_not_stop_the_reports() {
    let source = Scripted::default();
    lock(&source.script).connect_error = Some(ErrorClass::Timeout);
    let mut r = start(source.clone(), MS(500));
    let mut got = collect(&mut r, MS(100)).await;
    // The server stops answering: every attempt now takes 5 s to time out.
    lock(&source.script).connect_delay = Duration::from_secs(5);
    got.extend(collect(&mut r, Duration::from_secs(12)).await);
    // A report per tick (24 in 12 s, give or take the phase), although each attempt takes 5 s.
    assert!(got.len() >= 21, "{} reports", got.len());
    assert!(gaps(&got)[1..].iter().all(|g| *g == MS(500)));
    assert!(got.iter().all(|(_, rep)| rep
        .outcome
        .as_ref()
        .is_err_and(|e| e.class == ErrorClass::Timeout)));
    // Each report arrives within 90% of an interval after it was due (tokio's timers round up
    // to the next millisecond).
    for (arrived, rep) in &got {
        let due = rep
            .at
            .duration_since(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .unwrap_or_default();
        assert!(
            *arrived >= due && *arrived - due <= MS(452),
            "due {due:?}, arrived {arrived:?}"
        );
    }
    // Attempts keep going (with backoff) meanwhile; never more than one at a time.
    let connects = lock(&source.counts).connects;
    assert!((3..=4).contains(&connects), "{connects} attempts");
    let _ = r.stop.send(true);
}

#[tokio::test(start_paused = true)]
async fn the_first_connection_attempt_is_waited_for_then_the_schedule_resumes() {
    let source = Scripted::default();
    lock(&source.script).connect_delay = MS(1_700);
    let mut r = start(source.clone(), MS(500));
    let got = collect(&mut r, MS(4_000)).await;
    // Nothing is reported while the first attempt runs (the target stays unknown)...
    assert_eq!(got[0].0, MS(1_702), "{:?}", got[0]);
    assert!(got.iter().all(|(_, rep)| rep.outcome.is_ok()));
    // ...then the ticks resume on the schedule, skipping those missed, not bunched up.
    assert!(gaps(&got)[0] >= MS(1_500), "{:?}", gaps(&got));
    assert!(gaps(&got)[1..].iter().all(|g| *g == MS(500)));
    assert!(got[1..].windows(2).all(|w| w[1].0 > w[0].0 + MS(400)));
    assert_eq!(lock(&source.counts).connects, 1);
    let _ = r.stop.send(true);
}

#[tokio::test(start_paused = true)]
async fn while_reconnecting_to_a_hung_server_reports_repeat_the_last_error() {
    let source = Scripted::default();
    lock(&source.script).poll_error = Some((ErrorClass::Network, false));
    let mut r = start(source.clone(), MS(500));
    let _ = collect(&mut r, MS(600)).await;
    lock(&source.script).connect_delay = Duration::from_secs(5);
    let got = collect(&mut r, MS(3_000)).await;
    assert!(got.len() >= 4, "{} reports", got.len());
    for (_, rep) in &got {
        let e = rep.outcome.as_ref().expect_err("down");
        assert_eq!(
            (e.class, e.message.as_str()),
            (ErrorClass::Network, "scripted network")
        );
    }
    let _ = r.stop.send(true);
}

#[tokio::test(start_paused = true)]
async fn the_source_decides_whether_a_session_survives_a_failed_poll() {
    // (poll error, keep the session, want more than one connection)
    let cases = [
        (ErrorClass::Timeout, true, false),
        (ErrorClass::Query, true, false),
        (ErrorClass::Network, false, true),
    ];
    for (class, keep, reconnects) in cases {
        let source = Scripted::default();
        lock(&source.script).poll_error = Some((class, keep));
        let mut r = start(source.clone(), MS(200));
        let got = collect(&mut r, MS(2_000)).await;
        assert!(got.len() >= 8, "{class}: {} reports", got.len());
        let connects = lock(&source.counts).connects;
        assert_eq!(connects > 1, reconnects, "{class}: {connects} connects");
        assert!(lock(&source.counts).open_sessions <= 1);
        let _ = r.stop.send(true);
        let _ = r.task.await;
        assert_eq!(
            lock(&source.counts).open_sessions,
            0,
            "{class}: session leaked"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_is_prompt_even_mid_connect() {
    let source = Scripted::default();
    lock(&source.script).connect_delay = Duration::from_secs(30);
    let mut r = start(source, MS(500));
    let _ = collect(&mut r, MS(1_200)).await;
    let asked = Instant::now();
    let _ = r.stop.send(true);
    let _ = r.task.await;
    assert!(asked.elapsed() < MS(10), "{:?}", asked.elapsed());
}

#[test]
fn next_tick_keeps_the_schedule_and_skips_missed_ticks() {
    let t0 = Instant::now();
    let i = MS(100);
    // (previous tick offset, now offset, want next tick offset)
    let cases = [
        (0, 5, 100),
        (0, 99, 100),
        (0, 100, 200),
        (0, 250, 300),
        (1_000, 1_001, 1_100),
        (1_000, 1_999, 2_000),
    ];
    for (prev, now, want) in cases {
        assert_eq!(
            next_tick(t0 + MS(prev), t0 + MS(now), i),
            t0 + MS(want),
            "prev {prev}, now {now}"
        );
    }
}

#[test]
fn the_first_phased_tick_is_not_skipped() {
    let t0 = Instant::now();
    let i = MS(100);
    // (phase, now offset after the first poll, want tick offset)
    let cases = [
        (30, 5, 30),    // the phase is still ahead: that very tick
        (30, 29, 30),   //
        (30, 30, 130),  // reached while the first poll ran: the next one on the schedule
        (30, 250, 330), // a slow first poll: missed ticks skipped, the phase kept
        (0, 0, 100),    // phase 0: the first poll was that tick
        (0, 5, 100),
        (99, 1, 99),
    ];
    for (phase, now, want) in cases {
        assert_eq!(
            first_phased_tick(t0, MS(phase), t0 + MS(now), i),
            t0 + MS(want),
            "phase {phase}, now {now}"
        );
    }
}

#[test]
fn phases_spread_targets_across_the_interval() {
    let i = Duration::from_secs(1);
    let phases: Vec<Duration> = (0..50).map(|n| phase(&format!("db-{n}"), i)).collect();
    assert!(phases.iter().all(|p| *p < i));
    assert_eq!(phase("db-1", i), phase("db-1", i), "stable across restarts");
    // Spread: every fifth of the interval holds some target.
    for fifth in 0..5 {
        let lo = MS(200 * fifth);
        assert!(
            phases.iter().any(|p| *p >= lo && *p < lo + MS(200)),
            "no target in fifth {fifth}: {phases:?}"
        );
    }
}

#[test]
fn wall_clock_maps_on_one_anchor_and_follows_steps() {
    fn fixed() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000)
    }
    let t0 = Instant::now();
    let mut c = WallClock::new(t0, fixed(), fixed);
    let base = fixed();
    // Small drift (the fixed wall clock stands still for 0.5 s): still on the anchor.
    assert_eq!(c.wall(t0 + MS(500), t0 + MS(500)), base + MS(500));
    assert_eq!(c.wall(t0 + MS(250), t0 + MS(500)), base + MS(250));
    // 3 s later the wall clock "stood still" for 3 s: a step, so re-anchor there.
    assert_eq!(c.wall(t0 + MS(3_000), t0 + MS(3_000)), base);
    assert_eq!(c.wall(t0 + MS(3_100), t0 + MS(3_100)), base + MS(100));
}
