//! Benchmark 9: restart to first notification, and the state file, with 1,000 firing alerts in
//! 50 groups to 3 receivers (issue 8).
//!
//! A cluster has 50 login roles `r001`..`r050`, each a pool holding one session; 20 rules fire
//! on every one of them (1,000 firing alerts), grouped by pool (50 groups) and routed to three
//! receivers (150 notifications, all acknowledged). Then, `runs` times: pool `r001` changes
//! (its alerts resolve, or fire again) while the receivers answer 500, so the state file holds
//! that group's notification unacknowledged for all three; `kill -9` the daemon, start it again
//! and time from the exec to the first notification a receiver gets, and to the third. Last,
//! in this process on the library: the state file read back, and its snapshot (a clone, as the
//! daemon's export makes on its loop), its serialisation and its atomic write (both on the
//! daemon's writer thread) timed.

use std::path::Path;
use std::time::{Duration, Instant};

use poolwatch::alert::PersistedState;

use crate::common::{
    poll_until, PgCluster, PgOptions, Poolwatch, PoolwatchOptions, Receiver, RecordedRequest,
};
use crate::metrics_cost::roles_with_sessions;
use crate::stats::Summary;

/// Sizes of the run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Pools (roles), one alert group each.
    pub groups: usize,
    /// Rules firing on every pool.
    pub rules: usize,
    /// Receivers every group goes to.
    pub receivers: usize,
    /// `kill -9` and restart this many times.
    pub runs: usize,
    /// Rounds of the in-process timing of the state file.
    pub rounds: usize,
}

/// The daemon's configuration: one target, `plan.rules` rules on the `r…` role pools, routes
/// grouping by pool to every receiver, the state in `state`.
fn config(plan: &Plan, pg: &PgCluster, hook: &Receiver, state: &Path) -> String {
    let mut text = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n[alerting]\nbuiltin_rules = false\n\
         state_file = \"{}\"\n\n[[targets]]\nname = \"db\"\nhost = \"127.0.0.1\"\nport = {}\n\
         user = \"poolwatch\"\npassword = \"{}\"\nsslmode = \"disable\"\ninterval = \"1s\"\n\n",
        state.display(),
        pg.port(),
        crate::clients::PASSWORD,
    );
    for i in 1..=plan.rules {
        text += &format!(
            "[[rules]]\nname = \"Busy{i:02}\"\nmetric = \"in_use\"\nwarning = 1\n\
             matchers = ['kind=\"role\"', 'pool=~\"r[0-9]+\"']\n\n"
        );
    }
    text += "[route]\nreceiver = \"rx1\"\ngroup_by = [\"pool\"]\ngroup_wait = \"0s\"\n\
             group_interval = \"1s\"\n\n";
    for r in 1..=plan.receivers {
        text += &format!("[[route.routes]]\nreceiver = \"rx{r}\"\ncontinue = true\n\n");
    }
    for r in 1..=plan.receivers {
        // Slow retries: the measure is the first attempt after a restart, not the retry storm.
        text += &format!(
            "[[receivers]]\nname = \"rx{r}\"\ninitial_backoff = \"10s\"\nmax_backoff = \"30s\"\n\
             [[receivers.integrations]]\ntype = \"webhook\"\nurl = \"{}\"\n\n",
            hook.url(&format!("/rx{r}"))
        );
    }
    text
}

/// Waits until the daemon has every alert firing and `told` notifications accepted.
async fn wait_all_firing(daemon: &Poolwatch, hook: &Receiver, plan: &Plan, told: usize) {
    let alerts = (plan.groups * plan.rules) as f64;
    let firing = poll_until(Duration::from_secs(60), || async {
        let samples = daemon.metrics().await.ok()?;
        let n: f64 = samples
            .iter()
            .filter(|s| s.name == "poolwatch_alerts")
            .filter(|s| s.labels.get("state").map(String::as_str) == Some("firing"))
            .map(|s| s.value)
            .sum();
        (n >= alerts).then_some(n)
    })
    .await;
    assert!(firing.is_some(), "not every alert fires\n{}", daemon.logs());
    let accepted = |r: &[RecordedRequest]| r.iter().filter(|r| r.answered == 200).count();
    assert!(
        hook.wait_for(|r| accepted(r) >= told, Duration::from_secs(60))
            .await,
        "{} of {told} notifications accepted\n{}",
        accepted(&hook.requests()),
        daemon.logs()
    );
}

