"""A party on the board: its times against the goal, the size filter, search, free pagers.

Parties are :class:`agent.session.SessionView`\\ s, as the store keeps them; the times are read
with an injected ``now`` so that "waited 7 min" is deterministic in tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from agent.clock import parse_iso
from agent.display import printable
from agent.session import SessionView


def shown_label(p: SessionView) -> str:
    """The label as the board shows it, "" when there is none to show (None, empty or blank):
    every line that names a party leaves it out then, never an empty slot or "()"."""
    return printable(p.label).strip()


def who(p: SessionView) -> str:
    """A party named in a message: "Pager 12 (Okafor)", or "Pager 12" without a label."""
    label = shown_label(p)
    return f"Pager {p.number}" + (f" ({label})" if label else "")


# party-size filter: (title, low, high)
SIZE_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("1–2", 1, 2),
    ("3–4", 3, 4),
    ("5–6", 5, 6),
    ("7+", 7, 10_000),
)


@lru_cache(maxsize=16384)
def moment(text: str | None) -> datetime | None:
    """A stored timestamp, parsed once (the board re-reads the same ones every minute)."""
    return parse_iso(text)


def waited(p: SessionView, now: datetime) -> float | None:
    """Seconds since the party arrived (never negative: a transmitter clock a little ahead of
    the host's would otherwise make a new party wait less than nothing)."""
    created = moment(p.created)
    return None if created is None else max(0.0, (now - created).total_seconds())


def slack(p: SessionView, now: datetime) -> float | None:
    """Goal minus the wait until the first page (or until now): negative means late.

    "Late" is the transmitter's own definition: paged after the goal. A party still waiting past
    its goal is late already.
    """
    created = moment(p.created)
    if p.goal_seconds is None or created is None:
        return None
    until = moment(p.first_notified) or now
    return p.goal_seconds - max(0.0, (until - created).total_seconds())


def is_late(p: SessionView, now: datetime) -> bool:
    s = slack(p, now)
    return s is not None and s < 0


def size_bucket(size: int | None) -> int | None:
    if size is None:
        return None
    for i, (_title, low, high) in enumerate(SIZE_BUCKETS):
        if low <= size <= high:
            return i
    return None


def matches(p: SessionView, *, bucket: int | None = None, search: str = "") -> bool:
    """Filter by party-size bucket and search by label or pager number."""
    if bucket is not None and size_bucket(p.party_size) != bucket:
        return False
    needle = search.strip().casefold()
    if not needle:
        return True
    label = printable(p.label).casefold()  # search what the host sees
    if needle.isdigit():
        return str(p.number).startswith(needle) or needle in label
    return needle in label


def lowest_free_number(active: Iterable[int], *, start: int = 1, stop: int = 999) -> int | None:
    used = set(active)
    return next((n for n in range(start, stop + 1) if n not in used), None)
