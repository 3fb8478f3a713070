//! Which series of an exposition give which number of a pool: a [`Mapping`], either one of the
//! built-in [`PRESETS`] (each says where its names come from) or a custom one from the config.
//! [`super::map`] applies it.

use super::exposition::{parse, Limits};

/// The series that give one number of a pool: the first of `names` an exposition has for the
/// pool, among samples carrying every label of `labels`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric names to try, in order: a library may name one number in several ways across
    /// versions and exporters (`_total` or not, a unit suffix or not).
    pub names: Vec<String>,
    /// Labels a sample must have with these values (OpenTelemetry's `state="used"`).
    pub labels: Vec<(String, String)>,
}

impl Series {
    /// Series named by any of `names`, without label conditions.
    pub fn named(names: &[&str]) -> Series {
        Series {
            names: names.iter().map(|n| n.to_string()).collect(),
            labels: Vec::new(),
        }
    }

    /// Adds the condition that label `name` equals `value`.
    pub fn with(mut self, name: &str, value: &str) -> Series {
        self.labels.push((name.to_string(), value.to_string()));
        self
    }

    /// Reads a selector as written in the config: `name` or `name{label="value",...}`.
    pub fn parse(selector: &str) -> Result<Series, String> {
        let limits = Limits {
            max_body: 4096,
            max_series: 1,
            ..Limits::default()
        };
        let line = format!("{} 0", selector.trim());
        let parsed = parse(line.as_bytes(), &limits).map_err(|e| e.message)?;
        match (parsed.samples.as_slice(), selector.contains('\n')) {
            ([one], false) => Ok(Series {
                names: vec![one.name.to_string()],
                labels: one
                    .labels
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            }),
            _ => Err("expected one series selector, e.g. my_pool_max{app=\"orders\"}".into()),
        }
    }

    /// Whether `name` is one of the names; its rank (0 first) if so.
    pub fn rank(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// How an exposition's series map to pools.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// The preset's name, or `custom`.
    pub name: String,
    /// The label whose value names the pool; samples without it belong to the pool `default`.
    /// `None`: every sample belongs to `default`.
    pub pool_label: Option<String>,
    /// The pool's maximum size. Required: a pool without it is left out.
    pub capacity: Option<Series>,
    /// Connections checked out.
    pub in_use: Option<Series>,
    /// Open connections ready to be handed out.
    pub idle: Option<Series>,
    /// Open connections, in use and idle: gives `in_use` or `idle` when only one is served.
    pub total: Option<Series>,
    /// Clients waiting for a connection now.
    pub waiting: Option<Series>,
    /// Cumulative count of acquires that had to wait.
    pub waits: Option<Series>,
    /// Cumulative seconds spent waiting.
    pub wait_seconds: Option<Series>,
    /// Cumulative count of acquires that gave up (timed out).
    pub timeouts: Option<Series>,
    /// Whether a capacity of 0 means "no limit" (Go's `SetMaxOpenConns(0)`): such a pool cannot
    /// run out and is left out.
    pub zero_capacity_is_unlimited: bool,
}

impl Mapping {
    fn preset(name: &str, pool_label: &str) -> Mapping {
        Mapping {
            name: name.to_string(),
            pool_label: Some(pool_label.to_string()),
            capacity: None,
            in_use: None,
            idle: None,
            total: None,
            waiting: None,
            waits: None,
            wait_seconds: None,
            timeouts: None,
            zero_capacity_is_unlimited: false,
        }
    }

