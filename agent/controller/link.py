"""The observation link: register ``/v1/notify?action=get_sessions``, watch it, re-register.

A dead transmitter produces silence, not an error, so a watchdog compares the time of the last
document (pings come every ``ping_interval``) against ``watchdog_intervals`` ping intervals. When it
fires, or aiocoap ends the observation, the link reports *disconnected*, cancels the observation and
registers again with capped, jittered backoff. Every (re)registration asks the ingest pipeline for a
resync, so whatever happened meanwhile is recovered from ``/v1/sessions`` and ``/history``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from agent.clock import iso_utc
from agent.controller.client import ControllerClient, first_answer
from agent.ingest.messages import Control, LinkChanged, Resync
from agent.supervise import backoff_delays

log = logging.getLogger(__name__)
REMIND_EVERY = 300.0  # seconds between "still cannot reach" log lines


class Link:
    def __init__(
        self,
        client: ControllerClient,
        *,
        feed: Callable[[bytes], None],
        control: Callable[[Control], None],
        ping_interval: float = 30.0,
        watchdog_intervals: float = 3.0,
        max_backoff: float = 60.0,
    ):
        self.client = client
        self.feed = feed
        self.control = control
        self.ping_interval = ping_interval
        self.watchdog = ping_interval * watchdog_intervals
        self.max_backoff = max_backoff
        self.state = "connecting"
        self.last_activity = time.monotonic()
        self.reconnects = 0
        self.failures = 0  # failed registrations in a row
        self._reminded_at = 0.0

    def _set_state(self, state: str, error: str | None = None) -> None:
        if state == "connecting" and self.state == "disconnected":
            return  # a retry: still disconnected, since it went down (status shows that moment)
        if state == self.state and error is None:
            return
        since = iso_utc(datetime.now(UTC)) if state != self.state else None
        self.state = state
        self.control(
            LinkChanged(
                state,
                self.reconnects,
                since=since,
                last_error=error,
                clear_error=state == "connected",
            )
        )

    def _failed(self, reason: str) -> None:
        """A registration failed: say so at once, then remind now and then, never every retry."""
        self.failures += 1
        now = time.monotonic()
        if self.failures == 1:
            log.warning(
                "cannot reach the transmitter at %s: %s; retrying", self.client.base, reason
            )
            self._reminded_at = now
        elif now - self._reminded_at >= REMIND_EVERY:
            log.warning(
                "still cannot reach the transmitter at %s (%d failed attempts): %s",
                self.client.base,
                self.failures,
                reason,
            )
            self._reminded_at = now
        self._set_state("disconnected", reason)

    def _on_payload(self, payload: bytes) -> None:
        self.last_activity = time.monotonic()
        self.feed(payload)

    async def run(self) -> None:
        """Keep an observation alive forever (cancel to stop)."""

        def fresh() -> Iterator[float]:
            return backoff_delays(initial=min(1.0, self.ping_interval), cap=self.max_backoff)

        delays = fresh()
        while True:
            started = time.monotonic()
            ok = await self._observe_once()
            if ok and time.monotonic() - started >= self.ping_interval:
                # Only an observation that lived resets the backoff: a transmitter that accepts
                # and drops at once must not get a registration and a full resync every second.
                delays = fresh()
            self.reconnects += 1
            await asyncio.sleep(next(delays))

    async def _observe_once(self) -> bool:
        """One registration: returns True if it was established (then lost), False if it failed."""
        ended: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

        def on_end(exc: Exception | None) -> None:
            if not ended.done():
                ended.set_result(exc)

        self._set_state("connecting")
        req = self.client.observe(self._on_payload, on_end)
        try:
            try:
                first = await first_answer(req, self.client.timeout)
            except TimeoutError:
                self._failed(f"no answer from {self.client.base} to observe")
                return False
            except Exception as exc:  # aiocoap network errors
                self._failed(f"observe failed: {exc}")
                return False
            if not first.code.is_successful():
                self._failed(f"observe refused: {first.code}")
                return False
            if self.failures:
                log.info(
                    "transmitter at %s answers again after %d failed attempt(s)",
                    self.client.base,
                    self.failures,
                )
                self.failures = 0
            self.last_activity = time.monotonic()
            if not req.observation.cancelled:
                # The first answer goes to req.response, not to the callbacks.
                self.feed(first.payload)
            self._set_state("connected")
            self.control(Resync("observation (re)registered"))
            log.info("observing %s/v1/notify", self.client.base)
            return await self._watch(ended)
        finally:
            if not req.observation.cancelled:
                req.observation.cancel()

    async def _watch(self, ended: asyncio.Future[Exception | None]) -> bool:
        check = max(0.05, self.ping_interval / 4)
        while True:
            silent_for = time.monotonic() - self.last_activity
            if silent_for >= self.watchdog:
                log.warning(
                    "no ping or data from the transmitter for %.1f s; re-registering", silent_for
                )
                self._set_state("disconnected", f"silent for {silent_for:.0f} s")
                return True
            try:
                async with asyncio.timeout(min(check, self.watchdog - silent_for)):
                    exc = await asyncio.shield(ended)
            except TimeoutError:
                continue
            log.warning("observation ended by the transmitter or network: %s", exc)
            self._set_state("disconnected", f"observation ended: {exc}")
            return True
