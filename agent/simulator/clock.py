"""Clocks for the simulated transmitter: its wall clock is naive local time, like the device's.

The model never reads the system clock itself; it is handed one of these (or any callable returning a
naive ``datetime``) so that tests can run a whole evening in milliseconds and the demo can run the
restaurant faster than real time.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def wall_clock(tz: ZoneInfo | None = None) -> datetime:
    """Now, as the transmitter's naive local wall time (host zone when `tz` is None)."""
    if tz is None:
        return datetime.now().replace(microsecond=0)
    return datetime.now(tz).replace(tzinfo=None, microsecond=0)


class VirtualClock:
    """A clock that only moves when told to: scripted scenarios advance it between actions."""

    def __init__(self, start: datetime = datetime(2026, 3, 7, 18, 0, 0)):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ScaledClock:
    """Wall time that runs `speed` times faster from the moment it is created.

    The demo runs the guest flow at e.g. 10× so the board moves; giving the simulator this clock
    keeps the transmitter's timestamps consistent with the accelerated flow (a 10-minute goal is
    reached after one real minute *and* the timestamps say ten minutes passed).
    """

    def __init__(self, speed: float = 1.0, tz: ZoneInfo | None = None):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start_wall = wall_clock(tz)
        self._start_mono = time.monotonic()

    def __call__(self) -> datetime:
        elapsed = (time.monotonic() - self._start_mono) * self.speed
        return (self._start_wall + timedelta(seconds=elapsed)).replace(microsecond=0)
