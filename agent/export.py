"""The records `pager-edge export` writes (sessions or lifecycle events as JSONL or CSV), and the
one CSV writer: the export's, the day report's (`pager-edge report`, the board's report screen).

The record shapes are a contract other scripts rely on; keep them stable (new fields come after the
old ones: `first_notified`, `wait_seconds`, `reopened_from`). Times are UTC ``…Z``, or with
``--local`` the site's local time with its offset (``2026-11-01T01:05:00-06:00``: unambiguous across
the autumn's repeated hour). ``--since``/``--until`` are local dates, inclusive. JSONL carries exactly
what the transmitter said. CSV is for spreadsheets, which run a cell starting with ``=``, ``+``,
``-``, ``@``, tab or carriage return as a formula — and labels come from anyone on the LAN — so
such cells get a leading ``'`` (OWASP's advice) unless ``--raw`` asks for the text unchanged. The
day report's CSV goes through the same writer, so it is safe the same way.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, tzinfo
from typing import IO, Any

from agent.clock import local, parse_iso
from agent.display import spreadsheet_safe
from agent.report import REPORT_FIELDS, DayReport, day_bounds, report_rows
from agent.session import EVENT_EXPORT_FIELDS, EXPORT_FIELDS, SessionView, wait_seconds
from agent.store import Store

# The record shapes, from the one session schema (aliases for this command's readers).
SESSION_FIELDS = EXPORT_FIELDS
EVENT_FIELDS = EVENT_EXPORT_FIELDS


_TIME_FIELDS = frozenset({"created", "notified", "cleared", "first_notified", "at", "observed_at"})


@dataclass(frozen=True, slots=True)
class Selection:
    """Which records, and how their times read: UTC ``…Z`` (default) or local with the offset."""

    since: date | None = None  # local dates, inclusive, of `created` (events: of `at`)
    until: date | None = None
    zone: tzinfo | None = None  # the site's zone, for the dates and for local times
    local_times: bool = False

    def bounds(self) -> tuple[str | None, str | None]:
        """[from, before) as store timestamps: local midnights of `since` and the day after
        `until` (a day with a daylight-saving change is 23 or 25 hours long, as it was)."""
        first = day_bounds(self.since, self.zone)[0] if self.since else None
        before = day_bounds(self.until, self.zone)[1] if self.until else None
        return first, before

    def time(self, value: str | None) -> str | None:
        if not self.local_times:
            return value
        moment = parse_iso(value)
        return None if moment is None else local(moment, self.zone).isoformat()


def session_record(view: SessionView, selection: Selection = Selection()) -> dict[str, Any]:
    """One session in export shape (:data:`SESSION_FIELDS`, in that order)."""
    values = {k: getattr(view, k) for k in SESSION_FIELDS if k != "wait_seconds"}
    values["wait_seconds"] = wait_seconds(view)
    return {
        k: selection.time(values[k]) if k in _TIME_FIELDS else values[k] for k in SESSION_FIELDS
    }


def session_records(store: Store, selection: Selection = Selection()) -> Iterable[dict[str, Any]]:
    first, before = selection.bounds()
    for view in store.iter_views(created_from=first, created_before=before):
        yield session_record(view, selection)


def event_records(store: Store, selection: Selection = Selection()) -> Iterable[dict[str, Any]]:
    first, before = selection.bounds()
    for row in store.iter_events(at_from=first, at_before=before):
        yield {k: selection.time(row[k]) if k in _TIME_FIELDS else row[k] for k in EVENT_FIELDS}


def write_csv(
    rows: Iterable[dict[str, Any]], fields: tuple[str, ...], out: IO[str], *, raw: bool = False
) -> int:
    """`rows` as CSV with a header; every text cell spreadsheet-safe unless `raw`. Returns the
    number of rows."""
    cell = (lambda v: v) if raw else spreadsheet_safe
    # RFC 4180 line ends: the writer quotes a cell holding any character of the terminator,
    # so a label with a lone CR cannot split a record in two.
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\r\n")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow({k: "" if v is None else cell(v) for k, v in row.items()})
        n += 1
    return n


def report_csv(report: DayReport, out: IO[str], *, raw: bool = False) -> int:
    """One day's report as CSV (:data:`~agent.report.REPORT_FIELDS`): the summary row, then one
    row per hour and per party size."""
    return write_csv(report_rows(report), REPORT_FIELDS, out, raw=raw)


def write_records(
    records: Iterable[dict[str, Any]],
    fields: tuple[str, ...],
    fmt: str,
    out: IO[str],
    *,
    raw: bool = False,
) -> int:
    if fmt == "csv":
        return write_csv(records, fields, out, raw=raw)
    n = 0
    for rec in records:
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        n += 1
    return n
