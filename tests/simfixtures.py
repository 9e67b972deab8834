"""Helpers for the simulator tests: a started simulator, a real aiocoap client, observations.

Plain async context managers and functions rather than pytest fixtures, so each test says exactly
which simulator options it runs with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from zoneinfo import ZoneInfo

import aiocoap

from agent.clock import VirtualClock
from agent.simulator.server import Simulator

ZONE = ZoneInfo("America/New_York")
PING = 0.2


@contextlib.asynccontextmanager
async def sim_and_client(
    **kwargs: Any,
) -> AsyncIterator[tuple[Simulator, aiocoap.Context, VirtualClock]]:
    """A simulator on a free loopback port with a virtual clock, plus a client context."""
    clock = kwargs.pop("clock", None) or VirtualClock()
    kwargs.setdefault("ping_interval", PING)
    kwargs.setdefault("tz", ZONE)
    sim = await Simulator.start(clock=clock, **kwargs)
    ctx = await aiocoap.Context.create_client_context()
    try:
        yield sim, ctx, clock
    finally:
        await ctx.shutdown()
        await sim.stop()


async def request(
    ctx: aiocoap.Context,
    sim: Simulator,
    method: aiocoap.Code,
    path: str,
    payload: bytes | dict[str, Any] = b"",
    *,
    etag: bytes | None = None,
    timeout: float = 3.0,
) -> aiocoap.Message:
    """One request with a timeout; a dict payload is sent as compact JSON."""
    if isinstance(payload, dict):
        payload = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    msg = aiocoap.Message(code=method, uri=sim.uri + path, payload=payload)
    if payload:
        msg.opt.content_format = 50
    if etag is not None:
        msg.opt.etags = (etag,)
    return await asyncio.wait_for(ctx.request(msg).response, timeout)


def doc(msg: aiocoap.Message) -> dict[str, Any]:
    return json.loads(msg.payload.decode("utf-8"))


async def eventually(
    predicate: Callable[[], bool], timeout: float = 3.0, step: float = 0.01
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


class Observation:
    """An observation of ``/v1/notify`` that records every notification.

    It uses aiocoap's callback interface on purpose: the ``async for`` interface holds a single
    pending notification and would make a correct server look lossy.
    """

    def __init__(
        self, ctx: aiocoap.Context, sim: Simulator, path: str = "/v1/notify?action=get_sessions"
    ):
        self.ctx, self.sim, self.path = ctx, sim, path
        self.first: aiocoap.Message | None = None
        self.messages: list[aiocoap.Message] = []
        self.errors: list[Exception] = []
        self._request: Any = None

    async def __aenter__(self) -> Observation:
        msg = aiocoap.Message(code=aiocoap.GET, uri=self.sim.uri + self.path, observe=0)
        self._request = self.ctx.request(msg)
        self.first = await asyncio.wait_for(self._request.response, 3.0)
        obs = self._request.observation
        obs.register_callback(self.messages.append, _suppress_deprecation=True)
        obs.register_errback(self.errors.append, _suppress_deprecation=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cancel()

    def cancel(self) -> None:
        if self._request is not None and not self._request.observation.cancelled:
            self._request.observation.cancel()

    @property
    def docs(self) -> list[dict[str, Any]]:
        return [doc(m) for m in self.messages]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if kind in d["responseTypes"]]

    async def wait(self, predicate: Callable[[Observation], bool], timeout: float = 3.0) -> None:
        await eventually(lambda: predicate(self), timeout)
