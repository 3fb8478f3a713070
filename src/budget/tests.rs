use super::compute::observed_instances;
use super::*;
use crate::link::{BouncerEnd, Drawer, Link, ServerEnd};
use crate::model::{PoolId, PoolKind, PoolSnapshot};
use crate::source::app::APP;
use crate::source::pgbouncer::pools as bouncer;
use crate::source::postgres::pools as pg;

fn pool(target: &str, kind: PoolKind, name: &str, configured: u64) -> PoolSnapshot {
    let id = PoolId {
        target: target.into(),
        kind,
        name: name.into(),
    };
    PoolSnapshot::new(id, configured, 0)
}

/// An application pool aggregating `instances` of `size` each (as pushed stats are).
fn app(target: &str, name: &str, size: u64, instances: u64) -> PoolSnapshot {
    PoolSnapshot {
        capacity: size * instances,
        ..pool(target, APP, name, size)
    }
}

fn server_end(target: &str, role: Option<&str>, database: Option<&str>) -> ServerEnd {
    ServerEnd {
        target: target.into(),
        application_name: None,
        role: role.map(Into::into),
        database: database.map(Into::into),
    }
}

fn app_link(from: &str, server: Option<ServerEnd>, bouncer_target: Option<&str>) -> Link {
    Link {
        from: from.into(),
        drawer: Drawer::App,
        pool: None,
        server,
        pgbouncer: bouncer_target.map(|t| BouncerEnd {
            target: t.into(),
            pool: None,
        }),
    }
}

fn bouncer_link(from: &str, server: &str) -> Link {
    Link {
        from: from.into(),
        drawer: Drawer::Pgbouncer,
        pool: None,
        server: Some(server_end(server, None, None)),
        pgbouncer: None,
    }
}

fn proposal(s: &str) -> Proposal {
    s.parse().expect("valid proposal")
}

/// `(subject, demand, ceiling, over)` of every line.
fn lines(b: &Budget) -> Vec<(String, u64, u64, bool)> {
    b.lines
        .iter()
        .map(|l| (l.subject.clone(), l.demand, l.ceiling, l.over))
        .collect()
}

fn budget(pools: &[PoolSnapshot], links: &[Link], proposals: &[&str]) -> Budget {
    let refs: Vec<&PoolSnapshot> = pools.iter().collect();
    let proposals: Vec<Proposal> = proposals.iter().map(|p| proposal(p)).collect();
    compute(&refs, links, &proposals)
}

fn row(subject: &str, demand: u64, ceiling: u64, over: bool) -> (String, u64, u64, bool) {
    (subject.to_string(), demand, ceiling, over)
}

#[test]
fn applications_drawing_on_a_server() {
    let server = pool("orders-db", pg::SERVER, "server", 97);
    let direct = [app_link(
        "checkout",
        Some(server_end("orders-db", None, None)),
        None,
    )];
    // (pools of checkout, proposals, want (demand, over, headroom), want proposed)
    type Case<'a> = (Vec<PoolSnapshot>, Vec<&'a str>, (u64, bool, i64), bool);
    let cases: [Case; 7] = [
        // Incident 1: a pool of 10 on one instance fits the server with room to grow...
        (
            vec![app("checkout", "default", 10, 1)],
            vec![],
            (10, false, 87),
            false,
        ),
        // ...and the fix (a pool of 50) fits too.
        (
            vec![app("checkout", "default", 10, 1)],
            vec!["checkout=50"],
            (50, false, 47),
            true,
        ),
        // Incident 2: a deployment shrinking the pool is within budget; the budget shows the
        // drop in demand (PoolCapacityDropped pages on the running shrink).
        (
            vec![app("checkout", "default", 40, 2)],
            vec!["checkout=5x2"],
            (10, false, 87),
            true,
        ),
        // Over-commitment by replicas: 20 × 3 fits, 20 × 6 does not.
        (
            vec![app("checkout", "default", 20, 3)],
            vec![],
            (60, false, 37),
            false,
        ),
        (
            vec![app("checkout", "default", 20, 3)],
            vec!["checkout=20x6"],
            (120, true, -23),
            true,
        ),
        // Two pools of one application both count.
        (
            vec![
                app("checkout", "default", 20, 3),
                app("checkout", "reports", 10, 3),
            ],
            vec![],
            (90, false, 7),
            false,
        ),
        // Exactly at the ceiling fits.
        (
            vec![app("checkout", "default", 97, 1)],
            vec![],
            (97, false, 0),
            false,
        ),
    ];
    for (apps, proposals, (demand, over, headroom), proposed) in cases {
        let mut pools = apps.clone();
        pools.push(server.clone());
        let b = budget(&pools, &direct, &proposals);
        let l = &b.lines[0];
        assert_eq!(
            (l.demand, l.over, l.headroom, b.over_committed),
            (demand, over, headroom, over),
            "{proposals:?} {apps:?}"
        );
        assert_eq!(l.contributors[0].proposed, proposed, "{proposals:?}");
        assert_eq!(b.lines.len(), 1);
        assert!(b.unknown.is_empty(), "{:?}", b.unknown);
    }
}

