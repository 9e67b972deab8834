"""Time, written once: the clock every part injects, and the store's UTC timestamp form.

* :class:`Clock` — what the agent, simulator, board, sync, backhaul and tests are handed instead of
  reading the system clock: ``now()`` (aware UTC), ``monotonic()`` (for scheduling: a Raspberry Pi
  without a hardware clock jumps its wall clock by years at boot) and ``sleep()``.
  :data:`SYSTEM_CLOCK` is the real one, :class:`VirtualClock` moves only when told (scripted
  evenings run in milliseconds), :class:`ScaledClock` runs faster than real time (the demo).
* The store's timestamp text, ``2026-11-22T18:04:05Z`` (UTC, whole seconds): :func:`iso_utc`,
  :func:`parse_iso`, and the epoch forms the sync wire uses (:func:`epoch_of_iso`,
  :func:`iso_of_epoch`).
* The transmitter's wall clock has no zone: :func:`to_utc` and :func:`local` convert between it and
  UTC with the configured zone (``None`` is the host's own zone). On the autumn change an hour of
  wall times happens twice: :func:`wall_instants` lists what a wall time can mean and
  :func:`resolve_wall` picks one from what else is known (a time is never later than when it was
  observed; a session's times are in order). A wall time in the spring gap, which no clock in the
  zone shows, is read with the offset from before the change — accepted, never an error.
"""

from __future__ import annotations

import asyncio
import calendar
import re
import time
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Protocol

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_ISO_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds for scheduling and timeouts; never jumps."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class VirtualClock:
    """A clock that moves only when told: ``advance()``, or ``sleep()`` (which advances at once).

    Scripted scenarios run a whole evening in milliseconds; snapshot tests pin the board's time.
    """

    def __init__(self, start: datetime = datetime(2026, 3, 7, 23, 0, 0, tzinfo=UTC)):
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs an aware start time")
        self._now = start.astimezone(UTC)
        self._elapsed = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._elapsed += seconds

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (a wall-clock step: monotonic time moves by the same amount)."""
        self.advance((moment - self._now).total_seconds())

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


class ScaledClock:
    """Real time that runs `speed` times faster from the moment it is created (plus `shift`).

    The demo runs the guest flow faster than real time; handing the simulator this clock keeps the
    transmitter's timestamps consistent with it (a 10-minute goal is reached after one real minute
    *and* the timestamps say ten minutes passed).
    """

    def __init__(
        self, speed: float = 1.0, *, shift: timedelta = timedelta(0), base: Clock = SYSTEM_CLOCK
    ):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.shift = shift
        self._base = base
        self._start_wall = base.now()
        self._start_mono = base.monotonic()

    def now(self) -> datetime:
        elapsed = (self._base.monotonic() - self._start_mono) * self.speed
        return self._start_wall + self.shift + timedelta(seconds=elapsed)

    def monotonic(self) -> float:
        return self._base.monotonic() * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)


# --- the store's timestamp text -----------------------------------------------------------------


def iso_utc(moment: datetime | None) -> str | None:
    """UTC ISO 8601 with ``Z``, whole seconds — the form the store, export and wire use."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime(ISO_FORMAT)


def parse_iso(value: str | None) -> datetime | None:
    """A stored timestamp (``…Z``, or any ISO 8601 form) → aware UTC; None if empty or unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):  # e.g. 0001-01-01T00:00:00+01:00
        return None


@lru_cache(maxsize=8192)
def epoch_of_iso(text: str | None) -> int | None:
    """Epoch seconds of a timestamp in exactly the store's form, else None.

    Only text that formats back to itself is a number, so the sync wire's encoding is lossless.
    """
    if not text or not _ISO_SHAPE.match(text):
        return None
    try:
        t = calendar.timegm(
            (
                int(text[0:4]),
                int(text[5:7]),
                int(text[8:10]),
                int(text[11:13]),
                int(text[14:16]),
                int(text[17:19]),
            )
        )
    except (ValueError, OverflowError):
        return None
    return t if iso_of_epoch(t) == text else None


def iso_of_epoch(t: float) -> str:
    return time.strftime(ISO_FORMAT, time.gmtime(t))


def age_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds from a stored timestamp to `now` (one decimal), None when there is none."""
    moment = parse_iso(value)
    return None if moment is None else round((now - moment).total_seconds(), 1)


# --- the transmitter's wall clock -----------------------------------------------------------------


def to_utc(wall: datetime | None, zone: tzinfo | None) -> datetime | None:
    """Transmitter wall-clock time → aware UTC. `zone=None` means the host's local zone."""
    if wall is None:
        return None
    try:
        if wall.tzinfo is None:
            wall = wall.replace(tzinfo=zone) if zone is not None else wall.astimezone()
        return wall.astimezone(UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"timestamp {wall} cannot be converted to UTC: {exc}") from None


@lru_cache(maxsize=1)
def host_zone() -> tzinfo | None:
    """The host's own IANA zone (``TZ``, else ``/etc/localtime``), or None if it has none."""
    import os
    from zoneinfo import ZoneInfo

    try:
        if tz := os.environ.get("TZ", "").lstrip(":"):
            return ZoneInfo(tz)
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return None


@lru_cache(maxsize=16384)
def wall_instants(wall: datetime, zone: tzinfo | None) -> tuple[str, ...]:
    """What a zone-less wall time can mean, as store timestamps in ascending order: one instant,
    or two in the autumn's repeated hour (earlier and later pass)."""
    zone = zone if zone is not None else host_zone()
    if zone is None:  # no zone database: the C library's reading, as before
        return (iso_utc(to_utc(wall, None)) or "",)
    try:
        first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"timestamp {wall} cannot be converted to UTC: {exc}") from None
    if first == second or first.astimezone(zone).replace(tzinfo=None) != wall:
        return (iso_utc(first) or "",)  # unambiguous, or in the spring gap (offset before it)
    return tuple(sorted((iso_utc(first) or "", iso_utc(second) or "")))


def resolve_wall(
    wall: datetime,
    zone: tzinfo | None,
    *,
    not_after: str | None = None,
    not_before: str | None = None,
) -> str:
    """The instant a transmitter wall time means (store text).

    In the repeated hour: the latest reading not after `not_after` (when the time was observed,
    in the transmitter's own frame, or a later time of the same session) and not before
    `not_before` (an earlier time of the same session); without bounds, the earlier pass.
    """
    options = wall_instants(wall, zone)
    if len(options) == 1:
        return options[0]
    fitting = [o for o in options if not_before is None or o >= not_before] or list(options)
    if not_after is None:
        return fitting[0]
    within = [o for o in fitting if o <= not_after]
    return within[-1] if within else fitting[0]


def local(moment: datetime, zone: tzinfo | None) -> datetime:
    """An aware moment in the site's zone (`zone=None`: the host's local zone)."""
    return moment.astimezone(zone) if zone is not None else moment.astimezone()


def wall_time(moment: datetime, zone: tzinfo | None) -> datetime:
    """What a wall clock in `zone` shows at `moment`: naive, whole seconds (the T7470's form)."""
    return local(moment, zone).replace(tzinfo=None, microsecond=0)
