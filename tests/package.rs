//! The Debian package, built by the real `cargo-deb` from `[package.metadata.deb]` (pinned and
//! installed by `scripts/install-test-deps.sh`), around the binary this test run built (staged
//! where cargo-deb looks for a release build, so the suite needs no release build of its own;
//! `scripts/package.sh` makes the release package the same way). Checked: what it holds, the
//! systemd unit, and — in a throwaway root over this machine's own system (`package/root.rs`)
//! — that `dpkg -i` installs it, its maintainer script makes the `poolwatch` user, the unit
//! passes `systemd-analyze verify`, the unit's ExecStart runs as the unit's User with the
//! StateDirectory and polls a real PostgreSQL, a modified conffile survives a reinstall, and a
//! purge removes everything but the user. The machine running the tests is left as it was.

mod common;

#[path = "package/root.rs"]
mod root;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::poolwatch::BINARY;
use common::scenario::{create_monitor_role, header, target};
use common::{PgCluster, PgOptions, Poolwatch, PoolwatchOptions};
use root::{on_host, ThrowawayRoot, SHARE};

const UNIT: &str = "/usr/lib/systemd/system/poolwatch.service";
const CONFFILE: &str = "/etc/poolwatch/poolwatch.toml";

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `cargo-deb`: `$POOLWATCH_TEST_CARGO_DEB`, else the one `scripts/install-test-deps.sh` put
/// in the cache, else `cargo-deb` on `PATH`.
fn cargo_deb() -> PathBuf {
    if let Ok(path) = std::env::var("POOLWATCH_TEST_CARGO_DEB") {
        return path.into();
    }
    let cached = common::pg::install::cache_dir().join("cargo-deb/bin/cargo-deb");
    if cached.is_file() {
        return cached;
    }
    common::pg::install::on_path("cargo-deb").unwrap_or_else(|| {
        panic!(
            "cargo-deb not found ({} or PATH): run scripts/install-test-deps.sh",
            cached.display()
        )
    })
}

/// The package, built once per test run.
fn deb() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(build_deb)
}