#[test]
fn role_and_database_limits_count_what_draws_as_them() {
    let pools = [
        pool("orders-db", pg::SERVER, "server", 97),
        pool("orders-db", pg::ROLE, "app", 30),
        pool("orders-db", pg::ROLE, "other", 5),
        pool("orders-db", pg::DATABASE, "orders", 50),
        app("checkout", "default", 20, 2),
        app("batch", "default", 15, 1),
    ];
    let links = [
        app_link(
            "checkout",
            Some(server_end("orders-db", Some("app"), Some("orders"))),
            None,
        ),
        app_link(
            "batch",
            Some(server_end("orders-db", None, Some("orders"))),
            None,
        ),
    ];
    let b = budget(&pools, &links, &[]);
    assert_eq!(
        lines(&b),
        [
            row("orders-db", 55, 97, false),
            row("orders-db role app", 40, 30, true),
            row("orders-db database orders", 55, 50, true),
        ]
    );
    assert!(b.over_committed);
    let names: Vec<&str> = b.lines[2]
        .contributors
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["checkout default", "batch default"],
        "largest first"
    );
}

#[test]
fn pgbouncer_in_between() {
    let base = vec![
        pool("orders-db", pg::SERVER, "server", 97),
        pool("orders-db", pg::ROLE, "app", 40),
        pool("bouncer", bouncer::CLIENTS, "clients", 100),
        pool("bouncer", bouncer::POOL, "orders/app", 60),
        pool("bouncer", bouncer::POOL, "orders/batch", 50),
        pool("bouncer", bouncer::POOL, "reports/app", 10),
        app("web", "default", 20, 4),
    ];
    let links = [
        app_link("web", None, Some("bouncer")),
        bouncer_link("bouncer", "orders-db"),
    ];
    let with_db_limit = |limit: u64| {
        let mut p = base.clone();
        p.push(pool("bouncer", bouncer::DATABASE, "orders", limit));
        p
    };
    // (pools, proposals, want lines)
    let cases = [
        // Apps count against PgBouncer's clients; PgBouncer's pool sizes against the server
        // and against the role of their user.
        (
            base.clone(),
            vec![],
            vec![
                row("orders-db", 120, 97, true),
                row("orders-db role app", 70, 40, true),
                row("bouncer", 80, 100, false),
            ],
        ),
        // More replicas overflow max_client_conn.
        (
            base.clone(),
            vec!["web=20x6"],
            vec![
                row("orders-db", 120, 97, true),
                row("orders-db role app", 70, 40, true),
                row("bouncer", 120, 100, true),
            ],
        ),
        // max_db_connections below the pools' sum is what the database can open (its pools
        // have two users: no role line for them).
        (
            with_db_limit(40),
            vec![],
            vec![
                row("orders-db", 50, 97, false),
                row("orders-db role app", 10, 40, false),
                row("bouncer", 80, 100, false),
            ],
        ),
        // A limit above the sum changes nothing.
        (
            with_db_limit(500),
            vec![],
            vec![
                row("orders-db", 120, 97, true),
                row("orders-db role app", 70, 40, true),
                row("bouncer", 80, 100, false),
            ],
        ),
    ];
    for (pools, proposals, want) in cases {
        let b = budget(&pools, &links, &proposals);
        assert_eq!(lines(&b), want, "{proposals:?}");
    }
    let b = budget(&with_db_limit(40), &links, &[]);
    let capped = &b.lines[0].contributors[0];
    assert_eq!(
        (capped.name.as_str(), capped.demand),
        ("bouncer pgbouncer_database orders", 40)
    );
    assert_eq!(
        capped.note,
        "max_db_connections 40 caps orders/app (60), orders/batch (50)"
    );
}

