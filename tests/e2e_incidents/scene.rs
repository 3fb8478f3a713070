//! The stage every incident replay shares: a throwaway cluster with small `max_connections`, a
//! non-superuser monitoring role with `pg_monitor`, an application role, a real webhook
//! receiver, and `poolwatch run` configured to poll every 100 ms with short `for` durations.
//! Plus readers for what the receiver got (checked against the Alertmanager v4 shape on the way)
//! and for `/metrics`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::common::metrics::find_sample;
use crate::common::{poll_until, ConnectionHold, PgCluster, PgOptions, Poolwatch, Receiver};

/// How long an expected event may take. Generous: the waits end as soon as the event happens.
pub const WAIT: Duration = Duration::from_secs(30);

/// The monitoring role: `LOGIN` and `pg_monitor`, nothing more (no superuser reserved slots).
pub const MONITOR: &str = "poolwatch";
const MONITOR_PASSWORD: &str = "monitor-pw-1";

/// The application role whose connections fill the pools.
pub const APP: &str = "app";
const APP_PASSWORD: &str = "app-pw-2";

/// `superuser_reserved_connections` of every scene's cluster.
pub const RESERVED: u32 = 3;

/// What PostgreSQL says when only superuser slots are left: the PostgreSQL 13-15 wording, or
/// 16+'s (a regex fragment).
pub const RESERVED_REFUSAL: &str = "remaining connection slots are reserved for \
     (non-replication superuser connections|roles with the SUPERUSER attribute)";

/// Whether `text` matches the regex `pattern` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .unwrap_or_else(|e| panic!("regex {pattern}: {e}"))
        .is_match(text)
}

/// The receiver's name in the config, hence the payloads' `receiver`.
pub const RECEIVER_NAME: &str = "oncall";

/// Rule overrides that make the built-in pool rules fire within a few polls.
pub const FAST_RULES: &str = r#"
[[rules]]
name = "PoolUtilizationHigh"
for = "300ms"

[[rules]]
name = "PoolNearFull"
for = "300ms"
"#;

/// A cluster, its roles and a receiver; poolwatch is started separately, so that a test can
/// prepare the server first (e.g. fill it).
pub struct Scene {
    /// The target's name in the config: the `target` label.
    pub target: &'static str,
    pub pg: PgCluster,
    pub receiver: Receiver,
}

impl Scene {
    /// Starts a cluster with `max_connections` (3 reserved for superusers), creates the
    /// monitoring role and the application role (with `CONNECTION LIMIT app_limit`, if any).
    pub async fn start(
        target: &'static str,
        max_connections: u32,
        app_limit: Option<i32>,
    ) -> Scene {
        let pg = PgCluster::start(PgOptions {
            max_connections,
            superuser_reserved_connections: RESERVED,
            ..Default::default()
        })
        .await;
        pg.create_role(MONITOR, MONITOR_PASSWORD, None).await;
        pg.exec(&format!("GRANT pg_monitor TO {MONITOR}")).await;
        pg.create_role(APP, APP_PASSWORD, app_limit).await;
        let receiver = Receiver::start().await;
        Scene {
            target,
            pg,
            receiver,
        }
    }

    /// A daemon configuration: this scene's target polled every 100 ms, `rules` appended, and
    /// the receiver retrying from 50 ms.
    pub fn config(&self, rules: &str) -> String {
        format!(
            r#"
[http]
listen = "127.0.0.1:0"

[[targets]]
name = "{target}"
host = "127.0.0.1"
port = {port}
user = "{MONITOR}"
password = "{password}"
dbname = "postgres"
sslmode = "disable"
interval = "100ms"
connect_timeout = "3s"
statement_timeout = "3s"
reconnect_max_backoff = "400ms"

{rules}

[[receivers]]
name = "{RECEIVER_NAME}"
initial_backoff = "50ms"
max_backoff = "500ms"
[[receivers.integrations]]
type = "webhook"
url = "{url}"
"#,
            target = self.target,
            port = self.pg.port(),
            password = MONITOR_PASSWORD,
            url = self.receiver.url("/hook"),
        )
    }

