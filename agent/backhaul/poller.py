"""The backhaul poller: asks the operator as often as the figures can change, and no more.

Schedule: the session (online, IP) every ``session_interval`` (5–15 min), usage every
``usage_interval`` (15–60 min). What happens after a failed call depends on its reaction:

- network failure (no answer): the link the API is reached over is probably down. Pause: nothing
  is asked until a probe after 1, 2, 4 … min (capped at the session interval) gets an answer.
- ``backoff`` (rate limit): every interval is stretched ×2 (up to ×8); each success halves it.
- ``retry_later`` / ``relogin`` that could not be fixed by one renewal: ask again next interval.
- ``stop`` (credentials, allowed-IP range, unknown SIM, ThingSpace login refused): report it once
  and never ask again in this process. ``run()`` then waits for ever instead of returning, because
  the task supervisor restarts tasks that return — which here would mean retrying a refused login.

Every poll, successful or not, produces a :class:`Reading` for ``on_reading`` (the store); a
failure keeps the last figures and marks ``online`` unknown.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal, Protocol

from agent.backhaul.reading import (
    Budget,
    NetworkFailure,
    OperatorError,
    Reading,
    SessionInfo,
    UsageInfo,
)
from agent.clock import SYSTEM_CLOCK, Clock
from agent.config import BackhaulConfig

log = logging.getLogger(__name__)

Kind = Literal["session", "usage"]
KINDS: tuple[Kind, ...] = ("session", "usage")
PAUSE_FIRST = 60.0  # first probe after a network failure
MAX_SLOWDOWN = 8.0


class OperatorClient(Protocol):
    provider: str

    async def session(self) -> SessionInfo: ...

    async def usage(self) -> UsageInfo: ...

    async def aclose(self) -> None: ...


OnReading = Callable[[Reading], Awaitable[None] | None]


class BackhaulPoller:
    def __init__(
        self,
        cfg: BackhaulConfig,
        client: OperatorClient,
        on_reading: OnReading | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        own_bytes: Callable[[], int] | None = None,
    ):
        """`own_bytes()`: the agent's cumulative traffic counter over the backhaul (the sync's
        bytes sent + received); without it the budget sees only the operator figure."""
        self.cfg = cfg
        self.client = client
        self._on_reading = on_reading
        self.clock = clock
        self._own_bytes = own_bytes
        self.latest: Reading | None = None
        self.stopped: OperatorError | None = None  # set once a `stop` error ended polling
        self.slowdown = 1.0
        self.network_failures = 0

    # --- one poll -------------------------------------------------------------------------------

    async def poll_once(self) -> Reading:
        """Session and usage now, whatever the schedule (``pager-edge backhaul --once``)."""
        reading, _ = await self._poll(KINDS)
        return reading

    async def _poll(self, kinds: tuple[Kind, ...]) -> tuple[Reading, OperatorError | None]:
        reading = self.latest or Reading(self.client.provider, self.clock.now())
        reading = reading.without_error()
        failure: OperatorError | None = None
        try:
            for kind in kinds:
                if kind == "session":
                    reading = reading.with_session(await self.client.session(), self.clock.now())
                else:
                    usage = await self.client.usage()
                    reading = reading.with_usage(usage, self.clock.now(), self._own_counter())
        except OperatorError as err:
            failure = err
            reading = reading.with_error(err, self.clock.now())
        reading = reading.with_budget(self.budget(reading, self.clock.now()))
        self.latest = reading
        return reading, failure

    def _own_counter(self) -> int | None:
        return self._own_bytes() if self._own_bytes is not None else None

    def budget(self, reading: Reading, now: datetime) -> Budget | None:
        """The budget of `reading` at `now`, counting the agent's own bytes since the reading."""
        return reading.budget_at(now, self.cfg, self._own_counter())

    # --- the loop -------------------------------------------------------------------------------

    def _interval(self, kind: Kind) -> float:
        base = self.cfg.session_interval if kind == "session" else self.cfg.usage_interval
        return base * self.slowdown

    async def run(self) -> None:
        """Poll for ever on the schedule described in the module docstring."""
        if self.stopped is not None:
            await self._park(self.stopped)
        start = self.clock.monotonic()
        due: dict[Kind, float] = dict.fromkeys(KINDS, start)
        while True:
            now = self.clock.monotonic()
            kinds = tuple(k for k in KINDS if due[k] <= now)
            if kinds:
                reading, failure = await self._poll(kinds)
                await self._emit(reading)
                if failure is not None and failure.reaction == "stop":
                    await self._park(failure)
                self._reschedule(due, kinds, failure, self.clock.monotonic())
            wait = min(due.values()) - self.clock.monotonic()
            if wait > 0:
                await self.clock.sleep(wait)

    def _reschedule(
        self,
        due: dict[Kind, float],
        kinds: tuple[Kind, ...],
        failure: OperatorError | None,
        now: float,
    ) -> None:
        if failure is None:
            if self.network_failures:
                log.info(
                    "operator API answering again after %d failed tries", self.network_failures
                )
            self.network_failures = 0
            self.slowdown = max(1.0, self.slowdown / 2)
        elif isinstance(failure, NetworkFailure):
            self.network_failures += 1
            pause = min(PAUSE_FIRST * 2 ** (self.network_failures - 1), self.cfg.session_interval)
            if self.network_failures == 1:
                log.warning("%s; pausing backhaul polling (link down?)", failure.message)
            for k in KINDS:
                due[k] = max(due[k], now + pause) if k not in kinds else now + pause
            return
        elif failure.reaction == "backoff":
            self.slowdown = min(self.slowdown * 2, MAX_SLOWDOWN)
            log.warning("%s (intervals ×%g)", failure.message, self.slowdown)
        else:
            log.warning("backhaul poll failed, will ask again later: %s", failure.message)
        for k in kinds:
            due[k] = now + self._interval(k)

    async def _park(self, failure: OperatorError) -> None:
        self.stopped = failure
        log.error("backhaul polling stopped: %s", failure.message)
        await asyncio.get_running_loop().create_future()  # until the agent shuts down

    async def _emit(self, reading: Reading) -> None:
        if self._on_reading is None:
            return
        try:
            result = self._on_reading(reading)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("storing a backhaul reading failed")