#[test]
fn what_cannot_be_counted_is_said() {
    let links = [
        app_link("checkout", Some(server_end("orders-db", None, None)), None),
        app_link("web", None, Some("bouncer")),
    ];
    // (pools, proposals, want lines, want unknown)
    let cases = [
        (
            vec![],
            vec![],
            0,
            vec![
                "checkout: no application pool seen (give its size with --propose checkout=SIZExREPLICAS)",
                "web: no application pool seen (give its size with --propose web=SIZExREPLICAS)",
                "orders-db: not polled, its ceiling is unknown",
                "bouncer: not polled, its ceiling is unknown",
            ],
        ),
        (
            vec![pool("orders-db", pg::SERVER, "server", 97)],
            vec!["checkout=10x2", "web=1"],
            1,
            vec!["bouncer: not polled, its ceiling is unknown"],
        ),
    ];
    for (pools, proposals, n, unknown) in cases {
        let b = budget(&pools, &links, &proposals);
        assert_eq!(b.lines.len(), n);
        assert_eq!(b.unknown, unknown);
        assert!(!b.over_committed);
    }
}

#[test]
fn a_pool_link_and_a_pool_proposal_pick_one_pool() {
    let pools = [
        pool("orders-db", pg::SERVER, "server", 97),
        app("checkout", "default", 20, 1),
        app("checkout", "reports", 30, 1),
    ];
    let mut link = app_link("checkout", Some(server_end("orders-db", None, None)), None);
    link.pool = Some("reports".into());
    // (proposals, want demand)
    let cases = [
        (vec![], 30),
        (vec!["checkout/reports=5x2"], 10),
        (vec!["checkout/default=50x2"], 30),
        (vec!["checkout=7"], 7),
    ];
    for (proposals, want) in cases {
        let b = budget(&pools, std::slice::from_ref(&link), &proposals);
        assert_eq!(b.lines[0].demand, want, "{proposals:?}");
    }
}

#[test]
fn proposals_parse() {
    // (text, want (app, pool, size, replicas) or the error's start)
    let ok = [
        ("checkout=20x6", ("checkout", None, 20, 6)),
        ("checkout=20X6", ("checkout", None, 20, 6)),
        ("checkout=20×6", ("checkout", None, 20, 6)),
        ("checkout=20", ("checkout", None, 20, 1)),
        (
            "checkout/HikariPool-1=5x2",
            ("checkout", Some("HikariPool-1"), 5, 2),
        ),
        ("checkout=0x3", ("checkout", None, 0, 3)),
    ];
    for (text, (app, pool, size, replicas)) in ok {
        let p: Proposal = text.parse().expect(text);
        assert_eq!(
            (p.app.as_str(), p.pool.as_deref(), p.size, p.replicas),
            (app, pool, size, replicas)
        );
    }
    let bad = [
        ("checkout", "expected APP=SIZExREPLICAS"),
        ("=20x6", "expected APP=SIZExREPLICAS"),
        ("checkout/=20x6", "expected APP=SIZExREPLICAS"),
        ("checkout=x6", "expected APP=SIZExREPLICAS"),
        ("checkout=20x", "expected APP=SIZExREPLICAS"),
        ("checkout=-1x2", "expected APP=SIZExREPLICAS"),
        ("checkout=20x0", "replicas must be at least 1"),
    ];
    for (text, want) in bad {
        let e = text.parse::<Proposal>().expect_err(text);
        assert!(e.contains(want), "{text}: {e}");
    }
}

#[test]
fn instances_of_an_observed_pool() {
    // (capacity, configured capacity, want instances)
    let cases = [
        (10, 10, 1),
        (60, 20, 3),
        (0, 20, 1),
        (10, 0, 1),
        (59, 20, 3),
        (50, 20, 3),
    ];
    for (capacity, configured, want) in cases {
        let p = PoolSnapshot {
            capacity,
            ..pool("a", APP, "p", configured)
        };
        assert_eq!(observed_instances(&p), want, "{capacity}/{configured}");
    }
}

