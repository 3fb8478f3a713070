use crate::link::{Drawer, Link};
use crate::settings::parse;
use std::path::Path;

const TARGETS: &str = "[[targets]]\nname = \"orders-db\"\n\n[[targets]]\nname = \"bouncer\"\ntype = \"pgbouncer\"\n\n";

fn links(extra: &str) -> Result<Vec<Link>, Vec<String>> {
    parse(Path::new("x.toml"), &format!("{TARGETS}{extra}"))
        .map(|c| c.links)
        .map_err(|p| p.iter().map(|p| p.to_string()).collect())
}

#[test]
fn valid_links_resolve() {
    let got = links(
        "[[links]]\nfrom = \"checkout\"\nserver = { target = \"orders-db\", application_name = \"checkout\", role = \"app\" }\n\n\
         [[links]]\nfrom = \"web\"\npool = \"default\"\npgbouncer = { target = \"bouncer\", pool = \"orders/app\" }\n\n\
         [[links]]\nfrom = \"bouncer\"\nserver = { target = \"orders-db\" }\n",
    )
    .expect("valid");
    let shape: Vec<_> = got
        .iter()
        .map(|l| {
            (
                l.from.as_str(),
                l.drawer,
                l.server.is_some(),
                l.pgbouncer.is_some(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("checkout", Drawer::App, true, false),
            ("web", Drawer::App, false, true),
            ("bouncer", Drawer::Pgbouncer, true, false),
        ]
    );
    assert_eq!(
        got[0].server.as_ref().and_then(|s| s.role.as_deref()),
        Some("app")
    );
    assert!(got[1].covers_app_pool("web", "default"));
    assert!(!got[1].covers_app_pool("web", "other"));
    assert!(!got[2].covers_app_pool("bouncer", "default"));
}

#[test]
fn problems_are_located_and_name_the_target() {
    // (link entry, expected problem)
    let cases = [
        (
            "[[links]]\nfrom = \"checkout\"\nserver = { target = \"orders-dbb\" }\n",
            "x.toml:10:12: links[0].server.target: unknown target \"orders-dbb\" (did you mean \"orders-db\"?)",
        ),
        (
            "[[links]]\nfrom = \"checkout\"\nserver = { target = \"bouncer\" }\n",
            "links[0].server.target: \"bouncer\" is a pgbouncer target, not a postgres target",
        ),
        (
            "[[links]]\nfrom = \"checkout\"\npgbouncer = { target = \"nowhere\" }\n",
            "links[0].pgbouncer.target: unknown target \"nowhere\"",
        ),
        (
            "[[links]]\nfrom = \"checkout\"\n",
            "links[0]: a link needs `server` or `pgbouncer`",
        ),
        (
            "[[links]]\nfrom = \"orders-db\"\nserver = { target = \"orders-db\" }\n",
            "links[0].from: \"orders-db\" is a postgres target",
        ),
        (
            "[[links]]\nfrom = \"bouncer\"\npgbouncer = { target = \"bouncer\" }\nserver = { target = \"orders-db\" }\n",
            "links[0].pgbouncer: a PgBouncer draws on a server: set `server` only",
        ),
        (
            "[[links]]\nfrom = \"bouncer\"\nserver = { target = \"orders-db\", role = \"app\" }\n",
            "links[0].server.role: a PgBouncer's pools name their own database and user",
        ),
        (
            "[[links]]\nfrom = \"web\"\npgbouncer = { target = \"bouncer\", pool = \"orders\" }\n",
            "links[0].pgbouncer.pool: a PgBouncer pool is named `database/user`",
        ),
        (
            "[[links]]\nfrom = \"web\"\nserver = { target = \"orders-db\", rol = \"x\" }\n",
            "links[0].server.rol: unknown field `rol`",
        ),
        (
            "[[links]]\nfrom = \"a\"\nserver = { target = \"orders-db\" }\n[[links]]\nfrom = \"a\"\nserver = { target = \"orders-db\" }\n",
            "links[1].from: \"a\" is linked twice",
        ),
    ];
    for (entry, want) in cases {
        let got = links(entry).expect_err(entry);
        assert!(
            got.len() == 1 && got[0].contains(want),
            "{entry}\nwant {want}\ngot {got:?}"
        );
        let line: usize = got[0]
            .split(':')
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        assert!(line >= 8, "located in the link: {got:?}");
    }
}

#[test]
fn the_readme_example_is_valid() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split_once("## Pool budget")
        .map(|(_, s)| s)
        .expect("README has a Pool budget section");
    let example = section
        .split_once("```toml\n")
        .and_then(|(_, s)| s.split_once("```"))
        .map(|(toml, _)| toml)
        .expect("a toml block");
    let got = links(example).expect("the README's links are valid");
    let from: Vec<&str> = got.iter().map(|l| l.from.as_str()).collect();
    assert_eq!(from, ["checkout", "web", "bouncer"]);
}

#[test]
fn links_describe_themselves() {
    let got = links(
        "[[links]]\nfrom = \"web\"\npool = \"default\"\npgbouncer = { target = \"bouncer\", pool = \"orders/app\" }\nserver = { target = \"orders-db\", application_name = \"web\" }\n\n\
         [[links]]\nfrom = \"bouncer\"\nserver = { target = \"orders-db\" }\n",
    )
    .expect("valid");
    let lines: Vec<String> = got.iter().map(|l| l.describe()).collect();
    assert_eq!(
        lines,
        [
            "web pool default → pgbouncer bouncer pool orders/app, server orders-db application_name=web",
            "bouncer → server orders-db",
        ]
    );
}

/// The commented-out link of `config.example.toml` documents every key: uncommented (all but
/// `pgbouncer`, which names a PgBouncer the example does not watch), it is valid.
#[test]
fn the_example_link_is_valid_uncommented() {
    let example = include_str!("../../../config.example.toml");
    let (_, block) = example.split_once("# [[links]]\n").expect("link block");
    let keys: String = block
        .lines()
        .take_while(|l| l.starts_with("# "))
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| !l.starts_with("pgbouncer"))
        .map(|l| format!("{l}\n"))
        .collect();
    let src = format!("{example}\n[[links]]\n{keys}");
    let config = parse(Path::new("config.example.toml"), &src)
        .unwrap_or_else(|p| panic!("{:?}", p.iter().map(|p| p.to_string()).collect::<Vec<_>>()));
    assert_eq!(
        config.links.iter().map(|l| l.describe()).collect::<Vec<_>>(),
        ["checkout pool default → server local application_name=checkout role=app database=orders"]
    );
}
