#!/usr/bin/env bash
# Runs every test of poolwatch, on every supported PostgreSQL major and PgBouncer version, and
# ends with one line totalling all runs: `poolwatch: N passed, N failed`.
#
#   scripts/test.sh                             # everything (what CI runs)
#   scripts/test.sh --test harness_selftest     # one run of `cargo test --no-fail-fast ARGS`
#   POOLWATCH_TEST_PG=17 scripts/test.sh --test e2e_incidents   # ... on PostgreSQL 17
#
# First scripts/install-test-deps.sh installs what is missing (PostgreSQL 13-18, PgBouncer 1.18
# and 1.24, promtool, openssl, cargo-fuzz; pinned, into a cache folder; a second run only
# checks). Then:
#   1. the whole suite (`cargo test --all-targets`, and the doc tests when there are any) on the
#      default versions: PostgreSQL $POOLWATCH_TEST_PG (default 15, Debian's) and PgBouncer
#      $POOLWATCH_TEST_PGBOUNCER (default 1.18, Debian's);
#   2. each cargo-fuzz target of fuzz/ for a short while (FUZZ_TARGETS below; 20 s each by
#      default), from real inputs, on the stable toolchain; each counts as a test;
#   3. the version-sensitive test binaries again on every other PostgreSQL major (PG_TESTS
#      below, plus PG16_TESTS from 16 on), and on the other PgBouncer version (PGBOUNCER_TESTS).
# A line per run says its versions, counts and time.
#
# Environment: POOLWATCH_TEST_PG, POOLWATCH_TEST_PGBOUNCER (versions of the whole-suite run),
# POOLWATCH_TEST_MATRIX=0 (only the whole-suite run), POOLWATCH_FUZZ_SECONDS (per fuzz target;
# 0: no fuzzing), POOLWATCH_SKIP_INSTALL=1 (never install, just check), POOLWATCH_CACHE (the
# cache folder; see scripts/lib/test-deps.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/test-deps.sh
source scripts/lib/test-deps.sh

# Test binaries whose outcome depends on the PostgreSQL major: the poll query and its parsing,
# the incident replays (including started-while-full), the source's connection handling, and
# the harness itself.
PG_TESTS=(e2e_versions e2e_incidents e2e_source e2e_conformance harness_selftest)
# The same, for PostgreSQL 16 and newer only (not in --all-targets: `test = false`).
PG16_TESTS=(e2e_reserved)
# Test binaries whose outcome depends on the PgBouncer version.
PGBOUNCER_TESTS=(harness_pgbouncer e2e_pgbouncer e2e_conformance)
# The fuzz targets (fuzz/fuzz_targets/NAME.rs), run for $POOLWATCH_FUZZ_SECONDS each (0: not at
# all): the folder of real inputs each starts from, and the largest input it is given.
FUZZ_TARGETS=(exposition push_body)
declare -A FUZZ_SEEDS=([exposition]=src/source/app_metrics/fixtures [push_body]=fuzz/corpus/push_body)
declare -A FUZZ_MAX_LEN=([exposition]=65536 [push_body]=8192)
FUZZ_SECONDS="${POOLWATCH_FUZZ_SECONDS:-20}"
# An unoptimised build without AddressSanitizer (coverage instrumentation only): it compiles in
# under half the CPU time of cargo-fuzz's default (optimised, ASan); a short run needs no speed.
# Its target folder is kept in the cache ($CACHE/fuzz-target), so that a later run on the same
# machine compiles only poolwatch itself, not its dependencies (about 2.5 minutes on 2 cores).
FUZZ_BUILD=(--dev --sanitizer=none)

