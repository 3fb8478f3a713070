use super::*;
use crate::source::mutation::mutate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn ok(text: &str) -> Exposition<'_> {
    match parse(text.as_bytes(), &Limits::default()) {
        Ok(e) => e,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn err(text: &str, limits: &Limits) -> String {
    match parse(text.as_bytes(), limits) {
        Ok(e) => panic!("{text:?} parsed: {e:?}"),
        Err(e) => e.to_string(),
    }
}

/// A table row: the line, and the name, labels and value it must give.
type Row<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], f64);

fn labels<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(Text<'a>, Text<'a>)> {
    pairs
        .iter()
        .map(|(n, v)| (Text::Borrowed(*n), Text::Borrowed(*v)))
        .collect()
}

#[test]
fn sample_lines_read_exactly() {
    // (line, name, labels, value)
    let cases: &[Row] = &[
        ("up 1", "up", &[], 1.0),
        ("up 1\r", "up", &[], 1.0),
        ("  up\t 1  ", "up", &[], 1.0),
        ("a:b_c 0.5", "a:b_c", &[], 0.5),
        ("x 1e3", "x", &[], 1000.0),
        ("x -2.5E-1", "x", &[], -0.25),
        ("x +Inf", "x", &[], f64::INFINITY),
        ("x -Inf", "x", &[], f64::NEG_INFINITY),
        ("x{} 3", "x", &[], 3.0),
        ("x{a=\"1\"} 3", "x", &[("a", "1")], 3.0),
        ("x{a=\"1\",} 3", "x", &[("a", "1")], 3.0),
        (
            "x{ a = \"1\" , b=\"2\" } 3",
            "x",
            &[("a", "1"), ("b", "2")],
            3.0,
        ),
        // Escapes, commas, braces, equals signs and hashes inside values.
        (r#"x{a="q\"uote"} 1"#, "x", &[("a", "q\"uote")], 1.0),
        (r#"x{a="back\\slash"} 1"#, "x", &[("a", "back\\slash")], 1.0),
        (r#"x{a="new\nline"} 1"#, "x", &[("a", "new\nline")], 1.0),
        (
            r#"x{a="a,b",b="}{"} 1"#,
            "x",
            &[("a", "a,b"), ("b", "}{")],
            1.0,
        ),
        (
            r#"x{a="k=v # not a comment"} 1"#,
            "x",
            &[("a", "k=v # not a comment")],
            1.0,
        ),
        (r#"x{a="\\\""} 1"#, "x", &[("a", "\\\"")], 1.0),
        (r#"x{a="ünï€ode"} 1"#, "x", &[("a", "ünï€ode")], 1.0),
        (r#"x{a=""} 1"#, "x", &[("a", "")], 1.0),
        // Timestamps (Prometheus text: ms; OpenMetrics: seconds) and exemplars are dropped.
        ("x 1 1700000000000", "x", &[], 1.0),
        ("x 1 1700000000.123", "x", &[], 1.0),
        (
            r#"x_total 4 # {trace_id="abc"} 1.0 1700000000.1"#,
            "x_total",
            &[],
            4.0,
        ),
        (
            r#"x_bucket{le="0.5"} 4 1700000000 # {trace_id="a b"} 0.3"#,
            "x_bucket",
            &[("le", "0.5")],
            4.0,
        ),
        (
            r#"x_bucket{le="+Inf"} 9"#,
            "x_bucket",
            &[("le", "+Inf")],
            9.0,
        ),
        // Prometheus 3 UTF-8 names, quoted inside the braces.
        (
            r#"{"db.client.count","pool.name"="a"} 2"#,
            "db.client.count",
            &[("pool.name", "a")],
            2.0,
        ),
    ];
    for (line, name, want_labels, value) in cases {
        let e = ok(line);
        assert_eq!(e.samples.len(), 1, "{line}");
        let s = &e.samples[0];
        assert_eq!(s.name, *name, "{line}");
        assert_eq!(s.labels, labels(want_labels), "{line}");
        assert_eq!(s.value, *value, "{line}");
    }
    assert!(ok("x NaN").samples[0].value.is_nan());
}

#[test]
fn comments_types_units_and_eof() {
    let text = "# HELP a A thing.\n# TYPE a counter\n# UNIT b seconds\n# TYPE only_type gauge\n\
                # a free comment\n#\n\na_total 1\r\nb_seconds 2\n# EOF\n\n";
    let e = ok(text);
    assert_eq!(e.samples.len(), 2);
    assert_eq!(e.types.get("a").map(String::as_str), Some("counter"));
    assert_eq!(e.types.get("only_type").map(String::as_str), Some("gauge"));
    assert_eq!(e.units.get("b").map(String::as_str), Some("seconds"));
    // Prometheus 3's quoted UTF-8 names in metadata; keywords only as whole words.
    let e =
        ok("# TYPE \"db.client.count\" gauge\n# TYPEX not metadata\n# HELP x a \"quoted\" help\n");
    assert_eq!(e.types.len(), 1);
    assert_eq!(
        e.types.get("db.client.count").map(String::as_str),
        Some("gauge")
    );
    // No final newline; CRLF throughout; an empty body.
    assert_eq!(ok("a 1\r\nb 2").samples.len(), 2);
    assert_eq!(ok("").samples.len(), 0);
    assert_eq!(ok("# EOF").samples.len(), 0);
}

#[test]
fn every_fixture_parses() {
    for (name, text) in super::super::fixtures::FIXTURES {
        let e = parse(text.as_bytes(), &Limits::default());
        assert!(e.is_ok(), "{name}: {e:?}");
        assert!(!e.unwrap_or_default().samples.is_empty(), "{name}");
    }
}

#[test]
fn malformed_lines_are_refused_with_their_line() {
    let d = Limits::default();
    // (text, error)
    let cases = [
        ("ok 1\nx", "line 2: missing value"),
        (
            "x{a=\"1\" 1",
            "line 1: found \"1\" where ',' or '}' was expected",
        ),
        (
            "x{a=\"1\"",
            "line 1: line ends where ',' or '}' was expected",
        ),
        (
            "x{a=\"unterminated} 1",
            "line 1: unterminated quoted string",
        ),
        (
            "x{a=1} 1",
            "line 1: found \"1\" where a quoted label value was expected",
        ),
        (
            "x{=\"1\"} 1",
            "line 1: found \"=\" where a label name was expected",
        ),
        (
            "x{a\"1\"} 1",
            "line 1: found \"\\\"\" where '=' after a label name was expected",
        ),
        (r#"x{a="\t"} 1"#, "line 1: invalid escape \"\\\\t\""),
        ("x{a=\"1\",a=\"2\"} 1", "line 1: label \"a\" appears twice"),
        ("x one", "line 1: value \"one\" is not a number"),
        ("x 1 soon", "line 1: timestamp \"soon\" is not a number"),
        ("x 1 2 3", "line 1: unexpected \"3\" after the timestamp"),
        ("9x 1", "line 1: expected a metric name"),
        ("{} 1", "line 1: sample without a metric name"),
        ("# TYPE\n", "line 1: # TYPE without a valid metric name"),
        ("# TYPE x\n", "line 1: # TYPE \"x\" without a type"),
        ("a 1\n# EOF\nb 2\n", "line 3: content after # EOF"),
    ];
    for (text, want) in cases {
        assert_eq!(err(text, &d), want, "{text:?}");
    }
    assert_eq!(
        parse(b"a 1\nb\xff 2\n", &d).map_err(|e| e.to_string()),
        Err("line 2: not UTF-8 text".to_string())
    );
}

#[test]
fn limits_are_enforced() {
    let small = Limits {
        max_body: 200,
        max_line: 60,
        max_series: 3,
        max_labels: 2,
        max_name: 10,
        max_value: 8,
    };
    let cases = [
        (
            "x 1\n".repeat(60),
            "body of 240 bytes exceeds the limit of 200 bytes",
        ),
        (
            format!("x{{a=\"{}\"}} 1", "v".repeat(60)),
            "line 1: line of 69 bytes exceeds the limit of 60 bytes",
        ),
        (
            "a 1\nb 2\nc 3\nd 4\n".into(),
            "line 4: more than 3 series (the limit)",
        ),
        (
            "x{a=\"1\",b=\"2\",c=\"3\"} 1".into(),
            "line 1: more than 2 labels",
        ),
        (
            "abcdefghijk 1".into(),
            "line 1: name of 11 bytes exceeds the limit of 10 bytes",
        ),
        (
            "x{abcdefghijk=\"1\"} 1".into(),
            "line 1: name of 11 bytes exceeds the limit of 10 bytes",
        ),
        (
            "x{a=\"123456789\"} 1".into(),
            "line 1: quoted string longer than 8 bytes",
        ),
        (
            "# TYPE abcdefghijk gauge".into(),
            "line 1: name of 11 bytes exceeds the limit of 10 bytes",
        ),
        (
            "# TYPE a gauge\n# TYPE b gauge\n# UNIT c s\n# TYPE c gauge\n# TYPE d gauge\n".into(),
            "line 5: more than 3 # TYPE lines",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(err(&text, &small), want, "{text:?}");
    }
    // Exactly at every limit is fine.
    let e = parse(b"abcdefghij{a=\"12345678\",b=\"\"} 1\nb 2\nc 3", &small);
    assert_eq!(e.map(|e| e.samples.len()), Ok(3));
}

#[test]
fn errors_quote_little_of_the_input() {
    let long = format!("x {}", "z".repeat(5000));
    let e = err(&long, &Limits::default());
    assert!(e.len() < 120, "{e}");
}

/// Pieces of the exposition grammar the mutations insert.
/// Caps small enough that mutated fixtures reach them: series, label values and names.
pub(super) fn mutation_limits() -> Limits {
    Limits {
        max_series: 40,
        max_value: 16,
        max_name: 48,
        ..Limits::default()
    }
}

pub(super) const TOKENS: [&[u8]; 12] = [
    b"\"",
    b"\\",
    b"{",
    b"}",
    b",",
    b"=",
    b"\n",
    b"\r\n",
    b"# EOF\n",
    b" # {a=\"b\"} 1",
    b"\\\"",
    b"\xff",
];

/// Real expositions, mutated at random (bytes flipped, inserted, deleted; lines duplicated,
/// cut and swapped; escapes and quotes thrown in), must parse or fail cleanly, within the
/// limits: no panic, never more samples than the cap, never a label value over its cap. Seeded,
/// so a failure reproduces; `fuzz/` runs the same property for as long as one likes.
#[test]
fn mutated_real_expositions_never_panic_and_stay_bounded() {
    let limits = mutation_limits();
    let seeds: Vec<&[u8]> = super::super::fixtures::FIXTURES
        .iter()
        .map(|(_, t)| t.as_bytes())
        .collect();
    let mut rng = StdRng::seed_from_u64(0x9001_5eed);
    let (mut parsed, mut refused) = (0, 0);
    for _ in 0..4000 {
        let seed = seeds[rng.gen_range(0..seeds.len())];
        let input = mutate(seed, &TOKENS, &mut rng);
        match parse(&input, &limits) {
            Ok(e) => {
                parsed += 1;
                assert!(e.samples.len() <= limits.max_series);
                for s in &e.samples {
                    assert!(s.labels.len() <= limits.max_labels);
                    assert!(s.name.len() <= limits.max_name);
                    assert!(s.labels.iter().all(|(_, v)| v.len() <= limits.max_value));
                }
            }
            Err(e) => {
                refused += 1;
                assert!(e.message.len() < 200, "{e}");
            }
        }
    }
    // The generator must exercise both outcomes, or the test proves little.
    assert!(
        parsed > 100 && refused > 100,
        "{parsed} parsed, {refused} refused"
    );
}

#[test]
fn the_name_byte_table_is_the_name_grammar() {
    for b in 0..=u8::MAX {
        let want = b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        assert_eq!(is_name_byte(b), want, "byte {b}");
    }
}

/// The body is checked as UTF-8 once; the error still names the first line at fault, in order.
#[test]
fn the_first_line_at_fault_is_named_whatever_its_fault() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"a 1\nb{ 2\nc \xff 3\n",
            "line 2: found \"2\" where a label name was expected",
        ),
        (b"a 1\nb \xff 2\nc{ 3\n", "line 2: not UTF-8 text"),
        (b"a 1\n\xc3\n", "line 2: not UTF-8 text"),
    ];
    for (body, want) in cases {
        let got = parse(body, &Limits::default()).map(|e| e.samples.len());
        assert_eq!(got.map_err(|e| e.to_string()), Err(want.to_string()));
    }
    // Characters of several bytes before and after a bad byte are fine.
    let e = parse("a{v=\"é\"} 1\n".as_bytes(), &Limits::default()).expect("parses");
    assert_eq!(e.samples[0].label("v"), Some("é"));
    let mut body = "a{v=\"ü\"} 1\n".as_bytes().to_vec();
    body.extend_from_slice(b"# \xff comment\n");
    assert_eq!(parse(&body, &Limits::default()).map_err(|e| e.line), Err(2));
}
