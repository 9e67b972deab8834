"""The metered link on loopback, counted as an operator bills it: an HTTPS receiver that speaks
HTTP/2 and HTTP/1.1 (hypercorn serving :func:`agent.sync.receiver.answer`), and a TCP proxy in
front of it that stands for the cellular path.

The proxy is where the site's modem would be. It counts every TCP segment and every byte of TCP
payload (TLS records and handshakes included) that crosses its client-facing socket, from the
kernel's own counters (``TCP_INFO``: ``tcpi_bytes_received``, ``tcpi_bytes_acked``,
``tcpi_segs_in``, ``tcpi_segs_out``, read when the connection ends), and bills each segment 40
bytes of IPv4 + TCP headers (no options; Linux adds 12 bytes of timestamps to each, which some
paths strip). Its listening socket clamps the MSS to 1400 bytes, as on a cellular path, so a
certificate chain crosses in as many segments as it would there (loopback's MSS is 65,483).

Time is the bench's :class:`~agent.clock.VirtualClock`: the proxy applies two rules of a real path
on it when told the time (:meth:`LinkProxy.tick`):

* ``server_idle`` — the receiver (a load balancer) closes a connection idle that long (a FIN);
* ``nat_idle`` — a carrier NAT forgets a connection idle that long, silently: the next segment the
  agent sends on it is lost, and a reset comes back (counted: the bytes went over the air).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import socket
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agent.clock import VirtualClock
from agent.sync.receiver import IngestLog, answer

IP_TCP_HEADER = 40
MSS = 1400


@dataclass
class LinkTotals:
    payload_in: int = 0  # agent → receiver, TCP payload
    payload_out: int = 0  # receiver → agent
    segments: int = 0  # both directions
    connections: int = 0
    resets: int = 0  # connections the NAT forgot and reset

    @property
    def ip_bytes(self) -> int:
        return self.payload_in + self.payload_out + IP_TCP_HEADER * self.segments


def tcp_info(sock: socket.socket) -> tuple[int, int, int, int]:
    """(bytes received, bytes sent and acknowledged, segments in, segments out) of a Linux
    socket (``struct tcp_info``, offsets from linux/tcp.h)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160)
    acked, received = struct.unpack_from("QQ", raw, 120)
    segs_out, segs_in = struct.unpack_from("II", raw, 136)
    return received, acked, segs_in, segs_out