log() { printf 'test.sh: %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
    log "cargo not found: install Rust (https://rustup.rs) and retry"
    exit 1
fi

started=$SECONDS
scripts/install-test-deps.sh
log "test dependencies ready ($((SECONDS - started)) s)"

export POOLWATCH_CACHE="${POOLWATCH_CACHE:-$(poolwatch_cache_dir)}"
export POOLWATCH_TEST_PG="${POOLWATCH_TEST_PG:-$POOLWATCH_PG_DEBIAN}"
export POOLWATCH_TEST_PGBOUNCER="${POOLWATCH_TEST_PGBOUNCER:-$POOLWATCH_PGBOUNCER_DEBIAN}"
# pgbouncer lives in /usr/sbin, which is not on every user's PATH.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

for major in "${POOLWATCH_PG_MAJORS[@]}"; do
    log "PostgreSQL $major: $("$(poolwatch_pg_bin "$major")/postgres" --version) ($(poolwatch_pg_bin "$major"))"
done
for version in "${POOLWATCH_PGBOUNCER_VERSIONS[@]}"; do
    log "PgBouncer $version: $("$(poolwatch_pgbouncer_bin "$version")" --version 2>&1 | head -n 1) ($(poolwatch_pgbouncer_bin "$version"))"
done
log "promtool: $(promtool --version 2>&1 | head -n 1)"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0 failed=0 status=0 runs=0
summary=()

# run LABEL PG PGBOUNCER CARGO-TEST-ARGS...: one `cargo test` with those versions, its output
# shown and kept; adds its counts to the totals. A run that fails without a failed test
# (a build error, a crashed binary) counts as one failure.
run() {
    local label="$1" pg="$2" pgbouncer="$3"
    shift 3
    local file="$out/run-$((runs += 1))" started=$SECONDS code=0 p f
    log "$label: POOLWATCH_TEST_PG=$pg POOLWATCH_TEST_PGBOUNCER=$pgbouncer cargo test $*"
    POOLWATCH_TEST_PG="$pg" POOLWATCH_TEST_PGBOUNCER="$pgbouncer" cargo test "$@" 2>&1 |
        tee "$file" || code=$?
    read -r p f < <(awk '/^test result:/ { p += $4; f += $6 } END { print p + 0, f + 0 }' "$file")
    record "$label" "$code" "$p" "$f" "$started"
}

# record LABEL CODE PASSED FAILED STARTED: adds a run's counts to the totals and its line (time
# since STARTED) to the summary. A run that fails without a failed test (a build error, a
# crashed binary) counts as one failure.
record() {
    local label="$1" code="$2" p="$3" f="$4" started="$5"
    if ((code != 0 && f == 0)); then f=1; fi
    ((code == 0)) || status=$code
    passed=$((passed + p)) failed=$((failed + f))
    local verdict=ok
    ((code == 0)) || verdict=FAILED
    summary+=("$(printf '%-38s %s: %d passed, %d failed (%d s)' "$label" "$verdict" "$p" "$f" $((SECONDS - started)))")
    log "${summary[-1]}"
}

# fuzz TARGET: fuzz/fuzz_targets/TARGET.rs run by cargo-fuzz (libFuzzer) for $FUZZ_SECONDS, on
# the stable toolchain (RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's -Z flags), from its seeds
# ($FUZZ_SEEDS; read only: what libFuzzer adds goes to a scratch folder). One test: it passes,
# or it fails (a crash, a failed assertion, a build error) and the path of the input that
# reproduces it (under fuzz/artifacts/TARGET/) is printed. libFuzzer's output is kept; its last
# lines are shown.
fuzz() {
    local target="$1" file="$out/run-$((runs += 1))" started=$SECONDS code=0 corpus="$out/corpus-$1"
    mkdir "$corpus"
    log "fuzz $target: cargo fuzz run $target for $FUZZ_SECONDS s, seeds ${FUZZ_SEEDS[$target]}"
    RUSTC_BOOTSTRAP=1 PATH="$(dirname "$(poolwatch_cargo_fuzz)"):$PATH" cargo fuzz run \
        "${FUZZ_BUILD[@]}" --target-dir "$(poolwatch_cache_dir)/fuzz-target" "$target" \
        "$corpus" "${FUZZ_SEEDS[$target]}" -- -max_total_time="$FUZZ_SECONDS" \
        -max_len="${FUZZ_MAX_LEN[$target]}" </dev/null >"$file" 2>&1 || code=$?
    tail -n "$( ((code == 0)) && echo 3 || echo 60)" "$file" >&2
    local unit
    unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$file" | tail -n 1)
    if [[ -n "$unit" ]]; then
        log "fuzz $target: the input that fails is $unit; again: RUSTC_BOOTSTRAP=1 cargo fuzz run ${FUZZ_BUILD[*]} $target $unit"
    fi
    record "fuzz $target ($FUZZ_SECONDS s)" "$code" $((code == 0)) 0 "$started"
}

with_flags() { local t; for t in "$@"; do printf -- '--test\n%s\n' "$t"; done; }

default_label="PostgreSQL $POOLWATCH_TEST_PG, PgBouncer $POOLWATCH_TEST_PGBOUNCER"
if (($# > 0)); then
    run "$default_label" "$POOLWATCH_TEST_PG" "$POOLWATCH_TEST_PGBOUNCER" --no-fail-fast "$@"
else
    run "$default_label (all)" "$POOLWATCH_TEST_PG" "$POOLWATCH_TEST_PGBOUNCER" --all-targets --no-fail-fast
    if grep -rqE '^\s*//[/!].*```' src; then
        run "doc tests" "$POOLWATCH_TEST_PG" "$POOLWATCH_TEST_PGBOUNCER" --doc
    fi
    if ((FUZZ_SECONDS > 0)); then
        for target in "${FUZZ_TARGETS[@]}"; do fuzz "$target"; done
    fi
    if [[ "${POOLWATCH_TEST_MATRIX:-1}" != 0 ]]; then
        for major in "${POOLWATCH_PG_MAJORS[@]}"; do
            tests=()
            # The whole suite already ran PG_TESTS on the default major.
            [[ "$major" == "$POOLWATCH_TEST_PG" ]] || tests+=("${PG_TESTS[@]}")
            if ((major >= 16)); then tests+=("${PG16_TESTS[@]}"); fi
            ((${#tests[@]} > 0)) || continue
            mapfile -t flags < <(with_flags "${tests[@]}")
            run "PostgreSQL $major" "$major" "$POOLWATCH_TEST_PGBOUNCER" --no-fail-fast "${flags[@]}"
        done
        for version in "${POOLWATCH_PGBOUNCER_VERSIONS[@]}"; do
            [[ "$version" == "$POOLWATCH_TEST_PGBOUNCER" ]] && continue
            mapfile -t flags < <(with_flags "${PGBOUNCER_TESTS[@]}")
            run "PgBouncer $version" "$POOLWATCH_TEST_PG" "$version" --no-fail-fast "${flags[@]}"
        done
    fi
fi

log "summary ($((SECONDS - started)) s in all):"
for line in "${summary[@]}"; do log "  $line"; done
if ((status != 0)); then
    log "tests FAILED"
else
    log "all tests passed"
fi
echo "poolwatch: $passed passed, $failed failed"
exit "$status"