#[test]
fn text_names_every_number() {
    let mut server = pool("orders-db", pg::SERVER, "server", 97);
    server.capacity_note = "max_connections 100, 3 reserved for superusers".into();
    let pools = [server, app("checkout", "default", 20, 3)];
    let links = [app_link(
        "checkout",
        Some(server_end("orders-db", None, None)),
        None,
    )];
    let text = text::render(&budget(&pools, &links, &["checkout=20x6"]));
    assert_eq!(
        text,
        "orders-db: 120 committed of 97 (max_connections 100, 3 reserved for superusers): OVER by 23\n\
         \x20    120  checkout: 20 × 6 instances (proposed)\n\
         verdict: over-committed\n"
    );
    let text = text::render(&budget(&pools, &links, &[]));
    assert!(text.starts_with("orders-db: 60 committed of 97 (max_connections 100, 3 reserved for superusers): fits, 37 spare\n"), "{text}");
    assert!(
        text.contains("checkout default: 20 × 3 instances (observed)"),
        "{text}"
    );
    assert!(text.ends_with("verdict: within budget\n"), "{text}");
}

#[test]
fn proposals_must_name_an_application_link() {
    let links = [
        app_link("checkout", Some(server_end("orders-db", None, None)), None),
        bouncer_link("bouncer", "orders-db"),
    ];
    // (proposal, accepted)
    let cases = [
        ("checkout=5", true),
        ("checkout/any=5", false),
        ("bouncer=5", false),
        ("chekout=5", false),
    ];
    for (p, ok) in cases {
        let got = command::check_proposals(&[proposal(p)], &links);
        assert_eq!(got.is_ok(), ok, "{p}: {got:?}");
    }
}

#[test]
fn annotate_puts_the_budget_on_ceilings_and_the_server_side_on_app_pools() {
    use crate::model::{Holder, Holders, PgSessions, PollData, TargetReport};
    use std::time::{Duration, SystemTime};
    let report = |target: &str, pools: Vec<PoolSnapshot>| TargetReport {
        target: target.into(),
        at: SystemTime::UNIX_EPOCH,
        duration: Duration::ZERO,
        outcome: Ok(std::sync::Arc::new(PollData {
            pools,
            ..PollData::default()
        })),
    };
    let mut server = pool("orders-db", pg::SERVER, "server", 97);
    server.in_use = 61;
    server.capacity = 96;
    server.postgres = Some(PgSessions {
        holders: Holders {
            applications: vec![Holder {
                name: "checkout".into(),
                connections: 60,
                idle_in_transaction: 7,
            }],
            ..Holders::default()
        },
        ..PgSessions::default()
    });
    let mut checkout = app("checkout", "default", 10, 6);
    checkout.in_use = 60;
    checkout.waiting = 23;
    let mut reports = vec![
        report("orders-db", vec![server]),
        report("checkout", vec![checkout, app("other", "x", 5, 1)]),
    ];
    let mut end = server_end("orders-db", None, None);
    end.application_name = Some("checkout".into());
    let links = [app_link("checkout", Some(end), None)];
    annotate::annotate_all(&mut reports, &links);
    let pools = |i: usize| {
        reports[i]
            .outcome
            .as_ref()
            .map(|d| d.pools.clone())
            .unwrap_or_default()
    };
    let server = &pools(0)[0];
    assert_eq!(
        server
            .budget
            .as_ref()
            .map(|b| (b.demand, b.contributors.as_str())),
        Some((60, "checkout default 60"))
    );
    assert_eq!(server.server_side, None);
    let app_pools = pools(1);
    let side = "server orders-db: 60 connections from application_name=checkout (7 idle in transaction), 61/96 usable in use";
    assert_eq!(app_pools[0].server_side.as_deref(), Some(side));
    assert_eq!(app_pools[0].budget, None);
    assert_eq!(app_pools[1].server_side, None, "not linked");
    // Alert text carries it: the pool details of every pool rule, and its own variable.
    assert_eq!(
        crate::rules::template::pool_details(&app_pools[0]),
        format!("23 waiting; {side}")
    );
    // Without links nothing is set.
    let mut bare = vec![report("checkout", vec![app("checkout", "default", 10, 6)])];
    annotate::annotate_all(&mut bare, &[]);
    assert!(bare[0]
        .outcome
        .as_ref()
        .is_ok_and(|d| d.pools[0].server_side.is_none()));
}
