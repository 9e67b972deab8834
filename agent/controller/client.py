"""The T7470 CoAP client: every request bounded by a timeout, every failure a readable error.

aiocoap gives a CON request ~93 s before it gives up, which is far too long for a host pressing a
key, so each call is wrapped in :func:`asyncio.timeout`. The board imports this module to act on the
transmitter; the agent uses it for resyncs. One aiocoap ``Context`` per process is created by
:func:`create_context` and shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiocoap
from aiocoap import Code, Message
from aiocoap.numbers.contentformat import ContentFormat

from agent.config import Config
from agent.controller.protocol import Document, ProtocolError, compact, parse_document, session_body

log = logging.getLogger(__name__)
JSON = ContentFormat.JSON
# Answers to GETs (history grows through the day) may be far larger than a notification; they
# arrive blockwise. The notification limit is `[controller] max_payload_bytes`.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


class ControllerError(Exception):
    """The transmitter refused a request (a 4.xx/5.xx answer). `code` is e.g. "4.04"."""

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.code = code


class ControllerUnreachable(ControllerError):
    """No answer in time, or the network said no."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: str
    payload: bytes
    etag: bytes | None
    document: Document | None


async def create_context(transport: str = "") -> aiocoap.Context:
    """The process's single client context: CoAP over UDP, what the transmitter speaks
    (`transport="simple6"` for hosts without IPv6). Named, not aiocoap's default list: that
    one probes for OSCORE, DTLS, TCP, TLS and WebSockets, and loading `cryptography` for the
    probe alone cost the agent ≈ 8 MB of RSS."""
    return await aiocoap.Context.create_client_context(transports=[transport or "udp6"])


