#!/usr/bin/env python3
"""Tiny stdlib-only health probes used by up.sh / status.sh.

    probe.py kafka HOST:PORT        Metadata v4 request; ok when >= 1 broker is listed
    probe.py http-ping URL          GET URL/ping answers "Ok."
    probe.py smtp HOST:PORT         SMTP greeting + NOOP
    probe.py jolokia URL            GET URL/version returns JSON with status 200
    probe.py jmx-exporter URL       GET URL (the /metrics page) has a Kafka series and jmx_scrape_error 0

Exit status 0 = healthy, 1 = not healthy (reason on stderr).
"""

from __future__ import annotations

import json
import smtplib
import socket
import struct
import sys
import urllib.request


def hostport(arg: str) -> tuple[str, int]:
    host, _, port = arg.rpartition(":")
    return host or "127.0.0.1", int(port)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError("connection closed by broker")
        buf += part
    return buf


def kafka(arg: str) -> str:
    host, port = hostport(arg)
    client_id = b"lagwatch-probe"
    # Request header v1 + MetadataRequest v4 (topics = null -> all, allow_auto_topic_creation = false)
    body = struct.pack(">hhih", 3, 4, 42, len(client_id)) + client_id + struct.pack(">i?", -1, False)
    with socket.create_connection((host, port), timeout=5) as s:
        s.settimeout(5)
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        resp = _recv_exact(s, size)
    corr, _throttle, nbrokers = struct.unpack(">iii", resp[:12])
    if corr != 42:
        raise RuntimeError("unexpected correlation id %d" % corr)
    if nbrokers < 1:
        raise RuntimeError("metadata lists no brokers yet")
    return "%d broker(s)" % nbrokers


def http_ping(url: str) -> str:
    with urllib.request.urlopen(url.rstrip("/") + "/ping", timeout=5) as r:
        body = r.read()
    if body.strip() != b"Ok.":
        raise RuntimeError("unexpected /ping answer %r" % body[:100])
    return "Ok."


def smtp(arg: str) -> str:
    host, port = hostport(arg)
    with smtplib.SMTP(host, port, timeout=5) as s:
        code, _ = s.noop()
        if code != 250:
            raise RuntimeError("NOOP answered %d" % code)
    return "250"


def jolokia(url: str) -> str:
    with urllib.request.urlopen(url.rstrip("/") + "/version", timeout=5) as r:
        doc = json.loads(r.read())
    if doc.get("status") != 200:
        raise RuntimeError("status %r" % doc.get("status"))
    return "agent %s" % doc.get("value", {}).get("agent", "?")


def jmx_exporter(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        lines = r.read().decode("utf-8", "replace").splitlines()
    series = [l for l in lines if l and not l.startswith("#")]
    errors = [l for l in series if l.startswith("jmx_scrape_error")]
    if errors and float(errors[0].split()[-1]) != 0.0:
        raise RuntimeError("exporter reports %s" % errors[0])
    kafka_series = [l for l in series if l.startswith("kafka_")]
    if not kafka_series:
        raise RuntimeError("no kafka_ series yet (%d series)" % len(series))
    return "%d kafka series" % len(kafka_series)


PROBES = {
    "kafka": kafka,
    "http-ping": http_ping,
    "smtp": smtp,
    "jolokia": jolokia,
    "jmx-exporter": jmx_exporter,
}


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in PROBES:
        sys.stderr.write(__doc__)
        return 2
    fn = PROBES[sys.argv[1]]
    try:
        info = fn(sys.argv[2])
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        sys.stderr.write("%s %s: %s\n" % (sys.argv[1], sys.argv[2], exc))
        return 1
    print(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
