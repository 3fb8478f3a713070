//! Finding the PostgreSQL binaries, running them as the right user, the shared `initdb`
//! template, free ports, and sweeping clusters left behind by killed test processes.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use super::install;
use crate::common::{process_exited, running_as_root};

/// The prefix of every cluster directory; the creating process id follows it.
pub const CLUSTER_DIR_PREFIX: &str = "poolwatch-pg-c";

/// The prefix of the directories templates are built in before being renamed into place.
const STAGING_PREFIX: &str = "poolwatch-pg-template-staging-";

/// The superuser every cluster is initialised with (`initdb -U`).
pub const SUPERUSER: &str = "postgres";

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
///
/// `POOLWATCH_TEST_PG=NN` (the cached build or Debian's of that major, see [`install`]), then
/// `POOLWATCH_TEST_PG_BIN`, then `PG_BIN`, then the newest `/usr/lib/postgresql/*/bin`, then the
/// directory of `initdb` on `PATH`. Panics with install advice when none is found, and when the
/// server found is not of the major `POOLWATCH_TEST_PG` asked for.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(major) = install::requested_pg_major() {
            let dir = install::pg_bin_for(major);
            let found = version_output(&dir).ok().and_then(|out| parse_major(&out));
            assert_eq!(
                found,
                Some(major),
                "{}={major}, but {} holds PostgreSQL {found:?}",
                install::PG_VAR,
                dir.display()
            );
            return dir;
        }
        find_bin_dir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries not found: set POOLWATCH_TEST_PG to a major (13-18) or \
                 POOLWATCH_TEST_PG_BIN to the directory holding initdb/pg_ctl/postgres, or run \
                 scripts/test.sh which installs what the tests need"
            )
        })
    })
}

/// `psql`: beside the server binaries when there is one there, else Debian's client on `PATH`
/// (the npm builds ship no client; psql connects to any newer or older server).
pub fn psql() -> PathBuf {
    let beside = bin_dir().join("psql");
    if beside.is_file() {
        return beside;
    }
    install::on_path("psql")
        .unwrap_or_else(|| panic!("psql not found beside {} nor on PATH", bin_dir().display()))
}

