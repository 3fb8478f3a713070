//! [`parse_only`]: reading only the names a mapping reads gives the same pools as reading
//! everything, keeps every limit, and never panics.

use super::tests::{mutation_limits, TOKENS};
use super::*;
use crate::source::app_metrics::fixtures::FIXTURES;
use crate::source::app_metrics::map::{map, Mapped};
use crate::source::app_metrics::presets::{preset, Mapping, PRESETS};
use crate::source::mutation::mutate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What a full parse and a parse of `mapping`'s names map to (or why either failed).
fn both(body: &[u8], mapping: &Mapping, limits: &Limits) -> [Result<Mapped, String>; 2] {
    let names = mapping.sample_names();
    let full = parse(body, limits);
    let only = parse_only(body, limits, Keep::Names(&names));
    [full, only].map(|e| {
        let e = e.map_err(|e| e.to_string())?;
        map(&e, mapping, &[], "t")
    })
}

fn hikaricp() -> Mapping {
    preset("hikaricp").expect("preset")
}

#[test]
fn every_preset_on_every_fixture_maps_the_same_read_selectively() {
    for (library, text) in FIXTURES {
        for name in PRESETS {
            let mapping = preset(name).expect("preset");
            let [full, only] = both(text.as_bytes(), &mapping, &Limits::default());
            assert_eq!(full, only, "{name} on {library}");
            if library == name || (library == "otel_old" && name == "otel_legacy") {
                assert!(full.is_ok(), "{name} on its own library: {full:?}");
            }
        }
        // Every sample line counts, read or not.
        let hikaricp = hikaricp();
        let names = hikaricp.sample_names();
        let all = parse(text.as_bytes(), &Limits::default()).expect("parses");
        let only = parse_only(text.as_bytes(), &Limits::default(), Keep::Names(&names));
        assert_eq!(only.map(|e| e.series), Ok(all.samples.len()), "{library}");
    }
}

#[test]
fn only_the_names_asked_for_are_read() {
    let text = "# TYPE hikaricp_connections gauge\n# TYPE hikaricp_connections_max gauge\n\
        # TYPE other gauge\n# TYPE hikaricp_connections_timeout counter\n\
        hikaricp_connections_max{pool=\"a\"} 10\nother 1\nhikaricp_connections_maxx 3\n\
        hikaricp_connections_timeout_total{pool=\"a\"} 2\n";
    let names = [
        "hikaricp_connections_max",
        "hikaricp_connections_timeout_total",
    ];
    let e = parse_only(text.as_bytes(), &Limits::default(), Keep::Names(&names)).unwrap();
    let read: Vec<&str> = e.samples.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(read, names);
    assert_eq!(e.series, 4);
    // A family is kept when a name asked for is it, or extends it with `_`.
    let types: Vec<&str> = e.types.keys().map(String::as_str).collect();
    assert_eq!(
        types,
        [
            "hikaricp_connections",
            "hikaricp_connections_max",
            "hikaricp_connections_timeout"
        ]
    );
}

/// Label values that look like a wanted sample (escaped quotes, braces, escaped newlines,
/// names in values), quoted metric names, leading blanks: the pools are those of a full parse.
#[test]
fn hostile_lines_map_as_a_full_parse_maps_them() {
    let cases: &[&str] = &[
        // A wanted name inside a skipped line's label value, after an escaped newline.
        "other{v=\"x\\nhikaricp_connections_max{pool=\\\"evil\\\"} 99\"} 1\n",
        // Braces, commas and escaped quotes in values of wanted lines.
        "hikaricp_connections_max{pool=\"a\\\"}{,b\"} 10\nhikaricp_connections_active{pool=\"a\\\"}{,b\"} 2\n",
        // A skipped line whose value ends with a backslash-quote; the next line is wanted.
        "other{v=\"\\\\\"} 1\nhikaricp_connections_max{pool=\"p\"} 4\nhikaricp_connections_active{pool=\"p\"} 1\n",
        // Quoted metric names (Prometheus 3): read in full, wanted or not.
        "{\"hikaricp_connections_max\",pool=\"q\"} 7\n{\"hikaricp_connections_active\",pool=\"q\"} 3\n{\"other.name\"} 1\n",
        // Leading blanks and tabs before wanted and unwanted names; CRLF line ends.
        "  hikaricp_connections_max{pool=\"s\"} 5\r\n\thikaricp_connections_active{pool=\"s\"} 1\r\n \tother 1\r\n",
        // A longer name that starts with a wanted one, and a wanted one in a label name.
        "hikaricp_connections_max_x{pool=\"a\"} 50\nother{hikaricp_connections_max=\"1\"} 1\n\
         hikaricp_connections_max{pool=\"a\"} 5\nhikaricp_connections_active{pool=\"a\"} 1\n",
        // A pool label that holds a newline escape, and one that holds a '#'.
        "hikaricp_connections_max{pool=\"a\\nb\"} 5\nhikaricp_connections_active{pool=\"a\\nb\"} 1\n\
         hikaricp_connections_max{pool=\"#\"} 3\nhikaricp_connections_active{pool=\"#\"} 3\n",
        // An exemplar and a timestamp on wanted lines; `# EOF` at the end.
        "hikaricp_connections_max{pool=\"e\"} 5 1700000000000\n\
         hikaricp_connections_active{pool=\"e\"} 1 # {trace_id=\"hikaricp_connections_max\"} 1\n# EOF\n",
    ];
    for text in cases {
        let [full, only] = both(text.as_bytes(), &hikaricp(), &Limits::default());
        assert_eq!(full, only, "{text:?}");
    }
}

