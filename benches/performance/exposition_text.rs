//! Exposition text in the shape real applications serve, for the scrape and parse sections: a
//! pool library's families (Go `database/sql` through client_golang, or HikariCP through
//! Micrometer) for a few pools, among the unrelated series every application also exposes
//! (runtime, process, an HTTP server histogram per route). A real service serves a few hundred
//! series; the pool families are a small part of them.

use std::fmt::Write;

/// The pool library an application's exposition imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    /// client_golang's `collectors.NewDBStatsCollector`: `go_sql_*{db_name}`.
    GoSql,
    /// Micrometer's HikariCP binder: `hikaricp_connections*{pool}`, float values, trailing commas.
    Hikari,
}

impl Library {
    /// The poolwatch preset that reads it.
    pub fn preset(self) -> &'static str {
        match self {
            Library::GoSql => "go_sql",
            Library::Hikari => "hikaricp",
        }
    }
}

/// Latency buckets of the HTTP histogram (12, as client libraries default to about that).
const BUCKETS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];

/// One application's exposition: `pools` pools of `lib` (their numbers varied by `app` and
/// `tick`), runtime and process series, and an HTTP histogram over `routes` routes
/// (14 series each).
pub fn application(lib: Library, app: usize, pools: usize, routes: usize, tick: u64) -> String {
    let mut out = String::with_capacity(64 * 1024);
    runtime(&mut out, lib, tick);
    pool_families(&mut out, lib, app, pools, tick);
    http_histogram(&mut out, routes, 0, tick);
    out
}

/// An exposition of exactly `series` samples, nearly all of them an HTTP histogram over many
/// routes, with a label value in every 50th route that needs unescaping (`\"`, `\\`).
pub fn large(series: usize) -> String {
    let mut out = String::with_capacity(series * 110);
    let mut n = 0;
    pool_families(&mut out, Library::GoSql, 0, 5, 1);
    n += 5 * 8;
    let mut route = 0;
    let mut lines = String::new();
    while n < series {
        lines.clear();
        http_histogram(&mut lines, 1, route, 7);
        for line in lines.lines() {
            if n == series {
                break;
            }
            out.push_str(line);
            out.push('\n');
            if !line.starts_with('#') {
                n += 1;
            }
        }
        route += 1;
    }
    out
}

fn runtime(out: &mut String, lib: Library, tick: u64) {
    let (prefix, threads) = match lib {
        Library::GoSql => ("go", "goroutines"),
        Library::Hikari => ("jvm", "threads_live_threads"),
    };
    let _ = writeln!(
        out,
        "# HELP {prefix}_{threads} Number of threads that currently exist."
    );
    let _ = writeln!(
        out,
        "# TYPE {prefix}_{threads} gauge\n{prefix}_{threads} {}",
        40 + tick % 7
    );
    for q in ["0", "0.25", "0.5", "0.75", "1"] {
        let _ = writeln!(
            out,
            "{prefix}_gc_duration_seconds{{quantile=\"{q}\"}} 0.000{}",
            120 + tick % 50
        );
    }
    for (i, m) in [
        "alloc_bytes",
        "alloc_bytes_total",
        "buck_hash_sys_bytes",
        "frees_total",
        "gc_sys_bytes",
        "heap_alloc_bytes",
        "heap_idle_bytes",
        "heap_inuse_bytes",
        "heap_objects",
        "heap_released_bytes",
        "heap_sys_bytes",
        "last_gc_time_seconds",
        "lookups_total",
        "mallocs_total",
        "mcache_inuse_bytes",
        "mcache_sys_bytes",
        "mspan_inuse_bytes",
        "mspan_sys_bytes",
        "next_gc_bytes",
        "other_sys_bytes",
        "stack_inuse_bytes",
        "stack_sys_bytes",
        "sys_bytes",
    ]
    .iter()
    .enumerate()
    {
        let _ = writeln!(out, "# HELP {prefix}_memstats_{m} Memory statistic {m}.");
        let _ = writeln!(out, "# TYPE {prefix}_memstats_{m} gauge");
        let _ = writeln!(
            out,
            "{prefix}_memstats_{m} {}",
            1_048_576 * (i as u64 + 1) + tick * 4096
        );
    }
    for m in [
        "cpu_seconds_total",
        "max_fds",
        "open_fds",
        "resident_memory_bytes",
        "start_time_seconds",
        "virtual_memory_bytes",
    ] {
        let _ = writeln!(
            out,
            "# TYPE process_{m} gauge\nprocess_{m} {}",
            1.7e9 + tick as f64
        );
    }
}

