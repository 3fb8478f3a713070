//! End-to-end: the files a configuration names, through the binary. The config file,
//! `password_file`, `url_file` and `sslrootcert` that are a FIFO, a directory, a character
//! device or too large are refused at once by `check-config` and `run` (exit 2, the key and the
//! reason), never read without bound and never waited on; an `alerting.state_file` that could
//! never be saved is refused the same way; and a SIGHUP reload that meets such a file blocks
//! neither alert evaluation nor SIGTERM.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::scenario::{accepted, create_monitor_role, expect_metric, header, receiver, target};
use common::{ConfigFile, PgCluster, PgOptions, Poolwatch, Receiver};

/// A command that is refused at once finishes well within this; one that waits on a FIFO never
/// does (and is killed).
const PROMPT: Duration = Duration::from_secs(10);

/// Runs `poolwatch ARGS... FILE` with stdin closed; kills it if it has not finished within
/// [`PROMPT`]. Returns the exit code and stderr.
async fn cli(args: &[&str], file: &Path) -> (Option<i32>, String) {
    let mut child = tokio::process::Command::new(common::poolwatch::BINARY)
        .args(args)
        .arg(file)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn poolwatch");
    let mut stderr = child.stderr.take().expect("stderr");
    let read = async {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text)
            .await
            .expect("read stderr");
        (child.wait().await.expect("wait").code(), text)
    };
    tokio::time::timeout(PROMPT, read)
        .await
        .unwrap_or_else(|_| panic!("poolwatch {args:?} {} still running", file.display()))
}

/// Asserts that `check-config` and `run` both refuse `file` with exit 2 and exactly `want`
/// (one problem) on stderr.
async fn assert_refused(file: &Path, want: &str) {
    for args in [&["check-config"][..], &["run", "--config"][..]] {
        let (code, stderr) = cli(args, file).await;
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr, format!("{want}\n1 problem(s) found\n"), "{args:?}");
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

/// Something that is not a readable config-sized file.
#[derive(Clone, Copy, Debug)]
enum Bad {
    Fifo,
    Directory,
    DevZero,
    /// A (sparse) regular file one byte over the cap.
    Larger(u64),
}

impl Bad {
    /// Creates it under `dir` (named `name`); returns its path.
    fn create(self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        match self {
            Bad::Fifo => mkfifo(&path),
            Bad::Directory => std::fs::create_dir(&path).expect("mkdir"),
            Bad::DevZero => return PathBuf::from("/dev/zero"),
            Bad::Larger(cap) => std::fs::File::create(&path)
                .and_then(|f| f.set_len(cap + 1))
                .expect("sparse file"),
        }
        path
    }

    /// Why it is refused.
    fn reason(self) -> String {
        match self {
            Bad::Fifo => "it is a FIFO (named pipe), not a regular file".into(),
            Bad::Directory => "it is a directory, not a regular file".into(),
            Bad::DevZero => "it is a character device, not a regular file".into(),
            Bad::Larger(cap) if cap >= 1 << 20 => format!("it is larger than {} MiB", cap >> 20),
            Bad::Larger(cap) => format!("it is larger than {} KiB", cap >> 10),
        }
    }
}

const MIB4: u64 = 4 << 20;
const KIB64: u64 = 64 << 10;

#[tokio::test]
async fn a_config_file_that_is_not_a_regular_file_or_too_large_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in [Bad::Fifo, Bad::Directory, Bad::DevZero, Bad::Larger(MIB4)] {
        let path = bad.create(dir.path(), &format!("{bad:?}.toml"));
        let want = format!(
            "{}: cannot read config file: {}",
            path.display(),
            bad.reason()
        );
        assert_refused(&path, &want).await;
    }
}

#[tokio::test]
async fn secret_and_certificate_files_that_are_not_regular_or_too_large_are_refused_at_once() {
    // (key, what it says, config body with {path}, the line of the key)
    let cases = [
        (
            "targets[0].password_file",
            "`password_file`: cannot read secret file",
            KIB64,
            "[[targets]]\nname = \"db\"\npassword_file = \"{path}\"\n",
            3,
        ),
        (
            "receivers[0].integrations[0].url_file",
            "`url_file`: cannot read secret file",
            KIB64,
            "[[targets]]\nname = \"db\"\n[[receivers]]\nname = \"r\"\n[[receivers.integrations]]\ntype = \"webhook\"\nurl_file = \"{path}\"\n",
            7,
        ),
        (
            "targets[0].sslrootcert",
            "cannot read",
            MIB4,
            "[[targets]]\nname = \"db\"\nsslmode = \"verify-full\"\nsslrootcert = \"{path}\"\n",
            4,
        ),
    ];
    for (key, says, cap, body, line) in cases {
        for bad in [Bad::Fifo, Bad::Directory, Bad::DevZero, Bad::Larger(cap)] {
            let file = ConfigFile::new("");
            let path = bad.create(file.dir(), "secret");
            file.write(&body.replace("{path}", &path.display().to_string()));
            let want = format!(
                "{}:{line}:1: {key}: {says} {}: {}",
                file.path().display(),
                path.display(),
                bad.reason()
            );
            assert_refused(file.path(), &want).await;
        }
    }
}

