"""The staff board: live table of active parties, header, banner, one key per action."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Footer, Input, Static
from textual.widgets.button import ButtonVariant

from agent.clock import local, parse_iso
from agent.session import SessionView
from tui.core.actions import (
    BY_NAME,
    PENDING_WORDS,
    Request,
    bar_actions,
    key_actions,
    undo_key,
)
from tui.core.parties import SIZE_BUCKETS, is_late, matches, shown_label
from tui.core.source import Snapshot
from tui.messages import ActionRequested, AddPartyRequested, EditPartyRequested, HistoryRequested
from tui.render.cells import LOST_COLUMNS, clock_text, lost_cells, minute_of, party_cells
from tui.render.header import (
    backhaul_segments,
    banner,
    health_segments,
    stats_segments,
    sync_segments,
    visible_extras,
)
from tui.render.theme import Cell
from tui.screens.base import MainView
from tui.screens.party import MoreActions, PartyActions
from tui.widgets.header import BannerLine, Line, set_text
from tui.widgets.table import DiffTable, PartyTable


def staff_bindings() -> list[BindingType]:
    """The staff board's keys, from the one action table (footer order, labels, keymap ids)."""
    return [
        Binding(
            a.key,
            a.name,
            a.footer,
            show=a.in_footer,
            key_display=a.key_display,
            id=a.binding,
        )
        for a in key_actions()
        if a.key is not None
    ]