/// Changes the state of pool `r001` (its sessions ended, or a new one opened) while every
/// receiver refuses, and waits until each of them was offered (and refused) the change: the
/// state file now holds an unacknowledged notification per receiver.
async fn unacknowledged_change(
    pg: &PgCluster,
    hook: &Receiver,
    session: &mut Option<tokio_postgres::Client>,
    opened_once: &mut bool,
    receivers: usize,
) {
    hook.set_status(500);
    hook.clear();
    if session.take().is_some() || !*opened_once {
        // Busy: every session of r001 ended (the one opened with the others, or ours).
        pg.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'r001'")
            .await;
        *opened_once = true;
    } else {
        let url = pg.url_with_password("r001", crate::clients::PASSWORD, "postgres");
        *session = Some(
            crate::common::pg::connect(&url)
                .await
                .expect("r001 session"),
        );
    }
    assert!(
        hook.wait_for(|r| r.len() >= receivers, Duration::from_secs(30))
            .await,
        "the change of r001 was not offered to every receiver"
    );
    // The notice that made them was saved before they were handed over; give the writer its
    // moment all the same.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// One `kill -9` and restart: (exec → `listening on`, exec → first notification received,
/// exec → one received by every receiver).
async fn restart_once(
    daemon: &mut Option<Poolwatch>,
    text: &str,
    hook: &Receiver,
    receivers: usize,
) -> (Duration, Duration, Duration) {
    // Dropping the handle sends SIGKILL and reaps the process.
    drop(daemon.take());
    hook.clear();
    hook.set_status(200);
    let exec = Instant::now();
    let mut next = Poolwatch::spawn(text, PoolwatchOptions::default());
    next.wait_listening(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", next.logs()));
    let listening = exec.elapsed();
    let all = hook
        .wait_for(|r| r.len() >= receivers, Duration::from_secs(30))
        .await;
    assert!(
        all,
        "{} of {receivers} after restart\n{}",
        hook.requests().len(),
        next.logs()
    );
    let requests = hook.requests();
    for r in &requests {
        let group = r.json.as_ref().map(|j| j["groupKey"].to_string());
        assert!(
            group.as_deref().is_some_and(|g| g.contains("r001")),
            "after restart, a notification of another group: {group:?}"
        );
    }
    let first = requests[0].received_at - exec;
    let last = requests[receivers - 1].received_at - exec;
    *daemon = Some(next);
    (listening, first, last)
}

/// Entries of the notification log in the state file.
fn log_entries(file: &Path) -> usize {
    let text = std::fs::read(file).unwrap_or_default();
    let state: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
    // receiver → integration → group key
    let mut n = 0;
    for integrations in values(&state["dispatch"]["log"]["entries"]) {
        for groups in values(integrations) {
            n += groups.as_object().map_or(0, |g| g.len());
        }
    }
    n
}

/// The values of a JSON object (none for anything else).
fn values(v: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    v.as_object().into_iter().flat_map(|o| o.values())
}

/// Waits until the state file's notification log has `n` entries.
async fn wait_log_entries(file: &Path, n: usize) {
    let saved = poll_until(Duration::from_secs(30), || async {
        (log_entries(file) >= n).then_some(())
    })
    .await;
    assert!(
        saved.is_some(),
        "{} of {n} acknowledgements saved",
        log_entries(file)
    );
}

/// The state file's size, once the writer has caught up.
async fn file_size(file: &Path) -> u64 {
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::metadata(file).map(|m| m.len()).unwrap_or(0)
}

/// The state file's snapshot, serialisation and atomic write timed `rounds` times.
fn time_state_file(file: &Path, rounds: usize) -> [Summary; 3] {
    let bytes = std::fs::read(file).expect("state file");
    let state: PersistedState = serde_json::from_slice(&bytes).expect("state file parses");
    let tmp = file.with_extension("bench");
    let target = file.with_extension("bench.json");
    let mut steps: [Vec<Duration>; 3] = Default::default();
    for _ in 0..rounds {
        let t = Instant::now();
        let snapshot = state.clone();
        steps[0].push(t.elapsed());
        let t = Instant::now();
        let out = serde_json::to_vec(&snapshot).expect("serialise");
        steps[1].push(t.elapsed());
        let t = Instant::now();
        std::fs::write(&tmp, &out).expect("write");
        std::fs::rename(&tmp, &target).expect("rename");
        steps[2].push(t.elapsed());
    }
    let _ = std::fs::remove_file(&target);
    steps.map(|s| Summary::of_durations_ms(&s))
}

/// Runs the benchmark and prints its results.
pub async fn run(plan: Plan) {
    let told = plan.groups * plan.receivers;
    println!(
        "\n## 9. Restart to first notification: {} firing alerts, {} groups, {} receivers\n",
        plan.groups * plan.rules,
        plan.groups,
        plan.receivers
    );
    let pg = PgCluster::start(PgOptions {
        max_connections: plan.groups as u32 + 30,
        ..PgOptions::default()
    })
    .await;
    pg.create_role("poolwatch", crate::clients::PASSWORD, None)
        .await;
    pg.exec("GRANT pg_monitor TO poolwatch").await;
    let _sessions = roles_with_sessions(&pg, plan.groups).await;
    let hook = Receiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("state.json");
    let text = config(&plan, &pg, &hook, &file);
    let first = Poolwatch::start(&text).await;
    wait_all_firing(&first, &hook, &plan, told).await;
    let t = Instant::now();
    wait_log_entries(&file, told).await;
    let acknowledged_after = t.elapsed();
    let size_acknowledged = file_size(&file).await;
    let mut daemon = Some(first);
    let (mut r001, mut ended_once) = (None, false);
    let mut times: [Vec<Duration>; 3] = Default::default();
    let mut size = 0;
    for _ in 0..plan.runs {
        unacknowledged_change(&pg, &hook, &mut r001, &mut ended_once, plan.receivers).await;
        size = size.max(file_size(&file).await);
        // Every group but r001 (whose entry a resolution acknowledged earlier may have removed).
        wait_log_entries(&file, told - plan.receivers).await;
        let (up, first, all) = restart_once(&mut daemon, &text, &hook, plan.receivers).await;
        times[0].push(up);
        times[1].push(first);
        times[2].push(all);
        // Acknowledged and saved before the next change.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(daemon);
    let [snapshot, serialise, write] = time_state_file(&file, plan.rounds);
    let row = |name: &str, s: &Summary| {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |",
            s.min(),
            s.median(),
            s.pct(95.0),
            s.max()
        )
    };
    println!(
        "`kill -9` with a change of one group unacknowledged by every receiver (the other \
         {} groups acknowledged), then a restart; {} runs, ms from exec:\n\n\
         | measure | min | p50 | p95 | max |\n|---|---:|---:|---:|---:|",
        plan.groups - 1,
        plan.runs
    );
    row(
        "`listening on` logged",
        &Summary::of_durations_ms(&times[0]),
    );
    row(
        "first notification received",
        &Summary::of_durations_ms(&times[1]),
    );
    row(
        &format!("the change received by all {} receivers", plan.receivers),
        &Summary::of_durations_ms(&times[2]),
    );
    println!(
        "\nThe {told} acknowledgements of the first start were all in the state file {:.0} ms \
         after the receiver had accepted the last of them.",
        acknowledged_after.as_secs_f64() * 1e3
    );
    println!(
        "\nState file: {size_acknowledged} bytes with everything acknowledged, {size} bytes with \
         the change held. In this process, {} rounds on the latter, ms:\n\n\
         | step | min | p50 | p95 | max |\n|---|---:|---:|---:|---:|",
        plan.rounds
    );
    row("snapshot (clone of the saved state)", &snapshot);
    row("serialise to JSON", &serialise);
    row("write a temporary file and rename it", &write);
}
