use super::*;
use crate::rules::fixtures::t;

fn set(fps: &[&str]) -> BTreeSet<String> {
    fps.iter().map(|s| s.to_string()).collect()
}

fn entry(firing: &[&str], resolved: &[&str], at: u64) -> Entry {
    Entry {
        firing: set(firing),
        resolved: set(resolved),
        at: t(at),
    }
}

const HOUR: u64 = 3600;

/// (name, firing, resolved, send_resolved, firing in flight, entry, now, want)
type Row = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    bool,
    bool,
    Option<Entry>,
    u64,
    (bool, Reason),
);

#[test]
fn decision_table() {
    use Reason::*;
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("empty group", &[], &[], true, false, None, 10, (false, Empty)),
        ("empty group with an entry", &[], &[], true, false, Some(entry(&["a"], &[], 0)), 10, (false, Empty)),
        ("first firing", &["a"], &[], true, false, None, 10, (true, FirstNotification)),
        ("first, firing and resolved", &["a"], &["b"], true, false, None, 10, (true, FirstNotification)),
        ("only resolved, never told", &[], &["a"], true, false, None, 10, (false, NeverFired)),
        ("only resolved, entry without firing", &[], &["a"], true, false, Some(entry(&[], &["z"], 0)), 10, (false, NeverFired)),
        ("same firing, repeat not due", &["a"], &[], true, false, Some(entry(&["a"], &[], 0)), 10, (false, UpToDate)),
        ("same firing, repeat exactly due", &["a"], &[], true, false, Some(entry(&["a"], &[], 0)), HOUR, (true, Repeat)),
        ("same firing, repeat overdue", &["a"], &[], true, false, Some(entry(&["a"], &[], 0)), 5 * HOUR, (true, Repeat)),
        ("new firing alert", &["a", "b"], &[], true, false, Some(entry(&["a"], &[], 0)), 10, (true, NewFiring)),
        ("replaced firing alert", &["b"], &[], true, false, Some(entry(&["a"], &[], 0)), 10, (true, NewFiring)),
        ("one of two resolved, send_resolved", &["a"], &["b"], true, false, Some(entry(&["a", "b"], &[], 0)), 10, (true, NewResolved)),
        ("one of two resolved, no send_resolved", &["a"], &["b"], false, false, Some(entry(&["a", "b"], &[], 0)), 10, (false, UpToDate)),
        ("one of two resolved, no send_resolved, repeat due", &["a"], &["b"], false, false, Some(entry(&["a", "b"], &[], 0)), HOUR, (true, Repeat)),
        ("resolution already told", &["a"], &["b"], true, false, Some(entry(&["a"], &["b"], 0)), 10, (false, UpToDate)),
        ("all resolved", &[], &["a"], true, false, Some(entry(&["a"], &[], 0)), 10, (true, AllResolved)),
        ("all resolved, no send_resolved still clears the log", &[], &["a"], false, false, Some(entry(&["a"], &[], 0)), 10, (true, AllResolved)),
        ("fired again after a told resolution", &["a"], &[], true, false, Some(entry(&[], &["a"], 0)), 10, (true, NewFiring)),
        ("fewer firing, nothing resolved held", &["a"], &[], true, false, Some(entry(&["a", "b"], &[], 0)), 10, (false, UpToDate)),
        ("resolved while the firing notification is in flight", &[], &["a"], true, true, None, 10, (true, ResolvedInFlight)),
        ("resolved in flight, entry without firing", &[], &["a"], true, true, Some(entry(&[], &["z"], 0)), 10, (true, ResolvedInFlight)),
        ("in flight does not change a firing decision", &["a"], &[], true, true, Some(entry(&["a"], &[], 0)), 10, (false, UpToDate)),
        ("clock backwards: no repeat", &["a"], &[], true, false, Some(entry(&["a"], &[], 100)), 10, (false, UpToDate)),
    ];
    assert!(rows.len() >= 20);
    for (name, firing, resolved, send_resolved, in_flight, e, now, want) in rows {
        let (f, r) = (set(firing), set(resolved));
        let g = GroupState {
            firing: &f,
            resolved: &r,
            repeat_interval: Duration::from_secs(HOUR),
            send_resolved,
            firing_in_flight: in_flight,
        };
        assert_eq!(should_notify(g, e.as_ref(), t(now)), want, "{name}");
    }
}

#[test]
fn reasons_have_distinct_labels() {
    let labels: BTreeSet<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(labels.len(), Reason::ALL.len());
}

#[test]
fn log_records_and_prunes() {
    let mut log = NotificationLog::default();
    log.record("r", "webhook", "g1", entry(&["a"], &[], 0));
    log.record("r", "webhook", "g2", entry(&[], &["a"], 0));
    log.record("s", "webhook", "g3", entry(&["a"], &[], 0));
    assert_eq!(log.len(), 3);
    assert_eq!(log.get("r", "webhook", "g1"), Some(&entry(&["a"], &[], 0)));
    assert_eq!(
        log.get("r", "slack", "g1"),
        None,
        "each integration on its own"
    );
    // g2 acknowledged nothing firing and has no group: gone; g3 too old: gone.
    log.prune(t(10), Duration::from_secs(5), |r, i, k| {
        r == "r" && i == "webhook" && k == "g1"
    });
    assert_eq!(log.len(), 1);
    log.prune(t(10), Duration::from_secs(100), |_, _, _| false);
    assert_eq!(log.len(), 1, "firing and recent: kept without a group");
    log.prune(t(1000), Duration::from_secs(100), |_, _, _| false);
    assert!(log.is_empty());
}

#[test]
fn a_log_saved_before_integrations_reads_as_the_webhook_integration() {
    let mut log = NotificationLog::default();
    log.record("r", "webhook", "g1", entry(&["a"], &[], 0));
    let now = serde_json::to_string(&log).expect("json");
    let old = serde_json::json!({
        "entries": { "r": { "g1": serde_json::to_value(entry(&["a"], &[], 0)).expect("json") } }
    });
    let read: NotificationLog = serde_json::from_value(old).expect("old shape");
    assert_eq!(read, log);
    let again: NotificationLog = serde_json::from_str(&now).expect("new shape");
    assert_eq!(again, log);
}
