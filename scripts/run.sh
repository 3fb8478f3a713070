#!/usr/bin/env bash
# Runs the poolwatch daemon against the local PostgreSQL on 127.0.0.1:5432 with
# config.example.toml (or the file given as $1 / POOLWATCH_CONFIG), doing the set-up it needs:
# a running local server (installed and started when run as root and missing) and a `poolwatch`
# monitoring role with pg_monitor and a generated password (stock PostgreSQL packages require
# scram-sha-256 on 127.0.0.1), kept in .poolwatch-local/ (git-ignored). Safe to run again: every
# step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-${POOLWATCH_CONFIG:-}}"
local_dir=.poolwatch-local

say() { printf 'run.sh: %s\n' "$*" >&2; }
as_root() { [ "$(id -u)" = 0 ]; }

if ! command -v cargo >/dev/null; then
  say "cargo is required (https://rustup.rs)"; exit 1
fi

pg_up() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }

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
  pg_up || { say "no PostgreSQL answers on 127.0.0.1:5432; start one, or point $config at yours"; exit 1; }
fi

if [ -z "$config" ]; then
  # The monitoring role: LOGIN + pg_monitor, nothing else (see README "The monitoring role"),
  # with a password generated once and kept in a file that the generated config points at.
  # Only for the default local set-up: a config of your own is used as it is.
  mkdir -p "$local_dir"
  if [ ! -s "$local_dir/pgpassword" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$local_dir/pgpassword")
  fi
  role_sql="SET client_min_messages = warning;
  DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'poolwatch') THEN
      CREATE ROLE poolwatch LOGIN;
    END IF;
    ALTER ROLE poolwatch PASSWORD '$(cat "$local_dir/pgpassword")';
    GRANT pg_monitor TO poolwatch;
  END \$\$;"
  # The SQL goes through standard input, so the password is never on a command line.
  if as_root && id postgres >/dev/null 2>&1; then
    runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 <<<"$role_sql" >/dev/null \
      || say "could not create the poolwatch role; create it as in the README"
  elif command -v psql >/dev/null; then
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d postgres <<<"$role_sql" >/dev/null 2>&1 \
      || say "could not create the poolwatch role as postgres; create it as in the README"
  fi
  # config.example.toml with the generated password file filled in.
  config="$local_dir/poolwatch.toml"
  sed "s|^# password_file = .*|password_file = \"$PWD/$local_dir/pgpassword\"|" config.example.toml > "$config"
fi

say "starting poolwatch with $config (metrics on the [http] listen address; Ctrl-C stops)"
exec cargo run --release --quiet -- run --config "$config"
