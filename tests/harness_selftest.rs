//! Tests of the test harness itself, against real PostgreSQL, HTTP and promtool.
//!
//! Each of them fails if the part of `tests/common` it covers is broken.

mod common;

use std::time::{Duration, Instant};

use common::pg::{setup, ssl};
use common::{
    promtool_check_metrics, Alertmanager, PgCluster, PgOptions, Poolwatch, PoolwatchOptions,
    Receiver,
};
use tokio_postgres::error::SqlState;

/// The SQLSTATE and message of a refused connection; panics if it was not a server error.
fn refusal(result: Result<impl Sized, tokio_postgres::Error>) -> (SqlState, String) {
    let error = match result {
        Ok(_) => panic!("connection accepted, expected a refusal"),
        Err(e) => e,
    };
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {error:?}"));
    (db.code().clone(), db.message().to_owned())
}

#[tokio::test]
async fn full_cluster_refuses_with_53300_after_reserved_slots() {
    let started = Instant::now();
    let pg = PgCluster::start(PgOptions {
        max_connections: 5,
        superuser_reserved_connections: 2,
        ..Default::default()
    })
    .await;
    eprintln!("cluster started in {:?}", started.elapsed());
    assert_ne!(pg.port(), 5432);
    let rows = pg.query("SHOW max_connections").await;
    assert_eq!(rows[0].get::<_, String>(0), "5");
    pg.create_role("app", "app-secret", None).await;

    // 5 slots, 2 reserved for superusers: ordinary roles get 3.
    let app = pg
        .hold_connections("app", 3, "app")
        .await
        .expect("3 ordinary connections fit");
    let (code, message) = refusal(pg.connect("app", "postgres").await);
    assert_eq!(code, SqlState::TOO_MANY_CONNECTIONS);
    assert!(message.contains("reserved"), "{message}");

    let mut admins = pg
        .hold_connections("postgres", 2, "admin")
        .await
        .expect("superusers use the reserved slots");
    let (code, message) = refusal(pg.connect("postgres", "postgres").await);
    assert_eq!(code, SqlState::TOO_MANY_CONNECTIONS);
    assert!(message.contains("too many clients already"), "{message}");

    // Closing one frees its slot, and the hold's connections are real sessions.
    admins.close(1).await;
    assert_eq!(admins.len(), 1);
    let rows = pg
        .query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'app'")
        .await;
    assert_eq!(rows[0].get::<_, i64>(0), 3);
    app.client(0)
        .batch_execute("BEGIN")
        .await
        .expect("BEGIN on a held connection");
    let rows = pg.query("SELECT state FROM pg_stat_activity WHERE application_name = 'app' AND xact_start IS NOT NULL").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "idle in transaction");
}

#[tokio::test]
async fn password_roles_are_checked_and_limited() {
    let pg = PgCluster::start(PgOptions::default()).await;
    pg.create_role("limited", "right pass'word", Some(1)).await;
    let (code, _) =
        refusal(common::pg::connect(&pg.url_with_password("limited", "wrong", "postgres")).await);
    assert_eq!(code, SqlState::INVALID_PASSWORD);

    let hold = pg
        .hold_connections("limited", 1, "one")
        .await
        .expect("right password");
    let (code, message) = refusal(pg.connect("limited", "postgres").await);
    assert_eq!(code, SqlState::TOO_MANY_CONNECTIONS);
    assert!(
        message.contains("too many connections for role"),
        "{message}"
    );
    hold.close_all().await;
    pg.connect("limited", "postgres")
        .await
        .expect("slot of the role is free again");

    pg.create_database("small", Some(2)).await;
    let rows = pg
        .query("SELECT datconnlimit FROM pg_database WHERE datname = 'small'")
        .await;
    assert_eq!(rows[0].get::<_, i32>(0), 2);
}

#[tokio::test]
async fn restart_with_lower_max_connections() {
    let pg = PgCluster::start(PgOptions {
        max_connections: 10,
        superuser_reserved_connections: 1,
        ..Default::default()
    })
    .await;
    pg.create_role("app", "pw", None).await;
    let port = pg.port();
    pg.set_conf("max_connections", 4);
    let started = Instant::now();
    pg.restart().await;
    eprintln!("cluster restarted in {:?}", started.elapsed());
    assert_eq!(pg.port(), port);
    let rows = pg.query("SHOW max_connections").await;
    assert_eq!(rows[0].get::<_, String>(0), "4");
    let _app = pg
        .hold_connections("app", 3, "app")
        .await
        .expect("3 of 4 slots for ordinary roles");
    let (code, _) = refusal(pg.connect("app", "postgres").await);
    assert_eq!(code, SqlState::TOO_MANY_CONNECTIONS);
}