    /// Starts `poolwatch run` with [`FAST_RULES`] plus `more_rules`.
    pub async fn poolwatch(&self, more_rules: &str) -> Poolwatch {
        Poolwatch::start(&self.config(&format!("{FAST_RULES}\n{more_rules}"))).await
    }

    /// Opens exactly `n` application connections named `application_name`; panics if refused.
    pub async fn hold(&self, n: usize, application_name: &str) -> ConnectionHold {
        self.pg
            .hold_connections(APP, n, application_name)
            .await
            .unwrap_or_else(|e| panic!("holding {n} {APP} connections: {e:?}"))
    }

    /// Asserts that one more connection as `user` is refused with SQLSTATE 53300 and returns
    /// the server's message.
    pub async fn assert_refused(&self, user: &str) -> String {
        match self.pg.connect(user, "postgres").await {
            Ok(_) => panic!("a connection as {user} was accepted; the pool is not full"),
            Err(e) => {
                let db = e
                    .as_db_error()
                    .unwrap_or_else(|| panic!("not a server error: {e:?}"));
                assert_eq!(db.code().code(), "53300", "{db:?}");
                db.message().to_owned()
            }
        }
    }

    /// `pg_stat_activity` sessions with `application_name = 'poolwatch'`, via a superuser
    /// connection (which can use a reserved slot when the server is full for others).
    pub async fn poolwatch_sessions(&self) -> i64 {
        self.pg
            .query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'poolwatch'")
            .await[0]
            .get(0)
    }

    /// Every request the receiver got, as checked Alertmanager v4 notices.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.receiver
            .requests()
            .iter()
            .filter(|r| r.answered < 300)
            .map(|r| {
                assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hook"));
                let json = r
                    .json
                    .clone()
                    .unwrap_or_else(|| panic!("not JSON: {}", r.body_text()));
                Delivered::from_payload(json)
            })
            .collect()
    }

    /// Waits for a delivered notice matching `wanted`; panics listing every delivery otherwise.
    pub async fn wait_delivered(
        &self,
        what: &str,
        wanted: impl Fn(&Delivered) -> bool,
    ) -> Delivered {
        let found = poll_until(WAIT, || {
            let hit = self.delivered().into_iter().find(|d| wanted(d));
            async move { hit }
        })
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "no notice {what} within {WAIT:?}; delivered:\n{}",
                describe(&self.delivered())
            )
        })
    }
}

/// One delivered notification, read from an Alertmanager v4 webhook payload.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// `firing` or `resolved`.
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    pub description: String,
    pub fingerprint: String,
    pub starts_at: SystemTime,
    /// `None` while firing (Go's zero time in the payload).
    pub ends_at: Option<SystemTime>,
}

