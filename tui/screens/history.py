"""Today's finished parties: seated vs removed, quoted vs actual wait."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static

from agent.clock import local
from agent.display import minutes
from agent.session import SessionView
from tui.core.actions import Request
from tui.core.waits import summarize_history
from tui.messages import ActionRequested, HistoryLoaded
from tui.render.cells import HISTORY_COLUMNS, LABEL_WIDE, history_cells
from tui.screens.base import LiveScreen
from tui.screens.party import PartyActions
from tui.widgets.table import DiffTable

HISTORY_WIDTHS = {"num": 4, "label": 14, "size": 4, "outcome": 9, "quoted": 6, "actual": 6}


class HistoryScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,h", "app.pop_screen", "Back", id="history-back"),
    ]

    def __init__(self) -> None:
        super().__init__(id="history")
        self.rows: list[SessionView] = []

    def compose(self) -> ComposeResult:
        yield Static("Today's finished parties", id="history-title")
        yield Static("loading…", id="history-summary")
        wide = self.board.size.width >= 110  # room for whole names, as on the staff board
        columns = [
            (key, title, LABEL_WIDE if wide and key == "label" else HISTORY_WIDTHS.get(key))
            for key, title in HISTORY_COLUMNS
        ]
        yield DiffTable(columns, ansi=self.board.ansi, id="history-table")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DiffTable).focus()
        self.board.load_history()

    @on(DiffTable.Tapped)
    @on(DataTable.RowSelected)
    def _reopen_panel(self) -> None:
        """A party seated (or removed) by mistake: tap it to re-add it, linked to this session."""
        key = self.query_one(DiffTable).selected_key
        party = next((r for r in self.rows if r.uuid == key), None)
        if party is None or isinstance(self.app.screen, PartyActions):
            return

        def chosen(action: str | None) -> None:
            if action == "readd" and party is not None:
                self.post_message(ActionRequested(Request("readd", party)))

        self.app.push_screen(PartyActions(party, self.board.clock.now()), chosen)

    @on(HistoryLoaded)
    def _loaded(self, message: HistoryLoaded) -> None:
        if self.is_attached:
            self.show(message.rows)

    def show(self, rows: list[SessionView]) -> None:
        """Today's finished parties (the store's, since the local start of the day), newest first."""
        self.rows = list(rows)
        board = self.board
        m = board.markers
        day = local(board.clock.now(), board.zone)
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
            [
                (r.uuid, history_cells(r, board.zone, m, twelve_hour=board.twelve_hour))
                for r in self.rows
            ]
        )
