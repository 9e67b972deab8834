"""The transmitter from the stand: its own statistics, its settings, its clock, any pager.

Everything here is the transmitter's: its statistics are labelled as its own (they count since
its daily reset hour, by its definition of late), not the board's day figures. Changing a setting
or its clock asks first.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Input, Label, Static

from agent.display import minutes, printable
from agent.health import Health
from agent.skew import SKEW_WARN_SECONDS, format_skew, skew_warning
from tui.core.actions import Request
from tui.messages import ActionRequested, SettingsLoaded, SettingsRequested
from tui.screens.base import LiveScreen
from tui.screens.dialogs import ConfirmDialog


def statistics_text(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "The transmitter's own statistics: none reported yet"
    avg = stats.get("averageTimeServed")
    parts = [
        f"served {stats.get('guestsServed', '?')}",
        f"on time {stats.get('percentOnTime', '?')}%",
        f"late {stats.get('percentLate', '?')}%",
        f"average until paged {minutes(avg) if isinstance(avg, int | float) else '?'}",
        f"sessions {stats.get('numSessions', '?')}",
    ]
    return "The transmitter's own statistics (since its reset hour): " + " · ".join(parts)


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


class TransmitterScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="transmitter-back"),
    ]

    def __init__(self) -> None:
        super().__init__(id="transmitter")
        self._known: dict[str, Any] = {}  # settings asked from the transmitter

    def compose(self) -> ComposeResult:
        snap = self.board.snapshot
        settings = (snap.settings if snap else None) or {}
        health = snap.health if snap else Health()
        device = printable(health.device_name) or "T7470"
        firmware = printable(health.firmware) or "?"
        with Vertical(id="transmitter-body"):
            yield Static(
                Text(f"Transmitter {device} · firmware {firmware}"), classes="dialog-title"
            )
            yield Static(Text(statistics_text(snap.statistics if snap else None)), id="tx-stats")
            yield Static("", id="tx-clock")
            yield Button("Set its clock to this host's", id="set-clock", disabled=True)
            yield Label("Settings", classes="dialog-title")
            with Horizontal(classes="field"):
                yield Label("Default goal (min)", classes="field-label")
                goal = settings.get("defaultTargetGoal")
                yield Input(
                    "" if not isinstance(goal, int) else str(round(goal / 60)),
                    type="integer",
                    id="default-goal",
                    compact=True,
                )
            with Horizontal(classes="field"):
                yield Label("Stats reset hour", classes="field-label")
                mark = settings.get("statisticsClearMark")
                yield Input(
                    "" if not isinstance(mark, int) else str(mark),
                    type="integer",
                    id="clear-mark",
                    compact=True,
                )
            yield Button("Save settings…", id="save-settings", variant="primary")
            yield Label("Page any pager", classes="dialog-title")
            with Horizontal(classes="field"):
                yield Label("Pager number", classes="field-label")
                yield Input("", type="integer", id="page-number", compact=True)
            with Horizontal(classes="field"):
                yield Label("Page mode", classes="field-label")
                yield Input(self.board.config.controller.page_mode, id="page-mode", compact=True)
            yield Button("Page", id="page-any", variant="primary")
            yield Static("", id="tx-error", classes="error")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()
        snap = self.board.snapshot
        if snap is None or not snap.settings:
            # The agent stores settings when they change; until then, the app asks the transmitter.
            self.post_message(SettingsRequested())

    @on(SettingsLoaded)
    def _settings_loaded(self, message: SettingsLoaded) -> None:
        if message.settings is None:
            why = printable(message.error or "no answer")
            self._error(f"The transmitter did not give its settings: {why}")
            return
        settings = message.settings
        goal, mark = settings.get("defaultTargetGoal"), settings.get("statisticsClearMark")
        if isinstance(goal, int) and not self.query_one("#default-goal", Input).value:
            self.query_one("#default-goal", Input).value = str(round(goal / 60))
        if isinstance(mark, int) and not self.query_one("#clear-mark", Input).value:
            self.query_one("#clear-mark", Input).value = str(mark)
        self._known = settings

    def refresh_view(self) -> None:
        snap = self.board.snapshot
        health = snap.health if snap else Health()
        skew = health.clock_skew_seconds
        text = "Clock: " + ("unknown" if skew is None else f"{format_skew(skew)} from this host")
        if hint := skew_warning(skew, host_synchronised=health.host_clock_synced):
            text += f" — {hint}"
        self.query_one("#tx-clock", Static).update(Text(text))
        # Offered when it matters: a clock more than a minute off.
        self.query_one("#set-clock", Button).disabled = (
            skew is None or abs(skew) < SKEW_WARN_SECONDS
        )

    def _error(self, text: str) -> None:
        self.query_one("#tx-error", Static).update(Text(text))

    def _send(self, request: Request) -> None:
        self._error("")
        self.post_message(ActionRequested(request))

    @on(Button.Pressed, "#set-clock")
    def _set_clock(self) -> None:
        def done(yes: bool | None) -> None:
            if yes:
                self._send(Request("set_clock"))

        question = (
            "Set the transmitter's clock to this host's time?\n"
            "Every wait is measured with it; the board refuses if this host's own clock is not "
            "synchronised."
        )
        self.app.push_screen(ConfirmDialog(question, yes="Set clock"), done)

    @on(Button.Pressed, "#save-settings")
    def _save(self) -> None:
        snap = self.board.snapshot
        current = (snap.settings if snap else None) or self._known
        goal = _int(self.query_one("#default-goal", Input).value)
        mark = _int(self.query_one("#clear-mark", Input).value)
        if goal is None or not 1 <= goal <= 24 * 60:
            self._error("Default goal: 1 to 1440 minutes")
            return
        if mark is None or not 0 <= mark <= 24:
            self._error("Statistics reset hour: 0 to 24")
            return
        changes: dict[str, int] = {}
        if goal * 60 != current.get("defaultTargetGoal"):
            changes["defaultTargetGoal"] = goal * 60
        if mark != current.get("statisticsClearMark"):
            changes["statisticsClearMark"] = mark
        if not changes:
            self._error("Nothing changed")
            return
        said = []
        if "defaultTargetGoal" in changes:
            said.append(f"default goal {goal} min")
        if "statisticsClearMark" in changes:
            said.append(f"statistics reset at {mark}h")

        def done(yes: bool | None) -> None:
            if yes:
                self._send(Request("settings", values=changes))

        self.app.push_screen(
            ConfirmDialog(f"Change the transmitter's {' and '.join(said)}?", yes="Change"), done
        )

    @on(Button.Pressed, "#page-any")
    @on(Input.Submitted, "#page-number")
    def _page(self) -> None:
        number = _int(self.query_one("#page-number", Input).value)
        if number is None or not 0 <= number <= 65535:
            self._error("Pager number: a whole number")
            return
        mode = self.query_one("#page-mode", Input).value.strip() or None
        self._send(Request("page_number", values={"number": number, "mode": mode}))
