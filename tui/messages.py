"""The board's messages, in one place: data goes down as attributes, requests come up as these.

Screens never call the app's methods: they post a request; the app (which owns the store source,
the controller client and the model) handles it and answers with data or a message of its own.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from agent.session import SessionView
from tui.core.actions import ActionResult, Request
from tui.core.source import Snapshot


class SnapshotReady(Message):
    """Posted from the poll thread when the store changed."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class ActionRequested(Message):
    """A staff action to send to the transmitter (from the board or a confirmed dialog)."""

    def __init__(self, request: Request) -> None:
        super().__init__()
        self.request = request


class ActionDone(Message):
    """The transmitter answered (or did not), or the store took the request: what became of it,
    with what to overlay."""

    def __init__(self, result: ActionResult) -> None:
        super().__init__()
        self.result = result


class SettingsRequested(Message):
    """A screen wants the transmitter's settings (the store has none yet): the app asks it."""


class SettingsLoaded(Message):
    """The transmitter's settings (posted to the screen that asked), or why there are none."""

    def __init__(self, settings: dict[str, Any] | None, error: str | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.error = error


class AddPartyRequested(Message):
    """Open the add form (it needs history and the default goal, which the app reads)."""


class EditPartyRequested(Message):
    def __init__(self, party: SessionView) -> None:
        super().__init__()
        self.party = party


class HistoryRequested(Message):
    """Open today's history."""


class HistoryLoaded(Message):
    """Today's finished parties, newest first, for the history screen."""

    def __init__(self, rows: list[SessionView]) -> None:
        super().__init__()
        self.rows = rows