#[test]
fn skipped_lines_keep_every_limit_but_their_grammar_is_not_read() {
    let small = Limits {
        max_series: 3,
        max_line: 60,
        ..Limits::default()
    };
    let names = ["wanted"];
    let keep = Keep::Names(&names);
    let refused = |text: &str, limits: &Limits| {
        parse_only(text.as_bytes(), limits, keep).map(|e| e.samples.len())
    };
    let cases: &[(&str, &Limits, &str)] = &[
        (
            "a 1\nb 2\nc 3\nd 4\n",
            &small,
            "line 4: more than 3 series (the limit)",
        ),
        (
            "a{v=\"123456789012345678901234567890123456789012345678901234567890\"} 1\n",
            &small,
            "line 1: line of 69 bytes exceeds the limit of 60 bytes",
        ),
        ("# EOF\nother 1\n", &small, "line 2: content after # EOF"),
        (
            "# TYPE other\n",
            &small,
            "line 1: # TYPE \"other\" without a type",
        ),
        (
            "wanted{a=\"1\" 1\n",
            &small,
            "line 1: found \"1\" where ',' or '}' was expected",
        ),
    ];
    for (text, limits, want) in cases {
        let got = refused(text, limits).map_err(|e| e.to_string());
        assert_eq!(got, Err(want.to_string()), "{text:?}");
    }
    // Not UTF-8 is refused in any line.
    let e = parse_only(b"other{v=\"\xff\"} 1\n", &small, keep).unwrap_err();
    assert_eq!(e.to_string(), "line 1: not UTF-8 text");
    // A malformed line of a family nobody reads is not read, so it is no error.
    for text in ["other{v=\"unterminated} 1\n", "other one\n", "9other 1\n"] {
        assert_eq!(refused(text, &small), Ok(0), "{text:?}");
        assert!(parse(text.as_bytes(), &small).is_err(), "{text:?}");
    }
}

/// Mutated real expositions: whenever the full parse succeeds, the selective one does and reads
/// exactly the samples of the names asked for; and it never panics nor exceeds a limit.
#[test]
fn mutated_expositions_read_selectively_agree_with_a_full_parse() {
    let limits = mutation_limits();
    let mut rng = StdRng::seed_from_u64(0x5e1e_c7ed);
    let (mut agreed, mut refused) = (0, 0);
    for _ in 0..4000 {
        let (library, seed) = FIXTURES[rng.gen_range(0..FIXTURES.len())];
        let mapping = preset(library).or_else(|| preset("otel_legacy")).unwrap();
        let names = mapping.sample_names();
        let input = mutate(seed.as_bytes(), &TOKENS, &mut rng);
        let only = parse_only(&input, &limits, Keep::Names(&names));
        match (parse(&input, &limits), only) {
            (Ok(full), Ok(only)) => {
                let wanted: Vec<_> = full
                    .samples
                    .into_iter()
                    .filter(|s| names.contains(&s.name.as_ref()))
                    .collect();
                assert_eq!(wanted, only.samples);
                assert_eq!(full.series, only.series);
                agreed += 1;
            }
            (Ok(_), Err(e)) => panic!("{library}: refused only when selective: {e}"),
            (Err(_), Ok(only)) => {
                refused += 1;
                assert!(only.series <= limits.max_series);
                assert!(only
                    .samples
                    .iter()
                    .all(|s| names.contains(&s.name.as_ref())));
            }
            (Err(_), Err(e)) => {
                refused += 1;
                assert!(e.message.len() < 200, "{e}");
            }
        }
    }
    assert!(
        agreed > 100 && refused > 100,
        "{agreed} agreed, {refused} refused"
    );
}
