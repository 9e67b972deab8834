"""What to quote a new party: from the queue in front of the host, else history, else the default.

The live quote counts the parties of the same size bucket still waiting (not yet paged) and how
fast tables of that size came up lately: first pages (or seatings without a page) in the last
hour, over the minutes that bucket had somebody waiting. A party with ``n`` ahead waits for
``n + 1`` tables, one every so often. With too few recent seatings to tell a rate, the quote is the median
wait on this weekday and hour over the last weeks (:func:`suggest_quote`), then the transmitter's
default goal. Every quote says its basis in words; ``pager-edge bench quotes`` measures them all
against synthetic evenings with known outcomes.
"""

from __future__ import annotations

import math
import statistics as stats
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Literal

from agent.clock import local
from agent.session import SessionView
from tui.core.parties import SIZE_BUCKETS, moment, size_bucket
from tui.core.waits import actual_wait, called_at

# history: same weekday, within an hour of the time of day, over the last weeks
QUOTE_WEEKS = 4
QUOTE_WINDOW_MINUTES = 60
QUOTE_MIN_SAMPLES = 3
# live: tables that came up in the last hour, at least this many of the party's size
RATE_WINDOW_MINUTES = 60
RATE_MIN_SEATINGS = 3
RATE_OLDEST_ARRIVAL = timedelta(hours=12)  # older arrivals are not read for the rate
LIVE_MAX_SECONDS = 4 * 3600  # a longer "estimate" would be a guess, not a quote

QuoteKind = Literal["live", "history", "default", "none"]
Sample = tuple[int | None, float]  # (party size, wait in seconds)


@dataclass(frozen=True, slots=True)
class Quote:
    seconds: int | None
    basis: str
    samples: int = 0  # the seatings (live) or past parties (history) it rests on
    kind: QuoteKind = "default"
    party_size: int | None = None

    @property
    def estimated(self) -> bool:
        """Backed by what happened (live or history), not a setting: fit to show a guest."""
        return self.kind in ("live", "history") and self.seconds is not None

    @property
    def text(self) -> str:
        """The quote in words, as the host reads it: "about 25 min for 4: 6 parties ahead, …"."""
        if self.seconds is None:
            return self.basis
        about = "about " if self.estimated else ""
        size = "" if self.party_size is None else f" for {self.party_size}"
        return f"{about}{self.seconds // 60} min{size}: {self.basis}"


# --- history ------------------------------------------------------------------------------------


def wait_samples(
    finished: Iterable[SessionView],
    now: datetime,
    zone: tzinfo | None,
    *,
    weeks: int = QUOTE_WEEKS,
    window_minutes: int = QUOTE_WINDOW_MINUTES,
) -> list[Sample]:
    """(party size, wait) of finished parties that arrived on `now`'s weekday, within
    `window_minutes` of its time of day, over the last `weeks` weeks (today included)."""
    here = local(now, zone)
    minute_of_day = here.hour * 60 + here.minute
    oldest = now - timedelta(weeks=weeks, minutes=window_minutes)
    out: list[Sample] = []
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
    samples: Sequence[Sample],
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
                "history",
                party_size,
            )
    if default_goal:
        return Quote(int(default_goal), "the transmitter's default goal", 0, "default", party_size)
    return Quote(None, "no history yet; the transmitter applies its default", 0, "none", party_size)


# --- live ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Queue:
    """What the board knows at `now`: the active parties, the tables that came up lately
    (:meth:`agent.store.reads.Reads.called_views_since`), comparable past waits, the default."""

    now: datetime
    active: Sequence[SessionView] = ()
    recent: Sequence[SessionView] = ()
    history: Sequence[Sample] = ()
    default_goal: int | None = None
    zone: tzinfo | None = None


def covered_seconds(spans: Iterable[tuple[datetime, datetime]]) -> float:
    """Seconds covered by the union of [start, end] spans (overlaps counted once)."""
    total = 0.0
    reach: datetime | None = None
    for start, end in sorted(spans):
        if reach is None or start > reach:
            total += (end - start).total_seconds()
            reach = end
        elif end > reach:
            total += (end - reach).total_seconds()
            reach = end
    return total


def _parties(n: int) -> str:
    return "nobody ahead" if n == 0 else "1 party ahead" if n == 1 else f"{n} parties ahead"


def live_quote(queue: Queue, party_size: int | None) -> Quote:
    """The wait for a party of `party_size` arriving now, with its basis in words."""
    bucket = size_bucket(party_size)
    history = suggest_quote(
        queue.history,
        party_size,
        default_goal=queue.default_goal,
        now=queue.now,
        zone=queue.zone,
    )
    if bucket is None:
        return history
    now = queue.now
    start = now - timedelta(minutes=RATE_WINDOW_MINUTES)
    ahead: list[datetime] = []
    for p in queue.active:
        created = moment(p.created)
        if p.state == "waiting" and size_bucket(p.party_size) == bucket and created is not None:
            ahead.append(created)
    seated: list[tuple[datetime, datetime]] = []
    for p in queue.recent:
        created, called = moment(p.created), called_at(p)
        if size_bucket(p.party_size) != bucket or created is None or called is None:
            continue
        if start <= called <= now:
            seated.append((max(created, start), max(created, called)))
    if len(seated) < RATE_MIN_SEATINGS:
        return history
    # The rate while somebody of this size waited: an hour with a queue for ten minutes of it
    # says nothing about how fast tables come up in the other fifty.
    busy = covered_seconds([*seated, *((max(c, start), now) for c in ahead if c <= now)])
    # One seating more than seen: a handful of tables in an hour is weak evidence of a fast rate
    # (busy / k overshoots, 1/k being convex); `pager-edge bench quotes` chose it over busy / k.
    every = max(60.0, busy / (len(seated) + 1))
    seconds = min(LIVE_MAX_SECONDS, max(60, math.ceil((len(ahead) + 1) * every / 60) * 60))
    basis = f"{_parties(len(ahead))}, seating ~1 every {round(every / 60)} min"
    return Quote(seconds, basis, len(seated), "live", party_size)


def next_party_estimates(queue: Queue) -> list[tuple[str, Quote]]:
    """The quote for a party arriving now, per party-size bucket (the kiosk's line)."""
    return [(title, live_quote(queue, low)) for title, low, _high in SIZE_BUCKETS]
