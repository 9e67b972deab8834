"""The tables' cells: one row per party (staff board) or per finished party (history).

Every text that came from the transmitter goes through :func:`agent.display.printable`; widths are
then whatever Rich measures.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from agent.clock import local
from agent.display import minutes, printable
from agent.session import SessionView
from tui.core.parties import moment, slack, waited
from tui.core.waits import actual_wait
from tui.render.theme import UNICODE, Cell, Markers

SOON_SECONDS = 120

COLUMNS: tuple[tuple[str, str, int], ...] = (
    # key, title, width at 80 columns
    ("num", "#", 4),
    ("label", "Label", 14),
    ("size", "Size", 4),
    ("waited", "Waited", 6),
    ("quote", "Quote", 5),
    ("left", "Left/late", 10),
    ("state", "State", 15),
)

LABEL_WIDE = 28  # the compact layout's label column when the terminal is wide (≥ 110 columns)
WIDE = 110
# The touch layout: the label takes the width the other columns leave, within these bounds; under
# LABEL_MIN the quote column goes (waited + left say it) and the state column narrows to
# STATE_NARROW ("○ waiting"; "◆ PAGED 3m ×2" takes the row's second line). Rows are two lines
# there, so the label wraps onto the second one too.
LABEL_MIN, LABEL_MAX = 14, 40
STATE_NARROW = 9
CELL_PADDING = 1  # DataTable's, each side of every column
SCROLLBAR = 2  # DataTable's vertical scrollbar, when the rows overflow


def table_columns(width: int, *, touch: bool) -> tuple[tuple[str, str, int], ...]:
    """The staff table's columns at this width (in cells): (key, title, width), a subset of
    :data:`COLUMNS` in its order.

    Compact: the 80-column widths, the label widened to 28 from 110 columns. Touch: a tablet in
    portrait has ~66 columns at a finger-sized font, so the label gets what the fixed columns
    leave instead of a fixed 14 that is cut while other columns keep spare space.
    """
    if not touch:
        return tuple(
            (key, title, LABEL_WIDE if width >= WIDE and key == "label" else w)
            for key, title, w in COLUMNS
        )

    def leftover(columns: tuple[tuple[str, str, int], ...]) -> int:
        fixed = sum(w for key, _t, w in columns if key != "label")
        return width - SCROLLBAR - fixed - 2 * CELL_PADDING * len(columns)

    columns = COLUMNS
    if leftover(columns) < LABEL_MIN:
        columns = tuple(
            (key, title, STATE_NARROW if key == "state" else w)
            for key, title, w in COLUMNS
            if key != "quote"
        )
    label = max(4, min(LABEL_MAX, leftover(columns)))
    return tuple((key, title, label if key == "label" else w) for key, title, w in columns)


HISTORY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("num", "#"),
    ("label", "Label"),
    ("size", "Size"),
    ("outcome", "Outcome"),
    ("quoted", "Quoted"),
    ("actual", "Actual"),
    ("verdict", "Verdict"),
    ("ended", "Ended"),
)


def age_text(seconds: float | None) -> str:
    """How long ago, for the header: ``4 s``, ``3 min``, ``2 h``."""
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h"


def clock_text(
    moment_: datetime, zone: tzinfo | None, *, twelve_hour: bool = False, seconds: bool = False
) -> str:
    """A local time of day as the site wants it: ``19:30`` or ``7:30 PM`` (`[board] clock_format`)."""
    here = local(moment_, zone)
    if not twelve_hour:
        return here.strftime("%H:%M:%S" if seconds else "%H:%M")
    text = here.strftime("%I:%M:%S %p" if seconds else "%I:%M %p")
    return text.lstrip("0")


def minute_of(moment_: datetime) -> datetime:
    """The table's time base: timers move together once a minute (one repaint a minute, not
    one a second; every duration on the board is shown in whole minutes anyway)."""
    return moment_.replace(second=0, microsecond=0)


def party_cells(
    p: SessionView, now: datetime, m: Markers = UNICODE, *, pending: str | None = None
) -> tuple[Cell, ...]:
    """The table row for one party, in :data:`COLUMNS` order; `pending` is a staff action waiting
    out its undo grace (``seating``), shown instead of the state."""
    s = slack(p, now)
    late = s is not None and s < 0
    if s is None:
        left: Cell = (m.dash, "muted")
    elif late:
        left = (f"{m.late} LATE {minutes(-s)}", "late")
    elif p.paged:
        left = ("on time", "ok")
    else:
        # In whole minutes of the other columns, so that waited + left = quote on every row.
        whole = (p.goal_seconds or 0) // 60 - int(waited(p, now) or 0) // 60
        left = (f"{minutes(max(0, whole) * 60)} left", "soon" if s <= SOON_SECONDS else "ok")
    if p.paged:
        since = moment(p.notified or p.first_notified)
        text = f"{m.paged} PAGED {minutes((now - since).total_seconds()) if since else ''}"
        if p.page_count > 1:
            text += f" {m.times}{p.page_count}"
        state: Cell = (text.rstrip(), "paged")
    else:
        state = (f"{m.waiting} waiting", "late" if late else "")
    if pending:
        state = (f"{m.pending} {pending.upper()}", "soon")
    return (
        (str(p.number), "late" if late else "number"),
        (printable(p.label), ""),
        ("" if p.party_size is None else str(p.party_size), ""),
        (minutes(waited(p, now)), ""),
        ("" if p.goal_seconds is None else minutes(p.goal_seconds), "muted"),
        left,
        state,
    )


def history_cells(
    p: SessionView, zone: tzinfo | None, m: Markers = UNICODE, *, twelve_hour: bool = False
) -> tuple[Cell, ...]:
    seated = p.state == "cleared"
    outcome = (f"{m.seated} seated", "ok") if seated else (f"{m.removed} removed", "removed")
    wait = actual_wait(p)
    goal = p.goal_seconds
    if wait is None or goal is None:
        verdict: Cell = (m.dash, "muted")
    elif wait > goal:
        verdict = (f"{m.late} LATE {minutes(wait - goal)}", "late")
    else:
        verdict = ("on time", "ok")
    ended = moment(p.cleared)
    return (
        (str(p.number), "number"),
        (printable(p.label), ""),
        ("" if p.party_size is None else str(p.party_size), ""),
        outcome,
        ("" if goal is None else minutes(goal), "muted"),
        (m.dash if wait is None else minutes(wait), ""),
        verdict,
        ("" if ended is None else clock_text(ended, zone, twelve_hour=twelve_hour), "muted"),
    )


LOST_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("num", "#", 4),
    ("label", "Label", 14),
    ("size", "Size", 4),
    ("arrived", "Arrived", 8),
    ("state", "State", 30),
)


def lost_cells(
    p: SessionView, zone: tzinfo | None, m: Markers = UNICODE, *, twelve_hour: bool = False
) -> tuple[Cell, ...]:
    """A party the transmitter forgot: when it arrived, and what staff can do."""
    created = moment(p.created)
    return (
        (str(p.number), "number"),
        (printable(p.label), ""),
        ("" if p.party_size is None else str(p.party_size), ""),
        ("" if created is None else clock_text(created, zone, twelve_hour=twelve_hour), "muted"),
        (f"{m.removed} LOST {m.sep} tap: re-add or dismiss", "removed"),
    )
