//! Phase 4 of the poll benchmark: what one poll sends over the wire (a recording proxy) and
//! makes the server do (its log, `log_min_duration_statement = 0` for role poolwatch).

use std::time::Duration;

use crate::stats::Summary;
use crate::wire::{self, Proxy};

use super::{connect, target_settings_at, timed_poll, Side};

/// The duration of a server log line `... duration: 1.234 ms  ...`.
fn logged_ms(line: &str) -> Option<f64> {
    let rest = line.split("duration: ").nth(1)?;
    rest.split(" ms").next()?.parse::<f64>().ok()
}

/// Whether `line` logs extended-protocol step `step` (`parse`, `bind`, `execute`) of the poll
/// SQL: `duration: 0.050 ms  bind s12: SELECT json_build_object(`.
fn is_step(line: &str, step: &str) -> bool {
    line.split_once(&format!("  {step} "))
        .is_some_and(|(_, rest)| rest.contains(": SELECT json_build_object("))
}

/// With `log_min_duration_statement = 0` for role poolwatch only, a fresh monitoring
/// connection goes through a recording proxy and polls: the server log shows what each poll
/// made the server do, the proxy what went over the wire.
pub(super) async fn protocol_phase(sides: &mut [Side], polls: usize) {
    println!(
        "\n### Protocol check: a fresh monitoring connection through a recording proxy, with \
         log_min_duration_statement = 0 for role poolwatch"
    );
    for side in sides.iter_mut() {
        side.pg
            .exec("ALTER ROLE poolwatch SET log_min_duration_statement = 0")
            .await;
        let offset = side.pg.server_log().len();
        let proxy = Proxy::start(side.pg.port()).await;
        let settings = target_settings_at(&side.settings.name, proxy.port(), "");
        let conn = connect(&settings).await;
        let p = &mut side.protocol;
        for _ in 0..polls {
            p.round_trips
                .push(timed_poll(&conn, &settings, side.clients as u64).await);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Flights while the connection is open: dropping it only closes the socket.
        let flights = proxy.flights();
        drop(conn);
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(proxy);
        let log = side.pg.server_log();
        let ours: Vec<&str> = log[offset..]
            .lines()
            .filter(|l| l.contains(" poolwatch@postgres/poolwatch "))
            .collect();
        for line in &ours {
            if is_step(line, "parse") {
                p.parse += 1;
            } else if is_step(line, "bind") {
                p.bind += 1;
                p.bind_ms.extend(logged_ms(line));
            } else if is_step(line, "execute") {
                p.execute += 1;
                p.execute_ms.extend(logged_ms(line));
            } else if line.contains("statement: SELECT json_build_object(") {
                p.simple_poll += 1;
            } else if let Some((_, text)) = line.split_once("statement: ") {
                p.simple_other.push(text.to_string());
            } else {
                p.other += 1;
            }
        }
        p.shapes = wire::shapes(&flights);
        let client_flights = flights
            .iter()
            .filter(|f| f.dir == wire::Dir::ToServer)
            .collect::<Vec<_>>();
        p.bind_flights = client_flights
            .iter()
            .filter(|f| f.messages.iter().any(|m| m == "B"))
            .count();
        p.parse_flights = client_flights
            .iter()
            .filter(|f| f.messages.iter().any(|m| m == "P"))
            .count();
        println!(
            "- {:>4} clients, {polls} polls. Server log of role poolwatch: {} `parse`, {} `bind`, \
             {} `execute` line(s) of the poll SQL; {} simple-protocol poll statement(s); other \
             simple-protocol statements: {:?}; {} other line(s). Client round trip (through the \
             proxy): {}",
            side.clients,
            p.parse,
            p.bind,
            p.execute,
            p.simple_poll,
            p.simple_other,
            p.other,
            Summary::of_durations_ms(&p.round_trips)
        );
        println!(
            "  Wire: {} client flight(s) with a Bind for {polls} polls ({:.2} round trip(s) per \
             poll), {} with a Parse. Client flight -> server answer, count:",
            p.bind_flights,
            p.bind_flights as f64 / polls as f64,
            p.parse_flights
        );
        for ((client, server), n) in &p.shapes {
            println!("    [{client}] -> [{server}]: {n}");
        }
        side.pg
            .exec("ALTER ROLE poolwatch RESET log_min_duration_statement")
            .await;
    }
}
