use super::*;
use crate::source::app_metrics::exposition::{parse, Limits};
use crate::source::app_metrics::fixtures::FIXTURES;
use crate::source::app_metrics::presets::{preset, PRESETS};

fn expo(text: &str) -> Exposition<'_> {
    parse(text.as_bytes(), &Limits::default()).expect("parses")
}

/// (name, capacity, in_use, idle, waiting, waits, wait_seconds, timeouts) of a pool.
type Row = (
    String,
    u64,
    u64,
    u64,
    u64,
    Option<u64>,
    Option<f64>,
    Option<u64>,
);

fn row(p: &PoolSnapshot) -> Row {
    let c = p.counters;
    (
        p.id.name.clone(),
        p.capacity,
        p.in_use,
        p.idle,
        p.waiting,
        c.waits,
        c.wait_seconds,
        c.timeouts,
    )
}

fn fixture(name: &str) -> &'static str {
    FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_default()
}

#[test]
fn every_preset_reads_its_library() {
    let s = |n: &str| n.to_string();
    // (preset, fixture, pools, left out)
    let cases: [(&str, &str, Vec<Row>, usize); 6] = [
        (
            "hikaricp",
            "hikaricp",
            vec![(s("HikariPool-1"), 10, 10, 0, 7, None, None, Some(3))],
            0,
        ),
        (
            "go_sql",
            "go_sql",
            vec![(
                s("orders"),
                25,
                23,
                2,
                0,
                Some(1234),
                Some(87.123456789),
                None,
            )],
            1, // reports: SetMaxOpenConns(0), no limit
        ),
        (
            "pgxpool",
            "pgxpool",
            vec![(s("orders"), 8, 8, 0, 0, Some(311), None, None)],
            0,
        ),
        (
            "node_postgres",
            "node_postgres",
            vec![(s("orders"), 10, 10, 0, 5, None, None, None)],
            0,
        ),
        (
            "otel",
            "otel",
            vec![(s("checkout"), 5, 4, 1, 2, None, None, Some(6))],
            0,
        ),
        (
            "otel_legacy",
            "otel_old",
            vec![(s("sqlalchemy-orders"), 5, 5, 0, 15, None, None, Some(2))],
            0,
        ),
    ];
    for (name, fix, want, left_out) in cases {
        let m = preset(name).expect("preset");
        let got = map(&expo(fixture(fix)), &m, &[], "t").expect(name);
        let rows: Vec<Row> = got.pools.iter().map(row).collect();
        assert_eq!(rows, want, "{name}");
        assert_eq!(got.left_out.len(), left_out, "{name}: {:?}", got.left_out);
        for p in &got.pools {
            assert_eq!((p.id.target.as_str(), p.id.kind), ("t", APP), "{name}");
        }
    }
    assert_eq!(PRESETS.len(), 6);
    assert!(PRESETS.iter().all(|p| preset(p).is_some()));
}

#[test]
fn a_preset_finds_nothing_in_another_librarys_exposition() {
    for (name, text) in FIXTURES {
        for p in PRESETS {
            let m = preset(p).expect("preset");
            let same = m.name == name || (p == "otel_legacy" && name == "otel_old");
            let got = map(&expo(text), &m, &[], "t");
            assert_eq!(got.is_ok(), same, "{p} on {name}: {got:?}");
        }
    }
    let err = map(
        &expo("up 1\n"),
        &preset("hikaricp").expect("hikaricp"),
        &[],
        "t",
    );
    assert_eq!(
        err,
        Err("no pool series found: preset hikaricp looks for hikaricp_connections_max, hikaricp_connections_active".into())
    );
}

/// (name, capacity, in_use, idle) of a pool.
type Short<'a> = (&'a str, u64, u64, u64);

