"""Budget modes: what the sync may send, in what batches, how often — and what it does while
nothing has decided the mode yet (pure; the engine applies it, ``status`` explains it).

The mode comes from the engine's ``mode_provider``: with ``[backhaul] enabled`` the backhaul
monitor's projection of the SIM's data budget (:func:`agent.backhaul.monitor.mode_provider`),
without it ``[sync] mode``. The monitor answers None until a reading with usage figures exists —
nothing knows yet whether the site is over its cap. Then the **first-reading rule** holds:

* the sync is ``waiting``: it sends no event at all (no heartbeat either: the poller asks the
  operator at start-up, so the wait is normally a few seconds);
* ``[backhaul] first_reading_timeout`` seconds after the engine's first look in this process
  (``pager-edge run``: its start; the engine's injected monotonic clock) without such a reading,
  it goes on in ``conserve`` — logged once, and said in ``status`` — until one comes;
* a reading already in the store from before (a restart) counts as the first reading.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agent.sync.state import BatchKind

log = logging.getLogger("agent.sync")


@dataclass(frozen=True)
class ModePolicy:
    kinds: BatchKind | None  # what goes out; None: nothing (store and forward)
    batch_factor: int  # × max_batch_events and max_batch_bytes
    interval_factor: float  # × interval …
    min_interval: float = 0.0  # … but at least this


# Headers, the batch's fixed JSON and the answer cost ~600 bytes per request whatever it holds. A
# busy dinner service fills ~2 events per 30 s but ~55 per 15 min (`pager-edge bench sync`), so
# the saving modes wait at least 15 minutes: ~110 bytes per lifecycle instead of ~900.
MODES: dict[str, ModePolicy] = {
    "normal": ModePolicy("all", 1, 1.0),
    "conserve": ModePolicy("all", 4, 4.0, 900.0),
    "critical": ModePolicy("lifecycle", 4, 4.0, 900.0),
    "blocked": ModePolicy(None, 1, 1.0),
}

# Not a budget mode (neither configurable nor a `sync --once --mode`): no reading has decided one.
WAITING = "waiting"
FALLBACK = "conserve"  # … after first_reading_timeout without a reading
_HOLD = ModePolicy(None, 1, 1.0)  # like blocked: nothing goes, a look every interval


def policy(mode: str) -> ModePolicy:
    """What `mode` (a :data:`MODES` name or :data:`WAITING`) lets out, and how often."""
    return _HOLD if mode == WAITING else MODES[mode]


def undecided_mode(waited: float, timeout: float) -> str:
    """The mode while no backhaul reading has decided one, `waited` seconds after the engine's
    first look: :data:`WAITING` until `timeout`, then :data:`FALLBACK`."""
    return WAITING if waited < timeout else FALLBACK


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def undecided_reason(mode: str, timeout: float) -> str:
    """Why the sync is in `mode` (:func:`undecided_mode`'s answer): for the log and ``status``."""
    if mode == WAITING:
        return (
            "waiting for the first backhaul reading to decide the budget mode "
            f"({FALLBACK} if none within {_duration(timeout)})"
        )
    return (
        f"no backhaul reading within {_duration(timeout)} of the start: "
        f"{FALLBACK} until one decides the budget mode"
    )


class FirstReading:
    """The first-reading rule in one engine: the timeout counts from its first look; each change
    of what the rule says is logged once."""

    def __init__(self) -> None:
        self._since: float | None = None  # monotonic time of the first look
        self._undecided: str | None = None  # what the rule said last (WAITING or FALLBACK)

    def mode(self, decided: str | None, now: float, timeout: float) -> str:
        """`decided` (the provider's mode); while that is None, :func:`undecided_mode`'s."""
        if self._since is None:
            self._since = now
        if decided is not None:
            if self._undecided is not None:
                log.info("sync: the first backhaul reading decided the budget mode: %s", decided)
                self._undecided = None
            return decided
        mode = undecided_mode(now - self._since, timeout)
        if mode != WAITING and mode != self._undecided:
            log.warning("sync: %s", undecided_reason(mode, timeout))
        self._undecided = mode
        return mode


__all__ = [
    "FALLBACK",
    "MODES",
    "WAITING",
    "FirstReading",
    "ModePolicy",
    "policy",
    "undecided_mode",
    "undecided_reason",
]
