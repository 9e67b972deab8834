"""The night's figures, defined once: the board's report screen and header, its CSV export, and
the chain's analytics (``cloud/``, in SQL — its tests hold it to these definitions) all agree.

For one local day (the site's zone) of the sessions *created* that day:

* ``parties`` — sessions created; ``seated`` — ended cleared (STOP); ``walk_aways`` — ended
  removed, not seated; ``lost`` — the transmitter forgot them; ``open`` — not ended yet.
* ``quoted`` — the goal (the quote the party was given); ``actual`` wait — arrival to the *first*
  page, for parties paged at least once (a party seated without a page has no actual wait).
* ``on_time`` share — of the parties with a quote and a first page, those paged within the quote.
* wait by local hour of arrival, and by party size.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from agent.clock import iso_utc, local, parse_iso, to_utc
from agent.display import minutes
from agent.session import SessionView, wait_seconds

if TYPE_CHECKING:
    from agent.store import Store


@dataclass(frozen=True, slots=True)
class Group:
    """One hour or one party size: how many, and their actual waits."""

    key: int
    parties: int
    paged: int
    mean_wait: float | None  # seconds


@dataclass(frozen=True, slots=True)
class DayReport:
    day: date
    parties: int = 0
    seated: int = 0
    walk_aways: int = 0
    lost: int = 0
    open: int = 0
    mean_quoted: float | None = None  # seconds
    mean_wait: float | None = None  # seconds, arrival → first page
    median_wait: float | None = None
    on_time: float | None = None  # share 0–1 of parties with a quote and a first page
    judged: int = 0  # how many parties the on-time share is over
    by_hour: tuple[Group, ...] = field(default=())
    by_size: tuple[Group, ...] = field(default=())


def day_bounds(day: date, zone: tzinfo | None) -> tuple[str, str]:
    """[local midnight, next local midnight) as store timestamps (23 or 25 h on a change day)."""

    def midnight(d: date) -> str:
        return iso_utc(to_utc(datetime(d.year, d.month, d.day), zone)) or ""

    return midnight(day), midnight(day + timedelta(days=1))


def service_day(now: datetime, zone: tzinfo | None) -> date:
    """The local date the board's header reports on."""
    return local(now, zone).date()


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _groups(parties: Sequence[tuple[int, int | None]]) -> tuple[Group, ...]:
    """(key, wait or None) → one Group per key, ascending."""
    keys = sorted({k for k, _w in parties})
    out = []
    for k in keys:
        waits = [w for key, w in parties if key == k and w is not None]
        out.append(Group(k, sum(1 for key, _w in parties if key == k), len(waits), _mean(waits)))
    return tuple(out)


def day_report(views: Iterable[SessionView], day: date, zone: tzinfo | None) -> DayReport:
    """The figures of `day` from the sessions created that day (others are ignored)."""
    start, end = day_bounds(day, zone)
    todays = [v for v in views if v.created is not None and start <= v.created < end]
    waits = [(v, wait_seconds(v)) for v in todays]
    paged = [w for _v, w in waits if w is not None]
    judged = [(w, v.goal_seconds) for v, w in waits if w is not None and v.goal_seconds]
    quoted = [float(v.goal_seconds) for v in todays if v.goal_seconds]
    by_hour = []
    for v, w in waits:
        created = parse_iso(v.created)
        assert created is not None
        by_hour.append((local(created, zone).hour, w))
    return DayReport(
        day=day,
        parties=len(todays),
        seated=sum(1 for v in todays if v.state == "cleared"),
        walk_aways=sum(1 for v in todays if v.state == "removed"),
        lost=sum(1 for v in todays if v.state == "lost"),
        open=sum(1 for v in todays if not v.ended),
        mean_quoted=_mean(quoted),
        mean_wait=_mean([float(w) for w in paged]),
        median_wait=float(statistics.median(paged)) if paged else None,
        on_time=(sum(1 for w, g in judged if w <= g) / len(judged)) if judged else None,
        judged=len(judged),
        by_hour=_groups(by_hour),
        by_size=_groups([(v.party_size or 0, w) for v, w in waits]),
    )


def report_of_day(store: Store, day: date, zone: tzinfo | None) -> DayReport:
    """One day's report from the store: the sessions created between its local midnights.
    (The board's header and report screen, and `pager-edge report`, all read it so.)"""
    start, end = day_bounds(day, zone)
    return day_report(store.iter_views(created_from=start, created_before=end), day, zone)


def report_rows(r: DayReport) -> list[dict[str, Any]]:
    """The report as CSV rows: one summary row, then one per hour and one per party size."""

    def minutes(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / 60, 1)

    rows: list[dict[str, Any]] = [
        {
            "section": "day",
            "key": r.day.isoformat(),
            "parties": r.parties,
            "seated": r.seated,
            "walk_aways": r.walk_aways,
            "lost": r.lost,
            "open": r.open,
            "mean_quoted_min": minutes(r.mean_quoted),
            "mean_wait_min": minutes(r.mean_wait),
            "median_wait_min": minutes(r.median_wait),
            "on_time_percent": None if r.on_time is None else round(100 * r.on_time, 1),
        }
    ]
    for section, groups in (("hour", r.by_hour), ("party_size", r.by_size)):
        for g in groups:
            rows.append(
                {
                    "section": section,
                    "key": g.key,
                    "parties": g.parties,
                    "mean_wait_min": minutes(g.mean_wait),
                }
            )
    return rows


def summary_text(r: DayReport) -> str:
    lines = [
        f"Parties {r.parties} · seated {r.seated} · walked away {r.walk_aways} · lost {r.lost}"
        + (f" · still open {r.open}" if r.open else "")
    ]
    if r.parties:
        quoted = minutes(r.mean_quoted) if r.mean_quoted is not None else "—"
        wait = minutes(r.mean_wait) if r.mean_wait is not None else "—"
        median = minutes(r.median_wait) if r.median_wait is not None else "—"
        on_time = f"{100 * r.on_time:.0f}% (of {r.judged})" if r.on_time is not None else "—"
        lines.append(
            f"Quoted {quoted} on average · actual wait {wait} (median {median}) · "
            f"paged within the quote {on_time}"
        )
    else:
        lines.append("Nobody arrived that day.")
    return "\n".join(lines)


REPORT_FIELDS = (
    "section",
    "key",
    "parties",
    "seated",
    "walk_aways",
    "lost",
    "open",
    "mean_quoted_min",
    "mean_wait_min",
    "median_wait_min",
    "on_time_percent",
)
