"""How long parties waited: the actual wait, today's summary, and the suggested quote.

The suggested quote is the typical wait for a party size at this weekday and hour over the last
weeks, else the transmitter's ``defaultTargetGoal``.
"""

from __future__ import annotations

import math
import statistics as stats
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from agent.clock import local
from agent.session import SessionView
from tui.core.parties import SIZE_BUCKETS, moment, size_bucket

QUOTE_WEEKS = 4
QUOTE_WINDOW_MINUTES = 60
QUOTE_MIN_SAMPLES = 3


def actual_wait(p: SessionView) -> float | None:
    """Seconds from arrival to the first page; a party seated without a page waited until seated."""
    created = moment(p.created)
    if created is None:
        return None
    until = moment(p.first_notified or p.notified)
    if until is None and p.state == "cleared":
        until = moment(p.cleared)
    return None if until is None else (until - created).total_seconds()


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


@dataclass(frozen=True, slots=True)
class Quote:
    seconds: int | None
    basis: str
    samples: int = 0


def wait_samples(
    finished: Iterable[SessionView],
    now: datetime,
    zone: tzinfo | None,
    *,
    weeks: int = QUOTE_WEEKS,
    window_minutes: int = QUOTE_WINDOW_MINUTES,
) -> list[tuple[int | None, float]]:
    """(party size, wait) of finished parties that arrived on `now`'s weekday, within
    `window_minutes` of its time of day, over the last `weeks` weeks (today included)."""
    here = local(now, zone)
    minute_of_day = here.hour * 60 + here.minute
    oldest = now - timedelta(weeks=weeks, minutes=window_minutes)
    out: list[tuple[int | None, float]] = []
    for row in finished:
        created = moment(row.created)
        if created is None or created < oldest or created > now:
            continue
        c = local(created, zone)
        if c.weekday() != here.weekday():
            continue
        if abs(c.hour * 60 + c.minute - minute_of_day) > window_minutes:
            continue
        wait = actual_wait(row)
        if wait is not None and wait >= 0:
            out.append((row.party_size, wait))
    return out


def suggest_quote(
    samples: Sequence[tuple[int | None, float]],
    party_size: int | None,
    *,
    default_goal: int | None,
    now: datetime | None = None,
    zone: tzinfo | None = None,
    min_samples: int = QUOTE_MIN_SAMPLES,
) -> Quote:
    """The median wait of comparable parties, rounded up to the minute; else the default goal."""
    bucket = size_bucket(party_size)
    if bucket is not None:
        waits = [w for size, w in samples if size_bucket(size) == bucket]
        if len(waits) >= min_samples:
            seconds = max(60, math.ceil(stats.median(waits) / 60) * 60)
            when = ""
            if now is not None:
                here = local(now, zone)
                when = f" on {here:%a} around {here:%H}h"
            return Quote(
                seconds,
                f"typical for {SIZE_BUCKETS[bucket][0]} guests{when}, "
                f"last {QUOTE_WEEKS} weeks ({len(waits)} parties)",
                len(waits),
            )
    if default_goal:
        return Quote(int(default_goal), "the transmitter's default goal", 0)
    return Quote(None, "no history yet; the transmitter applies its default", 0)


def estimates(
    samples: Sequence[tuple[int | None, float]], default_goal: int | None
) -> list[tuple[str, Quote]]:
    """Estimated wait per party-size bucket (the kiosk's optional line)."""
    return [
        (title, suggest_quote(samples, low, default_goal=default_goal))
        for title, low, _high in SIZE_BUCKETS
    ]
