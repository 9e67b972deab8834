"""The wait-board app: staff board (default) or guest-facing kiosk (``kiosk=True``).

Embedding (the demo does this): build the app in the running loop and await it::

    app = BoardApp(db_path, client=agent.client, config=cfg)   # or kiosk=True
    await app.run_async()

The app never writes the store: a thread worker polls ``PRAGMA data_version`` on a read-only
connection every ``board.refresh_interval`` seconds and posts a :class:`SnapshotReady` only when the
agent committed something. Staff actions are CoAP requests through the agent's
:class:`~agent.controller.client.ControllerClient` in async workers; the transmitter's reply is
shown at once (an overlay the store later confirms), a refusal or timeout is a notification and
changes nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from agent.config import Config
from agent.controller.client import ControllerClient, ControllerError, ControllerUnreachable
from agent.display import printable
from tui.data import (
    ASCII,
    UNICODE,
    BoardSource,
    Clock,
    Overlay,
    Party,
    Quote,
    Snapshot,
    lowest_free_number,
    record_row,
    suggest_quote,
    tone_style,
    utc_clock,
)

log = logging.getLogger(__name__)

VERBS = {
    "add": ("Add", "Added"),
    "page": ("Page", "Paged"),
    "repage": ("Re-page", "Re-paged"),
    "seat": ("Seat", "Seated"),
    "remove": ("Remove", "Removed"),
    "edit": ("Edit", "Updated"),
}


def console_mode() -> bool:
    """The bare Linux console: 16 colours and no box glyphs."""
    return os.environ.get("TERM", "") == "linux"


class BoardApp(App):
    """``BoardApp(db_path, client=..., clock=..., kiosk=..., config=...)``.

    `clock` returns an aware UTC datetime (inject a fixed one for deterministic snapshots);
    `ascii`/`ansi` force the console fallbacks (default: on when ``TERM=linux``).
    """

    CSS_PATH = "board.tcss"
    TITLE = "pager-edge"

    class SnapshotReady(Message):
        """Posted from the poll thread when the store changed."""

        def __init__(self, snapshot: Snapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    class ActionDone(Message):
        """Posted after every staff action: ok, or the readable error."""

        def __init__(self, kind: str, number: int, ok: bool, error: str | None = None) -> None:
            super().__init__()
            self.kind = kind
            self.number = number
            self.ok = ok
            self.error = error

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
    ):
        if kiosk:
            # Instance attribute read by App.__init__: no command palette, no ctrl+p binding.
            self.ENABLE_COMMAND_PALETTE = False
        super().__init__()
        self.config = config or Config()
        self.db_path = Path(db_path)
        self.client = client
        self.clock: Clock = clock or utc_clock
        self.kiosk = kiosk
        console = console_mode()
        self.ascii = console if ascii is None else ascii
        self.ansi = console if ansi is None else ansi
        self.markers = ASCII if self.ascii else UNICODE
        self.zone: tzinfo | None = self.config.transmitter_zone()
        board = self.config.board
        self.stale_after = board.stale_after
        self.show_estimates = board.kiosk_show_estimates
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
        self.snapshot: Snapshot | None = None
        self.overlay = Overlay()
        self.action_results: list[BoardApp.ActionDone] = []
        self.estimates: list[tuple[str, Quote]] = []  # kiosk: estimated wait by party size
        self.snapshots_seen = 0
        self._estimated = False
        self._default_goal: int | None = None
        self.worker_errors: list[BaseException | None] = []
        self.ready = asyncio.Event()  # set once the first snapshot has been shown
        self._stop = threading.Event()
        self._consumed = threading.Event()
        self._consumed.set()
        # Figures for `pager-edge bench board` (cheap to keep).
        self.update_ms: list[float] = []
        self.on_shown: Callable[[Snapshot], None] | None = None
        if self.ansi:
            self.theme = "ansi-dark"

    # screens -----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        if self.kiosk:
            from tui.screens.kiosk import KioskScreen

            return KioskScreen()
        from tui.screens.staff import StaffScreen

        return StaffScreen(wide=self.size.width >= 110)

    @property
    def main_screen(self) -> Screen:
        return self.screen_stack[0]

    def on_mount(self) -> None:
        self.set_class(self.kiosk, "-kiosk")
        self.set_class(self.ansi, "-console")
        self._poll_loop()
        self.set_interval(1.0, self._tick, name="board-tick")
        if self.kiosk and self.show_estimates:
            self.load_estimates()
            self.set_interval(300.0, self.load_estimates, name="estimates")

    def on_unmount(self) -> None:
        self._stop.set()
        self._consumed.set()
        self.source.close()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.worker_errors.append(event.worker.error)
            log.error("board: worker %s failed: %r", event.worker.name, event.worker.error)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.kiosk and action in ("quit", "help_quit", "command_palette"):
            return False  # a guest must not be able to close or drive the kiosk
        return True

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
                self.post_message(self.SnapshotReady(snap))
            self._stop.wait(self.poll_interval)

    def on_board_app_snapshot_ready(self, message: SnapshotReady) -> None:
        try:
            snap = message.snapshot
            self.snapshot = snap  # not ready: the banner says why, and no stale rows are shown
            self.snapshots_seen += 1
            self.overlay.settle(snap.sessions)
            self._refresh_screens(from_store=True)
            if snap.ready and self.kiosk and self.show_estimates and not self._estimated:
                self.load_estimates()
        finally:
            self._consumed.set()
        if self.on_shown is not None:
            self.on_shown(snap)
        if not self.ready.is_set() and snap.ready:
            # Everything built so far lives as long as the app: keep it out of the collector's
            # full passes, which otherwise stall a frame now and then (tens of ms on a Pi).
            self.call_after_refresh(_freeze_heap)
        self.ready.set()

    def _tick(self) -> None:
        self._refresh_screens(from_store=False)

    def _refresh_screens(self, *, from_store: bool) -> None:
        t0 = time.perf_counter()
        screen = self.main_screen
        if screen.is_mounted and screen.is_attached:
            # A snapshot can arrive while the app closes and the screen's widgets are being
            # removed; that must not turn a clean exit into a traceback.
            try:
                screen.refresh_view()  # type: ignore[attr-defined]
            except NoMatches:
                log.debug("board: screen widgets not there (closing?); refresh skipped")
        if from_store and self.screen.id == "history":
            self.load_history()
        self.update_ms.append((time.perf_counter() - t0) * 1000)
        if len(self.update_ms) > 10_000:
            del self.update_ms[:5_000]

    def board_rows(self) -> list[dict[str, Any]]:
        """Active sessions: the store's rows with the transmitter's recent replies applied."""
        snap = self.snapshot
        rows = snap.sessions if snap is not None and snap.ready else ()
        return self.overlay.merge(rows)

    # history and estimates ---------------------------------------------------------------

    def open_history(self) -> None:
        from tui.screens.history import HistoryScreen

        self.push_screen(HistoryScreen())

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def load_history(self) -> None:
        rows = self.source.finished_today()
        self.call_from_thread(self._show_history, rows)

    def _show_history(self, rows: list[dict[str, Any]]) -> None:
        if self.screen.id == "history":
            try:
                self.screen.show(rows)  # type: ignore[attr-defined]
            except NoMatches:  # closed meanwhile, as above
                log.debug("board: history screen widgets not there; rows dropped")

    @work(thread=True, exclusive=True, group="estimates", exit_on_error=False)
    def load_estimates(self) -> None:
        snap = self.snapshot
        if snap is None or not snap.ready:
            return
        self._estimated = True
        estimates = self.source.estimates(snap.default_goal)
        self.call_from_thread(self._show_estimates, estimates)

    def _show_estimates(self, estimates: list[tuple[str, Quote]]) -> None:
        self.estimates = estimates
        self._refresh_screens(from_store=False)

    # forms -------------------------------------------------------------------------------

    @work(exclusive=True, group="form", exit_on_error=False)
    async def open_add_form(self) -> None:
        from tui.screens.dialogs import PartyForm

        samples = await asyncio.to_thread(self.source.quote_samples)
        default_goal = await self.default_goal()
        now = self.clock()
        taken = [int(r["number"]) for r in self.board_rows()]

        def suggest(size: int | None):
            return suggest_quote(samples, size, default_goal=default_goal, now=now, zone=self.zone)

        form = PartyForm(number=lowest_free_number(taken), suggest=suggest, taken=taken)
        self.push_screen(form, self._added)

    async def default_goal(self) -> int | None:
        """The transmitter's ``defaultTargetGoal``: from the store's settings snapshot, else asked
        once over CoAP (the agent records settings only when they change)."""
        snap = self.snapshot
        if snap is not None and snap.default_goal:
            return snap.default_goal
        if self._default_goal is None and self.client is not None:
            try:
                doc = await self.client.get_settings()
            except ControllerError as exc:
                log.info("board: no default goal from the transmitter: %s", exc)
                return None
            goal = (doc.settings or {}).get("defaultTargetGoal")
            if isinstance(goal, int) and goal > 0:
                self._default_goal = goal
        return self._default_goal

    def _added(self, fields) -> None:
        if fields is not None:
            self.act("add", None, fields=fields)

    def open_edit_form(self, party: Party) -> None:
        from tui.screens.dialogs import PartyForm

        form = PartyForm(
            number=party.number,
            label=party.label,
            party_size=party.party_size,
            goal_seconds=party.goal_seconds,
            edit=True,
        )

        def done(fields) -> None:
            if fields is not None:
                self.act("edit", party, fields=fields)

        self.push_screen(form, done)

    # actions -----------------------------------------------------------------------------

    def act(self, kind: str, party: Party | None, *, fields: Any = None) -> None:
        """Send one staff action to the transmitter (async worker; the UI never waits)."""
        self.run_worker(self._act(kind, party, fields), group="coap", exit_on_error=False)

    async def _act(self, kind: str, party: Party | None, fields: Any) -> None:
        number = party.number if party is not None else fields.number
        verb, done = VERBS[kind]
        client = self.client
        if client is None:
            self._report(kind, number, "no transmitter connection (the board runs read-only)")
            return
        try:
            if kind == "add":
                reply = await client.create_session(
                    number,
                    goal=fields.goal_seconds,
                    label=fields.label,
                    party_size=fields.party_size,
                )
            elif kind in ("page", "repage"):
                reply = await client.page(number)
            elif kind == "seat":
                reply = await client.clear(number)
            elif kind == "remove":
                reply = await client.remove(number)
            elif kind == "edit":
                reply = await client.update_session(
                    number,
                    goal=fields.goal_seconds,
                    label=fields.label,
                    party_size=fields.party_size,
                )
            else:  # pragma: no cover - programming error
                raise ValueError(kind)
        except ControllerUnreachable as exc:
            text = str(exc)
            if text.startswith("no answer"):
                text += "; it may still act on it, watch the board"
            self._report(kind, number, text, title=f"{verb} {number}: transmitter unreachable")
            return
        except ControllerError as exc:
            self._report(kind, number, str(exc), title=f"{verb} {number} refused")
            return
        except Exception as exc:  # the board keeps working whatever the request did
            log.exception("board: %s %s failed", kind, number)
            self._report(kind, number, f"unexpected error: {exc}")
            return
        self._apply_reply(kind, party, fields, reply)
        self.notify(f"{done} pager {number}", timeout=3)
        self._record(self.ActionDone(kind, number, True))

    def _report(self, kind: str, number: int, error: str, *, title: str | None = None) -> None:
        verb = VERBS[kind][0]
        # The error text comes from the transmitter's answer: shown as text, never as markup.
        self.notify(
            printable(error),
            title=title or f"{verb} {number} failed",
            severity="error",
            timeout=8,
            markup=False,
        )
        self._record(self.ActionDone(kind, number, False, error))

    def _record(self, message: ActionDone) -> None:
        self.action_results.append(message)
        self.post_message(message)

    def _apply_reply(self, kind: str, party: Party | None, fields: Any, reply: Any) -> None:
        """Show the transmitter's answer now; the agent's record confirms it later."""
        current = {r["uuid"]: r for r in self.board_rows()}
        doc = getattr(reply, "document", None)
        records = list(doc.sessions or ()) if doc is not None else []
        for record in records:
            self.overlay.put(record.uuid, record_row(record, self.zone, current.get(record.uuid)))
        if not records and party is not None:
            base = current.get(party.uuid)
            if kind in ("seat", "remove"):
                self.overlay.put(party.uuid, None)
            elif base is not None and kind in ("page", "repage"):
                now = self._iso_now()
                self.overlay.put(
                    party.uuid,
                    {
                        **base,
                        "state": "paged",
                        "notified": now,
                        "first_notified": base.get("first_notified") or now,
                        "page_count": int(base.get("page_count") or 0) + 1,
                    },
                )
            elif base is not None and kind == "edit":
                changed = {
                    k: v
                    for k, v in (
                        ("label", fields.label),
                        ("party_size", fields.party_size),
                        ("goal_seconds", fields.goal_seconds),
                    )
                    if v is not None
                }
                self.overlay.put(party.uuid, {**base, **changed})
        self._refresh_screens(from_store=False)
        if kind == "add" and records and not self.kiosk:
            screen = self.main_screen
            screen.select_number(records[0].number)  # type: ignore[attr-defined]

    def _iso_now(self) -> str:
        from tui.data import iso_z

        return iso_z(self.clock())

    # command palette ---------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if self.kiosk:
            return
        yield from super().get_system_commands(screen)
        from tui.screens.staff import STAFF_COMMANDS, StaffScreen

        if isinstance(screen, StaffScreen):
            for action, title, help_text in STAFF_COMMANDS:
                yield SystemCommand(title, help_text, getattr(screen, f"action_{action}"))


def _freeze_heap() -> None:
    gc.collect()
    gc.freeze()


def run_board(
    db_path: str | Path,
    *,
    client: ControllerClient | None = None,
    clock: Callable[[], datetime] | None = None,
    kiosk: bool = False,
    config: Config | None = None,
    ascii: bool | None = None,
) -> None:
    """Run the board in the foreground (blocking), for callers without an event loop."""
    BoardApp(db_path, client=client, clock=clock, kiosk=kiosk, config=config, ascii=ascii).run()
