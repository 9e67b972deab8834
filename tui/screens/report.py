"""The end of the night: the day's figures for any date, and close-out.

The same definitions as the header and the chain's analytics (:mod:`agent.report`). Export CSV
(the one writer, :func:`agent.export.report_csv`: spreadsheet-safe) hands the file to the
terminal's download folder, or to the browser as a download when the board runs in `pager-edge web`.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

from agent.display import minutes
from agent.export import report_csv
from agent.report import DayReport, Group, service_day, summary_text
from tui.render.theme import Cell
from tui.screens.base import LiveScreen
from tui.widgets.table import DiffTable

GROUP_COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("key", "", 10),
    ("parties", "Parties", 8),
    ("paged", "Paged", 6),
    ("wait", "Avg wait", 9),
)


def group_cells(g: Group, *, hour: bool) -> tuple[Cell, ...]:
    key = f"{g.key:02d}:00" if hour else (f"{g.key} guests" if g.key else "? guests")
    return (
        (key, "number"),
        (str(g.parties), ""),
        (str(g.paged), ""),
        (minutes(g.mean_wait) if g.mean_wait is not None else "—", ""),
    )


class ReportScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="report-back"),
        Binding("left", "day(-1)", "Day before", id="report-prev"),
        Binding("right", "day(1)", "Day after", id="report-next"),
        Binding("x", "export", "Export CSV", id="report-export"),
    ]

    def __init__(self) -> None:
        super().__init__(id="report")
        self.day: date | None = None
        self.report: DayReport | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="report-body"):
            with Horizontal(id="report-bar"):
                yield Static("", id="report-title")
                yield Button("◀", id="prev", compact=True)
                yield Button("Today", id="today", compact=True)
                yield Button("▶", id="next", compact=True)
                yield Button("Export CSV", id="export", compact=True)
            yield Static("loading…", id="report-summary")
            with Horizontal(id="report-tables"):
                yield DiffTable(GROUP_COLUMNS, ansi=self.board.ansi, id="by-hour")
                yield DiffTable(GROUP_COLUMNS, ansi=self.board.ansi, id="by-size")
        yield Footer()

    def on_mount(self) -> None:
        self.show_day(service_day(self.board.clock.now(), self.board.zone))

    def show_day(self, day: date) -> None:
        self.day = day
        self.query_one("#report-title", Static).update(Text(f"Report · {day:%A %d %B %Y}"))
        self._load(day)

    @work(thread=True, exclusive=True, group="report", exit_on_error=False)
    def _load(self, day: date) -> None:
        report = self.board.source.report(day)
        self.app.call_from_thread(self._show, report)

    def _show(self, r: DayReport | None) -> None:
        if not self.is_attached:
            return
        self.report = r
        summary = self.query_one("#report-summary", Static)
        if r is None:
            summary.update("No database yet.")
            return
        summary.update(Text(summary_text(r)))
        self.query_one("#by-hour", DiffTable).apply(
            [(f"h{g.key}", group_cells(g, hour=True)) for g in r.by_hour]
        )
        self.query_one("#by-size", DiffTable).apply(
            [(f"s{g.key}", group_cells(g, hour=False)) for g in r.by_size]
        )

    def action_day(self, step: int) -> None:
        if self.day is not None:
            self.show_day(self.day + timedelta(days=step))

    @on(Button.Pressed, "#prev")
    def _prev(self) -> None:
        self.action_day(-1)

    @on(Button.Pressed, "#next")
    def _next(self) -> None:
        self.action_day(1)

    @on(Button.Pressed, "#today")
    def _today(self) -> None:
        self.show_day(service_day(self.board.clock.now(), self.board.zone))

    @on(Button.Pressed, "#export")
    def action_export(self) -> None:
        r = self.report
        if r is None:
            return
        out = io.StringIO()
        report_csv(r, out)  # spreadsheet-safe, as `pager-edge report` and `export` write it
        out.seek(0)
        self.app.deliver_text(
            out,
            save_filename=f"pager-edge-report-{r.day.isoformat()}.csv",
            mime_type="text/csv",
        )
        self.notify(f"Report for {r.day:%d %B} exported (CSV)", timeout=4)


class CloseOutDialog(ModalScreen[str | None]):
    """Close out the night: seat or remove every party still open, recorded as a close-out."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "keep", "Keep", id="close-out-keep")
    ]

    def __init__(self, open_parties: int, default: str):
        super().__init__()
        self.open_parties = open_parties
        self.default = default

    def compose(self) -> ComposeResult:
        n = self.open_parties
        with Vertical(id="close-out", classes="dialog"):
            yield Static(
                Text(
                    f"Close out the night: {n} part{'y' if n == 1 else 'ies'} still open.\n"
                    "Seat them (they ate) or remove them (they left)? Recorded as the close-out."
                ),
                id="question",
            )
            with Horizontal(classes="buttons"):
                yield Button("Seat all", id="seat", variant="primary")
                yield Button("Remove all", id="remove", variant="error")
                yield Button("Keep (n)", id="keep")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "keep" else event.button.id)

    def action_keep(self) -> None:
        self.dismiss(None)
