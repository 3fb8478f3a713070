//! A newcomer's first ten minutes, through the real binary and the real script:
//!
//! * a receiver that cannot be reached is reported at start-up (a warning naming the receiver,
//!   never its URL or host; `poolwatch_receiver_reachable` 0), a listening one is reachable,
//!   and a probe that hangs delays neither start-up nor polling;
//! * `scripts/run.sh --setup-only` against a throwaway cluster sets the `poolwatch` role's
//!   password only when it creates the role or when the saved password cannot log in, never
//!   on a run where it already works (another daemon using the role keeps working).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::metrics::find_sample;
use common::scenario::{monitored_cluster, target, SilentServer, WAIT};
use common::{PgCluster, PgOptions, Poolwatch, Receiver};

/// A port on 127.0.0.1 where nothing listens (bound once, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn receiver_table(name: &str, url: &str, timeout: &str) -> String {
    format!(
        "[[receivers]]\nname = \"{name}\"\n[[receivers.integrations]]\ntype = \"webhook\"\nurl = \"{url}\"\ntimeout = \"{timeout}\"\n\n"
    )
}

/// The value of `poolwatch_receiver_reachable{receiver}`, if exported.
async fn reachable(pw: &Poolwatch, receiver: &str) -> Option<f64> {
    let samples = pw.metrics().await.expect("metrics");
    find_sample(
        &samples,
        "poolwatch_receiver_reachable",
        &[("receiver", receiver)],
    )
    .ok()
}

