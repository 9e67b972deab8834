"""The guest-facing kiosk: big pager numbers, never labels; a stamp and a banner show freshness;
the wait a party joining now would be quoted, by party size.

This screen only ever sees rows without a ``label`` key (the kiosk's BoardSource strips them), and
it reads nothing but pager numbers and states from them.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from agent.clock import local, parse_iso
from tui.render.cells import clock_text
from tui.render.header import banner
from tui.screens.base import MainView
from tui.widgets.header import BannerLine, BigNumbers, set_text


class KioskScreen(MainView):
    AUTO_FOCUS = None  # nothing focusable, no cursor

    def __init__(self) -> None:
        super().__init__(id="kiosk")

    def compose(self) -> ComposeResult:
        with Horizontal(id="kiosk-titlebar"):
            yield Static(self.board.kiosk_title, id="kiosk-title")
            yield Static("", id="kiosk-clock")
        yield BannerLine(id="kiosk-banner")
        with Vertical(id="kiosk-body"):
            yield Static("", id="paging-title", classes="kiosk-heading")
            # The numbers take the body's height (paged 3 : waiting 2, the whole of it when the
            # other list is empty), at the largest glyphs that hold them all.
            yield BigNumbers(id="paging", style=self.board.paged_style, ascii=self.board.ascii)
            yield Static("", id="waiting-title", classes="kiosk-heading")
            yield BigNumbers(id="waiting", style="bold", ascii=self.board.ascii, text_fallback=True)
        yield Static("", id="estimates")
        yield Static("", id="stamp")

    def on_mount(self) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        app = self.board
        now = app.clock.now()
        # Outside opening hours the screen goes dark: nobody waits, and a lit panel all night
        # wears it out (and lights up an empty dining room).
        closed = not app.config.board.is_open(local(now, app.zone).time())
        self.set_class(closed, "-closed")
        if closed:
            return
        m = app.markers
        snap = app.snapshot
        set_text(
            self.query_one("#kiosk-clock", Static),
            clock_text(now, app.zone, twelve_hour=app.twelve_hour),
        )
        self.query_one(BannerLine).show(
            banner(snap, now, app.stale_after, app.zone, m, kiosk=True, twelve_hour=app.twelve_hour)
        )
        rows = list(snap.sessions) if snap is not None and snap.ready else []
        paged = sorted((r for r in rows if r.paged), key=lambda r: r.notified or "", reverse=True)
        waiting = [r for r in rows if not r.paged]  # store order: oldest first
        paged_numbers = [r.number for r in paged]
        waiting_numbers = [r.number for r in waiting]
        set_text(
            self.query_one("#paging-title", Static),
            f"{m.paged} NOW PAGING {m.sep} please come to the host stand"
            if paged_numbers
            else f"{m.paged} NOW PAGING {m.sep} nobody right now",
        )
        self._numbers("#paging", paged_numbers)
        set_text(
            self.query_one("#waiting-title", Static),
            f"{m.waiting} WAITING ({len(waiting_numbers)})",
        )
        self._numbers("#waiting", waiting_numbers)
        set_text(self.query_one("#estimates", Static), self._estimates_text(), layout=True)
        # When the agent last wrote (its heartbeat), not when this screen last looked: a dead
        # agent leaves the stamp behind the clock.
        stamp = None
        if snap is not None and snap.ready:
            stamp = parse_iso(snap.health.heartbeat_at) or snap.read_at
        self.query_one("#stamp", Static).update(
            f"last updated {clock_text(stamp, app.zone, twelve_hour=app.twelve_hour, seconds=True)}"
            if stamp
            else "last updated: never"
        )

    def _numbers(self, selector: str, numbers: list[int]) -> None:
        widget = self.query_one(selector, BigNumbers)
        widget.show(numbers)
        if widget.display != bool(numbers):
            widget.display = bool(numbers)  # an empty list gives its height to the other

    def _estimates_text(self) -> str:
        """The next party's quote per size: from the queue, else from history — never the default
        goal (a guest should not read a setting as a promise). Sizes and minutes, nothing else."""
        if not self.board.show_estimates:
            return ""
        m = self.board.markers
        known = [(t, secs) for t, q in self.board.estimates if q.estimated and (secs := q.seconds)]
        if not known:
            return ""
        parts = [f"{t} guests ~{secs // 60} min" for t, secs in known]
        return f"Wait if you join now  {f' {m.sep} '.join(parts)}"
