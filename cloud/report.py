"""`pager-edge cloud report`: the analytics views, filtered, as rows or as a text table.

The figures are the views' (``cloud/schema.py``), never recomputed here, so what the report prints
is what a BI tool reading the views sees.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from agent.display import printable
from cloud.schema import Conn

# by → (view, its extra grouping column)
VIEWS: dict[str, tuple[str, str | None]] = {
    "day": ("site_day_stats", None),
    "hour": ("site_day_hour_stats", "local_hour"),
    "party-size": ("site_day_party_size_stats", "party_size"),
}
FIGURES = (
    "parties",
    "seated",
    "walk_aways",
    "lost",
    "still_open",
    "paged",
    "quoted",
    "quoted_mean_seconds",
    "wait_mean_seconds",
    "wait_median_seconds",
    "on_time_eligible",
    "on_time",
    "on_time_share",
)


async def report_rows(
    db: Conn | asyncpg.Pool,
    *,
    by: str = "day",
    site: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[dict[str, Any]]:
    """Rows of one view, ordered by site, local day (and hour or party size); JSON-ready values."""
    view, extra = VIEWS[by]
    cols = ["site", "local_day", *([extra] if extra else []), *FIGURES]
    where, args = [], []
    # Only the filters given, so a site filter reaches the grouping inside the view.
    for cond, value in (
        ("site = $%d", site),
        ("local_day >= $%d", since),
        ("local_day <= $%d", until),
    ):
        if value is not None:
            args.append(value)
            where.append(cond % len(args))
    sql = f"SELECT {', '.join(cols)} FROM {view}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY site, local_day" + (f", {extra} NULLS LAST" if extra else "")
    return [{k: _plain(v) for k, v in r.items()} for r in await db.fetch(sql, *args)]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _minutes(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


_HEAD = {
    "local_hour": "hour",
    "party_size": "size",
}


def format_report(rows: list[dict[str, Any]], by: str = "day") -> str:
    """A fixed-width table; waits and quotes in minutes, on-time share in percent."""
    extra = VIEWS[by][1]
    head = ["site", "day", *([_HEAD[extra]] if extra else [])]
    head += ["parties", "seated", "walked", "lost", "open", "paged"]
    head += ["quoted min", "wait min", "median min", "on time"]
    table = [head]
    for r in rows:
        cells = [printable(r["site"]), r["local_day"]]
        if extra:
            cells.append("" if r[extra] is None else str(r[extra]))
        cells += [str(r[k]) for k in ("parties", "seated", "walk_aways", "lost", "still_open")]
        cells.append(str(r["paged"]))
        cells += [
            _minutes(r["quoted_mean_seconds"]),
            _minutes(r["wait_mean_seconds"]),
            _minutes(r["wait_median_seconds"]),
            "" if r["on_time_share"] is None else f"{100 * r['on_time_share']:.0f} %",
        ]
        table.append(cells)
    if not rows:
        return "no parties in that range"
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = []
    for row in table:
        lines.append(
            "  ".join(
                c.ljust(w) if i < len(head) - 10 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    return "\n".join(lines)
