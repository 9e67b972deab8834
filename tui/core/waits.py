"""How long parties waited: when a party's table came up, its actual wait, today's summary.

What to quote a new party is :mod:`tui.core.quotes`; it learns from these definitions.
"""

from __future__ import annotations

import statistics as stats
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from agent.clock import local
from agent.session import SessionView
from tui.core.parties import moment


def called_at(p: SessionView) -> datetime | None:
    """When the party's table came up: its first page, or — seated without a page — its seating."""
    first = moment(p.first_notified or p.notified)
    if first is None and p.state == "cleared":
        return moment(p.cleared)
    return first


def actual_wait(p: SessionView) -> float | None:
    """Seconds from arrival to the first page; a party seated without a page waited until seated."""
    created, until = moment(p.created), called_at(p)
    return None if created is None or until is None else (until - created).total_seconds()


@dataclass(frozen=True, slots=True)
class HistorySummary:
    seated: int
    removed: int
    average_wait: float | None
    on_time_percent: float | None


def summarize_history(rows: Sequence[SessionView]) -> HistorySummary:
    seated = sum(1 for r in rows if r.state == "cleared")
    waits = [(w, r.goal_seconds) for r in rows if (w := actual_wait(r)) is not None]
    judged = [(w, g) for w, g in waits if g is not None]
    return HistorySummary(
        seated=seated,
        removed=len(rows) - seated,
        average_wait=stats.fmean(w for w, _ in waits) if waits else None,
        on_time_percent=100.0 * sum(1 for w, g in judged if w <= g) / len(judged)
        if judged
        else None,
    )


def start_of_day(now: datetime, zone: tzinfo | None) -> datetime:
    """Local midnight of `now`'s day, as aware UTC."""
    midnight = local(now, zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)
