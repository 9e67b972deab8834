"""The simulated T7470 on the network: one aiocoap server context, every resource, fault injection.

Usage (tests, demo, benchmarks)::

    sim = await Simulator.start(port=0, ping_interval=0.2, seed=1)   # sim.port: the bound port
    sim.create(12, label="Zoë", party_size=3)   # "the keypad": applied and broadcast
    ...
    await sim.stop()

    async with Simulator.running(ping_interval=0.2) as sim: ...

Keypad mutations (:meth:`Simulator.create` etc.) and CoAP requests take the same path: the model
applies the change and returns the notification documents, which are broadcast to every observer
through the :class:`~agent.simulator.notify.Fanout` (where drop/duplicate/reorder faults apply).

Faults: ``drop_rate``, ``duplicate_rate`` and ``reorder_rate`` are plain attributes, changeable at
any time. :meth:`silence` makes the device stop talking (no notifications, no pings — whatever is
produced meanwhile is lost, as across a network outage — and requests wait unanswered until
:meth:`resume`). :meth:`restart` is a reboot: the server context is shut down (observers vanish
without a word, as they would) and recreated on the same port, and the sequence starts again at 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
import time
from collections.abc import AsyncIterator
from datetime import tzinfo
from typing import Any

import aiocoap
from aiocoap import resource

from agent.clock import Clock
from agent.simulator.jsonio import dumps
from agent.simulator.limits import UNSET, Doc, SimError
from agent.simulator.model import Transmitter
from agent.simulator.notify import Fanout, NotifyResource, Outgoing
from agent.simulator.resources import (
    HistoryResource,
    PageResource,
    SessionsResource,
    SettingsResource,
    StatisticsResource,
    T7470Site,
)

log = logging.getLogger("agent.simulator")


def _family(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0][0]


def reserve_port(host: str, port: int) -> int:
    """The port to bind: `port` if free, else OSError; a free one when `port` is 0.

    aiocoap binds with SO_REUSEPORT, so a second simulator on a busy port would silently share it;
    a plain bind first makes "address in use" an error. aiocoap does not report the port it got
    for port 0, hence this throwaway socket.
    """
    with socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
        sock.bind((host, port))
        bound: int = sock.getsockname()[1]
        return bound


class Simulator:
    """A running simulated transmitter. Create with :meth:`start` or :meth:`running`.

    It implements :class:`~agent.simulator.device.Keypad`, the one thing its resources and its
    notifier know of it. Counters: ``notifications_sent``, ``notifications_suppressed`` and
    ``pings_sent`` (the notifier's, see :class:`~agent.simulator.notify.NotifyResource`) and
    ``notifications_dropped`` (by ``drop_rate``; decided per observer).
    """

    def __init__(
        self,
        model: Transmitter,
        *,
        host: str,
        port: int,
        ping_interval: float,
        seed: int,
        drop_rate: float,
        duplicate_rate: float,
        reorder_rate: float,
        initial_chunk: int,
    ):
        self.model = model
        self.host = host
        self.port = port
        self.fanout = Fanout(random.Random(f"t7470-faults:{seed}"), 0.0, 0.0, 0.0)
        self.drop_rate, self.duplicate_rate, self.reorder_rate = (
            drop_rate,
            duplicate_rate,
            reorder_rate,
        )
        self._awake = asyncio.Event()
        self._awake.set()
        self._resume_handle: asyncio.TimerHandle | None = None
        self._ctx: aiocoap.Context | None = None
        self._notify = NotifyResource(
            self, self.fanout, ping_interval=ping_interval, initial_chunk=initial_chunk
        )
        self.site = self._build_site()

    # --- life cycle -----------------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval: float = 30.0,
        seed: int = 0,
        drop_rate: float = 0.0,
        clock: Clock | None = None,
        tz: tzinfo | None = None,
        *,
        duplicate_rate: float = 0.0,
        reorder_rate: float = 0.0,
        initial_chunk: int = 20,
        **model_kwargs: Any,
    ) -> Simulator:
        """Bind and serve: a transmitter whose wall clock shows `clock`'s time in zone `tz` (None:
        the host's zone). `model_kwargs` go to :class:`~agent.simulator.model.Transmitter`
        (``vendor_exact_notifications``, ``vendor_exact_history``, ``start_sequence``, ...)."""
        model = Transmitter(clock, tz, seed=seed, **model_kwargs)
        bound = reserve_port(host, port)
        sim = cls(
            model,
            host=host,
            port=bound,
            ping_interval=ping_interval,
            seed=seed,
            drop_rate=drop_rate,
            duplicate_rate=duplicate_rate,
            reorder_rate=reorder_rate,
            initial_chunk=initial_chunk,
        )
        await sim._bind()
        log.info("T7470 simulator listening on coap://%s:%d", sim.host_for_uri, sim.port)
        return sim

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, *args: Any, **kwargs: Any) -> AsyncIterator[Simulator]:
        sim = await cls.start(*args, **kwargs)
        try:
            yield sim
        finally:
            await sim.stop()

    @property
    def host_for_uri(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def uri(self) -> str:
        return f"coap://{self.host_for_uri}:{self.port}"

    def _build_site(self) -> resource.Site:
        site = T7470Site(self)
        site.add_resource(
            [".well-known", "core"], resource.WKCResource(site.get_resources_as_linkheader)
        )
        site.add_resource(["v1", "sessions"], SessionsResource(self))
        site.add_resource(["v1", "sessions", "history"], HistoryResource(self))
        site.add_resource(["v1", "sessions", "statistics"], StatisticsResource(self))
        site.add_resource(["v1", "settings"], SettingsResource(self))
        site.add_resource(["v1", "page"], PageResource(self))
        site.add_resource(["v1", "notify"], self._notify)
        return site

    async def _bind(self) -> None:
        bind = (self.host, self.port)
        try:
            self._ctx = await aiocoap.Context.create_server_context(
                self.site, bind=bind, transports=["udp6"]
            )
        except OSError as exc:
            # Hosts with IPv6 disabled cannot open udp6's AF_INET6 socket.
            log.warning("udp6 transport unavailable (%s); using simplesocketserver", exc)
            self._ctx = await aiocoap.Context.create_server_context(
                self.site, bind=bind, transports=["simplesocketserver"]
            )

    async def stop(self) -> None:
        """Stop serving; observers are dropped without a word. Idempotent."""
        if self._resume_handle is not None:
            self._resume_handle.cancel()
        self._awake.set()  # let parked requests finish rather than leak
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            await ctx.shutdown()
            log.info("T7470 simulator on port %d stopped", self.port)

    async def restart(self, reset_sequence: bool = True, *, forget: bool = False) -> None:
        """A reboot: every observer is gone, sessions and history survive (unless `forget`), the
        sequence resets."""
        started = time.monotonic()
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            await ctx.shutdown()
        self._notify.reset()
        self.model.restart(reset_sequence=reset_sequence, forget=forget)
        await self._bind()
        log.info(
            "T7470 simulator restarted in %.3f s (sequence %s)",
            time.monotonic() - started,
            "reset" if reset_sequence else "kept",
        )

    # --- faults ---------------------------------------------------------------------------

    @property
    def drop_rate(self) -> float:
        return self.fanout.drop_rate

    @drop_rate.setter
    def drop_rate(self, value: float) -> None:
        self.fanout.drop_rate = _rate(value)

    @property
    def duplicate_rate(self) -> float:
        return self.fanout.duplicate_rate

    @duplicate_rate.setter
    def duplicate_rate(self, value: float) -> None:
        self.fanout.duplicate_rate = _rate(value)

    @property
    def reorder_rate(self) -> float:
        return self.fanout.reorder_rate

    @reorder_rate.setter
    def reorder_rate(self, value: float) -> None:
        self.fanout.reorder_rate = _rate(value)

    @property
    def ping_interval(self) -> float:
        return self._notify.ping_interval

    @property
    def initial_chunk(self) -> int:
        return self._notify.initial_chunk

    @property
    def notifications_sent(self) -> int:
        return self._notify.notifications_sent

    @property
    def notifications_suppressed(self) -> int:
        return self._notify.notifications_suppressed

    @property
    def pings_sent(self) -> int:
        return self._notify.pings_sent

    @property
    def notifications_dropped(self) -> int:
        return self.fanout.dropped

    @property
    def observer_count(self) -> int:
        return len(self.fanout.observers)

    @property
    def awake(self) -> bool:
        return self._awake.is_set()

    async def wait_awake(self) -> None:
        await self._awake.wait()

    def silence(self, seconds: float | None = None) -> None:
        """Stop answering (for `seconds`, or until :meth:`resume`)."""
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None
        self._awake.clear()
        if seconds is not None:
            self._resume_handle = asyncio.get_running_loop().call_later(seconds, self.resume)
        log.info("simulator silenced%s", f" for {seconds} s" if seconds is not None else "")

    def resume(self) -> None:
        if self._resume_handle is not None:
            self._resume_handle.cancel()
            self._resume_handle = None
        if not self._awake.is_set():
            self._awake.set()
            log.info("simulator answering again")

    def inject_raw(self, payload: bytes) -> None:
        """Send `payload` as-is as a notification to every observer (malformed-input tests).
        Never dropped; larger than one block it goes Block2-wise."""
        self.fanout.broadcast(Outgoing("raw", bytes(payload)), faults=False)

    # --- the keypad: mutations applied and broadcast ---------------------------------------

    def _broadcast(self, docs: list[Doc]) -> list[Doc]:
        for doc in docs:
            self.fanout.broadcast(Outgoing("data", dumps(doc)))
        return docs

    def create(
        self, number: int, goal: int | None = None, label: str | None = None, party_size: int = 1
    ) -> list[Doc]:
        docs = self.model.create(number, goal=goal, label=label, party_size=party_size)
        log.info("pager %d: session created (party of %d)", number, party_size)
        return self._broadcast(docs)

    def update(
        self,
        number: int,
        goal: int | None = None,
        label: str | None = UNSET,
        party_size: int | None = None,
    ) -> list[Doc]:
        docs = self.model.update(number, goal=goal, label=label, party_size=party_size)
        log.info("pager %d: session updated", number)
        return self._broadcast(docs)

    def page(self, number: int, page_mode: str | None = None) -> list[Doc]:
        docs = self.model.page(number, page_mode=page_mode)
        log.info("pager %d: paged (%s)", number, page_mode or "default mode")
        return self._broadcast(docs)

    def clear(self, number: int) -> list[Doc]:
        docs = self.model.clear(number)
        log.info("pager %d: session cleared (STOP)", number)
        return self._broadcast(docs)

    def remove(self, number: int) -> list[Doc]:
        docs = self.model.remove(number)
        log.info("pager %d: session removed (REMOVED)", number)
        return self._broadcast(docs)

    def clear_all(self) -> list[Doc]:
        docs = self.model.clear_all()
        log.info("all %d active sessions cleared", len(docs))
        return self._broadcast(docs)

    def reset_statistics(self) -> list[Doc]:
        log.info("statistics reset")
        return self._broadcast(self.model.reset_statistics())

    def set_settings(self, **subset: Any) -> list[Doc]:
        docs = self.model.set_settings(**subset)
        log.info("settings changed: %s", ", ".join(sorted(subset)))
        return self._broadcast(docs)

    def standalone_page(
        self,
        number: int,
        page_mode: str | None = None,
        message: str | None = None,
        system_id: int | None = None,
    ) -> list[Doc]:
        docs = self.model.standalone_page(number, page_mode, message, system_id)
        log.info("pager %d: standalone page", number)
        return self._broadcast(docs)

    def ground_truth(self) -> list[Doc]:
        return self.model.ground_truth()


def _rate(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"a rate must be within 0–1, got {value}")
    return float(value)


__all__ = ["SimError", "Simulator", "reserve_port"]
