//! Tests of templates: parsing, unknown variables, rendering of every variable.
use super::*;
use crate::model::Holders;
use crate::rules::fixtures::incident_one;

fn vars(snapshot: Option<&PoolSnapshot>) -> Vars<'_> {
    Vars {
        alertname: "PoolNearFull",
        severity: Severity::Critical,
        target: "orders-db",
        kind: "server",
        pool: "server",
        subject: "orders-db",
        snapshot,
        value: Some(1.0),
        threshold: Some(0.95),
        previous_capacity: None,
        error: None,
        duration: Some(Duration::from_secs(192)),
        target_state: Some(Ok(())),
        prediction: None,
    }
}

#[test]
fn renders_every_variable() {
    let snap = incident_one();
    let v = vars(Some(&snap));
    let cases = [
        ("{{target}}", "orders-db"),
        ("{{ subject }}", "orders-db"),
        ("{{value}} vs {{threshold}}", "1 vs 0.95"),
        ("{{in_use}}/{{capacity}} ({{utilization}})", "97/97 (100%)"),
        ("{{free}} free, {{idle}} idle", "0 free, 3 idle"),
        (
            "{{idle_in_transaction}} oldest {{oldest_idle_in_transaction}}",
            "12 oldest 4m",
        ),
        ("{{oldest_transaction}}", "-"),
        ("{{capacity_note}}", "max_connections 100, 3 reserved"),
        (
            "{{top_holders}}",
            "app=django holds 91 (12 idle in transaction), app=celery holds 4; \
             role=app 95, role=postgres 2",
        ),
        ("{{previous_capacity}} {{error}} {{error_class}}", "- - -"),
        ("{{severity}} {{alertname}}", "critical PoolNearFull"),
        (
            "{{alertname}} cleared after {{duration}}",
            "PoolNearFull cleared after 3m 12s",
        ),
        ("{{ target_state }}", "up"),
        ("~{{exhausted_in}} at {{slope}}/min", "~- at -/min"),
        ("no placeholders", "no placeholders"),
        ("", ""),
    ];
    for (src, want) in cases {
        let t = Template::parse(src).unwrap();
        assert_eq!(t.render(&v), want, "{src}");
    }
}

#[test]
fn renders_without_snapshot_and_with_error() {
    let err = PollError {
        class: ErrorClass::TooManyConnections,
        message: "sorry, too many clients already".into(),
    };
    let mut v = vars(None);
    v.kind = "";
    v.pool = "";
    v.error = Some(&err);
    v.duration = None;
    let t = Template::parse("{{subject}}: {{error}} ({{error_class}}) {{in_use}}/{{capacity}} {{utilization}} {{top_holders}} {{capacity_note}} {{duration}}").unwrap();
    assert_eq!(
        t.render(&v),
        "orders-db: sorry, too many clients already (too_many_connections) -/- - - - -"
    );
}

#[test]
fn target_states() {
    let t = Template::parse("{{target}} is {{target_state}}").unwrap();
    // (state as of the last poll, rendered)
    let cases = [
        (None, "orders-db is unknown"),
        (Some(Ok(())), "orders-db is up"),
        (
            Some(Err(ErrorClass::TooManyConnections)),
            "orders-db is saturated",
        ),
        (
            Some(Err(ErrorClass::Network)),
            "orders-db is down (network)",
        ),
        (Some(Err(ErrorClass::Auth)), "orders-db is down (auth)"),
    ];
    for (state, want) in cases {
        let mut v = vars(None);
        v.target_state = state;
        assert_eq!(t.render(&v), want, "{state:?}");
    }
}

#[test]
fn role_subject_and_missing_breakdown() {
    let mut snap = crate::rules::fixtures::role_pool("orders-db", "app", 97, 97);
    if let Some(pg) = snap.postgres.as_mut() {
        pg.holders = Holders::default();
    }
    snap.capacity_note = String::new();
    let mut v = vars(Some(&snap));
    v.kind = "role";
    v.pool = "app";
    v.subject = "orders-db role app";
    let t = Template::parse("{{subject}}: {{capacity_note}}; {{top_holders}}").unwrap();
    assert_eq!(
        t.render(&v),
        "orders-db role app: capacity 97; no breakdown by holder"
    );
}

#[test]
fn parse_errors_are_precise() {
    let err = Template::parse("{{ utilisation }}").unwrap_err();
    assert!(err.contains("did you mean {{utilization}}"), "{err}");
    let err = Template::parse("{{tagret}} x").unwrap_err();
    assert!(
        err.contains("{{tagret}}") && err.contains("{{target}}"),
        "{err}"
    );
    let err = Template::parse("a {{target").unwrap_err();
    assert!(err.contains("unclosed"), "{err}");
    let err = Template::parse("{{ }}").unwrap_err();
    assert!(err.contains("empty placeholder"), "{err}");
    let err = Template::parse("{{zzzzqqq}}").unwrap_err();
    assert!(
        !err.contains("did you mean") && err.contains("known variables"),
        "{err}"
    );
}

#[test]
fn pool_details_say_what_each_source_knows() {
    let mut queueing = crate::rules::fixtures::pool("b", 5, 5);
    queueing.postgres = None;
    // (waiting, longest wait in ms, want)
    let cases = [
        (0, Some(0), "0 waiting"),
        (15, Some(1_200), "15 waiting, the longest for 1.2s"),
        (3, None, "3 waiting"),
    ];
    for (waiting, wait_ms, want) in cases {
        queueing.waiting = waiting;
        queueing.longest_wait = wait_ms.map(Duration::from_millis);
        assert_eq!(pool_details(&queueing), want, "{waiting} {wait_ms:?}");
    }
    assert_eq!(
        pool_details(&incident_one()),
        "app=django holds 91 (12 idle in transaction), app=celery holds 4; role=app 95, \
         role=postgres 2; 12 idle in transaction (oldest 4m)"
    );
}

#[test]
fn numbers_and_percentages() {
    assert_eq!(number(0.97), "0.97");
    assert_eq!(number(10.0), "10");
    assert_eq!(number(1.0 / 3.0), "0.333");
    assert_eq!(number(f64::NAN), "NaN");
    assert_eq!(percent(0.29), "29%");
    assert_eq!(percent(96.0 / 97.0), "98%");
    assert_eq!(percent(0.999), "99%");
    assert_eq!(percent(1.0), "100%");
    assert_eq!(percent(0.0), "0%");
}
