#!/usr/bin/env python3
"""Capturing SMTP sink for lagwatch's e-mail notification tests.

Listens on 127.0.0.1:12525 (no AUTH, no TLS) and stores every accepted message
as its own file in the mail directory:

    <UTC timestamp>-<seq>.eml   the DATA exactly as received, preceded by two
                                added headers: X-Envelope-From and X-Envelope-To
                                (comma-separated envelope recipients)
    <same name>.json            sidecar: mail_from, rcpt_tos, peer, helo, received_at

The sidecar is written first and both are written to a hidden temp file and
renamed, so a reader that sees a *.eml file sees it complete.

Usage: smtp_capture.py [--host 127.0.0.1] [--port 12525] [--dir DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone

from aiosmtpd.controller import Controller


def log(msg: str) -> None:
    sys.stderr.write("%s smtp_capture: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), msg))
    sys.stderr.flush()


def write_atomic(path: str, data: bytes) -> None:
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, ".tmp-%s-%d" % (name, os.getpid()))
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class CaptureHandler:
    def __init__(self, mail_dir: str):
        self.mail_dir = mail_dir
        self.seq = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        now = datetime.now(timezone.utc)
        with self.lock:
            seq = next(self.seq)
        base = "%s-%06d-%d" % (now.strftime("%Y%m%dT%H%M%S.%fZ"), seq, os.getpid())
        raw = envelope.original_content if envelope.original_content is not None else envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        rcpts = [r if isinstance(r, str) else r.decode("utf-8", "replace") for r in envelope.rcpt_tos]
        mail_from = envelope.mail_from or ""
        added = ("X-Envelope-From: <%s>\r\nX-Envelope-To: %s\r\n" % (
            mail_from, ", ".join("<%s>" % r for r in rcpts))).encode("utf-8")
        meta = {
            "mail_from": mail_from,
            "rcpt_tos": rcpts,
            "peer": list(session.peer) if isinstance(session.peer, (tuple, list)) else str(session.peer),
            "helo": session.host_name,
            "received_at": now.isoformat(),
            "size": len(raw),
            "eml": base + ".eml",
        }
        try:
            write_atomic(os.path.join(self.mail_dir, base + ".json"), json.dumps(meta, indent=1).encode() + b"\n")
            write_atomic(os.path.join(self.mail_dir, base + ".eml"), added + raw)
        except OSError as exc:
            log("could not store message: %s" % exc)
            return "451 Requested action aborted: local error in processing"
        log("stored %s.eml from <%s> to %s (%d bytes)" % (base, mail_from, rcpts, len(raw)))
        return "250 Message accepted for delivery"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="lagwatch test SMTP capture")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("LAGWATCH_SMTP_PORT", "12525")))
    ap.add_argument("--dir", default=os.path.join(os.environ.get("LAGWATCH_INFRA_DIR", "/tmp/lagwatch-infra"), "mail"))
    args = ap.parse_args(argv)

    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(CaptureHandler(args.dir), hostname=args.host, port=args.port,
                            enable_SMTPUTF8=True, server_hostname="lagwatch-smtp-capture",
                            ready_timeout=30)
    controller.start()
    log("listening on %s:%d, storing mail in %s" % (args.host, args.port, args.dir))

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: stop.set())
    while not stop.wait(1.0):
        pass
    log("shutting down")
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