#[tokio::test]
async fn unreachable_receivers_are_reported_at_start_without_their_url_or_delaying_polling() {
    let pg = monitored_cluster().await;
    let up = Receiver::start().await;
    let closed = closed_port();
    let silent = SilentServer::start().await;
    let closed_url = format!("http://127.0.0.1:{closed}/hook?token=SECRET-PROBE-1");
    let silent_url = format!("https://127.0.0.1:{}/hook/SECRET-PROBE-2", silent.port());
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n{}{}{}{}",
        target("db", pg.port(), ""),
        receiver_table("up", &up.url("/hook"), "5s"),
        receiver_table("down", &closed_url, "5s"),
        // Accepts and never answers the TLS handshake: its probe takes the whole timeout.
        receiver_table("silent", &silent_url, "8s"),
    );
    let pw = Poolwatch::start(&config).await;

    // Polling and readiness do not wait for any probe: ready while the silent one still hangs.
    let ready = common::poll_until(WAIT, || async {
        (pw.get("/readyz").await.0 == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "never ready\n{}", pw.logs());
    assert_eq!(reachable(&pw, "silent").await, None, "{}", pw.logs());

    for (receiver, want) in [("down", 0.0), ("up", 1.0), ("silent", 0.0)] {
        pw.wait_for_metric(
            "poolwatch_receiver_reachable",
            &[("receiver", receiver)],
            |v| v == want,
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", pw.logs()));
    }

    let logs = pw.logs();
    let warning = |receiver: &str, reason: &str| {
        logs.lines().any(|l| {
            l.contains("WARN")
                && l.contains("receiver cannot be reached")
                && l.contains(&format!("receiver={receiver}"))
                && l.contains(reason)
        })
    };
    assert!(warning("down", "refused"), "{logs}");
    assert!(warning("silent", "timeout"), "{logs}");
    assert!(!warning("up", ""), "{logs}");
    for secret in [
        "SECRET-PROBE",
        "/hook",
        &format!("127.0.0.1:{closed}"),
        &format!("127.0.0.1:{}", silent.port()),
        &format!(":{closed}"),
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
    let (_, exposition) = pw.get("/metrics").await;
    assert!(!exposition.contains("SECRET-PROBE"), "{exposition}");
    common::promtool_check_metrics(&exposition).unwrap_or_else(|e| panic!("{e}"));
    // The probe connects and posts nothing.
    assert!(up.requests().is_empty(), "{:?}", up.requests());
}

/// A directory of the test's own: the shared state dir and the checkouts' local dirs.
struct Dirs {
    root: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs {
            root: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }
}

/// `scripts/run.sh --setup-only` against `pg`, as a checkout whose local dir is `checkout`,
/// sharing the per-user state dir `state`.
fn run_sh_setup(pg: &PgCluster, state: &Path, checkout: &Path) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/run.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .arg("--setup-only")
        .env_remove("POOLWATCH_CONFIG")
        .env("POOLWATCH_PGHOST", "127.0.0.1")
        .env("POOLWATCH_PGPORT", pg.port().to_string())
        .env("POOLWATCH_ADMIN_HOST", "127.0.0.1")
        .env("POOLWATCH_PSQL", common::pg::setup::bin_dir().join("psql"))
        .env("POOLWATCH_STATE_DIR", state)
        .env("POOLWATCH_LOCAL_DIR", checkout)
        .output()
        .expect("bash scripts/run.sh");
    assert!(
        out.status.success(),
        "run.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The role's stored SCRAM verifier: a new salt every time the password is set, even to the
/// same text, so it changes exactly when the password is set.
async fn verifier(pg: &PgCluster) -> String {
    pg.query("SELECT rolpassword FROM pg_authid WHERE rolname = 'poolwatch'")
        .await[0]
        .get(0)
}

async fn in_pg_monitor(pg: &PgCluster) -> bool {
    pg.query("SELECT pg_has_role('poolwatch', 'pg_monitor', 'member')")
        .await[0]
        .get(0)
}

#[tokio::test]
async fn run_sh_sets_the_role_password_only_when_creating_it_or_when_it_cannot_log_in() {
    let pg = PgCluster::start(PgOptions::default()).await;
    let dirs = Dirs::new();
    let state = dirs.path("state");

    // First run: the role is created with a generated password, saved for every checkout.
    let out = run_sh_setup(&pg, &state, &dirs.path("checkout-a"));
    assert!(
        stderr(&out).contains("created role poolwatch"),
        "{}",
        stderr(&out)
    );
    let password_file = state.join(format!("pgpassword-127.0.0.1-{}", pg.port()));
    let password = std::fs::read_to_string(&password_file).expect("saved password");
    let password = password.trim();
    assert!(password.len() >= 20, "{password:?}");
    assert!(in_pg_monitor(&pg).await);
    let url = pg.url_with_password("poolwatch", password, "postgres");
    // A daemon of checkout a, connected with the saved password.
    let daemon = common::pg::connect(&url).await.expect("login as poolwatch");
    let config = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let text = std::fs::read_to_string(&config).expect("generated config");
    assert!(
        text.contains(&format!("password_file = \"{}\"", password_file.display())),
        "{text}"
    );
    assert!(text.contains(&format!("port = {} ", pg.port())), "{text}");
    assert!(
        !text.contains(password),
        "the password itself is in the config"
    );
    // What `run.sh` then runs with is a valid configuration.
    let checked = common::poolwatch::run_cli(&["check-config", &config]).await;
    assert_eq!(
        checked.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let created = verifier(&pg).await;

    // Again, and from another checkout: the saved password logs in, nothing is set.
    for checkout in ["checkout-a", "checkout-b"] {
        let out = run_sh_setup(&pg, &state, &dirs.path(checkout));
        assert!(stderr(&out).contains("left as it is"), "{}", stderr(&out));
        assert_eq!(
            verifier(&pg).await,
            created,
            "{checkout}: password set again"
        );
    }
    daemon
        .simple_query("SELECT 1")
        .await
        .expect("the running daemon's session");
    drop(daemon);
    common::pg::connect(&url)
        .await
        .expect("reconnect with the saved password");

    // Missing pg_monitor only: granted, the password left alone.
    pg.exec("REVOKE pg_monitor FROM poolwatch").await;
    let out = run_sh_setup(&pg, &state, &dirs.path("checkout-a"));
    assert!(
        stderr(&out).contains("granted it pg_monitor"),
        "{}",
        stderr(&out)
    );
    assert!(in_pg_monitor(&pg).await);
    assert_eq!(verifier(&pg).await, created);

    // Someone set another password: the saved one cannot log in, so it is set, loudly, naming
    // the sessions that a reset would strand (this one stays connected: the server checks
    // passwords at login only).
    let _daemon = common::pg::connect(&url).await.expect("login as poolwatch");
    let one = common::poll_until(WAIT, || async {
        let rows = pg
            .query("SELECT count(*) FROM pg_stat_activity WHERE usename = 'poolwatch'")
            .await;
        (rows[0].get::<_, i64>(0) == 1).then_some(())
    })
    .await;
    assert!(one.is_some(), "earlier sessions of poolwatch did not leave");
    pg.exec("ALTER ROLE poolwatch PASSWORD 'set-elsewhere'")
        .await;
    let elsewhere = verifier(&pg).await;
    let out = run_sh_setup(&pg, &state, &dirs.path("checkout-b"));
    let said = stderr(&out);
    assert!(
        said.contains("could not log in as poolwatch, so it was set"),
        "{said}"
    );
    assert!(
        said.contains("1 session(s) of poolwatch are connected"),
        "{said}"
    );
    assert_ne!(verifier(&pg).await, elsewhere);
    common::pg::connect(&url)
        .await
        .expect("the saved password logs in again");
    assert!(!said.contains(password), "the password was printed");
}
