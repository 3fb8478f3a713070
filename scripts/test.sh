#!/usr/bin/env bash
# Runs every test of poolwatch: installs what the tests need when it is missing, then
# `cargo test --all-targets` (and the doc tests, when there are any), and ends with one line
# totalling the suite: `poolwatch: N passed, N failed`.
#
#   scripts/test.sh                    # everything
#   scripts/test.sh --test harness_selftest   # extra arguments go to `cargo test --all-targets`
#
# The tests start throwaway PostgreSQL clusters, so they need the PostgreSQL server binaries,
# plus pgbouncer, promtool (Debian package `prometheus`) and openssl. As root on Debian or
# Ubuntu this script installs the missing ones with apt-get (without starting any service);
# otherwise it says what to install. Environment:
#   PG_BIN (or POOLWATCH_TEST_PG_BIN)  directory with initdb/pg_ctl/postgres
#                              (default: newest /usr/lib/postgresql/*/bin)
#   POOLWATCH_SKIP_INSTALL=1   never install anything, just check
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export DEBIAN_FRONTEND=noninteractive
export NEEDRESTART_MODE=a

log() { printf 'test.sh: %s\n' "$*" >&2; }

# $POOLWATCH_TEST_PG_BIN or $PG_BIN, else the newest /usr/lib/postgresql/<version>/bin holding
# initdb, else the directory of initdb on PATH.
find_pg_bin() {
    local override="${POOLWATCH_TEST_PG_BIN:-${PG_BIN:-}}"
    if [[ -n "$override" ]]; then
        [[ -x "$override/initdb" ]] || { log "$override (PG_BIN) holds no initdb"; return 1; }
        printf '%s\n' "$override"
        return 0
    fi
    local dir
    dir=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null \
        | sort -V | tail -n 1 || true)
    if [[ -n "$dir" ]]; then
        dirname "$dir"
        return 0
    fi
    dir=$(command -v initdb 2>/dev/null) || return 1
    dirname "$dir"
}

have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }

# Debian packages for the tools still missing.
missing_packages() {
    local packages=()
    find_pg_bin >/dev/null 2>&1 || packages+=(postgresql)
    have pgbouncer || packages+=(pgbouncer)
    have promtool || packages+=(prometheus)
    have openssl || packages+=(openssl)
    [[ -e /etc/ssl/certs/ca-certificates.crt ]] || packages+=(ca-certificates)
    # runuser drops from root to the postgres user; util-linux has it everywhere.
    if [[ $(id -u) -eq 0 ]] && ! have runuser; then packages+=(util-linux); fi
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
    printf '#!/bin/sh\n# Written by poolwatch scripts/test.sh while it installs packages.\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=300 update -q </dev/null
    log "apt-get install $*"
    apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null
    restore_policy
}

if ! have cargo; then
    log "cargo not found: install Rust (https://rustup.rs) and retry"
    exit 1
fi

mapfile -t missing < <(missing_packages)
if ((${#missing[@]} > 0)); then
    if [[ "${POOLWATCH_SKIP_INSTALL:-}" == 1 ]]; then
        log "missing: ${missing[*]} (POOLWATCH_SKIP_INSTALL=1, not installing)"
        exit 1
    elif [[ $(id -u) -ne 0 ]]; then
        log "the tests need these packages, which are missing: ${missing[*]}"
        log "install them (Debian/Ubuntu: sudo apt-get install --no-install-recommends ${missing[*]})"
        log "or run this script as root, which installs them"
        exit 1
    elif ! have apt-get; then
        log "missing: ${missing[*]}; this script installs only with apt-get, please install them yourself"
        exit 1
    fi
    apt_install "${missing[@]}"
    mapfile -t still_missing < <(missing_packages)
    if ((${#still_missing[@]} > 0)); then
        log "still missing after apt-get install: ${still_missing[*]}"
        exit 1
    fi
fi

POOLWATCH_TEST_PG_BIN=$(find_pg_bin)
export POOLWATCH_TEST_PG_BIN
# pgbouncer lives in /usr/sbin, which is not on every user's PATH.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac
log "PostgreSQL: $("$POOLWATCH_TEST_PG_BIN/postgres" --version) ($POOLWATCH_TEST_PG_BIN)"
log "pgbouncer: $(pgbouncer --version 2>&1 | head -n 1)"
log "promtool: $(promtool --version 2>&1 | head -n 1)"

export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
# The output is shown as it comes and also kept, to total the test binaries' counts at the end:
# one closing line for the whole suite, instead of the last binary's (which may run 0 tests).
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
log "cargo test --all-targets --no-fail-fast $*"
cargo test --all-targets --no-fail-fast "$@" 2>&1 | tee "$out" || status=$?
if ((status == 0 && $# == 0)) && grep -rqE '^\s*//[/!].*```' src; then
    log "cargo test --doc"
    cargo test --doc 2>&1 | tee -a "$out" || status=$?
fi
read -r passed failed < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$out")
if ((status != 0)); then
    log "tests FAILED (exit $status)"
    echo "poolwatch: $passed passed, $failed failed"
    exit "$status"
fi
log "all tests passed"
echo "poolwatch: $passed passed, $failed failed"
