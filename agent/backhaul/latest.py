"""The latest stored reading, re-budgeted for *now*: what ``status``, the board and the sync ask.

A reading ages: the cycle may have turned since, and the agent has spent bytes since. So the stored
budget is never used as is; it is recomputed from the operator figure, the agent's cumulative
traffic counter now, and the configuration. All of it works from another process than the daemon
(``pager-edge status``, ``pager-edge sync --once``) because it needs only the store.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agent.backhaul.reading import Reading
from agent.backhaul.view import header
from agent.config import BackhaulConfig

LatestRow = Callable[[], dict[str, Any] | None]  # e.g. store.latest_backhaul_reading
OwnBytes = Callable[[], int]  # the agent's cumulative bytes over the backhaul


def current(
    row: dict[str, Any] | None,
    cfg: BackhaulConfig,
    now: datetime,
    own_bytes_now: int | None = None,
) -> Reading | None:
    """A stored reading (``Reading.to_row()`` form) with its budget recomputed for `now`."""
    if row is None:
        return None
    r = Reading.from_row(row)
    return r.with_budget(r.budget_at(now, cfg, own_bytes_now))


def mode_provider(
    cfg: BackhaulConfig,
    latest_row: LatestRow,
    own_bytes: OwnBytes | None = None,
    *,
    default: str = "normal",
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[], str]:
    """For ``SyncEngine(mode_provider=...)``: the budget mode now, or `default` (``[sync] mode``)
    while there is no usage reading."""

    def mode() -> str:
        r = current(latest_row(), cfg, clock(), own_bytes() if own_bytes else None)
        return r.mode if r is not None and r.mode else default

    return mode


def status_section(
    cfg: BackhaulConfig, own_bytes: Callable[[Any], int] | None = None
) -> Callable[[Any], dict[str, Any]]:
    """For ``agent.status._EXTRA_SECTIONS``: ``(store) -> {"backhaul": {...}}`` — the reading's
    ``--json`` keys re-budgeted for now, plus ``age_seconds`` and a one-line ``summary``
    (``{"reading": None, ...}`` before the first reading). `own_bytes(store)` reads the counter."""

    def section(store: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        counter = own_bytes(store) if own_bytes else None
        r = current(store.latest_backhaul_reading(), cfg, now, counter)
        if r is None:
            return {"backhaul": {"reading": None, "summary": header(None)}}
        doc = r.to_json()
        taken = r.usage_taken_at or r.session_taken_at
        doc["age_seconds"] = None if taken is None else round((now - taken).total_seconds())
        doc["summary"] = header(r, now)
        return {"backhaul": doc}

    return section
