"""A reference ingest receiver for the sync wire format (stdlib only; loopback by default).

It is what the README asks of any ingest service, in a hundred lines: check the token, gunzip and
decode the batch (every format version), check that the ``Idempotency-Key`` names the batch's first
and last rowids, answer 409 to a key it already took, drop events whose id (``<site>:<seq>``) it
already has, answer 204 only once the batch is stored, and take heartbeats (when each site was
last heard from). :func:`answer` is the whole protocol, for any server to call. It also counts the bytes that cross each socket, which
is how ``pager-edge bench sync`` measures the wire and how the tests check the agent's own count.

    python -m agent.sync.receiver --port 8080 --token secret
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import Any, Protocol, cast

from agent.sync.wire import FORMATS, WireError, decode_body, idempotency_key


class _Counting:
    """Wraps a socket file and counts the bytes read or written through it."""

    def __init__(self, f: Any, add: Callable[[int], None]):
        self._f = f
        self._add = add

    def readline(self, size: int = -1) -> bytes:
        data: bytes = self._f.readline(size)
        self._add(len(data))
        return data

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._f.read(size)
        self._add(len(data))
        return data

    def write(self, data: bytes) -> int:
        n: int = self._f.write(data)
        self._add(len(data))
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


class IngestLog:
    """What the receiver has taken: events by id (deduplicated), keys, and byte counts."""

    def __init__(self, *, keep_events: bool = True):
        self.lock = threading.Lock()
        self.keep_events = keep_events
        self.events: dict[str, dict[str, Any]] = {}  # id → event (first copy), in arrival order
        self.accepted_ids: set[str] = set()  # used when keep_events is False
        self.keys: dict[str, str] = {}  # Idempotency-Key → sha256 of the body first taken
        self.key_mismatches: list[str] = []  # a key seen again with different bytes
        self.duplicate_events = 0
        self.duplicate_keys = 0
        self.requests = 0
        self.connections = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.by_session: dict[str, list[int]] = defaultdict(list)  # uuid → seqs, arrival order
        self.heartbeats: list[dict[str, Any]] = []  # decoded heartbeats, arrival order
        self.last_seen: dict[str, float] = {}  # site → when it was last heard from (time.time)
        self.agents: dict[str, str] = {}  # site → the agent version its last heartbeat named

    def add_in(self, n: int) -> None:
        with self.lock:
            self.bytes_in += n

    def add_out(self, n: int) -> None:
        with self.lock:
            self.bytes_out += n

    def heard(self, batch: dict[str, Any]) -> None:
        """A heartbeat, or any batch: the site is alive (and, for a heartbeat, runs `agent`)."""
        with self.lock:
            self.last_seen[batch["site"]] = time.time()
            if batch["heartbeat"] is not None:
                self.heartbeats.append(batch)
                self.agents[batch["site"]] = batch["agent"]

    def seen_key(self, key: str, digest: str) -> bool:
        with self.lock:
            first = self.keys.get(key)
            if first is None:
                return False
            self.duplicate_keys += 1
            if first != digest:
                self.key_mismatches.append(key)
            return True

    def take(self, key: str, digest: str, batch: dict[str, Any]) -> tuple[int, int]:
        """Store a decoded batch; (new events, duplicate events)."""
        new = dup = 0
        with self.lock:
            for ev in batch["events"]:
                eid = ev["id"]
                if eid in self.events or eid in self.accepted_ids:
                    dup += 1
                    continue
                if self.keep_events:
                    self.events[eid] = ev
                    self.by_session[ev["uuid"]].append(ev["seq"])
                else:
                    self.accepted_ids.add(eid)
                new += 1
            self.duplicate_events += dup
            self.keys[key] = digest
            self.last_seen[batch["site"]] = time.time()
        return new, dup

    def count(self) -> int:
        with self.lock:
            return len(self.events) + len(self.accepted_ids)


Reply = tuple[int, dict[str, Any] | None, dict[str, str] | None]


class Receiving(Protocol):
    """What :func:`answer` needs of a server: its log, its token, its rejection rule."""

    log: IngestLog
    token: str | None
    reject: Callable[[dict[str, Any]], str | None]


def answer(
    srv: Receiving,
    path: str,
    header: Callable[[str], str | None],
    body: bytes,
    before_store: Callable[[str, bytes], bool] = lambda key, body: True,
    after_store: Callable[[str], bool] = lambda key: True,
) -> Reply | None:
    """One ``POST``: (status, JSON document or None, extra headers), or None when a hook answered.

    Success is ``204 No Content`` (the smallest answer: the agent reads nothing from it); 409 for a
    key taken before. A heartbeat (a v2 body without events) is recorded and answered 204 too.
    """
    log = srv.log
    with log.lock:
        log.requests += 1
    if srv.token is not None and header("Authorization") != f"Bearer {srv.token}":
        return 401, {"error": "bad token"}, None
    if path.endswith("/naive"):  # one plain JSON event: the bench's naive comparison
        json.loads(body)
        return 200, {"accepted": 1, "duplicates": 0}, None
    if header("Content-Encoding") != "gzip":
        return 415, {"error": "expected Content-Encoding: gzip"}, None
    key = header("Idempotency-Key") or ""
    if not before_store(key, body):
        return None
    try:
        batch = decode_body(body)
    except WireError as exc:
        return 400, {"error": str(exc)}, None
    if batch["heartbeat"] is not None:
        log.heard(batch)
        return 204, None, None
    digest = hashlib.sha256(body).hexdigest()
    if log.seen_key(key, digest):
        return 409, {"duplicate": key}, None
    expected = idempotency_key(batch["site"], batch["first"], batch["last"])
    if key != expected:
        return 400, {"error": f"Idempotency-Key {key!r}, expected {expected!r}"}, None
    rejected = srv.reject(batch)
    if rejected:
        return 400, {"error": rejected}, None
    log.take(key, digest, batch)
    if not after_store(key):
        return None
    return 204, None, None


class IngestHandler(BaseHTTPRequestHandler):
    """``POST`` any path: one batch. Subclasses may override :meth:`before_store` to inject faults."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: IngestServer

    def setup(self) -> None:
        super().setup()
        log = self.server.log
        with log.lock:
            log.connections += 1
        # Duck-typed: the handler only reads lines and bytes, writes and flushes, which
        # _Counting counts or forwards to the socket file.
        self.rfile = cast(BufferedIOBase, _Counting(self.rfile, log.add_in))
        self.wfile = cast(BufferedIOBase, _Counting(self.wfile, log.add_out))

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(
        self, status: int, doc: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(doc, separators=(",", ":")).encode() if doc is not None else b""
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        if self.server.date_header:
            lines.append(f"Date: {self.date_time_string()}")
        if body:
            lines.append("Content-Type: application/json")
        if status != 204:  # 204 has no body, and says nothing about one
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        # One write: a head and a body in two segments would meet Nagle and delayed ACKs.
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.wfile.flush()

    def before_store(self, key: str, body: bytes) -> bool:
        """Hook for tests (faults before the batch is stored); False: the handler answered."""
        return True

    def after_store(self, key: str) -> bool:
        """Hook for tests (faults after the batch is stored); False: the handler answered."""
        return True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        out = answer(
            self.server, self.path, self.headers.get, body, self.before_store, self.after_store
        )
        if out is not None:
            self.reply(*out)

    def do_GET(self) -> None:
        log = self.server.log
        with log.lock:
            doc = {
                "formats": list(FORMATS.values()),
                "events": len(log.events) + len(log.accepted_ids),
                "requests": log.requests,
                "duplicate_keys": log.duplicate_keys,
                "duplicate_events": log.duplicate_events,
            }
        self.reply(200, doc)


class IngestServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int] = ("127.0.0.1", 0),
        handler: type[IngestHandler] = IngestHandler,
        *,
        token: str | None = None,
        log: IngestLog | None = None,
        date_header: bool = True,
        reject: Callable[[dict[str, Any]], str | None] | None = None,
    ):
        super().__init__(address, handler)
        self.token = token
        self.log = log or IngestLog()
        self.date_header = date_header
        self.reject = reject or (lambda batch: None)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        assert isinstance(host, str)  # bound: socket.getsockname() gives the host as text
        return f"http://{host}:{port}/ingest"

    def start(self) -> IngestServer:
        self._thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="ingest", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def main() -> None:  # pragma: no cover - manual use
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--token")
    p.add_argument("--count-only", action="store_true", help="keep event ids, not the events")
    a = p.parse_args()
    srv = IngestServer((a.host, a.port), token=a.token, log=IngestLog(keep_events=not a.count_only))
    print(f"listening on {srv.url}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":  # pragma: no cover
    main()
