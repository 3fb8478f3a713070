#!/usr/bin/env bash
# Runs the poolwatch daemon against a local PostgreSQL with config.example.toml (or the file
# given as the argument / POOLWATCH_CONFIG), doing the set-up it needs first. Safe to run again,
# from any number of checkouts: every step checks before it acts.
#
#   ./scripts/run.sh                 # set up, build (cargo's own progress), run the example
#   ./scripts/run.sh my.toml         # your config as it is: no role set-up
#   ./scripts/run.sh --setup-only    # the set-up only; prints the generated config's path
#
# 1. A server answers on $POOLWATCH_PGHOST:$POOLWATCH_PGPORT (default 127.0.0.1:5432); when
#    run as root on Debian/Ubuntu and none does, PostgreSQL is installed and started.
# 2. With the example config: the `poolwatch` monitoring role (LOGIN, pg_monitor; see README
#    "The monitoring role"). Its password is generated once and kept per user and server in
#    $POOLWATCH_STATE_DIR (default ~/.local/state/poolwatch), so every checkout shares it.
#    A login is tried first; the password is set only when the role is created, or when the
#    saved password cannot log in (said loudly: a daemon using another password for the role
#    fails its next reconnect). The config is written to $POOLWATCH_LOCAL_DIR (default
#    .poolwatch-local, git-ignored) with the password file and the server filled in.
# 3. `cargo build --release`, then the binary it built: `poolwatch run --config FILE`.
#
# Environment: POOLWATCH_PGHOST, POOLWATCH_PGPORT (the server); POOLWATCH_ADMIN_HOST (where
# the administrative psql connects as `postgres`; default: the local socket through runuser
# when root, else $POOLWATCH_PGHOST); POOLWATCH_PSQL (the psql binary, default `psql`);
# POOLWATCH_STATE_DIR; POOLWATCH_LOCAL_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

setup_only=
if [ "${1:-}" = --setup-only ]; then setup_only=1; shift; fi
config="${1:-${POOLWATCH_CONFIG:-}}"
host="${POOLWATCH_PGHOST:-127.0.0.1}"
port="${POOLWATCH_PGPORT:-5432}"
admin_host="${POOLWATCH_ADMIN_HOST:-}"
psql="${POOLWATCH_PSQL:-psql}"
local_dir="${POOLWATCH_LOCAL_DIR:-.poolwatch-local}"
if [ -n "${POOLWATCH_STATE_DIR:-}" ]; then
  state_dir=$POOLWATCH_STATE_DIR
elif [ -n "${XDG_STATE_HOME:-}${HOME:-}" ]; then
  state_dir="${XDG_STATE_HOME:-$HOME/.local/state}/poolwatch"
else
  state_dir=$local_dir
fi

say() { printf 'run.sh: %s\n' "$*" >&2; }
as_root() { [ "$(id -u)" = 0 ]; }

if [ -z "$setup_only" ] && ! command -v cargo >/dev/null; then
  say "cargo is required (https://rustup.rs)"; exit 1
fi

# pg_isready from the same installation as psql when there is one.
pg_isready=pg_isready
if [ -x "$(dirname "$(command -v "$psql" || echo .)")/pg_isready" ]; then
  pg_isready="$(dirname "$(command -v "$psql")")/pg_isready"
fi
pg_up() { command -v "$pg_isready" >/dev/null && "$pg_isready" -q -h "$host" -p "$port"; }

if ! pg_up; then
  if as_root; then
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
      say "installing PostgreSQL server"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    fi
    if command -v pg_lsclusters >/dev/null; then
      read -r ver name < <(pg_lsclusters -h | awk '{print $1, $2; exit}') || true
      if [ -z "${ver:-}" ]; then
        ver=$(ls /usr/lib/postgresql | sort -V | tail -n1); name=main
        pg_createcluster "$ver" "$name" >/dev/null
      fi
      say "starting PostgreSQL $ver/$name"
      pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start || true
    fi
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
  pg_up || { say "no PostgreSQL answers on $host:$port; start one, or pass a config of your own"; exit 1; }
fi

# psql as the `postgres` superuser, SQL from standard input or -c.
admin_psql() {
  if as_root && id postgres >/dev/null 2>&1; then
    runuser -u postgres -- "$psql" -X -q -v ON_ERROR_STOP=1 ${admin_host:+-h "$admin_host"} \
      -p "$port" -d postgres "$@"
  else
    "$psql" -X -q -v ON_ERROR_STOP=1 -h "${admin_host:-$host}" -p "$port" -U postgres \
      -d postgres "$@"
  fi
}