/// `postgres --version` of the server binaries in `dir`.
fn version_output(dir: &Path) -> Result<String, String> {
    let out = run(
        Command::new(dir.join("postgres")).arg("--version"),
        "postgres --version",
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn find_bin_dir() -> Option<PathBuf> {
    for var in ["POOLWATCH_TEST_PG_BIN", "PG_BIN"] {
        if let Some(dir) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let dir = PathBuf::from(dir);
            assert!(
                dir.join("initdb").is_file(),
                "{var}={} holds no initdb",
                dir.display()
            );
            return Some(dir);
        }
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = name
                .split('.')
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>();
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file()).then_some((key.ok()?, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

/// The major version of the server in [`bin_dir`], e.g. 15.
pub fn major_version() -> u32 {
    static MAJOR: OnceLock<u32> = OnceLock::new();
    *MAJOR.get_or_init(|| {
        let out = version_output(bin_dir()).unwrap_or_else(|e| panic!("{e}"));
        parse_major(&out).unwrap_or_else(|| panic!("cannot parse {out:?}"))
    })
}

/// Parses `postgres (PostgreSQL) 15.20 (Debian ...)` or `... 16beta1` into the major version.
pub fn parse_major(version_output: &str) -> Option<u32> {
    let version = version_output.split_whitespace().nth(2)?;
    let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `(uid, gid)` of the `postgres` system user when running as root; `None` otherwise.
pub fn server_owner() -> Option<(u32, u32)> {
    static OWNER: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *OWNER.get_or_init(|| {
        if !running_as_root() {
            return None;
        }
        let id = |flag: &str| -> u32 {
            let out = run(Command::new("id").args([flag, SUPERUSER]), "id postgres")
                .unwrap_or_else(|e| {
                    panic!(
                        "running as root, PostgreSQL must run as the `postgres` system user: {e}"
                    )
                });
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("numeric id")
        };
        Some((id("-u"), id("-g")))
    })
}

/// A command for a PostgreSQL program, run as `postgres` when this process is root.
///
/// The working directory is set to `cwd`, which the server user can enter.
pub fn pg_command(program: &str, cwd: &Path) -> Command {
    let binary = bin_dir().join(program);
    let mut command = if server_owner().is_some() {
        let mut c = Command::new("runuser");
        c.args(["-u", SUPERUSER, "--"]).arg(binary);
        c
    } else {
        Command::new(binary)
    };
    command
        .current_dir(cwd)
        .env("LC_ALL", "C")
        .env_remove("PGDATA");
    command
}

/// Gives `path` to the server user when running as root (not recursive).
pub fn hand_over(path: &Path) -> Result<(), String> {
    if let Some((uid, gid)) = server_owner() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Runs `command` to completion; an error carries `what`, the exit status and all output.
pub fn run(command: &mut Command, what: &str) -> Result<Output, String> {
    let out = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", command.get_program()))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(describe_failure(what, &out))
    }
}

/// Async twin of [`run`], so a slow `pg_ctl` does not stall the test's runtime.
pub async fn run_async(command: Command, what: &str) -> Result<Output, String> {
    let mut command = tokio::process::Command::from(command);
    let out = command
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| {
            format!(
                "{what}: cannot run {:?}: {e}",
                command.as_std().get_program()
            )
        })?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(describe_failure(what, &out))
    }
}

fn describe_failure(what: &str, out: &Output) -> String {
    format!(
        "{what} failed ({}):\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A data directory made by `initdb`, shared by every cluster of every test process of this
/// user and server version; clusters copy it instead of running `initdb` (about 1 s) each.
///
/// Built in a private directory and renamed into place, so concurrent test processes never
/// see a half-made template. Its `postgresql.conf` includes `poolwatch.conf`, which each
/// cluster writes.
pub fn template_data_dir() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| build_template().unwrap_or_else(|e| panic!("initdb template: {e}")))
}

fn build_template() -> Result<PathBuf, String> {
    let version = run(
        Command::new(bin_dir().join("postgres")).arg("--version"),
        "postgres --version",
    )?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (bin_dir(), &version.stdout, 1u32).hash(&mut hasher);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let name = format!("poolwatch-pg-template-{euid}-{:016x}", hasher.finish());
    let final_dir = std::env::temp_dir().join(name);
    if final_dir.join("ready").is_file() {
        return Ok(final_dir.join("data"));
    }
    let staging = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    hand_over(staging.path())?;
    let data = staging.path().join("data");
    let mut initdb = pg_command("initdb", staging.path());
    initdb.arg("-D").arg(&data);
    initdb.args([
        "-U",
        SUPERUSER,
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ]);
    run(&mut initdb, "initdb")?;
    let conf = data.join("postgresql.conf");
    let mut text =
        std::fs::read_to_string(&conf).map_err(|e| format!("read {}: {e}", conf.display()))?;
    text.push_str("\n# Written per cluster by the poolwatch test harness.\ninclude_if_exists = 'poolwatch.conf'\n");
    std::fs::write(&conf, text).map_err(|e| format!("write {}: {e}", conf.display()))?;
    std::fs::write(staging.path().join("ready"), b"").map_err(|e| format!("marker: {e}"))?;
    let staging = staging.keep();
    match std::fs::rename(&staging, &final_dir) {
        Ok(()) => Ok(final_dir.join("data")),
        // Another process won the race; its template is as good as ours.
        Err(_) if final_dir.join("ready").is_file() => {
            let _ = std::fs::remove_dir_all(&staging);
            Ok(final_dir.join("data"))
        }
        Err(e) => Err(format!(
            "rename {} to {}: {e}",
            staging.display(),
            final_dir.display()
        )),
    }
}

/// A free TCP port on 127.0.0.1 never handed out before by this process (never 5432).
///
/// The port is free when chosen; a cluster that loses a race for it retries with another.
pub fn free_port() -> u16 {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let used = USED.get_or_init(Default::default);
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        if port != 5432 && used.lock().expect("port set").insert(port) {
            return port;
        }
    }
}

/// Stops and removes clusters whose creating process is gone (it was killed before its
/// `Drop` could run). Runs once per process; errors are ignored, this is best effort.
pub fn sweep_stale_clusters() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(STAGING_PREFIX) {
                // A template build interrupted long ago (a live one takes seconds).
                let age = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok());
                if age.is_some_and(|age| age > std::time::Duration::from_secs(600)) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
                continue;
            }
            if !is_orphaned(&name, CLUSTER_DIR_PREFIX) {
                continue;
            }
            let dir = entry.path();
            if dir.join("data/postmaster.pid").exists() {
                let mut stop = pg_command("pg_ctl", &dir);
                stop.arg("-D").arg(dir.join("data")).args([
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "20",
                    "stop",
                ]);
                let _ = run(&mut stop, "pg_ctl stop (stale cluster)");
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    });
}

/// Whether `name` is `PREFIX<pid>-...` of a creating process `pid` that has exited.
pub fn is_orphaned(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(process_exited)
}
