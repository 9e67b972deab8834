"""The board's state, in one object the app owns and the screens read.

The latest snapshot of the store, the transmitter's replies overlaid on it, the kiosk's estimates
and the default goal. No Textual: the app feeds it snapshots and outcomes; tests do the same.
"""

from __future__ import annotations

from collections.abc import Mapping

from agent.clock import Clock
from agent.session import SessionView
from tui.core.actions import Outcome
from tui.core.overlay import Overlay
from tui.core.source import Snapshot
from tui.core.waits import Quote


class BoardModel:
    def __init__(self, clock: Clock):
        self.clock = clock
        self.snapshot: Snapshot | None = None
        self.overlay = Overlay(clock.monotonic)
        self.estimates: list[tuple[str, Quote]] = []  # kiosk: estimated wait by party size
        self.asked_default_goal: int | None = None  # from GET /v1/settings, when not stored
        self.snapshots_seen = 0

    def take(self, snapshot: Snapshot) -> None:
        """A new read of the store; replies the store now agrees with are dropped."""
        self.snapshot = snapshot  # not ready: the banner says why, and no stale rows are shown
        self.snapshots_seen += 1
        self.overlay.settle(snapshot.sessions)

    @property
    def ready(self) -> bool:
        return self.snapshot is not None and self.snapshot.ready

    def rows(self) -> list[SessionView]:
        """Active sessions: the store's views with the transmitter's recent replies applied."""
        snap = self.snapshot
        return self.overlay.merge(snap.sessions if snap is not None and snap.ready else ())

    def shown(self) -> Mapping[str, SessionView]:
        return {v.uuid: v for v in self.rows()}

    def apply(self, outcome: Outcome) -> None:
        for uuid, view in outcome.overlay:
            self.overlay.put(uuid, view)

    @property
    def default_goal(self) -> int | None:
        """The transmitter's ``defaultTargetGoal``: the stored settings, else what it answered."""
        snap = self.snapshot
        if snap is not None and snap.default_goal:
            return snap.default_goal
        return self.asked_default_goal
