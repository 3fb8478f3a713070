//! Where `scripts/install-test-deps.sh` put the PostgreSQL and PgBouncer versions the suite runs
//! against, and which one a test process uses (`POOLWATCH_TEST_PG`, `POOLWATCH_TEST_PGBOUNCER`).
//!
//! The paths mirror `scripts/lib/test-deps.sh`; keep the two in step.

use std::path::{Path, PathBuf};

use crate::common::running_as_root;

/// Every PostgreSQL major the suite supports.
pub const PG_MAJORS: [u32; 6] = [13, 14, 15, 16, 17, 18];

/// Every PgBouncer version (major.minor) the suite supports: Debian 12's and the cached build.
pub const PGBOUNCER_VERSIONS: [&str; 2] = ["1.18", "1.24"];

/// Selects the PostgreSQL major, e.g. `POOLWATCH_TEST_PG=13`.
pub const PG_VAR: &str = "POOLWATCH_TEST_PG";

/// Selects the PgBouncer version, e.g. `POOLWATCH_TEST_PGBOUNCER=1.24`.
pub const PGBOUNCER_VAR: &str = "POOLWATCH_TEST_PGBOUNCER";

/// What to do when a version is missing.
const INSTALL_ADVICE: &str =
    "run scripts/install-test-deps.sh (scripts/test.sh does) to install it";

/// The cache folder: `$POOLWATCH_CACHE`, else `/var/cache/poolwatch` as root (the `postgres`
/// user must reach the binaries, and root's home is closed to it), else
/// `$XDG_CACHE_HOME/poolwatch` or `~/.cache/poolwatch`.
pub fn cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("POOLWATCH_CACHE") {
        return PathBuf::from(dir);
    }
    if running_as_root() {
        return PathBuf::from("/var/cache/poolwatch");
    }
    var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
        .join("poolwatch")
}

/// The PostgreSQL major asked for with `POOLWATCH_TEST_PG`, if any; panics on an unsupported
/// value rather than testing something else.
pub fn requested_pg_major() -> Option<u32> {
    let value = std::env::var(PG_VAR).ok().filter(|v| !v.is_empty())?;
    match value.parse::<u32>() {
        Ok(major) if PG_MAJORS.contains(&major) => Some(major),
        _ => panic!("{PG_VAR}={value:?}: expected one of {PG_MAJORS:?}"),
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres` of PostgreSQL `major`: the cached
/// npm build, else Debian's `/usr/lib/postgresql/MAJOR/bin`. Panics with install advice when
/// neither exists.
pub fn pg_bin_for(major: u32) -> PathBuf {
    let candidates = [
        cache_dir().join(format!("postgresql/{major}/bin")),
        PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")),
    ];
    candidates
        .iter()
        .find(|dir| dir.join("postgres").is_file() && dir.join("initdb").is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{PG_VAR}={major}: PostgreSQL {major} is in none of {candidates:?}; {INSTALL_ADVICE}"
            )
        })
}

/// The PgBouncer version asked for with `POOLWATCH_TEST_PGBOUNCER`, if any; panics on an
/// unsupported value.
pub fn requested_pgbouncer() -> Option<&'static str> {
    let value = std::env::var(PGBOUNCER_VAR)
        .ok()
        .filter(|v| !v.is_empty())?;
    match PGBOUNCER_VERSIONS.iter().find(|v| **v == value) {
        Some(version) => Some(version),
        None => panic!("{PGBOUNCER_VAR}={value:?}: expected one of {PGBOUNCER_VERSIONS:?}"),
    }
}

/// The `pgbouncer` binary: of `POOLWATCH_TEST_PGBOUNCER`'s version (the cached build, else
/// Debian's `/usr/sbin/pgbouncer`), or without it Debian's, else the one on `PATH`. Its version
/// is checked by the caller.
pub fn pgbouncer_binary() -> PathBuf {
    let system = PathBuf::from("/usr/sbin/pgbouncer");
    if let Some(version) = requested_pgbouncer() {
        let cached = cache_dir().join(format!("pgbouncer/{version}/bin/pgbouncer"));
        return if cached.is_file() { cached } else { system };
    }
    if system.is_file() {
        return system;
    }
    on_path("pgbouncer").unwrap_or_else(|| {
        panic!("pgbouncer not found (Debian: apt-get install pgbouncer); {INSTALL_ADVICE}")
    })
}

/// The first file `name` in a directory of `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|bin| bin.is_file())
}

/// Checks that `version` (e.g. `1.24.1`) is the one `POOLWATCH_TEST_PGBOUNCER` asked for, if
/// any: a test must never run against another version than the one it reports.
pub fn check_pgbouncer_version(binary: &Path, version: &str) {
    if let Some(wanted) = requested_pgbouncer() {
        assert!(
            version == wanted || version.starts_with(&format!("{wanted}.")),
            "{PGBOUNCER_VAR}={wanted} but {} is PgBouncer {version}; {INSTALL_ADVICE}",
            binary.display()
        );
    }
}
