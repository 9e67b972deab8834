"""Late alerts: a party past its quote, a paged party not back — said once, when it happens.

The table already marks a late party for as long as it is late (``▲ LATE``); this is the moment
it turns late (the row flashes once, optionally a bell) and the nudge for a party paged a while
ago and not back yet (re-page it or remove it). Parties already late when the board starts are
marked but not announced: an alarm for everything at once is noise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from agent.display import minutes
from agent.session import SessionView
from tui.core.parties import is_late, moment, who

AlertKind = Literal["late", "nudge"]


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    party: SessionView
    text: str


class AlertWatch:
    """Remembers what was announced, so each alert comes once (per page, for nudges)."""

    def __init__(self, nudge_after_seconds: float):
        self.nudge_after = nudge_after_seconds
        self._late: set[str] = set()
        self._nudged: dict[str, int] = {}  # uuid → page count when nudged
        self._started = False

    def check(self, parties: Iterable[SessionView], now: datetime) -> list[Alert]:
        alerts: list[Alert] = []
        seen: set[str] = set()
        for p in parties:
            seen.add(p.uuid)
            if p.uuid not in self._late and is_late(p, now):
                self._late.add(p.uuid)
                if self._started and not p.paged:
                    quote = "" if p.goal_seconds is None else f" (quoted {minutes(p.goal_seconds)})"
                    alerts.append(Alert("late", p, f"{who(p)} is now late{quote}"))
            paged_at = moment(p.notified) if p.paged else None
            if paged_at is None or self._nudged.get(p.uuid) == p.page_count:
                continue
            if (now - paged_at).total_seconds() >= self.nudge_after:
                self._nudged[p.uuid] = p.page_count
                if self._started:
                    ago = minutes((now - paged_at).total_seconds())
                    alerts.append(
                        Alert("nudge", p, f"{who(p)} paged {ago} ago, not back: re-page or remove")
                    )
        self._late &= seen
        self._nudged = {u: n for u, n in self._nudged.items() if u in seen}
        self._started = True
        return alerts
