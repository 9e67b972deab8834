"""Open board sessions (one app process per browser tab): the cap, and which ones sat idle too long.

A Raspberry Pi runs every board a browser opens as its own process (~50 MB resident each), so
the number is capped; a tab left open on a tablet in a drawer would hold its place forever, so a
staff session untouched for `idle_minutes` is ended. Pure bookkeeping with an injected monotonic clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["staff", "kiosk"]


@dataclass
class BoardSession:
    number: int
    kind: Kind
    address: str
    started: float
    last_input: float
    # Why it ended, for the log line ("browser closed", "idle 30 min", "server stopping").
    end_reason: str = "browser closed"
    pid: int | None = None
    # Called to close the browser's websocket (which ends the app process).
    closer: Callable[[], Awaitable[object]] | None = field(default=None, repr=False)


class Pool:
    """At most `limit` sessions of one kind; `numbers` (shared by a server's pools) names them."""

    def __init__(
        self, kind: Kind, limit: int, clock: Callable[[], float], numbers: Iterator[int]
    ) -> None:
        self.kind = kind
        self.limit = limit
        self._clock = clock
        self._numbers = numbers
        self.sessions: list[BoardSession] = []

    @property
    def full(self) -> bool:
        return len(self.sessions) >= self.limit

    def open(self, address: str) -> BoardSession | None:
        """A new session, or None when `limit` are open already."""
        if self.full:
            return None
        now = self._clock()
        session = BoardSession(next(self._numbers), self.kind, address, now, now)
        self.sessions.append(session)
        return session

    def close(self, session: BoardSession) -> None:
        if session in self.sessions:
            self.sessions.remove(session)

    def touch(self, session: BoardSession) -> None:
        session.last_input = self._clock()

    def idle(self, idle_seconds: float) -> list[BoardSession]:
        """Sessions without input for `idle_seconds` or more."""
        now = self._clock()
        return [s for s in self.sessions if now - s.last_input >= idle_seconds]

    def idle_for(self, session: BoardSession) -> float:
        return self._clock() - session.last_input