fn build_deb() -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("target/release")).expect("staging dir");
    std::fs::copy(BINARY, base.join("target/release/poolwatch")).expect("stage the binary");
    let out = Command::new(cargo_deb())
        .args(["--no-build", "--fast", "--offline", "--output"])
        .arg(base.join("deb"))
        .env("CARGO_TARGET_DIR", base.join("target"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo-deb");
    assert!(
        out.status.success(),
        "cargo-deb: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let found: Vec<PathBuf> = std::fs::read_dir(base.join("deb"))
        .expect("cargo-deb output dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// `dpkg-deb ARGS DEB`'s standard output.
fn dpkg_deb(args: &[&str]) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb())
        .output()
        .expect("run dpkg-deb");
    assert!(
        out.status.success(),
        "dpkg-deb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of `key` in the systemd unit (every line of it, for keys given more than once).
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_package_holds_the_binary_the_conffile_the_unit_and_the_alerts() {
    let listing = dpkg_deb(&["--contents"]);
    for (mode, path) in [
        ("-rwxr-xr-x", "./usr/bin/poolwatch"),
        ("-rw-r--r--", "./etc/poolwatch/poolwatch.toml"),
        ("-rw-r--r--", "./usr/lib/systemd/system/poolwatch.service"),
        ("-rw-r--r--", "./usr/share/doc/poolwatch/README.md"),
        (
            "-rw-r--r--",
            "./usr/share/poolwatch/alerts/poolwatch.rules.yml",
        ),
        (
            "-rw-r--r--",
            "./usr/share/poolwatch/alerts/recording.rules.yml",
        ),
        (
            "-rw-r--r--",
            "./usr/share/poolwatch/alerts/alertmanager.example.yml",
        ),
        ("-rw-r--r--", "./usr/share/poolwatch/alerts/dashboard.json"),
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(path)),
            "{path} ({mode}) missing:\n{listing}"
        );
    }
    let depends = dpkg_deb(&["--field"])
        .lines()
        .find(|l| l.starts_with("Depends:"))
        .map(str::to_owned);
    assert!(
        depends
            .as_deref()
            .is_some_and(|d| d.contains("adduser") && d.contains("libc6")),
        "{depends:?}"
    );
    let control = tempfile::tempdir().expect("temp dir");
    let out = Command::new("dpkg-deb")
        .arg("--control")
        .arg(deb())
        .arg(control.path())
        .output()
        .expect("dpkg-deb --control");
    assert!(out.status.success());
    let read = |name: &str| std::fs::read_to_string(control.path().join(name)).unwrap_or_default();
    assert_eq!(read("conffiles").trim(), CONFFILE);
    let postinst = read("postinst");
    assert_eq!(
        postinst.matches("adduser --system").count(),
        1,
        "{postinst}"
    );
    assert!(!postinst.contains("#DEBHELPER#"), "{postinst}");
    // cargo-deb's systemd lines: enable bookkeeping and a restart on upgrade, once each.
    assert_eq!(
        postinst.matches("deb-systemd-helper update-state").count(),
        1,
        "{postinst}"
    );
    assert_eq!(
        postinst.matches("try-restart poolwatch.service").count(),
        1,
        "{postinst}"
    );
    assert!(read("postrm").contains("rm -rf /var/lib/poolwatch"));
}

#[test]
fn the_unit_reloads_with_sighup_and_is_hardened() {
    let unit =
        std::fs::read_to_string(repo_file("packaging/systemd/poolwatch.service")).expect("unit");
    let one = |key: &str| {
        let values = unit_values(&unit, key);
        assert_eq!(values.len(), 1, "{key}: {values:?}");
        values[0].clone()
    };
    assert_eq!(
        one("ExecStart"),
        format!("/usr/bin/poolwatch run --config {CONFFILE}")
    );
    assert_eq!(
        unit_values(&unit, "ExecReload"),
        [
            format!("/usr/bin/poolwatch check-config {CONFFILE}"),
            "/bin/kill -HUP $MAINPID".into()
        ]
    );
    for (key, want) in [
        ("User", "poolwatch"),
        ("Group", "poolwatch"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("StateDirectory", "poolwatch"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ] {
        assert_eq!(one(key), want, "{key}");
    }
    let nofile: u64 = one("LimitNOFILE").parse().expect("LimitNOFILE is a number");
    assert!(nofile >= 4096, "{nofile}");
    // The flags the unit passes are the binary's.
    let help = Command::new(BINARY)
        .args(["run", "--help"])
        .output()
        .expect("poolwatch run --help");
    assert!(String::from_utf8_lossy(&help.stdout).contains("--config"));
}

#[tokio::test]
async fn the_package_installs_into_a_throwaway_root_and_runs_as_its_user() {
    let host_user = Command::new("getent")
        .args(["passwd", "poolwatch"])
        .output()
        .expect("getent");
    let host_binary = on_host("/usr/bin/poolwatch");
    let root = ThrowawayRoot::new();
    std::fs::copy(deb(), root.share().join("poolwatch.deb")).expect("copy the package");

    let installed = root.ok(&format!("dpkg -i {SHARE}/poolwatch.deb 2>&1"));
    assert!(installed.contains("Setting up poolwatch"), "{installed}");
    let user = root.ok("getent passwd poolwatch");
    assert!(
        user.contains(":/var/lib/poolwatch:/usr/sbin/nologin"),
        "{user}"
    );
    let verify = root.ok(&format!("systemd-analyze verify {UNIT} 2>&1"));
    assert_eq!(verify.trim(), "", "systemd-analyze verify");
    let version = root.ok("runuser -u poolwatch -- /usr/bin/poolwatch --version");
    assert_eq!(
        version.trim(),
        format!("poolwatch {}", env!("CARGO_PKG_VERSION"))
    );
    // The shipped configuration is valid, and readable by the service's user.
    root.ok(&format!(
        "runuser -u poolwatch -- /usr/bin/poolwatch check-config {CONFFILE}"
    ));

    // Run the unit's ExecStart as its User, with the state directory systemd would make,
    // against a real server; the configuration replaces the conffile.
    let pg = PgCluster::start(PgOptions::default()).await;
    create_monitor_role(&pg).await;
    let config = format!(
        "{}{}",
        header("state_file = \"/var/lib/poolwatch/state.json\""),
        target("pg", pg.port(), "")
    );
    std::fs::write(root.share().join("poolwatch.toml"), &config).expect("write config");
    root.ok(&format!(
        "cp {SHARE}/poolwatch.toml {CONFFILE} && install -d -o poolwatch -g poolwatch -m 0750 /var/lib/poolwatch"
    ));
    let start = r#"unit="$root/usr/lib/systemd/system/poolwatch.service"
user=$(sed -n 's/^User=//p' "$unit")
group=$(sed -n 's/^Group=//p' "$unit")
exec chroot --userspec="$user:$group" "$root" $(sed -n 's/^ExecStart=//p' "$unit")
"#;
    let wrapper = root.command(start);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let mut pw = Poolwatch::start_wrapped("", PoolwatchOptions::default(), &wrapper).await;
    let ready = common::poll_until(Duration::from_secs(20), || async {
        (pw.get("/readyz").await.0 == 200).then_some(())
    })
    .await;
    assert!(ready.is_some(), "/readyz never 200:\n{}", pw.logs());
    common::scenario::expect_metric(&pw, "poolwatch_target_up", &[("target", "pg")], 1.0).await;
    pw.sigterm();
    assert!(
        pw.wait_exit(Duration::from_secs(20)).await.success(),
        "{}",
        pw.logs()
    );
    drop(pw);
    // The state file, written by the service's user in its state directory.
    let owner = root.ok("stat -c %U:%G /var/lib/poolwatch/state.json");
    assert_eq!(owner.trim(), "poolwatch:poolwatch", "the state file");

    // A reinstall keeps the modified conffile; a purge removes all but the user.
    root.ok(&format!("dpkg -i {SHARE}/poolwatch.deb"));
    assert_eq!(root.ok(&format!("cat {CONFFILE}")), config);
    root.ok("dpkg --purge poolwatch");
    root.ok(&format!(
        "test ! -e /usr/bin/poolwatch && test ! -e {CONFFILE} && test ! -e {UNIT} && test ! -e /var/lib/poolwatch && getent passwd poolwatch"
    ));

    // This machine saw none of it.
    let after = Command::new("getent")
        .args(["passwd", "poolwatch"])
        .output()
        .expect("getent");
    assert_eq!(
        after.stdout, host_user.stdout,
        "the host's poolwatch user changed"
    );
    assert_eq!(on_host("/usr/bin/poolwatch"), host_binary);
    assert!(
        root.upper().join("etc/passwd").exists(),
        "the root's writes went elsewhere"
    );
}

/// The `### Kubernetes` example of the README: its YAML block.
fn kubernetes_example() -> String {
    let readme = std::fs::read_to_string(repo_file("README.md")).expect("README.md");
    let section = readme
        .split("### Kubernetes\n")
        .nth(1)
        .expect("README has a ### Kubernetes section");
    let block = section.split("```yaml\n").nth(1).expect("a yaml block");
    block.split("```").next().expect("closed block").to_owned()
}

#[tokio::test]
async fn the_kubernetes_example_runs_with_the_binary_s_flags_and_probes() {
    let example = kubernetes_example();
    let args_line = example
        .lines()
        .find_map(|l| l.trim().strip_prefix("args: "))
        .expect("args: in the example");
    let args: Vec<String> = serde_json::from_str(args_line).expect("args is a JSON-style list");
    let config_at = args.iter().position(|a| a == "--config").expect("--config") + 1;
    assert_eq!(args[..config_at], ["run", "--config"]);
    assert_eq!(args[config_at], CONFFILE);
    let port = regex::Regex::new(r"containerPort: (\d+)").expect("regex");
    let port = &port.captures(&example).expect("containerPort")[1];
    assert!(
        std::fs::read_to_string(repo_file("config.example.toml"))
            .expect("config.example.toml")
            .contains(&format!("# default \"0.0.0.0:{port}\"")),
        "containerPort {port} is not the default listen port"
    );
    // The daemon with the example's other flags answers both probes.
    let db = common::pg::setup::free_port();
    let config = format!("{}{}", header(""), target("db", db, ""));
    let options = PoolwatchOptions {
        args: args[config_at + 1..].to_vec(),
        ..Default::default()
    };
    let pw = Poolwatch::start_with(&config, options).await;
    let probes =
        regex::Regex::new(r"Probe: \{httpGet: \{path: (/\w+), port: metrics\}").expect("regex");
    let paths: Vec<String> = probes
        .captures_iter(&example)
        .map(|c| c[1].to_owned())
        .collect();
    assert_eq!(paths, ["/readyz", "/healthz"]);
    for path in &paths {
        let answered = common::poll_until(Duration::from_secs(20), || async {
            (pw.get(path).await.0 == 200).then_some(())
        })
        .await;
        assert!(answered.is_some(), "{path} never 200:\n{}", pw.logs());
    }
    assert!(
        pw.stderr().contains("{\""),
        "--log-format json: {}",
        pw.stderr()
    );
}
