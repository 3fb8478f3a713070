"""A small Python application with a real SQLAlchemy QueuePool (psycopg 3 driver) against
PostgreSQL, instrumented by opentelemetry-instrumentation-sqlalchemy and exported through
opentelemetry-exporter-prometheus, in OpenTelemetry's older database client metric names
(db.client.connections.*), as poolwatch's `otel_legacy` preset reads them.

What the instrumentation itself emits (0.66b2): only `db.client.connections.usage` with
`state` = used|idle and `pool.name`, from the pool's connect/checkout/checkin/close events.
The other instruments of the same (pre-1.26) semantic conventions — `.max`,
`.pending_requests`, `.timeouts` — it does not emit; this application adds them with the
OpenTelemetry SDK under their convention names, as a service using this instrumentation would:
the maximum from QueuePool's size and overflow, the pending requests and timeouts counted
around `engine.connect()`.

Run by tests/common/real_apps.rs from the virtualenv scripts/install-test-deps.sh makes. It
prints `listening on PORT` once it serves. HTTP control (/hold and /release are
tests/apps/pool_control.py's, shared with tests/apps/python_pool):

  GET  /metrics        the exposition (prometheus_client's, which the exporter fills)
  POST /hold?n=N       N threads each check out a connection and keep it until /release
                       (beyond the pool's size they wait; past --timeout they give up, which
                       SQLAlchemy raises as sqlalchemy.exc.TimeoutError)
  POST /release        every held connection goes back to the pool
"""

import argparse
import os
import sys

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
import sqlalchemy
from sqlalchemy import exc, text

# tests/apps/pool_control.py: the HTTP control (/hold, /release) both pool applications share.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import pool_control  # noqa: E402


class App(pool_control.PoolHolder):
    def __init__(self, engine, pool_name, meter):
        super().__init__()
        self.engine = engine
        self.attrs = {"pool.name": pool_name}
        self.pending = meter.create_up_down_counter(
            "db.client.connections.pending_requests",
            unit="requests",
            description="The number of pending requests for an open connection, cumulative for the entire pool.",
        )
        self.timeouts = meter.create_counter(
            "db.client.connections.timeouts",
            unit="{timeout}",
            description="The number of connection timeouts that have occurred trying to obtain a connection from the pool.",
        )
        # The SDK exports a counter only once something was added: without this 0 the series
        # would appear with the whole first burst in it, and a scraper that sees a counter for
        # the first time takes it as its starting point, not as a rate.
        self.timeouts.add(0, self.attrs)

    def hold_one(self, release):
        self.pending.add(1, self.attrs)
        try:
            conn = self.engine.connect()
        except exc.TimeoutError:
            self.timeouts.add(1, self.attrs)
            return
        finally:
            self.pending.add(-1, self.attrs)
        with conn:
            conn.execute(text("SELECT 1"))
            release.wait()


class Handler(pool_control.ControlHandler):
    def get(self, path):
        if path != "/metrics":
            return False
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        self.reply(200, encoder(REGISTRY), content_type)
        return True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dsn", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--size", type=int, default=5)
    p.add_argument("--timeout", type=float, default=2.0, help="acquire timeout, seconds")
    p.add_argument("--name", default="checkout")
    args = p.parse_args()

    provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
    metrics.set_meter_provider(provider)
    SQLAlchemyInstrumentor().instrument(meter_provider=provider)
    url = args.dsn.replace("postgresql://", "postgresql+psycopg://", 1).replace("postgres://", "postgresql+psycopg://", 1)
    # The instrumentation names the pool (`pool.name`) by its logging name, else the URL.
    # Through the module: the instrumentor wraps sqlalchemy.create_engine when it instruments.
    engine = sqlalchemy.create_engine(url, pool_size=args.size, max_overflow=0, pool_timeout=args.timeout, pool_logging_name=args.name)
    meter = provider.get_meter("poolwatch.tests.sqlalchemy_otel")
    meter.create_observable_gauge(
        "db.client.connections.max",
        callbacks=[lambda _options: [metrics.Observation(engine.pool.size() + max(engine.pool._max_overflow, 0), {"pool.name": args.name})]],
        unit="connections",
        description="The maximum number of open connections allowed.",
    )
    app = App(engine, args.name, meter)
    # Open the pool's connections, as a warmed-up service has them.
    conns = [engine.connect() for _ in range(args.size)]
    for c in conns:
        c.close()
    try:
        pool_control.serve(app, Handler, args.port)
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
