"""What travels through the ingest queue: notifications, and typed control messages.

Everything that changes the ingest's state arrives here, in order, and is handled by the one
ingest task: the observation callback's payloads, the link's state changes, the daemon's
heartbeat, the staff requests' notes, and the background history fetch's answer. One frozen
class per kind, dispatched by type (``match``), so a sender and the ingest cannot disagree about
a message's fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.controller.protocol import Document
from agent.session import SessionView


@dataclass(slots=True)
class Incoming:
    """A notification's payload as aiocoap handed it over."""

    payload: bytes
    received: float  # time.monotonic()
    observed_at: str  # UTC ISO


@dataclass(frozen=True, slots=True)
class Resync:
    """Fetch sessions and history again (a (re)registration, a test, an operator)."""

    reason: str


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """The observation link's state (agent/controller/link.py), for the health record."""

    state: str
    reconnects: int
    since: str | None = None  # set when the state changed (not on a retry that stays down)
    last_error: str | None = None
    clear_error: bool = False  # connected: the last error is history


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The daemon's periodic stamp: the ingest loop is alive (the watchdog reads it)."""


@dataclass(frozen=True, slots=True)
class Reopen:
    """A staff re-add is on its way: the next session on `number` continues `uuid`."""

    number: int
    uuid: str


@dataclass(frozen=True, slots=True)
class TagEnd:
    """An end the agent itself asked for (close-out): its event is recorded with `source`."""

    uuid: str
    source: str


@dataclass(frozen=True, slots=True)
class KeepView:
    """An ended session's staff decision (dismissed), written with the next commit."""

    view: SessionView


@dataclass(frozen=True, slots=True)
class HistoryAnswer:
    """The background history fetch's answer (or why there is none), folded in queue order."""

    doc: Document | None
    observed_at: str = ""
    error: str = ""


Control = Resync | LinkChanged | Heartbeat | Reopen | TagEnd | KeepView | HistoryAnswer
Item = Incoming | Control


@dataclass
class Counters:
    notifications: int = 0
    malformed: int = 0
    gaps: int = 0
    resyncs: int = 0
    duplicates: int = 0
    write_errors: int = 0
    events: int = 0