@dataclass(eq=False)
class _Conn:
    writer: asyncio.StreamWriter
    last: float
    upstream: asyncio.StreamWriter | None = None
    dead: bool = False  # forgotten by the NAT
    closing: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class LinkProxy:
    """TCP proxy to `upstream` that counts what crosses it and plays the path's idle rules."""

    def __init__(
        self,
        upstream: tuple[str, int],
        clock: VirtualClock,
        *,
        nat_idle: float | None = None,
        server_idle: float | None = None,
    ):
        self.upstream = upstream
        self.clock = clock
        self.nat_idle = nat_idle
        self.server_idle = server_idle
        self.totals = LinkTotals()
        self._conns: set[_Conn] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> LinkProxy:
        sock = socket.socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, MSS)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._handle, sock=sock)
        return self

    def tick(self) -> None:
        """Apply the idle rules at the clock's time now."""
        now = self.clock.monotonic()
        for conn in list(self._conns):
            idle = now - conn.last
            if self.nat_idle is not None and idle >= self.nat_idle:
                conn.dead = True
            elif self.server_idle is not None and idle >= self.server_idle and not conn.closing:
                conn.closing = True  # the receiver says goodbye: FIN to the agent
                conn.writer.write_eof()
                if conn.upstream is not None:
                    conn.upstream.close()

    async def stop(self) -> None:
        """Wait for the agent's side to close every connection (it was told to), then stop."""
        for conn in list(self._conns):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.done.wait(), 5.0)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(writer, self.clock.monotonic())
        self._conns.add(conn)
        self.totals.connections += 1
        up_r, up_w = await asyncio.open_connection(*self.upstream)
        conn.upstream = up_w
        back = asyncio.create_task(self._back(conn, up_r))
        reset = False
        try:
            while data := await reader.read(65536):
                if conn.dead:  # the NAT lost it: what was sent is gone, a reset comes back
                    reset = True
                    break
                conn.last = self.clock.monotonic()
                up_w.write(data)
                await up_w.drain()
            if not reset and not conn.closing:
                writer.write_eof()  # the agent closed: our FIN, and its ACK, before counting
        except (ConnectionError, OSError):
            pass
        finally:
            back.cancel()
            up_w.close()
            await self._finish(conn, writer, reset)

    async def _back(self, conn: _Conn, up_r: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await up_r.read(65536):
                conn.last = self.clock.monotonic()
                conn.writer.write(data)
                await conn.writer.drain()

    async def _finish(self, conn: _Conn, writer: asyncio.StreamWriter, reset: bool) -> None:
        await asyncio.sleep(0.02)  # the last ACKs
        sock = writer.get_extra_info("socket")
        received, acked, segs_in, segs_out = tcp_info(sock)
        t = self.totals
        # The kernel counts a FIN as one byte of sequence space; the accepted socket did not
        # count the SYN-ACK its listener sent.
        t.payload_in += received - 1 if not reset else received
        t.payload_out += max(0, acked - (0 if reset else 1))
        t.segments += segs_in + segs_out + 1
        if reset:
            t.resets += 1
            t.segments += 1  # the reset itself
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()
        self._conns.discard(conn)
        conn.done.set()


class IngestApp:
    """The reference receiver's protocol (:func:`answer`) as an ASGI app, for hypercorn.

    `on_stored` is called with the ids of events stored by each batch (the bench measures how
    stale they were); `now` dates the answers."""

    def __init__(
        self,
        token: str,
        log: IngestLog | None = None,
        on_stored: Callable[[list[str]], None] = (lambda ids: None),
        now: Callable[[], float] = time.time,
    ):
        self.log = log or IngestLog()
        self.now = now
        self.token: str | None = token
        self.reject: Callable[[dict[str, Any]], str | None] = lambda batch: None
        self.on_stored = on_stored
        self.http_versions: Counter[str] = Counter()  # "2", "1.1": what ALPN chose, per request

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        self.http_versions[scope["http_version"]] += 1
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        before = set(self.log.events)
        out = answer(self, scope["path"], lambda name: headers.get(name.lower()), body)
        assert out is not None  # no hooks here
        status, doc, extra = out
        self.on_stored([i for i in self.log.events if i not in before])
        payload = json.dumps(doc, separators=(",", ":")).encode() if doc is not None else b""
        # Date as a real server sends it, a new value each second of the (virtual) clock.
        hdrs = [(b"date", email.utils.formatdate(self.now(), usegmt=True).encode())]
        hdrs += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
        if payload:
            hdrs.append((b"content-type", b"application/json"))
        if status != 204:
            hdrs.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": hdrs})
        await send({"type": "http.response.body", "body": payload})


async def serve_https(
    app: IngestApp, cert_file: str, key_file: str
) -> tuple[int, Callable[[], Awaitable[None]]]:
    """Serve `app` over TLS (h2 and http/1.1 by ALPN) on a loopback port: (port, stop)."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config as HyperConfig

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.set_inheritable(True)
    config = HyperConfig()
    config.bind = [f"fd://{sock.fileno()}"]
    config.certfile, config.keyfile = cert_file, key_file
    config.include_server_header = False  # a receiver sends no product banner (cloud/ neither)
    config.include_date_header = False  # the app's own, on the bench's clock
    config.keep_alive_timeout = 86400.0  # idle rules are the proxy's, on the virtual clock
    config.graceful_timeout = 0.5
    config.accesslog = config.errorlog = None
    stopped = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stopped.wait))  # type: ignore[arg-type]

    async def stop() -> None:
        stopped.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5.0)
        with contextlib.suppress(OSError):  # hypercorn closed the descriptor it was handed
            sock.close()

    return sock.getsockname()[1], stop


__all__ = ["IngestApp", "LinkProxy", "LinkTotals", "serve_https", "tcp_info"]