#[test]
fn numbers_derive_and_degrade_sensibly() {
    let m = |sel: &[(&str, &str)]| {
        let mut m = preset("hikaricp").expect("preset");
        m.name = "custom".into();
        for (field, s) in sel {
            let series = Some(Series::parse(s).expect("selector"));
            match *field {
                "in_use" => m.in_use = series,
                "idle" => m.idle = series,
                _ => m.capacity = series,
            }
        }
        m
    };
    let base = preset("hikaricp").expect("preset");
    // (exposition, mapping, want pools, want left-out or error text)
    let cases: Vec<(&str, Mapping, Vec<Short>, &str)> = vec![
        // in use from open minus idle when not served.
        (
            "hikaricp_connections_max{pool=\"a\"} 10\nhikaricp_connections{pool=\"a\"} 6\nhikaricp_connections_idle{pool=\"a\"} 2\n",
            base.clone(),
            vec![("a", 10, 4, 2)],
            "",
        ),
        // idle from open minus in use.
        (
            "hikaricp_connections_max 10\nhikaricp_connections 6\nhikaricp_connections_active 5\n",
            base.clone(),
            vec![("default", 10, 5, 1)],
            "",
        ),
        // No capacity, NaN in use: left out, with the reason.
        (
            "hikaricp_connections_max{pool=\"a\"} 10\nhikaricp_connections_active{pool=\"a\"} 1\nhikaricp_connections_active{pool=\"b\"} 3\nhikaricp_connections_max{pool=\"c\"} 4\nhikaricp_connections_active{pool=\"c\"} NaN\n",
            base.clone(),
            vec![("a", 10, 1, 0)],
            "pool \"b\": no capacity | pool \"c\": no in-use count",
        ),
        (
            "hikaricp_connections_max{pool=\"b\"} -1\nhikaricp_connections_active{pool=\"b\"} 3\n",
            base.clone(),
            vec![],
            "no complete pool: pool \"b\": no capacity",
        ),
        // A custom mapping with label selectors, and the first sample winning.
        (
            "conns{state=\"busy\",p=\"x\"} 3\nconns{state=\"free\",p=\"x\"} 2\nconns{state=\"busy\",p=\"x\"} 9\nlimit 8\n",
            m(&[("in_use", "conns{state=\"busy\"}"), ("idle", "conns{state=\"free\"}"), ("capacity", "limit")]),
            vec![("default", 8, 3, 2)],
            "",
        ),
    ];
    for (text, mapping, want, note) in cases {
        let got = map(&expo(text), &mapping, &[], "t");
        match got {
            Ok(got) => {
                let pools: Vec<Short> = got
                    .pools
                    .iter()
                    .map(|p| (p.id.name.as_str(), p.capacity, p.in_use, p.idle))
                    .collect();
                assert_eq!(pools, want, "{text}");
                assert_eq!(got.left_out.join(" | "), note, "{text}");
            }
            Err(e) => assert_eq!((e.as_str(), want.len()), (note, 0), "{text}"),
        }
    }
}

#[test]
fn match_labels_pick_one_application_and_pools_are_capped() {
    let text = "hikaricp_connections_max{app=\"a\",pool=\"p\"} 10\nhikaricp_connections_active{app=\"a\",pool=\"p\"} 1\n\
                hikaricp_connections_max{app=\"b\",pool=\"q\"} 5\nhikaricp_connections_active{app=\"b\",pool=\"q\"} 2\n";
    let m = preset("hikaricp").expect("preset");
    let only_b = [("app".to_string(), "b".to_string())];
    let got = map(&expo(text), &m, &only_b, "t").expect("maps");
    assert_eq!(
        got.pools.iter().map(row).map(|r| r.0).collect::<Vec<_>>(),
        ["q"]
    );
    let mut many = String::new();
    for i in 0..MAX_POOLS + 3 {
        many.push_str(&format!("hikaricp_connections_max{{pool=\"p{i:03}\"}} 1\nhikaricp_connections_active{{pool=\"p{i:03}\"}} 0\n"));
    }
    let got = map(&expo(&many), &m, &[], "t").expect("maps");
    assert_eq!(got.pools.len(), MAX_POOLS);
    assert_eq!(got.left_out, ["6 samples of pools beyond the first 64"]);
}

#[test]
fn selectors_parse_like_series() {
    let ok = [
        ("a", "a", vec![]),
        (
            " a{b=\"c\"} ",
            "a",
            vec![("b".to_string(), "c".to_string())],
        ),
    ];
    for (sel, name, labels) in ok {
        let s = Series::parse(sel).expect(sel);
        assert_eq!(
            (s.names, s.labels),
            (vec![name.to_string()], labels),
            "{sel}"
        );
    }
    for bad in ["", "a b", "a{b=c}", "a\nb", "a{b=\"c\"} 1 2 3"] {
        assert!(Series::parse(bad).is_err(), "{bad:?}");
    }
}