def _error_text(payload: bytes) -> str:
    """The readable part of an error body (JSON with an error/message key, or plain text)."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return payload[:200].decode("utf-8", "replace").strip()
    if isinstance(body, dict):
        for key in ("error", "message", "errorMessage", "detail"):
            if isinstance(text := body.get(key), str):
                return text[:200]
    return json.dumps(body)[:200]


_FRIENDLY = {
    "4.04": "no active session with that pager number",
    "4.00": "the transmitter rejected the request",
    "4.09": "that pager is already in use",
}


class ControllerClient:
    def __init__(
        self,
        context: aiocoap.Context,
        host: str,
        port: int = 5683,
        *,
        timeout: float = 5.0,
        page_mode: str = "Flash30Sec",
    ):
        self.context = context
        self.host = host
        self.port = port
        self.timeout = timeout
        self.page_mode = page_mode
        host_part = f"[{host}]" if ":" in host else host
        self.base = f"coap://{host_part}:{port}"

    def uri(self, path: str, query: str = "") -> str:
        return f"{self.base}{path}" + (f"?{query}" if query else "")

    async def request(
        self,
        method: Code,
        path: str,
        *,
        query: str = "",
        payload: bytes = b"",
        etag: bytes | None = None,
        timeout: float | None = None,
    ) -> Reply:
        msg = Message(code=method, uri=self.uri(path, query), payload=payload)
        if payload:
            msg.opt.content_format = JSON
        if etag is not None:
            msg.opt.etags = (etag,)
        req = self.context.request(msg)
        try:
            resp = await first_answer(req, timeout or self.timeout)
        except TimeoutError:
            raise ControllerUnreachable(
                f"no answer from the transmitter at {self.host}:{self.port} "
                f"within {timeout or self.timeout:g} s"
            ) from None
        except aiocoap.error.Error as exc:
            raise ControllerUnreachable(
                f"cannot reach the transmitter at {self.host}:{self.port}: {exc}"
            ) from None
        code = resp.code.dotted
        if not resp.code.is_successful():
            detail = _error_text(resp.payload)
            friendly = _FRIENDLY.get(code)
            text = f"{friendly} ({code}: {detail})" if friendly else f"{code}: {detail}"
            raise ControllerError(text, code=code)
        doc = None
        if resp.payload:
            try:
                doc = parse_document(resp.payload, max_bytes=MAX_RESPONSE_BYTES)
            except ProtocolError as exc:
                raise ControllerError(f"unreadable answer from the transmitter: {exc}") from None
        return Reply(code, resp.payload, resp.opt.etag, doc)

    # reads ---------------------------------------------------------------------------------

    async def get_sessions(self, etag: bytes | None = None) -> Reply:
        """All active sessions; with `etag`, an unchanged list answers 2.03 with no document."""
        return await self.request(Code.GET, "/v1/sessions", etag=etag)

    async def get_session(self, number: int) -> Document:
        return _doc(await self.request(Code.GET, "/v1/sessions", query=f"number={number}"))

    async def get_history(self) -> Document:
        return _doc(await self.request(Code.GET, "/v1/sessions/history"))

    async def get_statistics(self) -> Document:
        return _doc(await self.request(Code.GET, "/v1/sessions/statistics"))

    async def get_settings(self) -> Document:
        return _doc(await self.request(Code.GET, "/v1/settings"))

    # actions -------------------------------------------------------------------------------

    async def create_session(
        self,
        number: int,
        *,
        goal: int | None = None,
        label: str | None = None,
        party_size: int | None = None,
    ) -> Reply:
        body = session_body(number=number, goal=goal, label=label, party_size=party_size)
        return await self.request(Code.POST, "/v1/sessions", payload=body)

    async def update_session(
        self,
        number: int,
        *,
        goal: int | None = None,
        label: str | None = None,
        party_size: int | None = None,
    ) -> Reply:
        body = session_body(goal=goal, label=label, party_size=party_size)
        return await self.request(Code.PUT, "/v1/sessions", query=f"number={number}", payload=body)

    async def page(self, number: int, page_mode: str | None = None) -> Reply:
        body = session_body(action="page", page_mode=page_mode or self.page_mode)
        return await self.request(Code.PUT, "/v1/sessions", query=f"number={number}", payload=body)

    async def clear(self, number: int) -> Reply:
        """Seat the party: ends the session as STOP."""
        body = session_body(action="clear")
        return await self.request(Code.PUT, "/v1/sessions", query=f"number={number}", payload=body)

    async def remove(self, number: int) -> Reply:
        """Remove the party (walk-away, mistake): ends the session as REMOVED."""
        return await self.request(Code.DELETE, "/v1/sessions", query=f"number={number}")

    async def clear_all(self) -> Reply:
        return await self.request(Code.DELETE, "/v1/sessions")

    async def set_settings(self, **settings: Any) -> Reply:
        return await self.request(Code.POST, "/v1/settings", payload=compact(settings))

    async def page_pager(
        self, number: int, *, page_mode: str | None = None, message: str | None = None
    ) -> Reply:
        """``POST /v1/page``: page any pager without a session (a staff pager, or a guest pager
        to find it)."""
        body: dict[str, Any] = {"number": number, "pageMode": page_mode or self.page_mode}
        if message is not None:
            body["message"] = message
        return await self.request(Code.POST, "/v1/page", payload=compact(body))

    # observation ---------------------------------------------------------------------------

    def observe(
        self,
        on_payload: Callable[[bytes], None],
        on_end: Callable[[Exception | None], None],
        *,
        path: str = "/v1/notify",
        query: str = "action=get_sessions",
    ) -> aiocoap.protocol.Request:
        """Register an observer. Every notification is handed to `on_payload` synchronously.

        The callback route matters: aiocoap's ``async for`` iterator keeps one pending
        notification, so anything slower than the sender loses notifications silently.
        """
        msg = Message(code=Code.GET, uri=self.uri(path, query), observe=0)
        req = self.context.request(msg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            req.observation.register_callback(lambda m: on_payload(m.payload))
            req.observation.register_errback(on_end)
        return req


async def first_answer(req: aiocoap.protocol.Request, seconds: float) -> Message:
    """The first answer to `req` within `seconds`, else TimeoutError.

    Shielded on purpose: a timeout or a cancelled caller must not cancel aiocoap's own response
    future. aiocoap 0.4 learns of that cancellation one turn of the loop later, and an answer
    arriving in between is set on the cancelled future: an InvalidStateError traceback from its
    receive path (seen under load in `bench ingest`). Left alone, the exchange ends by aiocoap's
    rules, and a late answer (or aiocoap's own error, e.g. at shutdown) is read here and dropped.
    """
    req.response.add_done_callback(_read_quietly)
    async with asyncio.timeout(seconds):
        return await asyncio.shield(req.response)


def _read_quietly(response: asyncio.Future[Message]) -> None:
    if not response.cancelled():
        response.exception()  # retrieved: no "Future exception was never retrieved"


def client_for(cfg: Config, context: aiocoap.Context) -> ControllerClient:
    """The transmitter's client as `[controller]` describes it."""
    c = cfg.controller
    return ControllerClient(
        context, c.host, c.port, timeout=c.request_timeout, page_mode=c.page_mode
    )


@contextlib.asynccontextmanager
async def connected(cfg: Config) -> AsyncIterator[ControllerClient]:
    """A client with the process's one aiocoap context, shut down when done (commands, board)."""
    context = await create_context(cfg.controller.transport)
    try:
        yield client_for(cfg, context)
    finally:
        await context.shutdown()


def _doc(reply: Reply) -> Document:
    if reply.document is None:
        raise ControllerError(f"empty answer ({reply.code}) where a document was expected")
    return reply.document
