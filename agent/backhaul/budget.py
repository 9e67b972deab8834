"""The data budget: how much of the cycle's allowance is gone, where it is heading, and what the
cloud sync may spend. Pure functions of plain arguments, so the sync engine, the board and the
tests can all ask without any I/O.

The operator's counter is the billing truth but it lags (ThingSpace: 15 min after a session ends,
hours for long sessions) and is only read every 15–60 min. So *used* is the last operator figure
plus the bytes the agent itself sent since that figure was read. Traffic of other devices behind
the same modem is only seen through the operator figure; the projection covers it via the burn rate.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Mode = Literal["normal", "conserve", "critical", "blocked"]
Alert = Literal["warn", "critical", "exhausted"]

# The burn rate is measured over at least this long: one hour into a cycle, 10 MB would otherwise
# project to 7 GB and throttle the sync for no reason.
MIN_RATE_WINDOW = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Budget:
    mode: Mode
    alert: Alert | None  # on what is used now, not on the projection
    cap_bytes: int  # 0: no allowance configured
    used_bytes: int  # operator figure (0 if from an earlier cycle) + own bytes since it was read
    projected_bytes: int  # at cycle_end, at the current burn rate
    percent_used: float | None  # of cap_bytes; None without a cap
    percent_projected: float | None
    cycle_start: datetime
    cycle_end: datetime


def _add_months(moment: datetime, months: int, day: int) -> datetime:
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def cycle_bounds(now: datetime, cycle_start_day: int) -> tuple[datetime, datetime]:
    """The billing cycle containing `now`: [day `cycle_start_day` 00:00 UTC, same day next month).

    Operators cut cycles at midnight in their own zone; when the operator reports the exact window
    (Control Center's usageInZone does), pass it to :func:`decide` as ``cycle`` instead.
    """
    now = now.astimezone(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = _add_months(start, 0, cycle_start_day)
    if now < start:
        start = _add_months(start, -1, cycle_start_day)
    return start, _add_months(start, 1, cycle_start_day)


def decide(
    cap_bytes: int,
    operator_used_bytes: int,
    reading_taken_at: datetime,
    bytes_sent_since_reading: int,
    now: datetime,
    cycle_start_day: int = 1,
    warn_percent: float = 75.0,
    critical_percent: float = 95.0,
    *,
    cycle: tuple[datetime, datetime] | None = None,
) -> Budget:
    """The sync mode for this moment.

    Policy, exactly:

    - The cycle is ``cycle`` (the operator's window) if it contains `now`, else the one derived
      from `cycle_start_day` (:func:`cycle_bounds`).
    - Reset at the boundary: an operator reading taken before the current cycle started counts as
      0 used. The agent's own bytes since the reading are always counted (when the reading predates
      the cycle some of them belong to the previous one; over-counting is the safe side).
    - ``used = operator figure + own bytes``; the burn rate is ``used / max(elapsed, 1 day)``;
      ``projected = used + rate × time left in the cycle``.
    - Mode: ``used ≥ cap`` → ``blocked``; else ``projected ≥ critical %`` of cap → ``critical``;
      else ``projected ≥ warn %`` → ``conserve``; else ``normal``. Without a cap (0) → ``normal``.
    - Alert (what a router would flash, on *used*, not projected): ≥ 100 % → ``exhausted``,
      ≥ critical % → ``critical``, ≥ warn % → ``warn``, else None.
    """
    now = now.astimezone(UTC)
    if cycle is not None and cycle[0] <= now < cycle[1]:
        start, end = cycle
    else:
        start, end = cycle_bounds(now, cycle_start_day)
    operator = operator_used_bytes if reading_taken_at >= start else 0
    used = max(0, operator) + max(0, bytes_sent_since_reading)
    elapsed = max(now - start, MIN_RATE_WINDOW)
    left = max(end - now, timedelta(0))
    projected = used + round(used * (left / elapsed))
    if cap_bytes <= 0:
        return Budget("normal", None, 0, used, projected, None, None, start, end)
    pct_used = 100.0 * used / cap_bytes
    pct_projected = 100.0 * projected / cap_bytes
    mode: Mode
    if used >= cap_bytes:
        mode = "blocked"
    elif pct_projected >= critical_percent:
        mode = "critical"
    elif pct_projected >= warn_percent:
        mode = "conserve"
    else:
        mode = "normal"
    alert: Alert | None = None
    if pct_used >= 100.0:
        alert = "exhausted"
    elif pct_used >= critical_percent:
        alert = "critical"
    elif pct_used >= warn_percent:
        alert = "warn"
    return Budget(
        mode,
        alert,
        cap_bytes,
        used,
        projected,
        round(pct_used, 2),
        round(pct_projected, 2),
        start,
        end,
    )
