"""A small Python application with a real psycopg_pool connection pool, exporting the pool's
numbers in OpenTelemetry's database client metric names (db.client.connection.*, current
semantic conventions) through prometheus_client, as poolwatch's `otel` preset reads them.

Run by tests/common/apps.rs from the virtualenv scripts/install-test-deps.sh makes. It prints
`listening on PORT` once it serves. HTTP control (/hold and /release are
tests/apps/pool_control.py's, shared with tests/apps/sqlalchemy_otel):

  GET  /metrics              the exposition (OpenMetrics or text, as the Accept header asks);
                             with --token, only for `Authorization: Bearer TOKEN` (else 401)
  POST /hold?n=N             N threads each take a connection and keep it until /release
                             (beyond the pool's size they wait; past --timeout they give up,
                             which psycopg_pool counts in requests_errors)
  POST /release              every held connection goes back to the pool
  POST /misbehave?mode=M     /metrics turns hostile: huge (64 MiB), slow (a line every 200 ms,
                             forever), garbage (random bytes); or renamed (the pool exported
                             under NAME-renamed, as after a deployment that renamed it, so the
                             pool of NAME disappears); or normal again
  GET  /stats                psycopg_pool's get_stats() as JSON
"""

import argparse
import json
import os
import sys
import time

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from psycopg_pool import ConnectionPool, PoolTimeout

# tests/apps/pool_control.py: the HTTP control (/hold, /release) both pool applications share.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pool_control  # noqa: E402

POOL_LABEL = "db_client_connection_pool_name"
STATE_LABEL = "db_client_connection_state"


class PoolCollector:
    """Reads the pool's stats at every scrape (no background sampling)."""

    def __init__(self, pool, name_of):
        self.pool = pool
        self.name_of = name_of

    def collect(self):
        s = self.pool.get_stats()
        name = self.name_of()
        size, idle = s.get("pool_size", 0), s.get("pool_available", 0)
        count = GaugeMetricFamily(
            "db_client_connection_count",
            "The number of connections that are currently in state described by the state attribute",
            labels=[POOL_LABEL, STATE_LABEL],
        )
        count.add_metric([name, "used"], size - idle)
        count.add_metric([name, "idle"], idle)
        yield count
        for metric, help_text, value in [
            ("db_client_connection_max", "The maximum number of open connections allowed", s.get("pool_max", 0)),
            ("db_client_connection_idle_min", "The minimum number of idle open connections allowed", s.get("pool_min", 0)),
            ("db_client_connection_pending_requests", "The number of current pending requests for an open connection", s.get("requests_waiting", 0)),
        ]:
            g = GaugeMetricFamily(metric, help_text, labels=[POOL_LABEL])
            g.add_metric([name], value)
            yield g
        timeouts = CounterMetricFamily(
            "db_client_connection_timeouts",
            "The number of connection timeouts that have occurred trying to obtain a connection from the pool",
            labels=[POOL_LABEL],
        )
        timeouts.add_metric([name], s.get("requests_errors", 0))
        yield timeouts


class App(pool_control.PoolHolder):
    def __init__(self, pool, token):
        super().__init__()
        self.pool = pool
        self.token = token
        self.registry = None
        self.mode = "normal"

    def authorized(self, header):
        return self.token is None or header == f"Bearer {self.token}"

    def hold_one(self, release):
        try:
            with self.pool.connection() as conn:
                conn.execute("SELECT 1")
                release.wait()
        except PoolTimeout:
            pass


class Handler(pool_control.ControlHandler):
    def get(self, path):
        if path == "/metrics" and not self.app.authorized(self.headers.get("Authorization")):
            self.send_response(401)
            self.send_header("WWW-Authenticate", "Bearer")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/metrics":
            self.metrics()
        elif path == "/stats":
            self.reply(200, json.dumps(self.app.pool.get_stats()).encode(), "application/json")
        else:
            return False
        return True

    def post(self, path, query):
        if path != "/misbehave":
            return False
        self.app.mode = query.get("mode", ["normal"])[0]
        return True

    def metrics(self):
        mode = self.app.mode
        if mode == "huge":
            chunk = b"filler_metric{a=\"b\"} 1\n" * 4096
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(chunk) * 700))
            self.end_headers()
            try:
                for _ in range(700):
                    self.wfile.write(chunk)
            except OSError:
                pass
        elif mode == "slow":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.close_connection = True
            try:
                for i in range(3000):
                    self.wfile.write(b"slow_metric %d\n" % i)
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
        elif mode == "garbage":
            self.reply(200, os.urandom(4096), "text/plain; version=0.0.4")
        else:
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self.reply(200, encoder(self.app.registry), content_type)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dsn", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--size", type=int, default=5)
    p.add_argument("--timeout", type=float, default=2.0, help="acquire timeout, seconds")
    p.add_argument("--name", default="checkout")
    p.add_argument("--token", default=None, help="bearer token /metrics requires")
    args = p.parse_args()

    # Its connections carry the pool's name as application_name, as a well-behaved service's do:
    # the server side of the pool (pg_stat_activity, poolwatch's [[links]]) can tell them apart.
    pool = ConnectionPool(
        args.dsn,
        min_size=args.size,
        max_size=args.size,
        timeout=args.timeout,
        name=args.name,
        kwargs={"application_name": args.name},
        open=False,
    )
    pool.open(wait=True, timeout=30)
    app = App(pool, args.token)
    app.registry = CollectorRegistry()
    app.registry.register(
        PoolCollector(pool, lambda: args.name + ("-renamed" if app.mode == "renamed" else ""))
    )
    try:
        pool_control.serve(app, Handler, args.port)
    finally:
        pool.close(timeout=1)


if __name__ == "__main__":
    sys.exit(main())
