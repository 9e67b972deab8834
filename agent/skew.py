"""The transmitter's clock against the host's: how far apart, what it most likely means, the fix.

A transmitter whose clock is off makes every wait wrong. A difference close to a whole number of
hours (or half hours) is not a drifting clock but a zone: the transmitter does not apply daylight
saving, or `[controller] timezone` names the wrong zone. A Raspberry Pi has no hardware clock, so
until NTP has synchronised the host, the difference may be the host's own — then nobody should push
the host's time onto the transmitter.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from agent.clock import SYSTEM_CLOCK, Clock, iso_utc, parse_iso, wall_instants, wall_time

if TYPE_CHECKING:
    from agent.controller.client import ControllerClient

SKEW_WARN_SECONDS = 60.0  # beyond this the board offers to set the transmitter's clock
ZONE_STEP = 1800  # half an hour: zones differ by whole or half hours (a few by 45 min)
ZONE_TOLERANCE = 120.0  # a zone problem plus a clock a minute or two off is still a zone problem
_STA_UNSYNC = 0x0040
_TIME_ERROR = 5


def stamp_instant(timestamp: datetime, zone: tzinfo | None, expected: datetime) -> datetime:
    """The instant of a document's own timestamp: in the autumn's repeated hour, of its two
    readings the one nearer what the host expected (its clock plus the last measured skew)."""
    options = [o for o in map(parse_iso, wall_instants(timestamp, zone)) if o is not None]
    return min(options, key=lambda o: abs(o - expected))


# Transmitter times are whole seconds and a notification's ACK precedes our clock reading.
BOUND_SLACK = timedelta(seconds=2)


@lru_cache(maxsize=64)
def latest_instant(
    timestamp: datetime | None, observed_at: str, skew: timedelta | None, zone: tzinfo | None
) -> str | None:
    """The latest instant a time in a document can mean (store text): the document's own
    `timestamp`, else its observation in the transmitter's frame (host time plus the last
    measured `skew`). Cached: a burst of notifications shares a second and a skew."""
    seen = parse_iso(observed_at)
    if seen is None:
        return None
    expected = seen + (skew or timedelta(0))
    if timestamp is not None:
        expected = stamp_instant(timestamp, zone, expected)
    return iso_utc(expected + BOUND_SLACK) or ""


def measured_skew(timestamp: datetime, zone: tzinfo | None, host_now: datetime) -> timedelta:
    """The transmitter's clock minus the host's, from a document's own timestamp (a skew near
    an hour is a wrong zone, and is then unambiguous outside the repeated hour)."""
    return stamp_instant(timestamp, zone, host_now) - host_now


def format_skew(seconds: float) -> str:
    """``+2 s``, ``-4 m 10 s``, ``+1 h 0 m`` — read at a glance, unlike ``+3600 s``."""
    sign = "-" if seconds < 0 else "+"
    s = round(abs(seconds))
    if s < 60:
        return f"{sign}{s} s"
    if s < 3600:
        return f"{sign}{s // 60} m {s % 60} s"
    whole_minutes = round(s / 60)  # an hour off is "1 h 0 m", not "0 h 59 m" one second early
    return f"{sign}{whole_minutes // 60} h {whole_minutes % 60} m"


def _span(seconds: float) -> str:
    s = round(abs(seconds) / 60) * 60
    hours, minutes = divmod(s // 60, 60)
    if hours and minutes:
        return f"{hours} h {minutes} m"
    return f"{hours} h" if hours else f"{minutes} m"


def looks_like_zone(seconds: float) -> bool:
    """A difference within a couple of minutes of a non-zero whole or half hour."""
    steps = round(seconds / ZONE_STEP)
    return steps != 0 and abs(seconds - steps * ZONE_STEP) <= ZONE_TOLERANCE


def skew_warning(seconds: float | None, *, host_synchronised: bool | None = True) -> str | None:
    """What to tell staff and installers about the transmitter's clock, or None when it is fine."""
    if seconds is None or abs(seconds) < SKEW_WARN_SECONDS:
        return None
    direction = "ahead of" if seconds > 0 else "behind"
    if looks_like_zone(seconds):
        text = (
            f"transmitter clock is {_span(seconds)} {direction} this host — check "
            "[controller] timezone, or set the transmitter's clock"
        )
    else:
        text = (
            f"transmitter clock is {format_skew(seconds).lstrip('+-')} {direction} this host — "
            "set the transmitter's clock (pager-edge controller set-clock)"
        )
    if host_synchronised is False:
        text += "; this host's clock is not synchronised yet (NTP), so it may be the host's"
    return text


class _Timex(ctypes.Structure):
    # struct timex (Linux): only `status` is read; the padding covers the kernel's reserved ints.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("reserved", ctypes.c_int * 11),
    ]


@lru_cache(maxsize=1)
def _adjtimex() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.adjtimex
    except (OSError, AttributeError):
        return None


def host_clock_synchronised() -> bool | None:
    """Is the host's clock synchronised (what systemd reports as ``NTPSynchronized``)?

    The kernel's NTP state, read with ``adjtimex`` as systemd-timedated does; None where that
    cannot be read (not Linux).
    """
    call = _adjtimex()
    if call is None:
        return None
    timex = _Timex()
    state = call(ctypes.byref(timex))
    if state < 0:
        return None
    return state != _TIME_ERROR and not timex.status & _STA_UNSYNC


class ClockRefused(Exception):
    """Setting the transmitter's clock would make things worse (or cannot be checked)."""


async def transmitter_skew(client: ControllerClient, zone: tzinfo | None, clock: Clock) -> float:
    """The transmitter's clock minus the host's now, in seconds (from ``GET /v1/settings``)."""
    doc = await client.get_settings()
    stamp = doc.meta.timestamp
    if stamp is None:
        raw = (doc.settings or {}).get("datetime")
        stamp = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    if stamp is None:
        raise ClockRefused("the transmitter's answer carries no time to compare")
    return measured_skew(stamp, zone, clock.now()).total_seconds()


async def set_transmitter_clock(
    client: ControllerClient,
    zone: tzinfo | None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    synchronised: Any = host_clock_synchronised,
) -> tuple[float, float]:
    """Put the host's time (in the transmitter's zone) on the transmitter; (skew before, after).

    Refused while the host's own clock is not synchronised: a Raspberry Pi has no hardware clock,
    and pushing its guess onto the transmitter would make every wait wrong.
    """
    if synchronised() is False:
        raise ClockRefused(
            "this host's clock is not synchronised yet (no NTP): refusing to copy it onto the "
            "transmitter; wait for NTP (timedatectl shows 'System clock synchronized: yes')"
        )
    before = await transmitter_skew(client, zone, clock)
    # The transmitter keeps whole seconds: send the nearest one, not the one just gone.
    nearest = clock.now() + timedelta(milliseconds=500)
    await client.set_settings(datetime=wall_time(nearest, zone).isoformat())
    return before, await transmitter_skew(client, zone, clock)