#[tokio::test]
async fn stop_and_start_again_keep_port_and_data() {
    let pg = PgCluster::start(PgOptions::default()).await;
    pg.exec("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
        .await;
    let port = pg.port();
    assert!(pg.is_running().await);

    let held = pg
        .hold_connections("postgres", 1, "survivor")
        .await
        .expect("hold");
    pg.stop().await;
    assert!(!pg.is_running().await);
    let refused = pg
        .connect("postgres", "postgres")
        .await
        .expect_err("server is down");
    assert!(
        refused.as_db_error().is_none(),
        "expected a transport error, got {refused:?}"
    );
    assert!(
        held.client(0).simple_query("SELECT 1").await.is_err(),
        "held session survived stop"
    );

    pg.start_again().await;
    assert!(pg.is_running().await);
    assert_eq!(pg.port(), port);
    let rows = pg.query("SELECT x FROM kept").await;
    assert_eq!(rows[0].get::<_, i32>(0), 42);
}

#[tokio::test]
async fn dropping_a_cluster_stops_it_and_removes_its_files() {
    let pg = PgCluster::start(PgOptions::default()).await;
    let (data, url) = (pg.data_dir(), pg.url("postgres", "postgres"));
    drop(pg);
    assert!(!data.exists(), "{} still exists", data.display());
    assert!(
        common::pg::connect(&url).await.is_err(),
        "server still answers after drop"
    );
}

#[tokio::test]
async fn ssl_cluster_accepts_verify_full_with_its_ca_only() {
    let started = Instant::now();
    let pg = PgCluster::start(PgOptions {
        ssl: true,
        ..Default::default()
    })
    .await;
    eprintln!("TLS cluster started in {:?}", started.elapsed());
    let ca = pg.ca_file().expect("CA file").to_owned();
    let trusted = tokio_postgres_rustls::MakeRustlsConnect::new(
        ssl::client_config(&ca).expect("client config"),
    );
    for host in ["host=localhost hostaddr=127.0.0.1", "host=127.0.0.1"] {
        let conninfo = format!(
            "{host} port={} user=postgres dbname=postgres sslmode=require",
            pg.port()
        );
        let (client, connection) = tokio_postgres::connect(&conninfo, trusted.clone())
            .await
            .unwrap_or_else(|e| panic!("TLS connect with {host}: {e:?}"));
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .expect("query");
        assert!(row.get::<_, bool>(0), "session not encrypted with {host}");
    }
    let untrusted = tokio_postgres_rustls::MakeRustlsConnect::new(ssl::client_config_with_roots(
        rustls::RootCertStore::empty(),
    ));
    let conninfo = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=postgres sslmode=require",
        pg.port()
    );
    assert!(
        tokio_postgres::connect(&conninfo, untrusted).await.is_err(),
        "certificate accepted without its CA"
    );

    // libpq's own verify-full, as the README would tell users to check.
    let out = std::process::Command::new(setup::psql())
        .arg(format!("host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}", pg.port(), ca.display()))
        .args(["-XAtc", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql verify-full: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t");
}

#[tokio::test]
async fn receiver_records_fails_on_demand_and_restarts_on_its_port() {
    let mut receiver = Receiver::start().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let url = receiver.url("/hook?x=1");
    let post = |body: &'static str| {
        http.post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let response = post(r#"{"status":"firing"}"#).await.expect("POST");
    assert_eq!(response.status().as_u16(), 200);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let first = &requests[0];
    assert_eq!(
        (
            first.method.as_str(),
            first.path.as_str(),
            first.query.as_deref()
        ),
        ("POST", "/hook", Some("x=1"))
    );
    assert_eq!(first.header("Content-Type"), Some("application/json"));
    assert_eq!(first.json.as_ref().unwrap()["status"], "firing");

    receiver.set_status(500);
    assert_eq!(post("{}").await.expect("POST").status().as_u16(), 500);
    assert!(
        receiver
            .wait_for(
                |reqs| reqs.len() == 2 && reqs[1].answered == 500,
                Duration::from_secs(1)
            )
            .await
    );

    let port = receiver.addr().port();
    receiver.stop();
    let refused = tokio::net::TcpStream::connect(receiver.addr())
        .await
        .expect_err("receiver is down");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    // The client's pooled keep-alive connection was closed too: no request gets through.
    post("{}").await.expect_err("receiver is down");
    post("{}").await.expect_err("receiver is down");
    assert!(
        !receiver
            .wait_for(|reqs| reqs.len() > 2, Duration::from_millis(200))
            .await
    );

    receiver.set_status(200);
    receiver.restart();
    assert_eq!(receiver.addr().port(), port);
    assert_eq!(
        post("{}")
            .await
            .expect("POST after restart")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(receiver.requests().len(), 3);
}

#[test]
fn promtool_accepts_good_exposition_and_rejects_bad() {
    let good = "# HELP poolwatch_pool_in_use_connections In use.\n\
                # TYPE poolwatch_pool_in_use_connections gauge\n\
                poolwatch_pool_in_use_connections{target=\"db\",pool=\"server\"} 3\n";
    promtool_check_metrics(good).expect("good exposition");
    let malformed = "poolwatch_pool_in_use_connections{target=\"db\" 3\n";
    assert!(promtool_check_metrics(malformed).is_err());
    let lint = "# TYPE poolwatch_notifications counter\npoolwatch_notifications 1\n";
    let error = promtool_check_metrics(lint).expect_err("counter without _total or HELP");
    assert!(error.contains("_total"), "{error}");
}

#[test]
fn exposition_parser_reads_labels_escapes_and_special_values() {
    let text = "# HELP x y\nup 1\nm{a=\"q\\\"uote\",b=\"back\\\\slash\\n\"} +Inf 1700000000\nm{a=\"plain\"} NaN\n";
    let samples = common::parse_exposition(text).expect("parse");
    assert_eq!(samples.len(), 3);
    assert_eq!(samples[1].labels["a"], "q\"uote");
    assert_eq!(samples[1].labels["b"], "back\\slash\n");
    assert_eq!(samples[1].value, f64::INFINITY);
    assert!(samples[2].value.is_nan());
    assert_eq!(common::metrics::find_sample(&samples, "up", &[]), Ok(1.0));
    assert!(
        common::metrics::find_sample(&samples, "m", &[]).is_err(),
        "two samples match"
    );
    assert!(common::parse_exposition("m{a=\"open} 1\n").is_err());
}

#[tokio::test]
async fn poolwatch_helper_reports_a_daemon_that_exits_without_listening() {
    let mut daemon = Poolwatch::spawn("this is [not toml", PoolwatchOptions::default());
    let error = daemon
        .wait_listening(Duration::from_secs(20))
        .await
        .expect_err("cannot listen");
    assert!(error.contains("exited"), "{error}");
    daemon.wait_exit(Duration::from_secs(5)).await;
    assert!(daemon.config().path().is_file());
}

#[tokio::test]
async fn alertmanager_routes_pushed_alerts_to_the_webhook_and_stops_on_drop() {
    let hook = Receiver::start().await;
    let am = Alertmanager::start(&hook.url("/hook")).await;
    assert!(am.alerts().await.is_empty());
    let now = std::time::SystemTime::now();
    let alert = |ends: std::time::SystemTime| {
        serde_json::json!([{
            "labels": {"alertname": "HarnessCheck", "target": "db"},
            "annotations": {"summary": "from the self-test"},
            "startsAt": humantime::format_rfc3339_millis(now - Duration::from_secs(5)).to_string(),
            "endsAt": humantime::format_rfc3339_millis(ends).to_string(),
            "generatorURL": "http://127.0.0.1/api/v1/alerts",
        }])
    };
    // Firing (its end in the future): one notification after group_wait.
    assert_eq!(
        am.post_alerts(&alert(now + Duration::from_secs(300))).await,
        200
    );
    let statuses = |requests: &[common::RecordedRequest]| -> Vec<String> {
        requests
            .iter()
            .filter_map(|r| r.json.as_ref())
            .map(|j| format!("{} {}", j["status"], j["alerts"][0]["labels"]["alertname"]))
            .collect()
    };
    let firing = r#""firing" "HarnessCheck""#;
    let resolved = r#""resolved" "HarnessCheck""#;
    assert!(
        hook.wait_for(|r| statuses(r) == [firing], Duration::from_secs(15))
            .await,
        "{:?}\n{}",
        statuses(&hook.requests()),
        am.log()
    );
    let listed = am.alerts().await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["labels"]["target"], "db");
    // Resolved (its end now): one resolved notification.
    assert_eq!(
        am.post_alerts(&alert(std::time::SystemTime::now())).await,
        200
    );
    assert!(
        hook.wait_for(
            |r| statuses(r) == [firing, resolved],
            Duration::from_secs(15)
        )
        .await,
        "{:?}\n{}",
        statuses(&hook.requests()),
        am.log()
    );
    // A malformed body is refused, as a pusher must expect.
    assert_eq!(
        am.post_alerts(&serde_json::json!({"not": "a list"})).await,
        400
    );

    let (pid, dir) = (am.pid(), am.dir().to_path_buf());
    drop(am);
    assert!(common::process_exited(pid), "alertmanager {pid} still runs");
    assert!(!dir.exists(), "{} left behind", dir.display());
}