class StaffScreen(MainView):
    BINDINGS: ClassVar[list[BindingType]] = staff_bindings()

    def __init__(self, *, width: int = 80, touch: bool = False) -> None:
        super().__init__(id="staff")
        self.width = width  # the terminal's, when the screen was made (the table's columns)
        self.touch = touch  # finger-sized rows and the permanent action bar
        self._bar_state: tuple[bool, ...] | None = None
        self.bucket: int | None = None
        self.search = ""
        self.parties: dict[str, SessionView] = {}
        self._binding_state: tuple[str | None, bool] | None = None
        self._table_key: tuple[object, ...] | None = None
        self._row_cache: dict[str, tuple[SessionView, str | None, tuple[Cell, ...]]] = {}
        self._cache_minute: datetime | None = None
        self._shown: list[tuple[str, tuple[Cell, ...]]] = []
        self._panel_open = False
        self._late = 0
        self._pending: dict[str, str] = {}
        self.lost: dict[str, SessionView] = {}

    def compose(self) -> ComposeResult:
        ansi = self.board.ansi
        with Vertical(id="top"):
            with Horizontal(id="titlebar"):
                yield Static(Text(self.board.site_title), id="title")
                yield Static("", id="clock")
            yield Line(ansi=ansi, id="stats")
            yield Line(ansi=ansi, id="health")
            yield Line(ansi=ansi, id="sync")
            yield Line(ansi=ansi, id="backhaul")
        yield BannerLine(id="banner")
        with Horizontal(id="filterbar"):
            yield Static("", id="filter-state")
            yield Input(placeholder="label or pager number", id="search-input")
        yield PartyTable(ansi=ansi, width=self.width, touch=self.touch, id="parties")
        yield Static("", id="empty")
        with Horizontal(id="pending-bar"):
            yield Static("", id="pending-text")
            if not self.touch:  # the action bar's Undo is the finger-sized one
                yield Button(f"Undo ({undo_key()})", id="undo", variant="warning", compact=True)
        yield Static("", id="lost-title")
        yield DiffTable(LOST_COLUMNS, ansi=ansi, row_height=2 if self.touch else 1, id="lost-table")
        if self.touch:
            with Horizontal(id="action-bar"):
                for action in bar_actions():
                    variant: ButtonVariant = "error" if action.danger else "primary"
                    yield Button(action.bar or "", id=f"bar-{action.name}", variant=variant)
                yield Button("More…", id="bar-more")
        else:
            yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#filterbar").display = False
        for hidden in ("#pending-bar", "#lost-title", "#lost-table"):
            self.query_one(hidden).display = False
        self.query_one(PartyTable).focus()
        self.refresh_view()

    def on_resize(self) -> None:
        """A tablet turned: the table's columns follow the width."""
        self.query_one(PartyTable).fit(self.size.width)

    # data in -----------------------------------------------------------------------------

    def refresh_view(self) -> None:
        """Re-render from the app's latest snapshot, the replies overlay and the clock."""
        app = self.board
        now = app.clock.now()
        snap = app.snapshot
        m = app.markers
        clock = clock_text(now, app.zone, twelve_hour=app.twelve_hour, seconds=True)
        set_text(self.query_one("#clock", Static), f"{local(now, app.zone):%a} {clock}")
        table_now = minute_of(now)
        key = (id(snap), app.model.overlay.version, self.bucket, self.search, table_now)
        pending = {
            r.uuid: PENDING_WORDS[r.kind]
            for r in (snap.requests if snap is not None else ())
            if r.uuid is not None and r.kind in PENDING_WORDS
        }
        self._pending = pending
        if key != self._table_key:
            # Only when something the table shows can have changed: new data, a reply, a filter,
            # or the minute turned.
            self._table_key = key
            self._rebuild(app.board_rows(), table_now)
            self._show_lost(snap.lost if snap is not None else ())
        self._show_pending(snap, now)
        shown = self._shown
        empty = self.query_one("#empty", Static)
        empty.display = not shown
        if not shown:
            if self.parties and (self.bucket is not None or self.search):
                set_text(empty, "No party matches the filter (Esc clears it)", layout=True)
            elif snap is not None and snap.ready:
                how = "Tap Add party" if self.touch else "Press a"
                set_text(empty, f"No parties waiting. {how} to add one.", layout=True)
            else:
                set_text(empty, "", layout=True)
        if snap is not None and snap.ready:
            self.query_one("#stats", Line).show(stats_segments(snap, m, late=self._late))
            self.query_one("#health", Line).show(
                health_segments(snap.health, now, app.stale_after, m, width=self.size.width - 2)
            )
            extras = visible_extras(
                snap.extras,
                sync_enabled=app.config.sync.enabled,
                backhaul_enabled=app.config.backhaul.enabled,
            )
            self.query_one("#sync", Line).show(sync_segments(extras.get("sync"), now, m))
            self.query_one("#backhaul", Line).show(backhaul_segments(extras.get("backhaul"), m))
        else:
            self.query_one("#stats", Line).show([])
            self.query_one("#health", Line).show([])
            self.query_one("#sync", Line).show([])
            self.query_one("#backhaul", Line).show([])
        self.query_one(BannerLine).show(
            banner(snap, now, app.stale_after, app.zone, m, twelve_hour=app.twelve_hour)
        )
        self._sync_bindings()

    def _rebuild(self, rows: list[SessionView], table_now: datetime) -> None:
        """Views → cells (reusing a row's cells while its view and the minute are unchanged)."""
        m = self.board.markers
        if self._cache_minute != table_now:
            self._row_cache.clear()
            self._cache_minute = table_now
        cache = self._row_cache
        fresh: dict[str, tuple[SessionView, str | None, tuple[Cell, ...]]] = {}
        parties: dict[str, SessionView] = {}
        shown = []
        for party in rows:
            uuid = party.uuid
            hit = cache.get(uuid)
            waiting_out = self._pending.get(uuid)
            if hit is None or hit[0] != party or hit[1] != waiting_out:
                hit = (party, waiting_out, party_cells(party, table_now, m, pending=waiting_out))
            fresh[uuid] = hit
            parties[uuid] = party
            if matches(party, bucket=self.bucket, search=self.search):
                shown.append((uuid, hit[2]))
        self._row_cache = fresh
        self.parties = parties
        # On the table's minute, as the rows say it (and only when the table changed).
        self._late = sum(1 for p in parties.values() if is_late(p, table_now))
        self._shown = shown
        self.query_one(PartyTable).apply(shown)

    def _sync_bindings(self) -> None:
        party = self.selected
        state = (party.uuid if party else None, bool(party and party.paged))
        if state != self._binding_state:
            self._binding_state = state
            self.refresh_bindings()
        if self.touch:
            self._sync_bar(party is not None)

    def _sync_bar(self, selected: bool) -> None:
        """The action bar's buttons greyed as the footer's keys are: Page, Seat and Remove with
        no party selected, Undo with nothing in its grace."""
        snap = self.board.snapshot
        pending = any(r.state == "pending" for r in (snap.requests if snap else ()))
        actions = bar_actions()
        state = tuple(
            pending if a.name == "undo" else selected or not a.needs_selection for a in actions
        )
        if state == self._bar_state:
            return
        self._bar_state = state
        for action, enabled in zip(actions, state, strict=True):
            self.query_one(f"#bar-{action.name}", Button).disabled = not enabled

    @on(Button.Pressed, "#action-bar Button")
    def _bar_pressed(self, event: Button.Pressed) -> None:
        name = (event.button.id or "").removeprefix("bar-")
        if name == "more":
            self.app.push_screen(MoreActions(has_selection=self.selected is not None), self._chosen)
        else:
            self._chosen(name)

    def _chosen(self, action: str | None) -> None:
        if action is not None:
            getattr(self, f"action_{action}")()  # exactly what the key does

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self) -> None:
        self._sync_bindings()

    # the touch panel --------------------------------------------------------------------

    @on(DiffTable.Tapped)
    @on(DataTable.RowSelected)
    def _open_panel(self, event: DiffTable.Tapped | DataTable.RowSelected) -> None:
        """A tap on a party (or Enter on its row) offers its actions as large buttons. In the
        touch layout a tap selects the row (the action bar acts on it); a tap on the selected
        row opens its panel."""
        if self.touch and isinstance(event, DiffTable.Tapped) and not event.again:
            return
        lost_table = self.query_one("#lost-table", DiffTable)
        table = event.table if isinstance(event, DiffTable.Tapped) else event.data_table
        if table is lost_table:
            key = lost_table.selected_key
            party = self.lost.get(key) if key else None
        else:
            party = self.selected
        if party is None or self._panel_open:
            return  # a tap on the highlighted row also selects it: one panel, not two
        self._panel_open = True

        def chosen(action: str | None) -> None:
            self._panel_open = False
            self._chosen(action)

        self.app.push_screen(PartyActions(party, self.board.clock.now()), chosen)

    def _show_pending(self, snap: Snapshot | None, now: datetime) -> None:
        """Staff actions waiting out their undo grace, from every board, with a countdown."""
        waiting = [r for r in (snap.requests if snap else ()) if r.state == "pending"]
        bar = self.query_one("#pending-bar")
        if bar.display != bool(waiting):
            bar.display = bool(waiting)
        if not waiting:
            return
        parts = []
        for r in waiting:
            due = parse_iso(r.due_at)
            left = max(0, round((due - now).total_seconds())) if due else 0
            what = PENDING_WORDS.get(r.kind, r.kind)
            parts.append(f"{what} {'pager ' + str(r.number) if r.number is not None else ''}"
                         f" in {left} s".replace("  ", " "))  # fmt: skip
        set_text(
            self.query_one("#pending-text", Static),
            f"{self.board.markers.pending} " + " · ".join(parts),
        )

    def _show_lost(self, lost: Sequence[SessionView]) -> None:
        """Parties the transmitter forgot, in their own group: not waiting, not gone either."""
        self.lost = {v.uuid: v for v in lost}
        board = self.board
        for widget in ("#lost-title", "#lost-table"):
            self.query_one(widget).display = bool(lost)
        if lost:
            m = board.markers
            set_text(
                self.query_one("#lost-title", Static),
                f"{m.removed} {len(lost)} lost {m.sep} the transmitter no longer knows "
                f"{'it' if len(lost) == 1 else 'them'} (restarted?)",
            )
        rows = [
            (v.uuid, lost_cells(v, board.zone, board.markers, twelve_hour=board.twelve_hour))
            for v in lost
        ]
        self.query_one("#lost-table", DiffTable).apply(rows)

    def flash(self, uuid: str) -> None:
        self.query_one(PartyTable).flash(uuid)

    # selection ---------------------------------------------------------------------------

    @property
    def selected(self) -> SessionView | None:
        key = self.query_one(PartyTable).selected_key
        return self.parties.get(key) if key else None

    def select_number(self, number: int) -> bool:
        for uuid, p in self.parties.items():
            if p.number == number:
                return self.query_one(PartyTable).select_key(uuid)
        return False

    def parties_by_number(self, number: int) -> SessionView | None:
        return next((p for p in self.parties.values() if p.number == number), None)

    def cells_by_number(self, number: int) -> tuple[Cell, ...] | None:
        party = self.parties_by_number(number)
        return self.query_one(PartyTable).cells_of(party.uuid) if party else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        known = BY_NAME.get(action)
        if known is not None and known.needs_selection and self.selected is None:
            return None  # shown dimmed in the footer
        return True  # `r` on a waiting party says why it does nothing (see action_repage)

    # actions -----------------------------------------------------------------------------

    def _act(self, request: Request) -> None:
        self.post_message(ActionRequested(request))

    def action_add(self) -> None:
        self.post_message(AddPartyRequested())

    def action_page(self) -> None:
        if party := self.selected:
            self._act(Request("repage" if party.paged else "page", party))

    def action_repage(self) -> None:
        party = self.selected
        if party is None:
            return
        if not party.paged:
            self.notify(f"Pager {party.number} has not been paged yet: press p", timeout=4)
            return
        self._act(Request("repage", party))

    def action_seat(self) -> None:
        if party := self.selected:
            self._act(Request("seat", party))

    def action_remove(self) -> None:
        party = self.selected
        if party is None:
            return
        label = shown_label(party)
        question = (
            f"Remove the party on pager {party.number}{f' ({label})' if label else ''}?\n"
            "The session ends as REMOVED (walked away, no-show or mistake)."
        )

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self._act(Request("remove", party))

        from tui.screens.dialogs import ConfirmDialog

        self.app.push_screen(ConfirmDialog(question), done)

    def action_edit(self) -> None:
        if party := self.selected:
            self.post_message(EditPartyRequested(party))

    def action_filter_size(self) -> None:
        order: list[int | None] = [None, *range(len(SIZE_BUCKETS))]
        self.bucket = order[(order.index(self.bucket) + 1) % len(order)]
        self._show_filters()
        self.refresh_view()

    def action_search(self) -> None:
        self.query_one("#filterbar").display = True
        self.query_one("#search-input", Input).focus()

    def action_clear_filters(self) -> None:
        self.bucket = None
        self.search = ""
        search = self.query_one("#search-input", Input)
        with search.prevent(Input.Changed):
            search.value = ""
        self._show_filters()
        self.query_one(PartyTable).focus()
        self.refresh_view()

    def action_transmitter(self) -> None:
        from tui.screens.transmitter import TransmitterScreen

        self.app.push_screen(TransmitterScreen())

    def action_readd(self) -> None:
        """Re-add a lost party to the transmitter: same pager, label, size and goal, linked."""
        party = self._lost_selected()
        if party is not None:
            self._act(Request("readd", party))

    def action_dismiss_lost(self) -> None:
        party = self._lost_selected()
        if party is not None:
            self._act(Request("dismiss", party))

    def _lost_selected(self) -> SessionView | None:
        key = self.query_one("#lost-table", DiffTable).selected_key
        return self.lost.get(key) if key else None

    def action_report(self) -> None:
        from tui.screens.report import ReportScreen

        self.app.push_screen(ReportScreen())

    def action_close_out(self) -> None:
        from tui.screens.report import CloseOutDialog

        open_parties = len(self.parties)
        if not open_parties:
            self.notify("Nobody is waiting: nothing to close out", timeout=4)
            return

        def done(action: str | None) -> None:
            if action is not None:
                self._act(Request("close_out", values={"action": action}))

        self.app.push_screen(
            CloseOutDialog(open_parties, self.board.config.board.close_out_action), done
        )

    def action_undo(self) -> None:
        self._act(Request("undo"))

    @on(Button.Pressed, "#undo")
    def _undo_button(self) -> None:
        self.action_undo()

    def action_history(self) -> None:
        self.post_message(HistoryRequested())

    @on(Input.Changed, "#search-input")
    def _search_changed(self, event: Input.Changed) -> None:
        self.search = event.value
        self._show_filters()
        self.refresh_view()

    @on(Input.Submitted, "#search-input")
    def _search_done(self) -> None:
        self.query_one(PartyTable).focus()
        self._show_filters()

    def _show_filters(self) -> None:
        parts = []
        if self.bucket is not None:
            parts.append(f"party size {SIZE_BUCKETS[self.bucket][0]}")
        if self.search:
            parts.append(f'search "{self.search}"')
        search_focused = self.query_one("#search-input", Input).has_focus
        bar = self.query_one("#filterbar")
        bar.display = bool(parts) or search_focused
        text = ("Filter: " + ", ".join(parts) + "  (Esc clears)") if parts else "Search:"
        self.query_one("#filter-state", Static).update(Text(text))  # typed text, not markup
        self.query_one("#search-input").display = search_focused or bool(self.search)
