#!/usr/bin/env python3
"""ClickHouse-HTTP-compatible test front over an embedded chDB engine.

lagwatch's integration tests need a ClickHouse server, but no modern server
package can be installed on the test machines.  The ``chdb-core`` wheel ships
the real ClickHouse engine as a library, so this module puts a small HTTP
server in front of one persistent chDB session and speaks enough of the
ClickHouse HTTP interface for the Rust ``clickhouse`` crate (0.13 / 0.14) and
for curl:

* ``GET /ping`` (and ``GET /`` without a query) -> ``Ok.\\n``
* ``GET|POST /?query=...`` with optional SQL in the POST body.  Per ClickHouse
  semantics the ``query`` parameter and the body are concatenated (with a
  newline), except for ``INSERT ... FORMAT <fmt>`` where the body is the data.
* ``database=`` / ``X-ClickHouse-Database`` select the current database,
  ``default_format=`` / ``X-ClickHouse-Format`` the output format (a FORMAT
  clause in the query wins; default TabSeparated), ``param_<name>=`` bind
  server-side ``{name:Type}`` parameters, every other URL parameter that is a
  real ClickHouse setting (checked against ``system.settings``) is applied for
  that one request (e.g. ``insert_deduplication_token``); unknown / HTTP-only
  parameters (``query_id``, ``session_id``, ``readonly``, ``wait_end_of_query``,
  ``role``, ``user``, ``password`` ...) are accepted and ignored.
* ``multipart/form-data`` bodies (clickhouse-rs >= 0.15 sends ``query`` and
  ``param_*`` this way when server-side parameters are bound) are treated as
  extra URL parameters; file parts (external tables) are refused.
* ``INSERT ... FORMAT <any input format>`` (RowBinary,
  RowBinaryWithNamesAndTypes, JSONEachRow, TabSeparated, CSV, Native ...) is fed
  to chDB's streaming insert API; if that API is missing (older chDB) the body
  is written to a temp file and inserted via the ``file()`` table function with
  a structure derived from ``system.columns``.
* Errors: ClickHouse-style body ``Code: N. DB::Exception: ... (NAME) (version
  X (chdb))\\n`` with header ``X-ClickHouse-Exception-Code: N`` and the HTTP
  status ClickHouse itself would use (400 parse/syntax errors, 404 unknown
  table/database/function/setting, 500 otherwise).
* LZ4 compression, as ClickHouse does it (needs the ``lz4`` and
  ``clickhouse-cityhash`` packages, installed by ``install.sh``):
  ``decompress=1`` request bodies are ClickHouse's native compressed blocks
  (16-byte CityHash128 v1.0.2 checksum, method byte ``0x82``, compressed and
  uncompressed sizes, one LZ4 block); a wrong checksum is refused like
  ClickHouse refuses it (code 40, CHECKSUM_DOESNT_MATCH).  ``compress=1``
  answers in the same block format; ``Accept-Encoding: lz4`` (what
  clickhouse-rs >= 0.15 asks for on reads) answers as an LZ4 frame with
  ``Content-Encoding: lz4`` unless ``enable_http_compression=0``.  Other
  encodings (``Content-Encoding`` other than identity, zstd blocks) get a
  clear 400 error.
* ``--tls-cert FILE [--tls-key FILE]`` serves https instead of http (the
  certificate file may hold the key too), for the TLS tests.

All engine access is serialised with one lock (the session is shared).  Chunked
request bodies (as sent by the Rust client's inserts) are supported, as are
keep-alive connections.

Usage: clickhouse_http.py [--host 127.0.0.1] [--port 18123] [--data DIR]
                          [--tls-cert PEM [--tls-key PEM]]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import ssl
import struct
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

MAX_BODY = 1 << 30  # 1 GiB hard cap per request body
INSERT_CHUNK = 1 << 20

# URL parameters that belong to the HTTP interface (never applied as settings).
HTTP_ONLY_PARAMS = {
    "query", "database", "default_format", "user", "password", "quota_key",
    "query_id", "session_id", "session_timeout", "session_check", "compress",
    "decompress", "enable_http_compression", "http_zlib_compression_level",
    "buffer_size", "wait_end_of_query", "role", "readonly", "stacktrace",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms",
    "add_http_cors_header", "http_native_compression_disable_checksumming_on_decompress",
    "max_query_size", "http_wait_end_of_query", "http_response_buffer_size",
    "cancel_http_readonly_queries_on_client_close", "client_protocol_version",
    "output_format_binary_write_json_as_string",
}

# ClickHouse's native compressed block: checksum(16) method(1) compressed
# size incl. the 9-byte header (u32 LE) uncompressed size (u32 LE) data.
NATIVE_LZ4 = 0x82
NATIVE_NONE = 0x02
NATIVE_HEADER = 9
NATIVE_CHECKSUM = 16


def native_checksum(header_and_data: bytes) -> bytes:
    """CityHash128 (v1.0.2, ClickHouse's) of header+data, as ClickHouse
    writes it: the hash's two 64-bit halves, ``first`` then ``second``, each
    little-endian (the Python binding's integer holds ``first`` in its high
    bits, hence the swap; checked against clickhouse-rs)."""
    from clickhouse_cityhash.cityhash import CityHash128
    value = CityHash128(header_and_data)
    return (value >> 64).to_bytes(8, "little") + (value & ((1 << 64) - 1)).to_bytes(8, "little")


def native_decompress(body: bytes) -> bytes:
    """Decode a stream of native compressed blocks (``decompress=1``)."""
    import lz4.block
    out, pos = [], 0
    while pos < len(body):
        if len(body) - pos < NATIVE_CHECKSUM + NATIVE_HEADER:
            raise CHError(271, "Truncated compressed block header at byte %d" % pos, "CANNOT_DECOMPRESS", 400)
        checksum = body[pos:pos + NATIVE_CHECKSUM]
        method, compressed, uncompressed = struct.unpack_from("<BII", body, pos + NATIVE_CHECKSUM)
        end = pos + NATIVE_CHECKSUM + compressed
        if compressed < NATIVE_HEADER or end > len(body):
            raise CHError(271, "Compressed block at byte %d claims %d bytes, %d left"
                          % (pos, compressed, len(body) - pos - NATIVE_CHECKSUM), "CANNOT_DECOMPRESS", 400)
        framed = body[pos + NATIVE_CHECKSUM:end]
        expected = native_checksum(framed)
        if checksum != expected:
            raise CHError(40, "Checksum doesn't match: corrupted data. Reference: %s. Actual: %s"
                          % (expected.hex(), checksum.hex()), "CHECKSUM_DOESNT_MATCH", 400)
        data = framed[NATIVE_HEADER:]
        if method == NATIVE_LZ4:
            block = lz4.block.decompress(data, uncompressed_size=uncompressed)
        elif method == NATIVE_NONE:
            block = data
        else:
            raise CHError(48, "Compression method 0x%02x is not supported by the lagwatch ClickHouse test "
                              "front (LZ4 0x82 and none 0x02 are)" % method, "NOT_IMPLEMENTED", 400)
        if len(block) != uncompressed:
            raise CHError(271, "Block decompressed to %d bytes, header says %d" % (len(block), uncompressed),
                          "CANNOT_DECOMPRESS", 400)
        out.append(block)
        pos = end
    return b"".join(out)


def native_compress(data: bytes, block_size: int = 1 << 20) -> bytes:
    """Encode ``data`` as native LZ4 blocks (a ``compress=1`` answer)."""
    import lz4.block
    out = []
    for start in range(0, max(len(data), 1), block_size):
        chunk = data[start:start + block_size]
        packed = lz4.block.compress(chunk, store_size=False)
        framed = struct.pack("<BII", NATIVE_LZ4, NATIVE_HEADER + len(packed), len(chunk)) + packed
        out.append(native_checksum(framed) + framed)
    return b"".join(out)


def lz4_frame(data: bytes) -> bytes:
    """An LZ4 frame (``Content-Encoding: lz4``)."""
    import lz4.frame
    return lz4.frame.compress(data)


# ClickHouse's own error-code -> HTTP status mapping (the common cases of
# HTTPHandler's exceptionCodeToHTTPStatus); everything else is 500.
STATUS_BY_CODE = {}
for _c in (6, 15, 25, 26, 27, 38, 41, 44, 53, 62, 72, 117, 167, 168, 223, 321, 376, 441, 675, 676):
    STATUS_BY_CODE[_c] = 400  # parse / syntax / type errors
for _c in (46, 47, 50, 56, 60, 63, 73, 81, 115, 336, 511):
    STATUS_BY_CODE[_c] = 404  # unknown table / database / function / setting / format ...
STATUS_BY_CODE[48] = 501  # NOT_IMPLEMENTED
STATUS_BY_CODE[159] = 408  # TIMEOUT_EXCEEDED

# chDB-only pseudo formats that return Python objects instead of bytes.
PYTHON_ONLY_FORMATS = {"arrowtable", "dataframe", "datastore", "debug"}

# INSERT ... FORMAT <name> (the FORMAT must come before any VALUES/SELECT).
_INSERT_FMT_RE = re.compile(
    rb"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*INSERT\s+INTO\s+"
    rb"(?:(?!\bVALUES\b|\bSELECT\b|\bWITH\b).)*?"
    rb"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)",
    re.IGNORECASE | re.DOTALL,
)
_FORMAT_TAIL_RE = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*;?\s*$", re.IGNORECASE)
_CODE_RE = re.compile(r"Code:\s*(\d+)\.\s*DB::(\w+):\s*(.*)", re.DOTALL)
_IDENT = r"(?:`(?:[^`\\]|\\.)+`|\"(?:[^\"\\]|\\.)+\"|[A-Za-z_][A-Za-z0-9_]*)"
_INSERT_TARGET_RE = re.compile(
    r"^\s*INSERT\s+INTO\s+(?:TABLE\s+)?(?P<t>" + _IDENT + r"(?:\s*\.\s*" + _IDENT + r")?)"
    r"\s*(?:\((?P<cols>.*?)\))?\s*(?P<rest>SETTINGS\b.*)?$",
    re.IGNORECASE | re.DOTALL,
)


def log(msg: str) -> None:
    sys.stderr.write("%s clickhouse_http: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), msg))
    sys.stderr.flush()


def quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def unquote_ident(tok: str) -> str:
    tok = tok.strip()
    if len(tok) >= 2 and tok[0] == tok[-1] and tok[0] in "`\"":
        inner = tok[1:-1]
        return re.sub(r"\\(.)", r"\1", inner)
    return tok


def split_columns(text: str) -> list[str]:
    cols, cur, quote = [], [], None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
        elif ch in "`\"":
            quote = ch
            cur.append(ch)
        elif ch == ",":
            cols.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        cols.append("".join(cur))
    return [unquote_ident(c) for c in cols if c.strip()]


class CHError(Exception):
    """An error to be reported ClickHouse-style."""

    def __init__(self, code: int, message: str, name: str = "", http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.name = name
        self.http_status = http_status

    @classmethod
    def from_engine(cls, exc: BaseException) -> "CHError":
        text = str(exc)
        idx = text.find("Code:")
        if idx >= 0:
            m = _CODE_RE.match(text[idx:].strip())
            if m:
                return cls(int(m.group(1)), m.group(3).strip(), "", None)
        return cls(1001, text.strip() or exc.__class__.__name__, "STD_EXCEPTION")

    def status(self) -> int:
        if self.http_status:
            return self.http_status
        return STATUS_BY_CODE.get(self.code, 500)

    def body(self, version: str) -> bytes:
        msg = self.message
        if self.name and not msg.rstrip().endswith("(%s)" % self.name):
            msg = "%s (%s)" % (msg.rstrip(), self.name)
        return ("Code: %d. DB::Exception: %s (version %s (chdb))\n" % (self.code, msg, version)).encode()


class Engine:
    """A persistent chDB session plus the per-request protocol logic."""

    def __init__(self, data_dir: str, insert_mode: str = "auto"):
        from chdb import session as chdb_session  # chdb-core installs the `chdb` module

        os.makedirs(data_dir, exist_ok=True)
        self.data_dir = data_dir
        self.tmp_dir = os.path.join(data_dir, "_front_tmp")
        os.makedirs(self.tmp_dir, exist_ok=True)
        self.lock = threading.Lock()
        self.sess = chdb_session.Session(data_dir)
        self.conn = self.sess._conn  # chdb.state.sqlitelike.Connection
        self.version = self._scalar("SELECT version()")
        self.settings = set(self._scalar("SELECT arrayStringConcat(groupArray(name), ',') FROM system.settings").split(","))
        self.has_send_insert = hasattr(self.conn, "send_insert")
        self.insert_mode = insert_mode
        if insert_mode == "auto":
            self.insert_mode = "stream" if self.has_send_insert else "file"

    # -- low level -------------------------------------------------------
    def _q(self, sql: str, fmt: str = "TabSeparated", params: dict | None = None):
        try:
            return self.sess.query(sql, fmt, params=params) if params else self.sess.query(sql, fmt)
        except Exception as exc:  # ChdbError / RuntimeError
            raise CHError.from_engine(exc) from None

    def _scalar(self, sql: str) -> str:
        return self._q(sql).bytes().decode().rstrip("\n")

    def close(self) -> None:
        with self.lock:
            try:
                self.sess.close()
            except Exception as exc:  # pragma: no cover
                log("close failed: %s" % exc)

    # -- request execution ------------------------------------------------
    def execute(self, qparam: str, body: bytes, params: dict[str, str], database: str | None,
                default_format: str | None) -> tuple[bytes, dict[str, str]]:
        settings, query_params = {}, {}
        for key, value in params.items():
            if key.startswith("param_"):
                query_params[key[len("param_"):]] = value
            elif key in HTTP_ONLY_PARAMS:
                continue
            elif key in self.settings:
                settings[key] = value
            # anything else: silently ignored (unknown to the engine)

        sql_head, data, insert_fmt = split_request(qparam, body)
        fmt = default_format or "TabSeparated"
        with self.lock:
            self._q("USE " + quote_ident(database or "default"))
            applied = []
            try:
                for key, value in settings.items():
                    self._q("SET %s = %s" % (quote_ident(key), quote_string(value)))
                    applied.append(key)
                if insert_fmt is not None:
                    return self._insert(sql_head, insert_fmt, data)
                return self._select(sql_head, fmt, query_params)
            finally:
                for key in applied:
                    try:
                        self._q("SET %s = DEFAULT" % quote_ident(key))
                    except CHError as exc:  # pragma: no cover
                        log("could not reset setting %s: %s" % (key, exc.message))

    def _select(self, sql: str, fmt: str, query_params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        if not sql.strip():
            raise CHError(62, "Empty query.", "SYNTAX_ERROR")
        if fmt.lower() in PYTHON_ONLY_FORMATS:
            raise CHError(73, "Unknown output format %s" % fmt, "UNKNOWN_FORMAT")
        res = self._q(sql, fmt, query_params or None)
        out = res.bytes() if hasattr(res, "bytes") else (res.encode() if isinstance(res, str) else bytes(res))
        m = _FORMAT_TAIL_RE.search(sql)
        used_fmt = m.group(1) if m else fmt
        summary = {}
        for name in ("rows_read", "bytes_read", "rows_written", "bytes_written"):
            fn = getattr(res, name, None)
            if callable(fn):
                try:
                    summary[name] = int(fn())
                except Exception:
                    pass
        elapsed = getattr(res, "elapsed", None)
        return out, {
            "format": used_fmt,
            "summary": json.dumps({
                "read_rows": str(summary.get("rows_read", 0)),
                "read_bytes": str(summary.get("bytes_read", 0)),
                "written_rows": str(summary.get("rows_written", 0)),
                "written_bytes": str(summary.get("bytes_written", 0)),
                "total_rows_to_read": "0",
                "result_rows": "0",
                "result_bytes": str(len(out)),
                "elapsed_ns": str(int((elapsed() if callable(elapsed) else 0) * 1e9)),
            }),
        }

    def _insert(self, insert_sql: str, fmt: str, data: bytes) -> tuple[bytes, dict[str, str]]:
        if self.insert_mode == "stream":
            rows, nbytes = self._insert_stream(insert_sql, fmt, data)
        else:
            rows, nbytes = self._insert_file(insert_sql, fmt, data)
        return b"", {
            "format": fmt,
            "summary": json.dumps({
                "read_rows": str(rows), "read_bytes": str(nbytes),
                "written_rows": str(rows), "written_bytes": str(nbytes),
                "total_rows_to_read": "0", "result_rows": str(rows), "result_bytes": "0",
                "elapsed_ns": "0",
            }),
        }

    def _insert_stream(self, insert_sql: str, fmt: str, data: bytes) -> tuple[int, int]:
        try:
            ins = self.conn.send_insert(insert_sql, fmt)
        except Exception as exc:
            raise CHError.from_engine(exc) from None
        try:
            view = memoryview(data)
            for off in range(0, len(view), INSERT_CHUNK):
                ins.append(view[off:off + INSERT_CHUNK])
            res = ins.finish()
        except Exception as exc:
            try:
                ins.cancel()
            except Exception:
                pass
            raise CHError.from_engine(exc) from None
        return int(getattr(res, "rows_written", 0)), int(getattr(res, "bytes_written", 0))

    def _insert_file(self, insert_sql: str, fmt: str, data: bytes) -> tuple[int, int]:
        m = _INSERT_TARGET_RE.match(insert_sql)
        if not m:
            raise CHError(62, "lagwatch ClickHouse front (file mode) cannot parse INSERT target in: %s"
                          % insert_sql[:200], "SYNTAX_ERROR")
        parts = [unquote_ident(p) for p in re.findall(_IDENT, m.group("t"))]
        db, table = (parts[0], parts[1]) if len(parts) == 2 else (self._scalar("SELECT currentDatabase()"), parts[0])
        described = self._q(
            "SELECT name, type, default_kind FROM system.columns WHERE database = %s AND table = %s ORDER BY position"
            % (quote_string(db), quote_string(table)), "JSONEachRow").bytes().decode()
        columns = [json.loads(line) for line in described.splitlines() if line.strip()]
        if not columns:
            raise CHError(60, "Table %s.%s does not exist." % (db, table), "UNKNOWN_TABLE")
        types = {c["name"]: c["type"] for c in columns}
        if m.group("cols"):
            names = split_columns(m.group("cols"))
            missing = [n for n in names if n not in types]
            if missing:
                raise CHError(16, "No such column %s in table %s.%s" % (missing[0], db, table),
                              "NO_SUCH_COLUMN_IN_TABLE")
        else:
            names = [c["name"] for c in columns if c["default_kind"] not in ("MATERIALIZED", "ALIAS", "EPHEMERAL")]
        structure = ", ".join("%s %s" % (quote_ident(n), types[n]) for n in names)
        fd, path = tempfile.mkstemp(prefix="insert-", suffix=".bin", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            sql = "INSERT INTO %s.%s (%s) %s SELECT * FROM file(%s, %s, %s)" % (
                quote_ident(db), quote_ident(table), ", ".join(quote_ident(n) for n in names),
                m.group("rest") or "", quote_string(path), quote_string(fmt), quote_string(structure))
            res = self._q(sql)
            rows = int(res.rows_written()) if hasattr(res, "rows_written") else 0
            return rows, len(data)
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass


def split_request(qparam: str, body: bytes) -> tuple[str, bytes, str | None]:
    """Return (sql, insert_data, insert_format_or_None) following ClickHouse HTTP rules."""
    if qparam and body:
        m = _INSERT_FMT_RE.match(qparam.encode())
        if m and not qparam.encode()[m.end():].strip():
            head = qparam.encode()[: m.start(1)].rstrip()[: -len(b"FORMAT")].rstrip()
            return head.decode("utf-8"), body, m.group(1).decode()
        full = qparam.encode() + b"\n" + body
    else:
        full = qparam.encode() if qparam else body
    m = _INSERT_FMT_RE.match(full[:65536])
    if m:
        head = full[: m.start(1)].rstrip()
        head = head[: -len(b"FORMAT")].rstrip()
        pos = m.end()
        while pos < len(full) and full[pos:pos + 1] in (b" ", b"\t"):
            pos += 1
        if full[pos:pos + 1] == b"\r":
            pos += 1
        if full[pos:pos + 1] == b"\n":
            pos += 1
        try:
            sql = head.decode("utf-8")
        except UnicodeDecodeError:
            raise CHError(62, "INSERT query text is not valid UTF-8", "SYNTAX_ERROR") from None
        return sql, full[pos:], m.group(1).decode()
    try:
        return full.decode("utf-8"), b"", None
    except UnicodeDecodeError:
        raise CHError(62, "Query text is not valid UTF-8 (binary data without INSERT ... FORMAT?)",
                      "SYNTAX_ERROR") from None


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, str]]:
    """Parse a multipart/form-data body into (name, value) pairs (no file uploads)."""
    m = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    if not m:
        raise CHError(27, "multipart/form-data request without a boundary", "CANNOT_PARSE_INPUT_ASSERTION_FAILED", 400)
    delim = b"--" + m.group(1).encode()
    fields = []
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if value.endswith(b"\r\n"):
            value = value[:-2]
        disp = re.search(rb'name="([^"]*)"', head)
        if not disp:
            continue
        if re.search(rb'filename=', head):
            raise CHError(48, "external data (file parts in multipart requests) is not supported by the "
                              "lagwatch ClickHouse test front", "NOT_IMPLEMENTED", 400)
        fields.append((disp.group(1).decode(), value.decode("utf-8")))
    return fields


CONTENT_TYPES = {
    "tabseparated": "text/tab-separated-values; charset=UTF-8",
    "tsv": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedwithnames": "text/tab-separated-values; charset=UTF-8",
    "csv": "text/csv; charset=UTF-8; header=absent",
    "csvwithnames": "text/csv; charset=UTF-8; header=present",
    "json": "application/json; charset=UTF-8",
    "jsoneachrow": "application/x-ndjson; charset=UTF-8",
    "jsoncompact": "application/json; charset=UTF-8",
    "pretty": "text/plain; charset=UTF-8",
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lagwatch-chdb-front"
    engine: Engine  # set on the class by main()

    def log_message(self, fmt, *args):  # route http.server's own logging to our log
        log("%s %s" % (self.address_string(), fmt % args))

    def log_request(self, code="-", size="-"):  # one line per request is logged by _handle
        pass

    # -- body handling -------------------------------------------------
    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise CHError(33, "Unexpected end of chunked request body", "CANNOT_READ_ALL_DATA")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        tl = self.rfile.readline(65537)
                        if tl in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > MAX_BODY:
                    self.close_connection = True
                    raise CHError(4, "Request body too large", "TOO_LARGE_REQUEST", 413)
                chunks.append(self._read_exact(size))
                self.rfile.readline(3)  # CRLF after chunk
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if length:
            n = int(length)
            if n > MAX_BODY:
                self.close_connection = True
                raise CHError(4, "Request body too large", "TOO_LARGE_REQUEST", 413)
            return self._read_exact(n)
        return b""

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            part = self.rfile.read(n - len(buf))
            if not part:
                raise CHError(33, "Unexpected end of request body", "CANNOT_READ_ALL_DATA")
            buf += part
        return bytes(buf)

    # -- responses -----------------------------------------------------
    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except OSError as exc:  # client went away (e.g. an aborted INSERT)
            self.close_connection = True
            log("client disconnected before the response was sent: %s" % exc)

    def _send_error(self, err: CHError, query_id: str) -> None:
        self._send(err.status(), err.body(self.engine.version), {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(err.code),
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Server-Display-Name": "lagwatch-chdb-front",
        })

    # -- dispatch ------------------------------------------------------
    def do_GET(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def _handle(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        params: dict[str, str] = {}
        for k, v in parse_qsl(url.query, keep_blank_values=True):
            params[k] = v
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            body = self._read_body()
        except CHError as err:
            self.close_connection = True
            log("%s: bad request body: %s" % (self.command, err.message))
            self._send_error(err, query_id)
            return
        except (ValueError, OSError) as exc:
            log("%s: malformed request body: %s" % (self.command, exc))
            self.close_connection = True
            self._send_error(CHError(33, "Malformed request body: %s" % exc, "CANNOT_READ_ALL_DATA", 400), query_id)
            return

        ctype = self.headers.get("Content-Type") or ""
        if ctype.lower().startswith("multipart/form-data"):
            # clickhouse-rs >= 0.15 sends the query and its param_* values as form fields.
            try:
                for k, v in parse_multipart(body, ctype):
                    params[k] = v
            except CHError as err:
                self._send_error(err, query_id)
                return
            body = b""

        path = url.path.rstrip("/")
        qparam = params.get("query", "")
        if path in ("/ping", "/replicas_status") or (path == "" and not qparam and not body):
            self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return

        status, summary_sql = 200, qparam or body[:200].decode("utf-8", "replace")
        codecs = []  # logged, so tests can see what travelled compressed
        try:
            self._check_compression(params)
            if enabled(params.get("decompress")):
                body = native_decompress(body)
                codecs.append("lz4-in")
                if not qparam:
                    summary_sql = body[:200].decode("utf-8", "replace")
            database = params.get("database") or self.headers.get("X-ClickHouse-Database") or None
            default_format = params.get("default_format") or self.headers.get("X-ClickHouse-Format") or None
            out, meta = self.engine.execute(qparam, body, params, database, default_format)
            fmt = meta.get("format", "TabSeparated")
            encoding = {}
            if enabled(params.get("compress")):
                out = native_compress(out)
                codecs.append("lz4-blocks-out")
            elif self._wants_lz4_frame(params):
                out = lz4_frame(out)
                encoding = {"Content-Encoding": "lz4"}
                codecs.append("lz4-frame-out")
            self._send(200, out, {
                **encoding,
                "Content-Type": CONTENT_TYPES.get(fmt.lower(), "application/octet-stream"),
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Summary": meta.get("summary", "{}"),
                "X-ClickHouse-Server-Display-Name": "lagwatch-chdb-front",
            })
        except CHError as err:
            status = err.status()
            self._send_error(err, query_id)
        except Exception as exc:  # never let a bug kill the connection silently
            status = 500
            log("internal error: %r" % (exc,))
            self._send_error(CHError(1001, "lagwatch ClickHouse front internal error: %r" % (exc,),
                                     "STD_EXCEPTION"), query_id)
        finally:
            log("%s %d %.1fms %s%s" % (self.command, status, (time.monotonic() - started) * 1000,
                                      "".join("[%s] " % c for c in codecs), " ".join(summary_sql.split())[:160]))

    def _check_compression(self, params: dict[str, str]) -> None:
        enc = (self.headers.get("Content-Encoding") or "").strip().lower()
        if enc and enc != "identity":
            raise CHError(48, "Content-Encoding '%s' is not supported by the lagwatch ClickHouse test front; "
                                "send uncompressed bodies or native LZ4 blocks with decompress=1" % enc,
                          "NOT_IMPLEMENTED", 400)

    def _wants_lz4_frame(self, params: dict[str, str]) -> bool:
        accepted = [part.split(";", 1)[0].strip().lower()
                    for part in (self.headers.get("Accept-Encoding") or "").split(",")]
        return "lz4" in accepted and params.get("enable_http_compression", "1") not in ("0", "false")


def enabled(value: str | None) -> bool:
    return value not in (None, "", "0", "false")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default=os.environ.get("LAGWATCH_CLICKHOUSE_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("LAGWATCH_CLICKHOUSE_PORT", "18123")))
    ap.add_argument("--data", default=os.environ.get(
        "LAGWATCH_CLICKHOUSE_DATA", os.path.join(os.environ.get("LAGWATCH_INFRA_DIR", "/tmp/lagwatch-infra"), "clickhouse")))
    ap.add_argument("--insert-mode", choices=("auto", "stream", "file"),
                    default=os.environ.get("LAGWATCH_CH_INSERT_MODE", "auto"))
    ap.add_argument("--pidfile", default=None)
    ap.add_argument("--tls-cert", default=None, help="serve https with this PEM certificate (chain)")
    ap.add_argument("--tls-key", default=None, help="PEM key (default: in --tls-cert)")
    args = ap.parse_args(argv)

    engine = Engine(args.data, args.insert_mode)
    Handler.engine = engine
    httpd = Server((args.host, args.port), Handler)
    scheme = "http"
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
    if args.pidfile:
        tmp = args.pidfile + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(tmp, args.pidfile)

    def stop(signum, _frame):
        log("signal %d: shutting down" % signum)
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("listening on %s://%s:%d (engine %s, data %s, insert mode %s)"
        % (scheme, args.host, args.port, engine.version, args.data, engine.insert_mode))
    try:
        httpd.serve_forever(poll_interval=0.5)
    finally:
        httpd.server_close()
        engine.close()
        if args.pidfile:
            try:
                if open(args.pidfile).read().strip() == str(os.getpid()):
                    os.unlink(args.pidfile)
            except OSError:
                pass
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