#[tokio::test]
async fn a_state_file_that_could_never_be_saved_is_refused() {
    let file = ConfigFile::new("");
    let dir = file.dir().to_path_buf();
    let regular = dir.join("regular");
    std::fs::write(&regular, "").expect("write");
    let fifo = dir.join("state.fifo");
    mkfifo(&fifo);
    let d = dir.display();
    // Tests run as root, which ignores permission bits: a file below a regular file and a
    // directory of sysfs are places that even root cannot write in.
    let cases = [
        (dir.clone(), format!("{d} is a directory, not a regular file: alert state could never be saved")),
        (fifo, format!("{d}/state.fifo is a FIFO (named pipe), not a regular file: alert state could never be saved")),
        (regular.join("state.json"), format!("{d}/regular is not a directory")),
        (dir.join("missing/state.json"), format!("directory {d}/missing does not exist")),
        (
            PathBuf::from("/sys/state.json"),
            "poolwatch cannot write in directory /sys: Permission denied (os error 13)".into(),
        ),
    ];
    for (state_file, reason) in cases {
        let alerting = format!("state_file = \"{}\"", state_file.display());
        file.write(&format!("{}{}", header(&alerting), target("db", 1, "")));
        let want = format!(
            "{}:5:1: alerting.state_file: {reason}",
            file.path().display()
        );
        assert_refused(file.path(), &want).await;
    }
}

#[tokio::test]
async fn a_state_file_too_large_to_read_at_start_up_is_left_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = Bad::Larger(64 << 20).create(dir.path(), "state.json");
    let alerting = format!("state_file = \"{}\"", state.display());
    let pw = Poolwatch::start(&format!("{}{}", header(&alerting), target("db", 1, ""))).await;
    assert!(
        pw.wait_for_log("it is larger than 64 MiB", PROMPT).await,
        "{}",
        pw.logs()
    );
    assert!(pw
        .stderr()
        .contains("cannot read alert state file; starting fresh"));
}

/// The daemon watches a server; a reload points the target's `password_file` at a FIFO that
/// nobody writes; meanwhile the server fills up. The page must arrive, and SIGTERM must end the
/// daemon, as if no reload were under way; the reload itself is refused, naming the key.
#[tokio::test]
async fn a_reload_that_meets_a_fifo_blocks_neither_alerts_nor_sigterm() {
    // 10 slots, 3 reserved for superusers, 1 held by poolwatch: 6 fill the server.
    let pg = PgCluster::start(PgOptions {
        max_connections: 10,
        superuser_reserved_connections: 3,
        ..Default::default()
    })
    .await;
    create_monitor_role(&pg).await;
    pg.create_role("app", "app-pw", None).await;
    let hook = Receiver::start().await;
    let config = |extra: &str| {
        [
            header(""),
            target("db", pg.port(), extra),
            "[[rules]]\nname = \"PoolNearFull\"\nfor = \"0s\"\n\n".to_string(),
            receiver("oncall", &hook.url("/hook"), ""),
        ]
        .concat()
    };
    let mut pw = Poolwatch::start(&config("")).await;
    expect_metric(&pw, "poolwatch_target_up", &[("target", "db")], 1.0).await;

    let fifo = pw.config().dir().join("password.fifo");
    mkfifo(&fifo);
    pw.config().write(&config(&format!(
        "password_file = \"{}\"\n",
        fifo.display()
    )));
    pw.sighup();
    let held = pg
        .hold_connections("app", 6, "filler")
        .await
        .expect("fill the server");
    let paged = hook
        .wait_for(
            |r| accepted(r).contains(&"firing PoolNearFull db".to_string()),
            common::scenario::WAIT,
        )
        .await;
    assert!(paged, "no page while a reload met a FIFO\n{}", pw.logs());

    pw.sigterm();
    let status = pw.wait_exit(PROMPT).await;
    assert_eq!(status.code(), Some(0), "{}", pw.logs());
    let refused = format!(
        "targets[0].password_file: `password_file`: cannot read secret file {}: it is a FIFO",
        fifo.display()
    );
    assert!(pw.stderr().contains(&refused), "{}", pw.logs());
    held.close_all().await;
}
