"""A small application holding a real psycopg_pool that pushes its stats to poolwatch.

Run by tests/common/push_apps.rs with the venv scripts/install-test-deps.sh makes. It opens
the pool — its own, or with `--django` Django's built-in one (`OPTIONS: {"pool": {...}}`,
`django.db.connection.pool`) — pushes `pool.get_stats()` every `--every` seconds, and reads
commands on stdin:

    load N SECONDS   N clients each take a connection and hold it for SECONDS (pg_sleep)
    quit             push "final": true and exit (printing `stopped`)

It prints `ready` once the pool is open, and `poolwatch push failed: ...` when a push is
refused (the README example's own message).
"""

import argparse
import sys

from psycopg_pool import ConnectionPool

# --- README example: start ---
import json, threading, time, urllib.request

def push_pool_stats(pool, url, application, instance, token=None, every=5.0):
    """Posts psycopg_pool's stats to poolwatch every `every` seconds from a daemon thread."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    def loop():
        while True:
            s = pool.get_stats()
            stats = {"name": pool.name, "capacity": s["pool_max"], "idle": s["pool_available"],
                     "in_use": max(0, s["pool_size"] - s["pool_available"]),
                     "waiting": s.get("requests_waiting", 0),
                     "waits_total": s.get("requests_queued", 0),
                     "wait_seconds_total": s.get("requests_wait_ms", 0) / 1000,
                     "timeouts_total": s.get("requests_errors", 0)}
            body = {"application": application, "instance": instance, "pools": [stats]}
            request = urllib.request.Request(url, json.dumps(body).encode(), headers)
            try:
                urllib.request.urlopen(request, timeout=2).close()
            except OSError as e:
                print("poolwatch push failed:", e, flush=True)
            time.sleep(every)
    threading.Thread(target=loop, daemon=True).start()
# --- README example: end ---


def final_push(url, application, instance, token):
    """Tells poolwatch this instance stops: its pools leave the sums at once."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"application": application, "instance": instance, "final": True, "pools": []}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    urllib.request.urlopen(request, timeout=2).close()


def own_pool(a):
    """A psycopg_pool of its own, and how one client holds a connection of it."""
    pool = ConnectionPool(a.dsn, min_size=1, max_size=a.max_size, name=a.pool_name, open=True)
    pool.wait(timeout=30)

    def hold(seconds):
        with pool.connection(timeout=120) as conn:
            conn.execute("SELECT pg_sleep(%s)", (seconds,))

    return pool, hold


def django_pool(a):
    """Django's own pool (Django 5.1+ with psycopg), and how one request holds a connection."""
    import django
    from django.conf import settings
    from urllib.parse import urlsplit

    url = urlsplit(a.dsn)
    settings.configure(DATABASES={"default": {
        "ENGINE": "django.db.backends.postgresql", "HOST": url.hostname, "PORT": url.port,
        "USER": url.username, "NAME": url.path.lstrip("/"),
        "OPTIONS": {"pool": {"name": a.pool_name, "min_size": 1, "max_size": a.max_size,
                             "timeout": 120}},
    }})
    django.setup()
    from django.db import connection, connections

    connection.ensure_connection()  # opens the pool; close() gives the connection back
    connection.close()

    def hold(seconds):
        # A request in its own thread: Django takes a connection from the pool and gives it
        # back when the request's connections are closed.
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_sleep(%s)", (seconds,))
        finally:
            connections.close_all()

    return connection.pool, hold


def client(hold, seconds):
    """One client: takes a connection (waiting in the pool's queue if none is free), holds it."""
    try:
        hold(seconds)
    except Exception as e:  # a test ending kills the server under us: say so, do not crash
        print("client failed:", type(e).__name__, flush=True)


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--dsn", required=True)
    args.add_argument("--url", required=True)
    args.add_argument("--application", required=True)
    args.add_argument("--instance", required=True)
    args.add_argument("--token")
    args.add_argument("--pool-name", default="default")
    args.add_argument("--max-size", type=int, default=5)
    args.add_argument("--every", type=float, default=1.0)
    args.add_argument("--django", action="store_true")
    a = args.parse_args()
    pool, hold = django_pool(a) if a.django else own_pool(a)
    push_pool_stats(pool, a.url, a.application, a.instance, a.token, a.every)
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["load"]:
            n, seconds = int(words[1]), float(words[2])
            for _ in range(n):
                threading.Thread(target=client, args=(hold, seconds), daemon=True).start()
            print("loaded", n, flush=True)
        elif words[:1] == ["quit"]:
            break
    try:
        final_push(a.url, a.application, a.instance, a.token)
    except OSError as e:
        print("final push failed:", e, flush=True)
    pool.close(timeout=1)
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