/// One pool family in each library: its name in Go's `database/sql` collector and in
/// Micrometer's HikariCP binder (empty where the library has none), its `# TYPE`, and its value
/// for pool `p` at tick `t`.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(usize, u64) -> u64,
);

const POOL_FAMILIES: [Family; 11] = [
    (
        "go_sql_max_open_connections",
        "hikaricp_connections_max",
        "gauge",
        |_, _| 20,
    ),
    (
        "go_sql_open_connections",
        "hikaricp_connections",
        "gauge",
        |p, t| 5 + (p as u64 + t) % 15,
    ),
    (
        "go_sql_in_use_connections",
        "hikaricp_connections_active",
        "gauge",
        |p, t| (p as u64 + t) % 15,
    ),
    (
        "go_sql_idle_connections",
        "hikaricp_connections_idle",
        "gauge",
        |_, _| 5,
    ),
    ("", "hikaricp_connections_min", "gauge", |_, _| 5),
    ("", "hikaricp_connections_pending", "gauge", |p, t| {
        (p as u64 + t) % 3
    }),
    (
        "go_sql_wait_count_total",
        "hikaricp_connections_acquire_seconds_count",
        "counter",
        |p, t| 100 * p as u64 + t,
    ),
    (
        "go_sql_wait_duration_seconds_total",
        "",
        "counter",
        |p, t| p as u64 + t / 10,
    ),
    (
        "",
        "hikaricp_connections_timeout_total",
        "counter",
        |p, t| p as u64 + t / 30,
    ),
    (
        "go_sql_max_idle_closed_total",
        "hikaricp_connections_usage_seconds_count",
        "counter",
        |p, t| 1000 * p as u64 + t,
    ),
    ("go_sql_max_lifetime_closed_total", "", "counter", |_, t| {
        t / 60
    }),
];

/// The pool families of `lib`, each with HELP and TYPE, then one sample per pool: a `db_name`
/// per pool for Go; for HikariCP a `pool` label, float values and a trailing comma in label
/// sets, as Micrometer writes them.
fn pool_families(out: &mut String, lib: Library, app: usize, pools: usize, tick: u64) {
    for (go_sql, hikari, kind, value) in POOL_FAMILIES {
        let name = match lib {
            Library::GoSql => go_sql,
            Library::Hikari => hikari,
        };
        if name.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} Pool statistic.\n# TYPE {name} {kind}");
        for p in 0..pools {
            let v = value(p, tick);
            let _ = match lib {
                Library::GoSql => writeln!(out, "{name}{{db_name=\"app{app}_db{p}\"}} {v}"),
                Library::Hikari => writeln!(
                    out,
                    "{name}{{application=\"app{app}\",pool=\"HikariPool-{p}\",}} {v}.0"
                ),
            };
        }
    }
}

/// `routes` routes numbered from `first`, each a 12-bucket histogram plus `_sum` and `_count`.
fn http_histogram(out: &mut String, routes: usize, first: usize, tick: u64) {
    let name = "http_server_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Duration of HTTP server requests.\n# TYPE {name} histogram"
    );
    for r in first..first + routes {
        let route = if r % 50 == 49 {
            format!("/search/{{q}}/\\\"quoted\\\"/back\\\\slash/{r}")
        } else {
            format!("/api/v1/orders/{{id}}/items/{r}")
        };
        let labels = format!(
            "method=\"{}\",route=\"{route}\",status=\"200\",service=\"checkout\"",
            ["GET", "POST", "PUT"][r % 3]
        );
        let mut count = 0;
        for (i, le) in BUCKETS.iter().enumerate() {
            count += (i as u64 + 1) * 10 + tick;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}.125\n{name}_count{{{labels}}} {count}",
            count / 20
        );
    }
}