    /// Every series of the mapping, with the pool number it gives (for describing a mapping and
    /// for saying what was looked for).
    pub fn fields(&self) -> [(&'static str, Option<&Series>); 8] {
        [
            ("capacity", self.capacity.as_ref()),
            ("in_use", self.in_use.as_ref()),
            ("idle", self.idle.as_ref()),
            ("total", self.total.as_ref()),
            ("waiting", self.waiting.as_ref()),
            ("waits", self.waits.as_ref()),
            ("wait_seconds", self.wait_seconds.as_ref()),
            ("timeouts", self.timeouts.as_ref()),
        ]
    }

    /// Every metric name the mapping reads, each once: what a parse for it needs to read
    /// ([`super::exposition::Keep::Names`]).
    pub fn sample_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for series in self.fields().into_iter().filter_map(|(_, s)| s) {
            for n in &series.names {
                if !names.contains(&n.as_str()) {
                    names.push(n);
                }
            }
        }
        names
    }
}

/// The built-in presets, by `preset` name.
pub const PRESETS: [&str; 6] = [
    "hikaricp",
    "go_sql",
    "pgxpool",
    "node_postgres",
    "otel",
    "otel_legacy",
];

/// The preset called `name`.
pub fn preset(name: &str) -> Option<Mapping> {
    Some(match name {
        "hikaricp" => hikaricp(),
        "go_sql" => go_sql(),
        "pgxpool" => pgxpool(),
        "node_postgres" => node_postgres(),
        "otel" => otel(),
        "otel_legacy" => otel_legacy(),
        _ => return None,
    })
}

/// HikariCP through Micrometer (`MicrometerMetricsTracker`, as Spring Boot's actuator serves
/// it): `hikaricp_connections` (open), `_active`, `_idle`, `_pending` (threads waiting), `_max`,
/// `_min`, and the counter `hikaricp_connections_timeout_total`; label `pool` (HikariCP's
/// `poolName`, `HikariPool-1` by default).
fn hikaricp() -> Mapping {
    Mapping {
        capacity: Some(Series::named(&["hikaricp_connections_max"])),
        in_use: Some(Series::named(&["hikaricp_connections_active"])),
        idle: Some(Series::named(&["hikaricp_connections_idle"])),
        total: Some(Series::named(&["hikaricp_connections"])),
        waiting: Some(Series::named(&["hikaricp_connections_pending"])),
        timeouts: Some(Series::named(&[
            "hikaricp_connections_timeout_total",
            "hikaricp_connections_timeout",
        ])),
        ..Mapping::preset("hikaricp", "pool")
    }
}

/// Go's `database/sql` through client_golang's `collectors.NewDBStatsCollector(db, name)`:
/// `go_sql_max_open_connections` (0: no limit), `go_sql_in_use_connections`,
/// `go_sql_idle_connections`, `go_sql_open_connections`, and the counters
/// `go_sql_wait_count_total` and `go_sql_wait_duration_seconds_total`; label `db_name`.
/// `sql.DBStats` has no count of goroutines waiting now: waits show as a rate.
fn go_sql() -> Mapping {
    Mapping {
        capacity: Some(Series::named(&["go_sql_max_open_connections"])),
        in_use: Some(Series::named(&["go_sql_in_use_connections"])),
        idle: Some(Series::named(&["go_sql_idle_connections"])),
        total: Some(Series::named(&["go_sql_open_connections"])),
        waits: Some(Series::named(&["go_sql_wait_count_total"])),
        wait_seconds: Some(Series::named(&["go_sql_wait_duration_seconds_total"])),
        zero_capacity_is_unlimited: true,
        ..Mapping::preset("go_sql", "db_name")
    }
}

/// pgx's `pgxpool` through its common collectors (IBM/pgxpoolprometheus and those modelled on
/// client_golang's DB stats collector): `pgxpool_max_conns`, `pgxpool_acquired_conns`,
/// `pgxpool_idle_conns`, `pgxpool_total_conns`, and the count of acquires that found the pool
/// empty, named `pgxpool_empty_acquire` (IBM), `pgxpool_empty_acquire_total` or
/// `pgxpool_empty_acquire_count_total` (others), with its wait time where served
/// (`pgxpool_empty_acquire_wait_time_seconds_total`); label `db_name`. `pgxpool.Stat` has no
/// count of waiters now: waits show as a rate.
fn pgxpool() -> Mapping {
    Mapping {
        capacity: Some(Series::named(&["pgxpool_max_conns"])),
        in_use: Some(Series::named(&["pgxpool_acquired_conns"])),
        idle: Some(Series::named(&["pgxpool_idle_conns"])),
        total: Some(Series::named(&["pgxpool_total_conns"])),
        waits: Some(Series::named(&[
            "pgxpool_empty_acquire",
            "pgxpool_empty_acquire_total",
            "pgxpool_empty_acquire_count_total",
            "pgxpool_empty_acquire_count",
        ])),
        wait_seconds: Some(Series::named(&[
            "pgxpool_empty_acquire_wait_time_seconds_total",
        ])),
        ..Mapping::preset("pgxpool", "db_name")
    }
}

/// node-postgres (`pg.Pool`) through `node-postgres-prometheus-exporter` (prom-client):
/// `pg_pool_max`, `pg_pool_size` (open), `pg_pool_active_connections`,
/// `pg_pool_idle_connections`, `pg_pool_waiting_connections` (`pool.waitingCount`; also
/// accepted as `pg_pool_waiting_clients`, as hand-written prom-client gauges often name it);
/// label `database`.
fn node_postgres() -> Mapping {
    Mapping {
        capacity: Some(Series::named(&["pg_pool_max"])),
        in_use: Some(Series::named(&["pg_pool_active_connections"])),
        idle: Some(Series::named(&["pg_pool_idle_connections"])),
        total: Some(Series::named(&[
            "pg_pool_size",
            "pg_pool_total_connections",
        ])),
        waiting: Some(Series::named(&[
            "pg_pool_waiting_connections",
            "pg_pool_waiting_clients",
        ])),
        ..Mapping::preset("node_postgres", "database")
    }
}

/// OpenTelemetry's database client metrics, current semantic conventions, as the Prometheus
/// exporter names them: `db.client.connection.count{db.client.connection.state=used|idle}`,
/// `db.client.connection.max`, `db.client.connection.pending_requests` and the counter
/// `db.client.connection.timeouts` (`_total`); label `db_client_connection_pool_name`.
fn otel() -> Mapping {
    let count = Series::named(&["db_client_connection_count"]);
    let state = "db_client_connection_state";
    Mapping {
        capacity: Some(Series::named(&["db_client_connection_max"])),
        in_use: Some(count.clone().with(state, "used")),
        idle: Some(count.with(state, "idle")),
        waiting: Some(Series::named(&["db_client_connection_pending_requests"])),
        timeouts: Some(Series::named(&[
            "db_client_connection_timeouts_total",
            "db_client_connection_timeouts",
        ])),
        ..Mapping::preset("otel", "db_client_connection_pool_name")
    }
}

/// OpenTelemetry's database client metrics before semantic conventions 1.26 (still served by
/// many instrumentations, e.g. SQLAlchemy's): `db.client.connections.usage{state=used|idle}`,
/// `db.client.connections.max`, `db.client.connections.pending_requests`,
/// `db.client.connections.timeouts`; label `pool_name`. Exporters add the unit as a suffix
/// when it is not in braces (`_connections`, `_requests`), and `_total` to counters.
fn otel_legacy() -> Mapping {
    let usage = Series::named(&[
        "db_client_connections_usage",
        "db_client_connections_usage_connections",
    ]);
    Mapping {
        capacity: Some(Series::named(&[
            "db_client_connections_max",
            "db_client_connections_max_connections",
        ])),
        in_use: Some(usage.clone().with("state", "used")),
        idle: Some(usage.with("state", "idle")),
        waiting: Some(Series::named(&[
            "db_client_connections_pending_requests",
            "db_client_connections_pending_requests_requests",
        ])),
        timeouts: Some(Series::named(&[
            "db_client_connections_timeouts_total",
            "db_client_connections_timeouts",
            "db_client_connections_timeouts_timeouts_total",
        ])),
        ..Mapping::preset("otel_legacy", "pool_name")
    }
}
