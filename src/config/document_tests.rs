//! The generic helper on section types of its own: any `Deserialize` type, at any key path.

use super::*;
use crate::config::values::{HumanDuration, SecretRef};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Section {
    name: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    every: Option<HumanDuration>,
    #[serde(default)]
    token: Option<SecretRef>,
    #[serde(default)]
    headers: BTreeMap<String, SecretRef>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    limits: Option<Limits>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Fast,
    Slow,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Limits {
    low: u32,
    #[serde(default)]
    high: Option<u32>,
}

fn doc(src: &str) -> Document {
    Document::parse(Path::new("t.toml"), src.to_string()).expect("parses")
}

/// Every problem as `line:col: key: message`.
fn texts(problems: Problems) -> Vec<String> {
    problems
        .into_vec()
        .iter()
        .map(|p| p.to_string().trim_start_matches("t.toml:").to_string())
        .collect()
}

#[test]
fn an_item_deserialises_at_any_key_path() {
    let d = doc("[a.b]\nname = \"x\"\nport = 5\n[[list]]\nname = \"y\"\n[[list]]\nname = \"z\"\n");
    let mut problems = Problems::new("t.toml");
    let got: Option<Section> = d.get("a.b", &mut problems);
    assert_eq!(got.map(|s| (s.name, s.port)), Some(("x".into(), Some(5))));
    let list: Vec<Option<Section>> = d.elements("list", &mut problems);
    let names: Vec<_> = list.into_iter().map(|s| s.map(|s| s.name)).collect();
    assert_eq!(names, [Some("y".to_string()), Some("z".to_string())]);
    assert_eq!(d.get::<Section>("absent", &mut problems), None);
    assert_eq!(
        d.get_or_default::<Section>("absent", &mut problems),
        Some(Section::default())
    );
    assert!(problems.is_empty());
}

#[test]
fn every_problem_of_an_element_is_listed_with_its_key_path() {
    let d = doc(concat!(
        "[[list]]\n",
        "name = \"ok\"\n",
        "[[list]]\n",
        "name = \"x\"\n",
        "port = \"80\"\n",
        "every = \"15\"\n",
        "mode = \"fats\"\n",
        "limits = { high = 3 }\n",
        "nmae = 1\n",
        "[[list]]\n",
        "port = 70000\n",
    ));
    let mut problems = Problems::new("t.toml");
    let list: Vec<Option<Section>> = d.elements("list", &mut problems);
    assert_eq!(
        list.iter().map(Option::is_some).collect::<Vec<_>>(),
        [true, false, false]
    );
    assert_eq!(
        texts(problems),
        [
            "5:8: list[1].port: invalid type: string, expected an integer from 0 to 65535",
            "6:9: list[1].every: duration \"15\" has no unit: write e.g. \"15s\" or \"15ms\"",
            "7:8: list[1].mode: unknown variant `fats`, expected `fast` or `slow` \
             (did you mean `fast`?)",
            "8:10: list[1].limits: missing field `low`",
            "9:1: list[1].nmae: unknown field `nmae`, expected one of `name`, `port`, `every`, \
             `token`, `headers`, `mode`, `limits` (did you mean `name`?)",
            "11:8: list[2].port: invalid value: integer, expected an integer from 0 to 65535",
            "10:1: list[2]: missing field `name`",
        ]
    );
}

#[test]
fn a_required_key_of_the_wrong_type_is_reported_once() {
    let d = doc("[s]\nname = 5\n");
    let mut problems = Problems::new("t.toml");
    assert_eq!(d.get::<Section>("s", &mut problems), None);
    assert_eq!(
        texts(problems),
        ["2:8: s.name: invalid type: integer, expected a string"]
    );
}

#[test]
fn values_at_secret_keys_are_never_quoted() {
    let values = [
        ("424242424242", "integer"),
        ("4242.4242", "float"),
        ("true", "boolean"),
        ("1979-05-27T07:32:00Z", "date-time"),
        ("[\"s3cr3t\"]", "array"),
        ("{ v = \"s3cr3t\" }", "table"),
    ];
    for (value, kind) in values {
        let secret = value.trim_matches(|c| "[]{} v=\"".contains(c));
        for (src, key, expected) in [
            (
                format!("[s]\nname = \"n\"\ntoken = {value}\n"),
                "s.token",
                "a string",
            ),
            (
                format!("[s]\nname = \"n\"\nheaders = {{ Authorization = {value} }}\n"),
                "s.headers.Authorization",
                "a string",
            ),
            (
                format!("[s]\nname = \"n\"\nheaders = {value}\n"),
                "s.headers",
                "a table",
            ),
        ] {
            let mut problems = Problems::new("t.toml");
            d_get(&src, &mut problems);
            let text = texts(problems).join("\n");
            let want = format!("{key}: invalid type: {kind}, expected {expected}");
            // A table is a table; serde reads a TOML date-time as a table of one entry.
            if !(key == "s.headers" && ["table", "date-time"].contains(&kind)) {
                assert!(text.contains(&want), "{src}: {text}");
            }
            assert!(!text.contains(secret), "{src}: {text}");
        }
    }
    let mut problems = Problems::new("t.toml");
    d_get(
        "[s]\nname = \"n\"\nheaders = \"Bearer s3cr3t\"\n",
        &mut problems,
    );
    assert_eq!(
        texts(problems),
        ["3:11: s.headers: invalid type: string, expected a table"]
    );
}

fn d_get(src: &str, problems: &mut Problems) {
    doc(src).get::<Section>("s", problems);
}

#[test]
fn something_else_than_an_array_is_one_failed_element() {
    let d = doc("list = 5\n[other]\nx = 1\n");
    let mut problems = Problems::new("t.toml");
    let list: Vec<Option<Section>> = d.elements("list", &mut problems);
    assert_eq!(list.len(), 1);
    assert!(list[0].is_none());
    d.deny_unknown_keys("", &["list", "others"], &mut problems);
    assert_eq!(
        texts(problems),
        [
            "1:8: list: invalid type: integer, expected an array",
            "2:2: other: unknown field `other`, expected `list` or `others` \
             (did you mean `others`?)",
        ]
    );
}

#[test]
fn struct_fields_are_read_from_the_type() {
    assert_eq!(
        struct_fields::<Limits>(),
        ["low", "high"],
        "fields of a derived struct"
    );
    assert!(struct_fields::<u32>().is_empty());
}

#[test]
fn files_that_do_not_parse_give_one_located_problem() {
    let cases: [(&[u8], &str); 3] = [
        (
            b"[[targets]]\nname = \"db\"\ninterval = \n",
            "t.toml:3:12: targets[0].interval: invalid string\nexpected `\"`, `'`",
        ),
        (
            b"[s]\npassword = \"p\xe4ss\"\n",
            "t.toml:2:14: s.password: not valid UTF-8 here: a configuration file must be UTF-8 text",
        ),
        (
            b"[s]\npassword = \"s3cr3t\n",
            "t.toml:2:19: s.password: invalid basic string",
        ),
    ];
    for (bytes, want) in cases {
        let problem = Document::from_bytes(Path::new("t.toml"), bytes.to_vec())
            .err()
            .expect("refused");
        assert_eq!(problem.to_string(), want);
    }
}
