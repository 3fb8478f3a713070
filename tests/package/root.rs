//! A throwaway root: the machine's own `/` seen through an overlay whose writes land in a
//! temporary directory, in a mount namespace of its own, entered with `chroot`. `dpkg -i`, the
//! package's maintainer scripts (`adduser`), `systemd-analyze verify` and the daemon itself
//! run there exactly as on a real system, and the machine running the tests is not changed:
//! the overlay's upper directory is removed with the value, and the mounts die with the
//! namespace. Needs root (mount namespaces and overlayfs).

use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

/// Where the share directory appears inside the root.
pub const SHARE: &str = "/run/poolwatch-test";

/// Mounts the overlay (`$1` upper, `$2` work, `$3` mount point) with /proc, /dev, /sys and the
/// share directory (`$4`) inside it, then runs the rest of the script. A mount of the same
/// upper directory lingering from a namespace that is going away is retried for a while.
const MOUNT: &str = r#"set -e
upper=$1 work=$2 root=$3 share=$4
shift 4
tries=0
until mount -t overlay overlay -o "lowerdir=/,upperdir=$upper,workdir=$work" "$root" 2>/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 50 ] || mount -t overlay overlay -o "lowerdir=/,upperdir=$upper,workdir=$work" "$root"
    sleep 0.1
done
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mkdir -p "$root/run/poolwatch-test"
mount --bind "$share" "$root/run/poolwatch-test"
"#;

/// A throwaway root over `/`.
pub struct ThrowawayRoot {
    dir: TempDir,
}

impl ThrowawayRoot {
    /// Prepares the overlay's directories; panics unless running as root.
    pub fn new() -> ThrowawayRoot {
        assert!(
            crate::common::running_as_root(),
            "the package test installs into a throwaway root (a mount namespace with an overlay \
             over /), which needs root: run it as root, as scripts/test.sh does in CI"
        );
        let dir = tempfile::Builder::new()
            .prefix("poolwatch-root-")
            .tempdir()
            .expect("temp dir");
        for sub in ["upper", "work", "root", "share"] {
            std::fs::create_dir(dir.path().join(sub)).expect("overlay dir");
        }
        ThrowawayRoot { dir }
    }

    /// A directory of the test's, seen as [`SHARE`] inside the root.
    pub fn share(&self) -> PathBuf {
        self.dir.path().join("share")
    }

    /// What the root's writes have changed: the overlay's upper directory.
    pub fn upper(&self) -> PathBuf {
        self.dir.path().join("upper")
    }

    /// The command line that runs `script` (sh) in a new mount namespace, after mounting the
    /// root; `$root` is its mount point there (use `chroot "$root" ...`).
    pub fn command(&self, script: &str) -> Vec<String> {
        let path = |sub: &str| self.dir.path().join(sub).display().to_string();
        vec![
            "unshare".into(),
            "--mount".into(),
            "--propagation".into(),
            "private".into(),
            "sh".into(),
            "-c".into(),
            format!("{MOUNT}{script}"),
            "sh".into(),
            path("upper"),
            path("work"),
            path("root"),
            path("share"),
        ]
    }

    /// Runs `script` inside the root (chrooted, as root): its output, whatever the exit.
    pub fn sh(&self, script: &str) -> Output {
        let inner = format!("exec chroot \"$root\" sh -c {}\n", shell_quote(script));
        let command = self.command(&inner);
        std::process::Command::new(&command[0])
            .args(&command[1..])
            .output()
            .unwrap_or_else(|e| panic!("unshare: {e}"))
    }

    /// Runs `script` inside the root and panics unless it succeeds: its standard output.
    pub fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert!(
            out.status.success(),
            "in the throwaway root: {script}: {}\nstdout: {}\nstderr: {}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

/// `text` as one single-quoted shell word.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Whether `path` exists on this machine (outside any root).
pub fn on_host(path: &str) -> bool {
    Path::new(path).exists()
}