impl Delivered {
    /// Checks the payload's Alertmanager v4 shape and extracts its one alert.
    pub fn from_payload(json: Value) -> Delivered {
        let s = |v: &Value| {
            v.as_str()
                .unwrap_or_else(|| panic!("not a string: {v}"))
                .to_owned()
        };
        assert_eq!(json["version"], "4", "{json}");
        assert_eq!(json["receiver"], RECEIVER_NAME, "{json}");
        assert_eq!(json["truncatedAlerts"], 0, "{json}");
        let alerts = json["alerts"].as_array().expect("alerts array");
        assert_eq!(alerts.len(), 1, "{json}");
        let alert = &alerts[0];
        let status = s(&json["status"]);
        assert!(status == "firing" || status == "resolved", "{json}");
        assert_eq!(alert["status"], json["status"], "{json}");
        let labels: BTreeMap<String, String> =
            serde_json::from_value(alert["labels"].clone()).expect("labels are strings");
        for key in ["alertname", "severity", "target"] {
            assert!(labels.contains_key(key), "label {key} missing: {json}");
        }
        assert_eq!(json["commonLabels"], alert["labels"], "{json}");
        assert_eq!(json["groupLabels"], alert["labels"], "{json}");
        assert_eq!(json["commonAnnotations"], alert["annotations"], "{json}");
        // Without [route]: each receiver's route under the root ("{}/{}"), one alert per group.
        assert!(s(&json["groupKey"]).starts_with("{}/{}:{"), "{json}");
        let generator = s(&alert["generatorURL"]);
        assert!(generator.ends_with("/api/v1/alerts"), "{json}");
        let fingerprint = s(&alert["fingerprint"]);
        assert!(
            fingerprint.len() == 16 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()),
            "{json}"
        );
        let time = |v: &Value| {
            humantime::parse_rfc3339(&s(v)).unwrap_or_else(|e| panic!("time {v}: {e}: {json}"))
        };
        let starts_at = time(&alert["startsAt"]);
        let ends_at = if status == "firing" {
            assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z", "{json}");
            None
        } else {
            let ends = time(&alert["endsAt"]);
            assert!(ends >= starts_at, "{json}");
            Some(ends)
        };
        let annotation = |k: &str| s(&alert["annotations"][k]);
        Delivered {
            status,
            summary: annotation("summary"),
            description: annotation("description"),
            labels,
            fingerprint,
            starts_at,
            ends_at,
        }
    }

    pub fn alertname(&self) -> &str {
        &self.labels["alertname"]
    }

    /// Whether this is `alertname` with `status` for the pool `kind`/`pool`.
    pub fn is(&self, alertname: &str, status: &str, kind: &str, pool: &str) -> bool {
        self.alertname() == alertname
            && self.status == status
            && self.labels.get("kind").map(String::as_str) == Some(kind)
            && self.labels.get("pool").map(String::as_str) == Some(pool)
    }

    /// Whether this is the target-level `alertname` with `status` (no kind or pool label).
    pub fn is_target(&self, alertname: &str, status: &str) -> bool {
        self.alertname() == alertname
            && self.status == status
            && !self.labels.contains_key("kind")
            && !self.labels.contains_key("pool")
    }
}

/// One line per notice, for failure messages.
pub fn describe(delivered: &[Delivered]) -> String {
    delivered
        .iter()
        .map(|d| {
            format!(
                "  {} {:?} {} | {} | {}\n",
                d.status, d.labels, d.fingerprint, d.summary, d.description
            )
        })
        .collect()
}

/// The pool labels of `target`'s server pool, for metric lookups.
pub fn server_pool(target: &str) -> [(&str, &str); 3] {
    [("target", target), ("kind", "server"), ("pool", "server")]
}

/// The current value of the one sample `name{labels}`; `None` when absent.
pub async fn metric(pw: &Poolwatch, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let samples = pw.metrics().await.unwrap_or_else(|e| panic!("{e}"));
    find_sample(&samples, name, labels).ok()
}

/// Waits until `name{labels}` equals `want`; panics with the last value otherwise.
pub async fn wait_metric(pw: &Poolwatch, name: &str, labels: &[(&str, &str)], want: f64) {
    if let Err(e) = pw.wait_for_metric(name, labels, |v| v == want, WAIT).await {
        panic!("waiting for {name}{labels:?} == {want}: {e}\n{}", pw.logs());
    }
}

/// The alerts of `/api/v1/alerts`.
pub async fn api_alerts(pw: &Poolwatch) -> Vec<Value> {
    let (status, body) = pw.get("/api/v1/alerts").await;
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(json["status"], "success", "{body}");
    json["data"]["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("no data.alerts: {body}"))
        .clone()
}

/// The `/api/v1/alerts` entry whose fingerprint is `fingerprint`; panics if there is none.
pub fn api_alert<'a>(alerts: &'a [Value], fingerprint: &str) -> &'a Value {
    alerts
        .iter()
        .find(|a| a["fingerprint"] == fingerprint)
        .unwrap_or_else(|| panic!("no alert {fingerprint} in /api/v1/alerts: {alerts:#?}"))
}
