"""The ``/v1/notify`` event stream: one queue per observer, pings, eviction, fault injection.

Why not aiocoap's ``ObservableResource``: its ``ServerObservation.trigger`` is a single slot, so a
burst of changes collapses into one notification. The real device sends one notification per
change, and a client's gap detection must be tested against exactly that. So each observer here is
a ``render_to_pipe`` coroutine draining its own :class:`asyncio.Queue`, adding one response per
notification with increasing Observe numbers.

Reliability and eviction. Data notifications go out with the registration's type (CON for a CON
registration, aiocoap's default) and pings always as CON. Both use transport tunings whose retransmissions give up
after three ping intervals, at which point aiocoap fails every exchange with that remote, which
ends the observation (the render task is cancelled and the ``finally`` cleans up). So an observer
that stops acknowledging is evicted ``3 × ping_interval`` after the first unacknowledged CON — with
no data traffic, that is the first unacknowledged ping, i.e. three missed pings. Remember
aiocoap's NSTART=1: later CONs to that remote wait behind the unacknowledged one.

Measured on loopback (a raw socket that registers and never ACKs):

* P = 1.0 s, no data: ping at 1.005 s, its retransmission at 2.009 s, evicted at 4.009 s after
  registration (3.0 P after the first ping); P = 0.2 s: evicted at 0.81 s.
* P = 1.0 s, a change at 0.503 s: that notification is retransmitted at 0.60, 0.80, 1.18 and
  1.96 s and the observer is evicted at 3.509 s (3.0 P after the notification).

A client that cancels is noticed at the next CON (answered with RST), and one that deregisters
(libcoap at the end of ``-s``: a new request on the same token) at once.

Block size. A notification is sent as one datagram when it fits one block (1024 bytes of payload);
the initial session list is cut into chunks that fit (at most ``initial_chunk`` sessions each). A
larger notification (only :meth:`inject_raw` produces one) is sent Block2-wise: block 0 as the
notification, the rest served to the client's follow-up ``GET`` requests. The observer waits (up to
one ping interval) for that transfer to finish before sending the next notification, because
aiocoap's client holds a single pending notification while it fetches blocks.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import aiocoap
from aiocoap import resource
from aiocoap.numbers import TransportTuning
from aiocoap.numbers.contentformat import ContentFormat

from agent.simulator.device import Device
from agent.simulator.jsonio import dumps
from agent.simulator.replies import error_message

log = logging.getLogger("agent.simulator")

OBSERVE_MODULUS = 1 << 24
Kind = Literal["data", "chunk", "raw", "ping"]


class PingTuning(TransportTuning):
    """CON pings: one retransmission after a ping interval, give up two intervals later (3 P)."""

    ACK_RANDOM_FACTOR = 1.0
    MAX_RETRANSMIT = 1

    def __init__(self, ping_interval: float):
        self.ACK_TIMEOUT = ping_interval


class DataTuning(TransportTuning):
    """CON data notifications: prompt retransmissions (like CoAP's defaults) that also give up
    after exactly three ping intervals: ACK_TIMEOUT × (2⁵ − 1) = 3 P."""

    ACK_RANDOM_FACTOR = 1.0
    MAX_RETRANSMIT = 4

    def __init__(self, ping_interval: float):
        self.ACK_TIMEOUT = 3 * ping_interval / 31


@dataclass(frozen=True, slots=True)
class Outgoing:
    kind: Kind
    payload: bytes = b""  # rendered at send time for pings (they carry the current sequence)


PING = Outgoing("ping")


@dataclass(eq=False)
class Observer:
    id: int
    remote: str
    queue: asyncio.Queue[Outgoing] = field(default_factory=asyncio.Queue)
    held: Outgoing | None = None  # a notification held back by reorder injection
    observe: int = 0
    since: float = field(default_factory=time.monotonic)
    pings_sent: int = 0

    def next_observe(self) -> int:
        self.observe = (self.observe + 1) % OBSERVE_MODULUS
        return self.observe


class Fanout:
    """Hands each broadcast to every observer's queue, applying the injected faults.

    Decisions are made synchronously at broadcast time with a seeded RNG, in observer registration
    order, so a scripted run drops/duplicates/reorders the same notifications every time.
    """

    def __init__(
        self, rng: random.Random, drop_rate: float, duplicate_rate: float, reorder_rate: float
    ):
        self.rng = rng
        self.drop_rate = drop_rate
        self.duplicate_rate = duplicate_rate
        self.reorder_rate = reorder_rate
        self.observers: dict[int, Observer] = {}
        self._ids = itertools.count(1)
        self.dropped = 0
        self.duplicated = 0
        self.reordered = 0

    def register(self, remote: str) -> Observer:
        obs = Observer(next(self._ids), remote)
        self.observers[obs.id] = obs
        return obs

    def unregister(self, obs: Observer) -> None:
        self.observers.pop(obs.id, None)

    def broadcast(self, out: Outgoing, *, faults: bool = True) -> None:
        for obs in list(self.observers.values()):
            if faults and self.drop_rate and self.rng.random() < self.drop_rate:
                self.dropped += 1
                continue
            copies = 1
            if faults and self.duplicate_rate and self.rng.random() < self.duplicate_rate:
                copies = 2
                self.duplicated += 1
            for _ in range(copies):
                self._enqueue(obs, out, faults=faults)

    def _enqueue(self, obs: Observer, out: Outgoing, *, faults: bool) -> None:
        if obs.held is not None:
            obs.queue.put_nowait(out)
            obs.queue.put_nowait(obs.held)
            obs.held = None
        elif faults and self.reorder_rate and self.rng.random() < self.reorder_rate:
            obs.held = out
            self.reordered += 1
        else:
            obs.queue.put_nowait(out)

    def flush_held(self, obs: Observer) -> None:
        """A held-back notification goes out late rather than never (before the next ping)."""
        if obs.held is not None:
            obs.queue.put_nowait(obs.held)
            obs.held = None


@dataclass(eq=False)
class _Transfer:
    message: aiocoap.Message
    done: asyncio.Event = field(default_factory=asyncio.Event)


def _transfer_key(request: aiocoap.Message) -> tuple[Any, ...]:
    return (request.remote.blockwise_key, tuple(request.opt.uri_query))


def _query(request: aiocoap.Message) -> dict[str, str]:
    out = {}
    for item in request.opt.uri_query:
        key, _, value = item.partition("=")
        out[key] = value
    return out


class NotifyResource(resource.Resource):
    """``GET /v1/notify[?action=get_sessions]``: with Observe=0 an event stream, else one answer.

    Every observer registers with `fanout`, which the device's broadcasts go through. Counters:
    ``notifications_sent`` (data and injected notifications handed to an observer, duplicates
    included; not pings, not the initial session chunks), ``notifications_suppressed`` (produced
    while the device was silenced), ``pings_sent``.
    """

    def __init__(self, device: Device, fanout: Fanout, *, ping_interval: float, initial_chunk: int):
        if ping_interval <= 0:
            raise ValueError("ping_interval must be positive")
        if initial_chunk < 1:
            raise ValueError("initial_chunk must be at least 1")
        super().__init__()
        self.device = device
        self.fanout = fanout
        self.ping_interval = ping_interval
        self.initial_chunk = initial_chunk
        self.ping_tuning = PingTuning(ping_interval)
        self.data_tuning = DataTuning(ping_interval)
        self.notifications_sent = 0
        self.notifications_suppressed = 0
        self.pings_sent = 0
        self._transfers: dict[tuple[Any, ...], _Transfer] = {}

    def get_link_description(self) -> dict[str, Any]:
        return {**super().get_link_description(), "obs": None, "ct": "50"}

    def reset(self) -> None:
        """A reboot: every observer and every unfinished blockwise transfer is gone."""
        self.fanout.observers.clear()
        self._transfers.clear()

    def _error(self, code: str, message: str) -> aiocoap.Message:
        return error_message(self.device.model, code, message)

    # --- plain requests -------------------------------------------------------------------

    def _action(self, request: aiocoap.Message) -> str | None:
        query = _query(request)
        unknown = set(query) - {"action"}
        action = query.get("action")
        if unknown or action not in (None, "get_sessions"):
            return "invalid"
        return action

    async def render_to_pipe(self, pipe: Any) -> None:
        await self.device.wait_awake()
        request = pipe.request
        if request.code == aiocoap.GET and request.opt.observe == 0:
            if self._action(request) == "invalid":
                pipe.add_response(self._error("4.00", "unknown query"), is_last=True)
                return
            await self._observe(pipe)
            return
        block2 = request.opt.block2
        if request.code == aiocoap.GET and block2 is not None and block2.block_number > 0:
            transfer = self._transfers.get(_transfer_key(request))
            if transfer is not None:
                pipe.add_response(self._serve_block(request, transfer), is_last=True)
                return
        await super().render_to_pipe(pipe)

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        action = self._action(request)
        if action == "invalid":
            return self._error("4.00", "unknown query")
        model = self.device.model
        doc = model.sessions_document() if action == "get_sessions" else model.metadata_document()
        return aiocoap.Message(payload=dumps(doc), content_format=ContentFormat.JSON)

    def _serve_block(self, request: aiocoap.Message, transfer: _Transfer) -> aiocoap.Message:
        block2 = request.opt.block2
        try:
            part = transfer.message._extract_block(
                block2.block_number, block2.size_exponent, request.remote.maximum_payload_size
            )
        except aiocoap.error.BadRequest:
            return self._error("4.00", "block out of range")
        if not part.opt.block2.more:
            transfer.done.set()
            self._transfers.pop(_transfer_key(request), None)
        part.opt.observe = None
        return part

    # --- the observation ------------------------------------------------------------------

    def _initial(self, request: aiocoap.Message) -> list[bytes]:
        """The first answer and any follow-up chunks, each fitting one block."""
        model = self.device.model
        if self._action(request) != "get_sessions":
            return [dumps(model.metadata_document())]
        limit = request.remote.maximum_payload_size
        sessions = model.active_sessions()
        chunks: list[bytes] = []
        start = 0
        while True:
            size = min(self.initial_chunk, len(sessions) - start)
            payload = dumps(model.sessions_chunk(sessions[start : start + size]))
            while size > 1 and len(payload) > limit:
                size -= 1
                payload = dumps(model.sessions_chunk(sessions[start : start + size]))
            chunks.append(payload)
            start += size
            if start >= len(sessions):
                return chunks

    async def _observe(self, pipe: Any) -> None:
        request = pipe.request
        obs = self.fanout.register(getattr(request.remote, "hostinfo", str(request.remote)))
        log.info("observer %d registered from %s", obs.id, obs.remote)
        ticker: asyncio.Task[None] | None = None
        try:
            first, *rest = self._initial(request)
            for payload in rest:
                obs.queue.put_nowait(Outgoing("chunk", payload))
            msg = self._message(request, Outgoing("chunk", first))
            msg.opt.observe = 0
            pipe.add_response(msg, is_last=False)
            ticker = asyncio.create_task(self._pinger(obs), name=f"sim-pinger-{obs.id}")
            while True:
                out = await obs.queue.get()
                if not self.device.awake:
                    if out.kind != "ping":
                        self.notifications_suppressed += 1
                    continue
                await self._send(pipe, obs, out)
        finally:
            if ticker is not None:
                ticker.cancel()
            self.fanout.unregister(obs)
            log.info(
                "observer %d from %s ended after %.2f s",
                obs.id,
                obs.remote,
                time.monotonic() - obs.since,
            )

    async def _pinger(self, obs: Observer) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            if self.device.awake:
                self.fanout.flush_held(obs)
                obs.queue.put_nowait(PING)

    def _message(self, request: aiocoap.Message, out: Outgoing) -> aiocoap.Message:
        if out.kind == "ping":
            payload = dumps(self.device.model.ping_document())
            tuning: TransportTuning = self.ping_tuning
        else:
            payload, tuning = out.payload, self.data_tuning
        msg = aiocoap.Message(
            code=aiocoap.CONTENT,
            payload=payload,
            content_format=ContentFormat.JSON,
            transport_tuning=tuning,
        )
        if out.kind == "ping":
            msg.mtype = aiocoap.CON
        return msg

    async def _send(self, pipe: Any, obs: Observer, out: Outgoing) -> None:
        request = pipe.request
        msg = self._message(request, out)
        transfer = None
        if len(msg.payload) > request.remote.maximum_payload_size:
            transfer = _Transfer(msg)
            msg.opt.etag = hashlib.sha1(msg.payload).digest()[:8]
            self._transfers[_transfer_key(request)] = transfer
            szx = request.remote.maximum_block_size_exp
            if request.opt.block2 is not None:
                szx = min(szx, request.opt.block2.size_exponent)
            block = msg._extract_block(0, szx, request.remote.maximum_payload_size)
            block.mtype, block.transport_tuning = msg.mtype, msg.transport_tuning
            msg = block
        msg.opt.observe = obs.next_observe()
        pipe.add_response(msg, is_last=False)
        if out.kind == "ping":
            obs.pings_sent += 1
            self.pings_sent += 1
        elif out.kind in ("data", "raw"):
            self.notifications_sent += 1
        if transfer is not None:
            try:
                await asyncio.wait_for(transfer.done.wait(), self.ping_interval)
            except TimeoutError:
                log.info("observer %d did not fetch a blockwise notification", obs.id)
