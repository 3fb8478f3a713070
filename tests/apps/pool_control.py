"""The HTTP control shared by the Python test applications that hold a real pool's connections
(tests/apps/python_pool, tests/apps/sqlalchemy_otel). Each application imports it from the
folder above its own (see their imports: the tests run the scripts from the repository, with
the script's folder on sys.path, so the application puts tests/apps/ there too).

  POST /hold?n=N    N threads each take a connection (the application's PoolHolder.hold_one)
                    and keep it until /release; a bad N is refused (400)
  POST /release     every held connection goes back to the pool
  anything else     the application's ControlHandler.get / ControlHandler.post, else 404

serve() prints `listening on PORT` once it serves, which the tests wait for.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

# The most connections one /hold asks for: more threads than any test pool has clients.
MAX_HOLD = 10_000


class PoolHolder:
    """Threads that each hold one pool connection until release_all(). An application
    subclasses it and defines hold_one(release): take a connection, wait for `release`."""

    def __init__(self):
        self._release = threading.Event()
        self._lock = threading.Lock()

    def hold(self, n):
        with self._lock:
            release = self._release
        for _ in range(n):
            threading.Thread(target=self.hold_one, args=(release,), daemon=True).start()

    def hold_one(self, release):
        raise NotImplementedError

    def release_all(self):
        with self._lock:
            self._release.set()
            self._release = threading.Event()


def hold_count(query):
    """N of `/hold?n=N` (1 when absent), or None when it is not a count in 0..=MAX_HOLD."""
    try:
        n = int(query.get("n", ["1"])[0])
    except ValueError:
        return None
    return n if 0 <= n <= MAX_HOLD else None


class ControlHandler(BaseHTTPRequestHandler):
    """/hold and /release for `app` (a PoolHolder, set by serve()); an application subclasses
    it for its other routes: get(path) and post(path, query) answer and return True, or
    return False for a 404."""

    protocol_version = "HTTP/1.1"
    app = None

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def get(self, path):
        return False

    def post(self, path, query):
        return False

    def do_GET(self):
        if not self.get(urlparse(self.path).path):
            self.reply(404, b"not found\n")

    def do_POST(self):
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path == "/hold":
            n = hold_count(query)
            if n is None:
                self.reply(400, b"n: a count of connections, 0 to %d\n" % MAX_HOLD)
                return
            self.app.hold(n)
        elif url.path == "/release":
            self.app.release_all()
        elif not self.post(url.path, query):
            self.reply(404, b"not found\n")
            return
        self.reply(200, b"ok\n")


def serve(app, handler_class, port):
    """Serves `handler_class` for `app` on 127.0.0.1:`port` (0: any free port) until
    interrupted, then lets every held connection go."""
    bound = type(handler_class.__name__, (handler_class,), {"app": app})
    server = ThreadingHTTPServer(("127.0.0.1", port), bound)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        app.release_all()
