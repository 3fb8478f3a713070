"""A webhook receiver that verifies every request's signatures with implementations
independent of poolwatch: Standard Webhooks with the `standardwebhooks` package from PyPI
(its reference library), GitHub's X-Hub-Signature-256 with Python's hmac.

Secrets come from the environment (POOLWATCH_TEST_WHSEC, POOLWATCH_TEST_GITHUB_SECRET; an
unset one is not checked). Every POST is recorded and answered 204 when every configured
signature verifies, 401 otherwise; GET /results returns the records as JSON:
[{"path", "standard", "github", "headers", "body"}], where "standard"/"github" is "ok",
"unchecked" or the verifier's error and "headers" holds the request's signature and id headers
(so that a test can replay them with an altered body).

Prints "listening on PORT" once it serves.
"""

import hashlib
import hmac
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

WHSEC = os.environ.get("POOLWATCH_TEST_WHSEC")
GITHUB = os.environ.get("POOLWATCH_TEST_GITHUB_SECRET")
RESULTS = []
SIGNATURE_HEADERS = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-hub-signature-256",
    "idempotency-key",
)
LOCK = threading.Lock()


def standard(body, headers):
    if not WHSEC:
        return "unchecked"
    try:
        Webhook(WHSEC).verify(body, headers)
        return "ok"
    except Exception as e:  # the verifier's own exception types
        return f"{type(e).__name__}: {e}"


def github(body, headers):
    if not GITHUB:
        return "unchecked"
    got = headers.get("x-hub-signature-256")
    if not got:
        return "missing X-Hub-Signature-256"
    want = "sha256=" + hmac.new(GITHUB.encode(), body, hashlib.sha256).hexdigest()
    return "ok" if hmac.compare_digest(want, got) else "signature mismatch"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = {
            "path": self.path,
            "standard": standard(body, headers),
            "github": github(body, headers),
            "headers": {k: v for k, v in headers.items() if k in SIGNATURE_HEADERS},
            "body": json.loads(body) if body else None,
        }
        with LOCK:
            RESULTS.append(record)
        ok = all(record[k] in ("ok", "unchecked") for k in ("standard", "github"))
        self.send_response(204 if ok else 401)
        self.end_headers()

    def do_GET(self):
        with LOCK:
            payload = json.dumps(RESULTS).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
