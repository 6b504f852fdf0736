#!/usr/bin/env python3
"""Self-test for tests/infra/clickhouse_http.py (the chDB-backed ClickHouse HTTP front).

Run with the infra venv python (stdlib only on the client side):

    $LAGWATCH_CACHE_DIR/venv/bin/python tests/infra/test_clickhouse_http.py [--url URL] [--no-spawn]

--url defaults to $LAGWATCH_TEST_CLICKHOUSE_URL or http://127.0.0.1:18123.  If
nothing answers there, a private front is spawned on a free loopback port.
Unless --no-spawn is given, the INSERT tests are also run against a private
front started with --insert-mode file (the fallback used by old chDB builds).
Prints "N passed, N failed" and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from urllib.parse import urlencode, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------- encoding --
def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def rb_string(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return leb128(len(b)) + b


def rb_row(id_: int, name: str, ts_ms: int, lc: str, n: int | None) -> bytes:
    out = struct.pack("<Q", id_) + rb_string(name) + struct.pack("<q", ts_ms) + rb_string(lc)
    out += b"\x01" if n is None else b"\x00" + struct.pack("<q", n)
    return out


COLS = ["id", "name", "ts", "lc", "n"]
TYPES = ["UInt64", "String", "DateTime64(3)", "LowCardinality(String)", "Nullable(Int64)"]


def rbwnat_header(names, types) -> bytes:
    return leb128(len(names)) + b"".join(rb_string(n) for n in names) + b"".join(rb_string(t) for t in types)


class Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise AssertionError("short RowBinary data at %d (+%d of %d)" % (self.pos, n, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def leb(self) -> int:
        shift = result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    def string(self) -> str:
        return self.take(self.leb()).decode()

    def row(self):
        id_ = struct.unpack("<Q", self.take(8))[0]
        name = self.string()
        ts = struct.unpack("<q", self.take(8))[0]
        lc = self.string()
        n = None if self.take(1) == b"\x01" else struct.unpack("<q", self.take(8))[0]
        return (id_, name, ts, lc, n)

    def done(self) -> bool:
        return self.pos == len(self.data)


# ------------------------------------------------------------------ client --
class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "Resp(%d, %r)" % (self.status, self.body[:300])


class Client:
    def __init__(self, url: str, tls: ssl.SSLContext | None = None):
        u = urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 8123
        self.tls = tls
        self.conn = self.connect()

    def connect(self, timeout: float = 60) -> http.client.HTTPConnection:
        if self.tls is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method="POST", params=None, body=None, headers=None, chunked=False) -> Resp:
        path = "/?" + urlencode(params or {}) if params else "/"
        hdrs = dict(headers or {})
        if chunked:
            data = body or b""
            pieces = [data[i:i + 7] for i in range(0, len(data), 7)] or [b""]
            body = iter(pieces)
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=hdrs, encode_chunked=chunked)
                r = self.conn.getresponse()
                payload = r.read()
                return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, payload)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = self.connect()
                if attempt == 2 or chunked:
                    raise

    def sql(self, sql: str, **params) -> Resp:
        return self.request("POST", params, sql.encode())

    def ok(self, sql: str, **params) -> bytes:
        r = self.sql(sql, **params)
        assert r.status == 200, "%s -> %r" % (sql, r)
        return r.body


# ------------------------------------------------------------------- tests --
class Suite:
    def __init__(self, client: Client, label: str):
        self.c, self.label = client, label
        self.db = "lw_front_test_" + uuid.uuid4().hex[:8]
        self.passed = self.failed = 0

    def run(self, names):
        for name in names:
            fn = getattr(self, "test_" + name)
            try:
                fn()
                self.passed += 1
                print("PASS [%s] %s" % (self.label, name))
            except Exception:
                self.failed += 1
                print("FAIL [%s] %s\n%s" % (self.label, name, traceback.format_exc()))

    # setup / teardown
    def test_setup(self):
        self.c.ok("CREATE DATABASE IF NOT EXISTS " + self.db)
        self.c.ok("CREATE TABLE t (id UInt64, name String, ts DateTime64(3), lc LowCardinality(String),"
                  " n Nullable(Int64)) ENGINE = MergeTree ORDER BY id", database=self.db)
        body = self.c.ok("EXISTS TABLE t", database=self.db)
        assert body == b"1\n", body

    def test_teardown(self):
        self.c.ok("DROP DATABASE IF EXISTS " + self.db + " SYNC")

    def test_ping(self):
        r = self.c.request("GET", None, None)
        assert r.status == 200 and r.body == b"Ok.\n", r
        conn = self.c.connect(timeout=10)
        conn.request("GET", "/ping")
        rr = conn.getresponse()
        assert rr.status == 200 and rr.read() == b"Ok.\n"
        conn.close()

    def test_get_query_param(self):
        r = self.c.request("GET", {"query": "SELECT 1 + 1"})
        assert r.status == 200 and r.body == b"2\n", r
        # 0.13 style: query param + FORMAT clause
        r = self.c.request("GET", {"query": "SELECT 'a' AS x FORMAT JSONEachRow", "database": "system"})
        assert r.status == 200 and json.loads(r.body) == {"x": "a"}, r

    def test_query_param_plus_body_concat(self):
        r = self.c.request("POST", {"query": "SELECT 40 +"}, b"2")
        assert r.status == 200 and r.body == b"42\n", r

    def test_insert_rowbinary_chunked(self):
        data = rb_row(1, "one", 1_700_000_000_123, "alpha", -5) + rb_row(2, "two", 1_700_000_001_000, "beta", None)
        q = "INSERT INTO t(`id`,`name`,`ts`,`lc`,`n`) FORMAT RowBinary"
        r = self.c.request("POST", {"database": self.db, "query": q}, data, chunked=True)
        assert r.status == 200 and r.body == b"", r
        # same with Content-Length and a qualified table name, no column list
        data = rb_row(3, "three", 0, "alpha", 7)
        r = self.c.request("POST", {"query": "INSERT INTO %s.t FORMAT RowBinary" % self.db}, data)
        assert r.status == 200, r

    def test_select_rowbinary(self):
        r = self.c.request("POST", {"database": self.db, "default_format": "RowBinary"},
                           b"SELECT id, name, ts, lc, n FROM t ORDER BY id")
        assert r.status == 200, r
        rd = Reader(r.body)
        rows = [rd.row() for _ in range(3)]
        assert rd.done(), "trailing bytes"
        assert rows == [(1, "one", 1_700_000_000_123, "alpha", -5), (2, "two", 1_700_000_001_000, "beta", None),
                        (3, "three", 0, "alpha", 7)], rows
        assert r.headers.get("x-clickhouse-format") == "RowBinary", r.headers

    def test_select_rowbinary_with_names_and_types(self):
        r = self.c.request("POST", {"database": self.db, "default_format": "RowBinaryWithNamesAndTypes"},
                           b"SELECT ?fields FROM t WHERE id = 1".replace(b"?fields", b"`id`,`name`,`ts`,`lc`,`n`"))
        assert r.status == 200, r
        rd = Reader(r.body)
        ncols = rd.leb()
        names = [rd.string() for _ in range(ncols)]
        types = [rd.string() for _ in range(ncols)]
        assert names == COLS and types == TYPES, (names, types)
        assert rd.row() == (1, "one", 1_700_000_000_123, "alpha", -5)
        assert rd.done()

    def test_select_jsoneachrow_and_tsv(self):
        body = self.c.ok("SELECT id, name, toString(ts) AS ts, lc, n FROM t WHERE id IN (1, 2) ORDER BY id "
                         "FORMAT JSONEachRow", database=self.db)
        rows = [json.loads(line) for line in body.splitlines()]
        assert rows[0] == {"id": 1, "name": "one", "ts": "2023-11-14 22:13:20.123", "lc": "alpha", "n": -5} \
            or rows[0]["id"] == 1 and rows[0]["n"] == -5, rows
        assert rows[1]["n"] is None, rows
        tsv = self.c.ok("SELECT id, name, n FROM t ORDER BY id", database=self.db)
        assert tsv == b"1\tone\t-5\n2\ttwo\t\\N\n3\tthree\t7\n", tsv
        # header-selected database and format
        r = self.c.request("POST", None, b"SELECT count() FROM t",
                           headers={"X-ClickHouse-Database": self.db, "X-ClickHouse-Format": "JSONEachRow",
                                    "X-ClickHouse-User": "default", "X-ClickHouse-Key": ""})
        assert r.status == 200 and json.loads(r.body) == {"count()": 3}, r

    def test_insert_rowbinary_with_names_and_types(self):
        data = rbwnat_header(COLS, TYPES) + rb_row(10, "ten", 10, "gamma", 10)
        r = self.c.request("POST", {"database": self.db,
                                    "query": "INSERT INTO t(`id`,`name`,`ts`,`lc`,`n`) FORMAT RowBinaryWithNamesAndTypes"},
                           data, chunked=True)
        assert r.status == 200, r
        assert self.c.ok("SELECT name FROM t WHERE id = 10", database=self.db) == b"ten\n"

    def test_insert_text_formats_in_body(self):
        r = self.c.request("POST", {"database": self.db},
                           b'INSERT INTO t (id, name, ts, lc) FORMAT JSONEachRow\n{"id": 20, "name": "json", '
                           b'"ts": "2024-01-02 03:04:05.678", "lc": "j"}\n')
        assert r.status == 200, r
        r = self.c.request("POST", {"database": self.db, "query": "INSERT INTO t (id, name, lc) FORMAT TabSeparated"},
                           b"21\ttsv\tt\n")
        assert r.status == 200, r
        r = self.c.request("POST", {"database": self.db, "query": "INSERT INTO t (id, name) VALUES"},
                           b"(22, 'values')")
        assert r.status == 200, r
        body = self.c.ok("SELECT id, name, n FROM t WHERE id >= 20 ORDER BY id", database=self.db)
        assert body == b"20\tjson\t\\N\n21\ttsv\t\\N\n22\tvalues\t\\N\n", body

    def test_insert_deduplication_token(self):
        self.c.ok("CREATE TABLE dedup (k UInt64) ENGINE = MergeTree ORDER BY k "
                  "SETTINGS non_replicated_deduplication_window = 100", database=self.db)
        for token in ("tok-a", "tok-a", "tok-b"):
            r = self.c.request("POST", {"database": self.db, "query": "INSERT INTO dedup FORMAT RowBinary",
                                        "insert_deduplication_token": token},
                               struct.pack("<Q", 1), chunked=True)
            assert r.status == 200, r
        n = self.c.ok("SELECT count() FROM dedup", database=self.db)
        assert n == b"2\n", "insert_deduplication_token not applied: %r rows" % n
        # the setting must not leak into the next request
        v = self.c.ok("SELECT getSetting('insert_deduplication_token')")
        assert v == b"\n", v

    def test_settings_and_ignored_params(self):
        r = self.c.request("POST", {"max_threads": "1", "query_id": "q-123", "session_id": "s", "readonly": "1",
                                    "wait_end_of_query": "1", "role": "x", "totally_unknown_param": "1"},
                           b"SELECT getSetting('max_threads')")
        assert r.status == 200 and r.body == b"1\n", r
        assert r.headers.get("x-clickhouse-query-id") == "q-123", r.headers
        assert json.loads(r.headers["x-clickhouse-summary"])["read_rows"] is not None

    def test_server_side_params(self):
        r = self.c.request("POST", {"param_x": "41", "param_s": "it's"}, b"SELECT {x:UInt32} + 1, {s:String}")
        assert r.status == 200 and r.body == b"42\tit\\'s\n", r

    def test_multipart_params(self):
        # clickhouse-rs 0.15 sends bound server-side params as multipart/form-data fields.
        boundary = "clickhouse-rs-boundary-" + uuid.uuid4().hex[:16]
        fields = [("query", "SELECT {x:UInt64} AS x, {s:String} AS s, count() AS c FROM t WHERE id >= {x:UInt64} AND id < 10"),
                  ("param_x", "2"), ("param_s", "multi\\tpart")]
        body = b"".join(b"--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                        % (boundary.encode(), k.encode(), v.encode()) for k, v in fields)
        body += b"--%s--\r\n" % boundary.encode()
        r = self.c.request("POST", {"database": self.db, "default_format": "JSONEachRow"}, body,
                           headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
        assert r.status == 200, r
        assert json.loads(r.body) == {"x": 2, "s": "multi\tpart", "c": 2}, r

    def test_describe_for_insert_metadata(self):
        # clickhouse-rs 0.15 fetches the schema with DESCRIBE TABLE before a validated INSERT.
        r = self.c.request("POST", {"default_format": "RowBinaryWithNamesAndTypes", "database": self.db,
                                    "describe_include_subcolumns": "0"}, b"DESCRIBE TABLE t")
        assert r.status == 200, r
        rd = Reader(r.body)
        ncols = rd.leb()
        names = [rd.string() for _ in range(ncols)]
        types = [rd.string() for _ in range(ncols)]
        assert names == ["name", "type", "default_type", "default_expression", "comment", "codec_expression",
                         "ttl_expression"], names
        assert types == ["String"] * 7, types
        got = []
        while not rd.done():
            row = [rd.string() for _ in range(ncols)]
            got.append((row[0], row[1]))
        assert got == list(zip(COLS, TYPES)), got

    def test_errors(self):
        r = self.c.sql("SELEC 1")
        assert r.status == 400, r
        assert r.headers.get("x-clickhouse-exception-code") == "62", r.headers
        assert r.text.startswith("Code: 62. DB::Exception: Syntax error"), r.text
        r = self.c.sql("SELECT * FROM no_such_table_xyz", database=self.db)
        assert r.status == 404 and r.text.startswith("Code: 60. DB::Exception:"), r
        assert "(UNKNOWN_TABLE)" in r.text, r.text
        r = self.c.sql("SELECT throwIf(1, 'boom')")
        assert r.status == 500 and "Code: 395. DB::Exception:" in r.text and "boom" in r.text, r
        assert r.text.endswith("(chdb))\n"), r.text
        r = self.c.sql("SELECT 1", database="no_such_db_xyz")
        assert r.status == 404 and r.headers.get("x-clickhouse-exception-code") == "81", r
        # a bad insert body
        r = self.c.request("POST", {"database": self.db, "query": "INSERT INTO t FORMAT RowBinary"}, b"\x01\x02",
                           chunked=True)
        assert r.status in (400, 500) and r.text.startswith("Code: "), r
        # unsupported compression is refused clearly
        r = self.c.request("POST", None, b"SELECT 1", headers={"Content-Encoding": "gzip"})
        assert r.status == 400 and "Content-Encoding" in r.text, r
        # the connection still works after errors (keep-alive)
        assert self.c.ok("SELECT 7") == b"7\n"

    def test_lz4(self):
        import clickhouse_http as front
        # decompress=1: a RowBinary insert in native LZ4 blocks (two blocks)
        rows = [rb_row(10 + i, "lz4-%d" % i, 1_700_000_000_000 + i, "gamma", i) for i in range(500)]
        data = b"".join(rows)
        body = front.native_compress(data, block_size=len(data) // 2 + 1)
        assert body.count(bytes([front.NATIVE_LZ4])) >= 2 and len(body) < len(data), len(body)
        q = "INSERT INTO t(`id`,`name`,`ts`,`lc`,`n`) FORMAT RowBinary"
        r = self.c.request("POST", {"database": self.db, "query": q, "decompress": "1"}, body, chunked=True)
        assert r.status == 200, r
        assert self.c.ok("SELECT count() FROM t WHERE name LIKE 'lz4-%'", database=self.db) == b"500\n"
        # a block whose checksum does not match is refused as ClickHouse refuses it
        bad = bytearray(body)
        bad[-1] ^= 0xFF
        r = self.c.request("POST", {"database": self.db, "query": q, "decompress": "1"}, bytes(bad))
        assert r.status == 400 and r.headers.get("x-clickhouse-exception-code") == "40", r
        assert "(CHECKSUM_DOESNT_MATCH)" in r.text, r.text
        # compress=1: the answer is native LZ4 blocks
        r = self.c.request("POST", {"compress": "1"}, b"SELECT 'answer-in-blocks'")
        assert r.status == 200 and front.native_decompress(r.body) == b"answer-in-blocks\n", r
        # Accept-Encoding: lz4 (clickhouse-rs 0.15 reads): an LZ4 frame
        import lz4.frame
        r = self.c.request("POST", None, b"SELECT 'framed'", headers={"Accept-Encoding": "lz4"})
        assert r.status == 200 and r.headers.get("content-encoding") == "lz4", r.headers
        assert lz4.frame.decompress(r.body) == b"framed\n", r
        r = self.c.request("POST", {"enable_http_compression": "0"}, b"SELECT 'plain'",
                           headers={"Accept-Encoding": "lz4"})
        assert r.status == 200 and r.body == b"plain\n" and "content-encoding" not in r.headers, r

    def test_ddl(self):
        self.c.ok("ALTER TABLE t ADD COLUMN IF NOT EXISTS extra String DEFAULT 'x'", database=self.db)
        self.c.ok("ALTER TABLE t DROP COLUMN extra", database=self.db)
        self.c.ok("CREATE TABLE tmp_mem (a UInt8) ENGINE = Memory", database=self.db)
        self.c.ok("TRUNCATE TABLE tmp_mem", database=self.db)
        self.c.ok("DROP TABLE tmp_mem", database=self.db)
        tables = self.c.ok("SHOW TABLES", database=self.db).split()
        assert b"t" in tables and b"tmp_mem" not in tables, tables
        # trailing semicolon and comment, as the 0.14 client allows
        assert self.c.ok("SELECT 1; -- trailing comment\n") == b"1\n"


ALL = ["ping", "get_query_param", "query_param_plus_body_concat", "setup", "insert_rowbinary_chunked",
       "select_rowbinary", "select_rowbinary_with_names_and_types", "select_jsoneachrow_and_tsv",
       "insert_rowbinary_with_names_and_types", "insert_text_formats_in_body", "insert_deduplication_token",
       "settings_and_ignored_params", "server_side_params", "multipart_params", "describe_for_insert_metadata",
       "errors", "lz4", "ddl", "teardown"]
INSERT_ONLY = ["setup", "insert_rowbinary_chunked", "select_rowbinary", "insert_rowbinary_with_names_and_types",
               "insert_text_formats_in_body", "teardown"]


TLS_ONLY = ["ping", "setup", "insert_rowbinary_chunked", "lz4", "teardown"]


# ------------------------------------------------------------------ driver --
def reachable(url: str, tls: ssl.SSLContext | None = None) -> bool:
    try:
        c = Client(url, tls).connect(timeout=5)
        c.request("GET", "/ping")
        return c.getresponse().read() == b"Ok.\n"
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(insert_mode: str, tmp: str, certs: str | None = None):
    port = free_port()
    log = open(os.path.join(tmp, "front-%s.log" % insert_mode), "wb")
    argv = [sys.executable, os.path.join(HERE, "clickhouse_http.py"), "--port", str(port),
            "--data", os.path.join(tmp, "data-" + insert_mode), "--insert-mode", insert_mode]
    tls = None
    if certs:
        argv += ["--tls-cert", os.path.join(certs, "server.pem")]
        tls = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = "%s://127.0.0.1:%d" % ("https" if certs else "http", port)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("spawned front exited early, see %s" % log.name)
        if reachable(url, tls):
            return proc, url, tls
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("spawned front did not become ready")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=os.environ.get("LAGWATCH_TEST_CLICKHOUSE_URL", "http://127.0.0.1:18123"))
    ap.add_argument("--no-spawn", action="store_true", help="skip the file-insert-mode run")
    args = ap.parse_args()

    passed = failed = 0
    procs = []
    with tempfile.TemporaryDirectory(prefix="lw-chfront-test-") as tmp:
        try:
            url = args.url
            if not reachable(url):
                print("note: nothing answers at %s, spawning a private front" % url)
                proc, url, _ = spawn("auto", tmp)
                procs.append(proc)
            suite = Suite(Client(url), "main")
            suite.run(ALL)
            passed, failed = passed + suite.passed, failed + suite.failed
            if not args.no_spawn:
                proc, furl, _ = spawn("file", tmp)
                procs.append(proc)
                suite = Suite(Client(furl), "file-insert-mode")
                suite.run(INSERT_ONLY)
                passed, failed = passed + suite.passed, failed + suite.failed
                # https with a CA made now; a client trusting another CA is refused
                certs = os.path.join(tmp, "certs")
                subprocess.run(["bash", os.path.join(HERE, "tls-certs.sh"), certs], check=True)
                proc, turl, tls = spawn("stream", tmp, certs)
                procs.append(proc)
                suite = Suite(Client(turl, tls), "https")
                suite.run(TLS_ONLY)
                passed, failed = passed + suite.passed, failed + suite.failed
                other = ssl.create_default_context(cafile=os.path.join(certs, "other-ca.pem"))
                if reachable(turl, other):
                    failed += 1
                    print("FAIL [https] a client trusting an unrelated CA was served")
                else:
                    passed += 1
                    print("PASS [https] unrelated_ca_refused")
        finally:
            for p in procs:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
