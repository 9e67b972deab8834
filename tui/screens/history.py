"""Today's finished parties: seated vs removed, quoted vs actual wait."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.data import HISTORY_COLUMNS, history_cells, local, minutes, summarize_history
from tui.widgets.table import DiffTable

if TYPE_CHECKING:
    from tui.app import BoardApp

HISTORY_WIDTHS = {"num": 4, "label": 14, "size": 4, "outcome": 9, "quoted": 6, "actual": 6}


class HistoryScreen(Screen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,h", "app.pop_screen", "Back", id="history-back"),
    ]

    app: BoardApp

    def __init__(self) -> None:
        super().__init__(id="history")
        self.rows: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Static("Today's finished parties", id="history-title")
        yield Static("loading…", id="history-summary")
        columns = [(key, title, HISTORY_WIDTHS.get(key)) for key, title in HISTORY_COLUMNS]
        yield DiffTable(columns, ansi=self.app.ansi, id="history-table")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DiffTable).focus()
        self.app.load_history()

    def show(self, rows: Sequence[dict[str, Any]]) -> None:
        """Rows from the store's finished_since(start of today), newest first."""
        self.rows = list(rows)
        m = self.app.markers
        day = local(self.app.clock(), self.app.zone)
        self.query_one("#history-title", Static).update(
            f"Today's finished parties {m.sep} {day:%A %d %B}"
        )
        s = summarize_history(self.rows)
        parts = [f"{s.seated} seated", f"{s.removed} removed"]
        if s.average_wait is not None:
            parts.append(f"average wait {minutes(s.average_wait)}")
        if s.on_time_percent is not None:
            parts.append(f"on time {s.on_time_percent:.0f}%")
        if not self.rows:
            parts = ["nobody has finished yet today"]
        self.query_one("#history-summary", Static).update(f" {m.sep} ".join(parts))
        self.query_one(DiffTable).apply(
            [(r["uuid"], history_cells(r, self.app.zone, m)) for r in self.rows]
        )
