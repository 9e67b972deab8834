"""The sync's connection below HTTP: bytes counted as the link carries them, one TLS record per
request, TLS sessions resumed.

httpx speaks HTTP/1.1 or HTTP/2 (ALPN) through httpcore, which writes a request in several small
pieces — the head, the body and, in HTTP/2, an empty DATA frame that ends the stream. On the socket
each would be its own TLS record (+22 bytes) and TCP segment (+40 bytes of TCP/IP headers). Here
writes are held until the connection next reads (or closes), so a request leaves as one record in
as few segments as the path's MSS allows; a write made while a read waits goes out at once.

TLS is done here (``ssl.MemoryBIO`` + ``SSLObject``, the standard library's own machinery) rather
than by anyio's TLS stream, for what that stream does not offer:

* **resumption** — the newest session ticket the server handed out is offered on the next
  connection (``SSLContext.wrap_bio(session=…)``; httpx and httpcore take no ``session``), so a
  connection lost to a NAT's idle timeout costs an abbreviated handshake, without the certificate
  chain;
* **counting** — every byte written to or read from the TCP socket, handshakes and TLS records
  included (:class:`LinkCounter`); over plain ``http://`` it is exactly the HTTP bytes. TCP/IP
  headers are not in it: the kernel adds them (``pager-edge bench sync`` counts them).

httpcore is a dependency of its own (``pyproject.toml``, the range httpx 0.28 requires), not reached
through httpx: httpx's public transport API (``AsyncBaseTransport.handle_async_request``) sits above
the connection pool and sees requests, never the socket, so counting bytes and offering a TLS session
need the network backend httpcore's pool takes. Moving the seam up would mean writing HTTP/1.1 and
HTTP/2 connection handling again.

No ``close_notify`` is sent when a connection closes (as anyio with ``standard_compatible=False``,
httpcore's choice): the HTTP framing already says where each answer ends.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

READ_SIZE = 65536


@dataclass
class LinkCounter:
    """Totals over every connection of one engine (the engine takes differences per request)."""

    sent: int = 0
    received: int = 0
    connections: int = 0
    resumed: int = 0  # TLS handshakes that resumed a session
    sessions: dict[str, ssl.SSLSession] = field(default_factory=dict)  # server name → newest


class _Counted(httpcore.AsyncNetworkStream):
    """A TCP stream that counts what crosses it and holds writes until the next read."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, counter: LinkCounter):
        self._inner = inner
        self._counter = counter
        self._held = bytearray()
        self._reading = 0
        self.closed = False

    async def flush(self, timeout: float | None = None) -> None:
        if self._held:
            data = bytes(self._held)
            self._held.clear()
            await self._inner.write(data, timeout)
            self._counter.sent += len(data)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._held += buffer
        if self._reading:  # someone waits for an answer: this cannot wait for them
            await self.flush(timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self.flush(timeout)
        self._reading += 1
        try:
            data = await self._inner.read(max_bytes, timeout)
        finally:
            self._reading -= 1
        self._counter.received += len(data)
        return data

    async def aclose(self) -> None:
        self._held.clear()  # nothing held matters once the connection goes (see module doc)
        self.closed = True
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        tls = _TLS(self, ssl_context, server_hostname or "", self._counter)
        try:
            await tls.handshake(timeout)
        except BaseException:
            await self.aclose()
            raise
        return tls

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _TLS(httpcore.AsyncNetworkStream):
    """TLS over a :class:`_Counted` stream, resuming the last session for the same server."""

    def __init__(
        self, raw: _Counted, ctx: ssl.SSLContext, hostname: str, counter: LinkCounter
    ) -> None:
        self._raw = raw
        self._hostname = hostname
        self._counter = counter
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._session = counter.sessions.get(hostname)
        self._obj = ctx.wrap_bio(
            self._in, self._out, server_hostname=hostname or None, session=self._session
        )

    async def _send(self, timeout: float | None) -> None:
        data = self._out.read()
        if data:
            await self._raw.write(data, timeout)

    async def _receive(self, timeout: float | None) -> bool:
        data = await self._raw.read(READ_SIZE, timeout)
        if not data:
            self._in.write_eof()
            return False
        self._in.write(data)
        return True

    async def handshake(self, timeout: float | None) -> None:
        while True:
            try:
                self._obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._send(timeout)
                if not await self._receive(timeout):
                    raise httpcore.ConnectError(
                        "connection closed during the TLS handshake"
                    ) from None
            except ssl.SSLError as exc:
                raise httpcore.ConnectError(str(exc)) from None
        await self._send(timeout)  # the client's Finished: held, it goes with the first request
        if self._session is not None and self._obj.session_reused:
            self._counter.resumed += 1
        self._remember()

    def _remember(self) -> None:
        """Keep the newest resumable session (TLS 1.3 tickets arrive after the handshake)."""
        session = self._obj.session
        if session is not None and session.has_ticket and session is not self._session:
            self._session = self._counter.sessions[self._hostname] = session

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        while True:
            try:
                data = self._obj.read(max_bytes)
            except ssl.SSLWantReadError:
                await self._send(timeout)
                if not await self._receive(timeout):
                    return b""
                continue
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLError as exc:
                raise httpcore.ReadError(str(exc)) from None
            self._remember()
            await self._send(timeout)  # anything TLS itself wants to say (a key update)
            return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._obj.write(buffer)
        except ssl.SSLError as exc:
            raise httpcore.WriteError(str(exc)) from None
        await self._send(timeout)

    async def aclose(self) -> None:
        await self._raw.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("TLS in TLS (an https proxy) is not supported")

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._obj
        return self._raw.get_extra_info(info)


class LinkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, with every connection counted, coalesced and TLS-resumed."""

    def __init__(self, counter: LinkCounter):
        self.counter = counter
        self._inner = httpcore.AnyIOBackend()
        self._last: _Counted | None = None

    def peer_closed(self) -> bool:
        """Whether the newest connection, idle now, has something to read: the server closed it
        (or said goodbye). HTTP/2 in httpcore does not look before reusing a connection, so the
        engine asks before each request instead of losing one to a dead connection."""
        last = self._last
        return last is not None and not last.closed and bool(last.get_extra_info("is_readable"))

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        self.counter.connections += 1
        self._last = _Counted(stream, self.counter)
        return self._last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("the sync link is TCP")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def ssl_context(ca_file: str = "") -> ssl.SSLContext:
    """Certificate-verifying client context: `ca_file`'s CAs, else certifi's (as httpx)."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class LinkTransport(httpx.AsyncHTTPTransport):
    """An httpx transport (one connection, HTTP/2 when the server offers it) over
    :class:`LinkBackend`.

    httpx builds its httpcore pool itself and takes no network backend; the pool is built again
    here with the same arguments plus the backend (httpx is pinned to 0.28.x, whose transport
    keeps it in ``_pool``).
    """

    def __init__(
        self, counter: LinkCounter, *, verify: ssl.SSLContext, http2: bool, keepalive_expiry: float
    ):
        super().__init__(verify=verify, http2=http2, trust_env=False)
        self.backend = LinkBackend(counter)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            max_connections=1,
            max_keepalive_connections=1,
            keepalive_expiry=keepalive_expiry,
            http1=True,
            http2=http2,
            retries=0,
            network_backend=self.backend,
        )


__all__ = ["LinkBackend", "LinkCounter", "LinkTransport", "ssl_context"]
