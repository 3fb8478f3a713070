//! The PgBouncer process: run as the `postgres` user when root (PgBouncer refuses root), its pid
//! recorded in its directory so that a later test process can stop it when the process that
//! started it was killed before its `Drop` ran.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use super::Version;
use crate::common::pg::setup::{is_orphaned, run, server_owner};

/// The prefix of every PgBouncer directory; the creating process id follows it.
pub const DIR_PREFIX: &str = "poolwatch-pgbouncer-";

/// The file in a PgBouncer directory holding the pid of its process.
const PID_FILE: &str = "harness.pid";

/// `pgbouncer --version`, parsed: the version and its full text (`1.24.1`).
pub fn binary_version(binary: &Path) -> Result<(Version, String), String> {
    let out = run(Command::new(binary).arg("--version"), "pgbouncer --version")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Version::parse(&text).ok_or_else(|| format!("cannot parse `pgbouncer --version`: {text:?}"))
}

/// Starts `binary ini` in `dir` (standard error to `dir/stderr.log`), as the `postgres` user
/// when root, and records its pid in `dir`.
pub fn spawn(binary: &Path, ini: &Path, dir: &Path) -> Result<Child, String> {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("stderr.log"))
        .map_err(|e| format!("stderr.log: {e}"))?;
    let mut command = Command::new(binary);
    command
        .arg(ini)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    if let Some((uid, gid)) = server_owner() {
        command.uid(uid).gid(gid);
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    std::fs::write(dir.join(PID_FILE), child.id().to_string())
        .map_err(|e| format!("write {PID_FILE}: {e}"))?;
    Ok(child)
}

/// Kills PgBouncers whose creating test process is gone and removes their directories. Runs
/// once per process; best effort.
pub fn sweep_stale() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    SWEPT.get_or_init(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            if is_orphaned(&entry.file_name().to_string_lossy(), DIR_PREFIX) {
                kill_recorded(&entry.path());
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

/// Kills the process recorded in `dir` if it still runs a PgBouncer of that directory.
fn kill_recorded(dir: &Path) {
    let Some(pid) = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy());
    if ours {
        // SAFETY: kill has no memory-safety preconditions; pid is a process of ours.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
