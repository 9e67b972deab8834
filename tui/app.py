"""The wait-board app: staff board (default) or guest-facing kiosk (``kiosk=True``).

Embedding (the demo does this): build the app in the running loop and await it::

    app = BoardApp(db_path, client=agent.client, config=cfg)   # or kiosk=True
    await app.run_async()

The app wires the Textual-free core (:mod:`tui.core`) to the screens. It never writes the store:
a thread worker polls a read-only connection every ``board.refresh_interval`` seconds and posts a
:class:`~tui.messages.SnapshotReady` only when the agent committed something. Screens post
requests (:mod:`tui.messages`); every staff action takes one path (:meth:`BoardApp._act`, routed by
the action table in :mod:`tui.core.actions`) in an async worker: the store's request queue, or the
agent's controller client; the transmitter's reply is shown at once (an overlay the store later
confirms), a refusal or timeout is a notification and changes nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import App, SystemCommand
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input
from textual.worker import Worker, WorkerState, get_current_worker

from agent.clock import SYSTEM_CLOCK, Clock, iso_utc
from agent.config import Config
from agent.controller.client import ControllerClient, ControllerError
from agent.display import printable
from agent.health import liveness
from agent.session import SessionView
from agent.store.requests import open_queue
from tui.core.actions import (
    BY_KIND,
    ActionResult,
    PartyFields,
    Request,
    palette_entries,
    perform,
    submit_to_request_queue,
    undone_text,
)
from tui.core.alerts import Alert, AlertWatch
from tui.core.model import BoardModel
from tui.core.parties import lowest_free_number
from tui.core.quotes import Quote, Sample, live_quote
from tui.core.source import BoardSource, Snapshot
from tui.messages import (
    ActionDone,
    ActionRequested,
    AddPartyRequested,
    EditPartyRequested,
    HistoryLoaded,
    HistoryRequested,
    SettingsLoaded,
    SettingsRequested,
    SnapshotReady,
)
from tui.render.cells import minute_of
from tui.render.theme import ASCII, UNICODE, tone_style
from tui.screens.base import LiveScreen, MainView

log = logging.getLogger(__name__)
BOARD_ID = f"{socket.gethostname()}:{os.getpid()}"  # who asked, in the request queue


def console_mode() -> bool:
    """The bare Linux console: 16 colours and no box glyphs."""
    return os.environ.get("TERM", "") == "linux"


class BoardApp(App[None]):
    """``BoardApp(db_path, client=..., clock=..., kiosk=..., config=...)``.

    `clock` is an :class:`agent.clock.Clock` (inject a fixed one for deterministic snapshots);
    `ascii`/`ansi` force the console fallbacks (default: on when ``TERM=linux``); `layout`
    (``touch``/``compact``) overrides ``[board] layout``.
    """

    CSS_PATH = Path(__file__).with_name("board.tcss")  # absolute: a subclass (the bench) finds it
    TITLE = "pager-edge"

    def __init__(
        self,
        db_path: str | Path,
        *,
        client: ControllerClient | None = None,
        clock: Clock | None = None,
        kiosk: bool = False,
        config: Config | None = None,
        ascii: bool | None = None,
        ansi: bool | None = None,
        poll_interval: float | None = None,
        quit_proof: bool | None = None,
        layout: str | None = None,
    ):
        if kiosk:
            # Instance attribute read by App.__init__: no command palette, no ctrl+p binding.
            # Textual declares it a ClassVar, but one app class serves both the staff board
            # and the kiosk, so the kiosk shadows it per instance before App.__init__ runs.
            self.ENABLE_COMMAND_PALETTE = False  # type: ignore[misc]
        super().__init__()
        self.config = config or Config()
        self.db_path = Path(db_path)
        self.client = client
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.kiosk = kiosk
        # A guest must not close the installed kiosk; the demo's kiosk quits with Ctrl+Q.
        self.quit_proof = kiosk if quit_proof is None else quit_proof
        console = console_mode()
        self.ascii = console if ascii is None else ascii
        self.ansi = console if ansi is None else ansi
        self.markers = ASCII if self.ascii else UNICODE
        self.zone = self.config.transmitter_zone()
        board = self.config.board
        # `layout` is what the browser's page chose (touch screen or not); "auto" in a terminal
        # is the compact layout. The kiosk has one layout.
        self.touch = not kiosk and (layout or board.layout) == "touch"
        self.stale_after = self.config.agent.stale_after
        self.show_estimates = board.kiosk_show_estimates
        self.twelve_hour = board.clock_format == "12h"
        self.poll_interval = poll_interval or board.refresh_interval
        self.site_title = f"pager-edge {self.markers.sep} {self.config.site.name}"
        self.kiosk_title = self.config.site.name
        self.paged_style = tone_style("paged", ansi=self.ansi)
        self.source = BoardSource(
            self.db_path,
            clock=self.clock,
            zone=self.zone,
            kiosk=kiosk,
            config=None if kiosk else self.config,
        )
        self.model = BoardModel(self.clock, self.zone)
        self.undo_seconds = board.undo_seconds
        # Staff requests go through the store (undo grace, lost parties) when this user may write
        # it; the kiosk never writes.
        self.queue = None if kiosk else open_queue(self.db_path)
        self.alerts = AlertWatch(board.paged_nudge_minutes * 60)
        self._alerts_key: tuple[object, ...] | None = None
        self.sound = board.sound
        self.action_results: list[ActionResult] = []
        self._estimated = False
        self.worker_errors: list[BaseException | None] = []
        self.ready = asyncio.Event()  # set once the first snapshot has been shown
        self._stop = threading.Event()
        self._consumed = threading.Event()
        self._consumed.set()
        self._keyboard = "none"  # the soft keyboard the page was last asked for (touch, web)
        if self.ansi:
            self.theme = "ansi-dark"

    # what screens and tests read ---------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot | None:
        return self.model.snapshot

    @property
    def snapshots_seen(self) -> int:
        return self.model.snapshots_seen

    @property
    def estimates(self) -> list[tuple[str, Quote]]:
        """The next party's quote per size bucket (the kiosk's line; empty until history is read)."""
        return self.model.estimates()

    def board_rows(self) -> list[SessionView]:
        return self.model.rows()

    # screens -----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        if self.kiosk:
            from tui.screens.kiosk import KioskScreen

            return KioskScreen()
        from tui.screens.staff import StaffScreen

        return StaffScreen(width=self.size.width, touch=self.touch)

    @property
    def main_screen(self) -> MainView:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainView)
        return screen

    def on_mount(self) -> None:
        self.set_class(self.kiosk, "-kiosk")
        self.set_class(self.touch, "-touch")
        self.set_class(self.ansi, "-console")
        self.set_class(self.ascii, "-ascii")
        self._poll_loop()
        self.set_interval(1.0, self._tick, name="board-tick")
        if self.kiosk and self.show_estimates:
            self.load_estimates()
            self.set_interval(300.0, self.load_estimates, name="estimates")

    def on_unmount(self) -> None:
        self._stop.set()
        self._consumed.set()
        self.source.close()
        if self.queue is not None:
            self.queue.conn.close()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.worker_errors.append(event.worker.error)
            log.error("board: worker %s failed: %r", event.worker.name, event.worker.error)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.kiosk and action == "command_palette":
            return False  # a guest must not be able to drive the kiosk ...
        if self.quit_proof and action in ("quit", "help_quit"):
            return False  # ... nor close it
        return True

    # the tablet's soft keyboard ----------------------------------------------------------

    @on(events.DescendantFocus)
    @on(events.DescendantBlur)
    def _focus_moved(self) -> None:
        if self.touch and self.is_web:
            self.call_after_refresh(self._sync_keyboard)

    def _sync_keyboard(self) -> None:
        """Tell the page which soft keyboard the focused field wants (tui/web/assets/board.js
        sets it on xterm.js's textarea): the number pad for a number, none on the board."""
        mode = keyboard_for(self.focused)
        if mode != self._keyboard:
            self._keyboard = mode
            self.open_url(f"#keyboard={mode}", new_tab=False)  # same page: no reload

    # polling -----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll_loop(self) -> None:
        worker = get_current_worker()
        force = True
        while not worker.is_cancelled and not self._stop.is_set():
            # The next poll waits until the UI applied the last snapshot: refreshes never pile up.
            self._consumed.wait(timeout=5.0)
            if self._stop.is_set():
                break
            try:
                snap = self.source.poll(force=force)
            except Exception:  # keep polling; the banner shows the data ageing
                log.exception("board: reading the store failed")
                snap = None
            force = False
            if snap is not None:
                self._consumed.clear()
                self.post_message(SnapshotReady(snap))
            self._stop.wait(self.poll_interval)

    @on(SnapshotReady)
    def _snapshot_ready(self, message: SnapshotReady) -> None:
        snap = message.snapshot
        try:
            self.show_snapshot(snap)
        finally:
            self._consumed.set()
        if not self.ready.is_set() and snap.ready:
            # Everything built so far lives as long as the app: keep it out of the collector's
            # full passes, which otherwise stall a frame now and then (tens of ms on a Pi).
            self.call_after_refresh(_freeze_heap)
        self.ready.set()

    def show_snapshot(self, snap: Snapshot) -> None:
        """A new read of the store onto the screens (`pager-edge bench board` wraps it)."""
        self.model.take_snapshot(snap)
        self.refresh_screens(from_store=True)
        if snap.ready and self.kiosk and self.show_estimates and not self._estimated:
            self.load_estimates()

    def _tick(self) -> None:
        self.refresh_screens(from_store=False)

    def refresh_screens(self, *, from_store: bool) -> None:
        """Redraw what shows live data: after a snapshot (`from_store`), each second's tick, a
        reply shown (`pager-edge bench board` times it)."""
        screen = self.main_screen
        if screen.is_mounted and screen.is_attached:
            # A snapshot can arrive while the app closes and the screen's widgets are being
            # removed; that must not turn a clean exit into a traceback.
            try:
                screen.refresh_view()
                top = self.screen
                if top is not screen and isinstance(top, LiveScreen) and top.is_mounted:
                    top.refresh_view()  # a screen on top that shows live data (transmitter)
            except NoMatches:
                log.debug("board: screen widgets not there (closing?); refresh skipped")
        if not self.kiosk and self.model.ready:
            # On the table's own minute, so a row is marked late when its alert comes; only when
            # the parties or the minute changed.
            minute = minute_of(self.clock.now())
            key = (id(self.model.snapshot), self.model.overlay.version, minute)
            if key != self._alerts_key:
                self._alerts_key = key
                self._announce(self.alerts.check(self.model.rows(), minute))
        if from_store and self.screen.id == "history":
            self.load_history()

    def _announce(self, alerts: list[Alert]) -> None:
        """A party just turned late: its row flashes; a paged party not back: a nudge."""
        for alert in alerts:
            if alert.kind == "late":
                self.main_screen.flash(alert.party.uuid)
            self.notify(alert.text, severity="warning", timeout=12, markup=False)
        if alerts and self.sound:
            self.bell()

    # history and estimates ---------------------------------------------------------------

    @on(HistoryRequested)
    def _open_history(self) -> None:
        from tui.screens.history import HistoryScreen

        self.push_screen(HistoryScreen())

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def load_history(self) -> None:
        rows = self.source.finished_today()
        self.call_from_thread(self._show_history, rows)

    def _show_history(self, rows: list[SessionView]) -> None:
        if self.screen.id == "history":
            self.screen.post_message(HistoryLoaded(rows))

    @work(thread=True, exclusive=True, group="estimates", exit_on_error=False)
    def load_estimates(self) -> None:
        """Past waits for the kiosk's estimates (the live part comes with every snapshot)."""
        snap = self.snapshot
        if snap is None or not snap.ready:
            return
        self._estimated = True
        samples = self.source.quote_samples()
        self.call_from_thread(self._show_estimates, samples)

    def _show_estimates(self, samples: list[Sample]) -> None:
        self.model.take_quote_samples(samples)
        self.refresh_screens(from_store=False)

    # forms -------------------------------------------------------------------------------

    @on(AddPartyRequested)
    def _add_requested(self) -> None:
        self.open_add_form()

    @work(exclusive=True, group="form", exit_on_error=False)
    async def open_add_form(self) -> None:
        from tui.screens.dialogs import PartyForm

        self.model.take_quote_samples(await asyncio.to_thread(self.source.quote_samples))
        await self.default_goal()  # the model knows it now, when the store did not
        queue = self.model.queue()  # the queue as the host opened the form
        taken = [v.number for v in self.board_rows()]

        def suggest(size: int | None) -> Quote:
            return live_quote(queue, size)

        board = self.config.board
        pagers = (board.pager_min, board.pager_max)
        form = PartyForm(
            number=lowest_free_number(taken, start=pagers[0], stop=pagers[1]),
            suggest=suggest,
            taken=taken,
            pagers=pagers,
            touch=self.touch,
        )
        self.push_screen(form, self._added)

    async def default_goal(self) -> int | None:
        """The transmitter's ``defaultTargetGoal``: from the store's settings snapshot, else asked
        once over CoAP (the agent records settings only when they change)."""
        if (goal := self.model.default_goal) is not None or self.client is None:
            return goal
        settings, error = await self.transmitter_settings()
        if settings is None:
            log.info("board: no default goal from the transmitter: %s", error)
            return None
        goal = settings.get("defaultTargetGoal")
        if isinstance(goal, int) and goal > 0:
            self.model.asked_default_goal = goal
        return self.model.asked_default_goal

    async def transmitter_settings(self) -> tuple[dict[str, Any] | None, str | None]:
        """The transmitter's settings, asked over CoAP: (settings, None), or (None, why not)."""
        if self.client is None:
            return None, "no transmitter connection (the board runs read-only)"
        try:
            doc = await self.client.get_settings()
        except ControllerError as exc:
            return None, str(exc)
        return dict(doc.settings or {}), None

    @on(SettingsRequested)
    def _settings_requested(self) -> None:
        if self.client is not None:
            self._answer_settings(self.screen)

    @work(exclusive=True, group="settings", exit_on_error=False)
    async def _answer_settings(self, screen: Screen[Any]) -> None:
        settings, error = await self.transmitter_settings()
        if screen.is_attached:
            screen.post_message(SettingsLoaded(settings, error))

    def _added(self, fields: PartyFields | None) -> None:
        if fields is not None:
            self.act(Request("add", None, fields))

    @on(EditPartyRequested)
    def _edit_requested(self, message: EditPartyRequested) -> None:
        from tui.screens.dialogs import PartyForm

        party = message.party
        form = PartyForm(
            number=party.number,
            label=party.label,
            party_size=party.party_size,
            goal_seconds=party.goal_seconds,
            edit=True,
            touch=self.touch,
        )

        def done(fields: PartyFields | None) -> None:
            if fields is not None:
                self.act(Request("edit", party, fields))

        self.push_screen(form, done)

    # actions -----------------------------------------------------------------------------

    @on(ActionRequested)
    def _action_requested(self, message: ActionRequested) -> None:
        self.act(message.request)

    def act(self, request: Request) -> None:
        """Carry out one staff action (async worker; the UI never waits)."""
        self.run_worker(self._act(request), group="coap", exit_on_error=False)

    async def _act(self, request: Request) -> None:
        """The one action path: undo, the store's request queue, or the transmitter."""
        action = BY_KIND[request.kind]
        if request.kind == "undo":
            result = await asyncio.to_thread(self._undo)
        elif action.queued is not None and (not action.grace or self._grace_applies()):
            result = await asyncio.to_thread(self._submit, request)
        else:
            result = await perform(
                self.client,
                request,
                zone=self.zone,
                now_iso=iso_utc(self.clock.now()) or "",
                shown=self.model.shown(),
            )
        self.post_message(ActionDone(result))

    def _grace_applies(self) -> bool:
        """An action with an undo grace waits in the store's request queue when the agent is there
        to carry it out; else it goes to the transmitter at once. (Re-add, dismiss and close-out
        are always queued: only the agent can record what they mean.)"""
        snap = self.snapshot
        alive = (
            snap is not None
            and snap.ready
            and liveness(snap.health, self.clock.now(), self.stale_after).running
        )
        return self.queue is not None and self.undo_seconds > 0 and alive

    def _submit(self, request: Request) -> ActionResult:
        if self.queue is None:
            return ActionResult(
                request.kind,
                request.number,
                False,
                "this board cannot write the agent's store (run it as the agent's user, or "
                "from `pager-edge web`); nothing was done",
            )
        return submit_to_request_queue(
            self.queue, request, now=self.clock.now(), grace=self.undo_seconds, board=BOARD_ID
        )

    def _undo(self) -> ActionResult:
        """Cancel the newest staff request still in its grace (from any board)."""
        snap = self.snapshot
        pending = [r for r in (snap.requests if snap else ()) if r.state == "pending"]
        if self.queue is None or not pending:
            return ActionResult("undo", 0, False, "nothing to undo", "Undo")
        newest = pending[-1]
        if not self.queue.cancel(newest.id, now=self.clock.now()):
            return ActionResult("undo", 0, False, "too late: it was already sent", "Undo")
        message = undone_text(newest.kind, newest.number)
        return ActionResult("undo", newest.number or 0, True, message=message)

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        result = message.result
        self.action_results.append(result)
        if not result.ok:
            # The error text comes from the transmitter's answer: shown as text, never as markup.
            self.notify(
                printable(result.error),
                title=result.title or f"{result.verb} {result.number} failed",
                severity="error",
                timeout=8,
                markup=False,
            )
            return
        self.model.apply(result)
        self.refresh_screens(from_store=False)
        # The cursor stays where the host was: adding a party does not move it.
        self.notify(result.done, timeout=3)

    # command palette ---------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        if self.kiosk:
            return
        yield from super().get_system_commands(screen)
        from tui.screens.staff import StaffScreen

        if isinstance(screen, StaffScreen):
            for name, title, help_text in palette_entries():
                yield SystemCommand(title, help_text, getattr(screen, f"action_{name}"))


def keyboard_for(widget: Widget | None) -> str:
    """The soft keyboard a focused widget wants: ``numeric`` (a number field), ``text`` (any
    other field) or ``none`` (nothing to type: taps only)."""
    if isinstance(widget, Input):
        return "numeric" if widget.type in ("integer", "number") else "text"
    return "none"


def _freeze_heap() -> None:
    gc.collect()
    gc.freeze()
