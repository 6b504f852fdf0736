#!/usr/bin/env python3
"""A canned https JMX endpoint that requires HTTP basic auth, for the JMX TLS
tests (tests/tests/tls_dependencies.rs).

* ``POST /jolokia``: a Jolokia bulk read; every read is answered with
  ``value`` = ``--jolokia-value`` and status 200.
* ``GET /metrics``: a Prometheus text page with
  ``kafka_server_replicamanager_underreplicatedpartitions`` =
  ``--prometheus-value``.
* Anything without the right ``Authorization: Basic`` header gets 401 and a
  ``WWW-Authenticate`` challenge. The expected password is read from the
  environment variable ``LAGWATCH_STUB_PASSWORD`` (not the command line, so
  it does not show in process listings).

Each request logs one line to stderr: method, path, and ``auth ok`` or
``auth refused``.

Usage: tls_http_stub.py --port N --cert PEM [--key PEM] --user NAME
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    expected: bytes = b""
    jolokia_value: float = 0
    prometheus_value: float = 0

    def log_message(self, fmt, *args):
        pass

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(token.strip(), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(given, self.expected)

    def _answer(self, status: int, content_type: str, body: bytes, extra=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, body: bytes) -> None:
        ok = self._authorised()
        sys.stderr.write("%s %s auth %s\n" % (self.command, self.path, "ok" if ok else "refused"))
        sys.stderr.flush()
        if not ok:
            self._answer(401, "text/plain", b"authentication required\n",
                         {"WWW-Authenticate": 'Basic realm="jmx"'})
        elif self.command == "POST" and self.path.startswith("/jolokia"):
            reads = json.loads(body or b"[]")
            answer = [{"request": read, "value": self.jolokia_value, "status": 200} for read in reads]
            self._answer(200, "application/json", json.dumps(answer).encode())
        elif self.command == "GET" and self.path.startswith("/metrics"):
            page = ("# TYPE kafka_server_replicamanager_underreplicatedpartitions gauge\n"
                    "kafka_server_replicamanager_underreplicatedpartitions %s\n" % self.prometheus_value)
            self._answer(200, "text/plain; version=0.0.4", page.encode())
        else:
            self._answer(404, "text/plain", b"not found\n")

    def do_GET(self):
        self._handle(b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self._handle(self.rfile.read(length))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", default=None)
    ap.add_argument("--user", required=True)
    ap.add_argument("--jolokia-value", type=float, default=7)
    ap.add_argument("--prometheus-value", type=float, default=5)
    args = ap.parse_args(argv)
    Handler.expected = ("%s:%s" % (args.user, os.environ.get("LAGWATCH_STUB_PASSWORD", ""))).encode()
    Handler.jolokia_value = args.jolokia_value
    Handler.prometheus_value = args.prometheus_value
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)
    server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    sys.stderr.write("listening on https://127.0.0.1:%d\n" % args.port)
    sys.stderr.flush()
    server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