# Logs in as poolwatch with the saved password (from a pgpass file: never on a command line)
# and prints whether it is a member of pg_monitor (t/f); libpq's error on stderr otherwise.
login_as_poolwatch() {
  local pgpass status=0
  pgpass=$(umask 077; mktemp "$state_dir/pgpass.XXXXXX")
  printf '*:*:*:poolwatch:%s\n' "$(cat "$password_file")" > "$pgpass"
  PGPASSFILE="$pgpass" "$psql" -X -w -h "$host" -p "$port" -U poolwatch -d postgres \
    -Atqc "SELECT pg_has_role('pg_monitor', 'member')" || status=$?
  rm -f "$pgpass"
  return "$status"
}

# The monitoring role: LOGIN + pg_monitor, nothing else. Its password is set only when the role
# is created, or when the saved one cannot log in: never on a run where it already works.
ensure_role() {
  local out err_file err exists sessions
  err_file=$(mktemp)
  if out=$(login_as_poolwatch 2>"$err_file"); then
    rm -f "$err_file"
    if [ "$out" = t ]; then
      say "role poolwatch logs in with the saved password; left as it is"
    else
      admin_psql -c "GRANT pg_monitor TO poolwatch" >/dev/null
      say "role poolwatch logs in; granted it pg_monitor"
    fi
    return 0
  fi
  err=$(cat "$err_file"); rm -f "$err_file"
  case "$err" in
    *"password authentication failed"* | *"does not exist"*) ;;
    *) say "cannot log in as poolwatch, for a reason other than its password; the role is left as it is:"
       say "$err"
       return 1 ;;
  esac
  exists=$(admin_psql -Atc "SELECT 1 FROM pg_roles WHERE rolname = 'poolwatch'") || return 1
  if [ -z "$exists" ]; then
    admin_psql >/dev/null <<SQL || return 1
CREATE ROLE poolwatch LOGIN PASSWORD '$(cat "$password_file")';
GRANT pg_monitor TO poolwatch;
SQL
    say "created role poolwatch (LOGIN, pg_monitor); its password is in $password_file"
  else
    sessions=$(admin_psql -Atc "SELECT count(*) FROM pg_stat_activity WHERE usename = 'poolwatch'") || return 1
    admin_psql >/dev/null <<SQL || return 1
ALTER ROLE poolwatch LOGIN PASSWORD '$(cat "$password_file")';
GRANT pg_monitor TO poolwatch;
SQL
    say "WARNING: the password in $password_file could not log in as poolwatch, so it was set;"
    say "  $sessions session(s) of poolwatch are connected now: a daemon using another password"
    say "  for this role fails its next reconnect. Give it this password file."
  fi
}

if [ -z "$config" ]; then
  mkdir -p "$local_dir" "$state_dir"
  password_file="$state_dir/pgpassword-$host-$port"
  if [ ! -s "$password_file" ]; then
    # A checkout set up by an earlier run.sh kept its password here.
    if [ -s "$local_dir/pgpassword" ]; then
      (umask 077; cp "$local_dir/pgpassword" "$password_file")
    else
      (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$password_file")
    fi
  fi
  password_file=$(cd "$(dirname "$password_file")" && pwd)/$(basename "$password_file")
  ensure_role || say "the poolwatch role is not ready; create it as in the README"
  # config.example.toml with this server and the saved password file filled in (in the first
  # target only: the commented-out examples further down keep theirs commented).
  config="$local_dir/poolwatch.toml"
  sed -e "0,/^# password_file = .*/s|^# password_file = .*|password_file = \"$password_file\"|" \
      -e "s|^host = \"127.0.0.1\" |host = \"$host\" |" \
      -e "s|^port = 5432 |port = $port |" config.example.toml > "$config"
fi

if [ -n "$setup_only" ]; then
  say "set-up done; config: $config"
  printf '%s\n' "$config"
  exit 0
fi

say "building poolwatch (cargo build --release; the first build takes a few minutes)"
binary=$(cargo build --release --bin poolwatch --message-format=json-render-diagnostics \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)
[ -x "$binary" ] || { say "the build produced no poolwatch binary"; exit 1; }
say "starting $binary run --config $config (metrics on the [http] listen address; Ctrl-C stops)"
exec "$binary" run --config "$config"
