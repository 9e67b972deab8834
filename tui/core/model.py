"""The board's state, in one object the app owns and the screens read.

The latest snapshot of the store, the transmitter's replies overlaid on it, comparable past waits
and the default goal — and so the live quote for a new party. No Textual: the app feeds it
snapshots, quote samples and action results; tests do the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo

from agent.clock import Clock
from agent.session import SessionView
from tui.core.actions import ActionResult
from tui.core.overlay import Overlay
from tui.core.quotes import Queue, Quote, Sample, next_party_estimates
from tui.core.source import Snapshot

_Key = tuple[int, int, int, datetime]  # snapshot, history, overlay, minute: when estimates change


class BoardModel:
    def __init__(self, clock: Clock, zone: tzinfo | None = None):
        self.clock = clock
        self.zone = zone
        self.snapshot: Snapshot | None = None
        self.overlay = Overlay(clock.monotonic)
        # Comparable past waits (this weekday and hour), read now and then; None: not read yet.
        self.history: Sequence[Sample] | None = None
        self.histories_seen = 0
        self.asked_default_goal: int | None = None  # from GET /v1/settings, when not stored
        self.snapshots_seen = 0
        self._estimates: tuple[_Key, list[tuple[str, Quote]]] | None = None

    def take_snapshot(self, snapshot: Snapshot) -> None:
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

    def apply(self, result: ActionResult) -> None:
        """A staff action's reply, shown until the store agrees."""
        for uuid, view in result.overlay:
            self.overlay.put(uuid, view)

    def take_quote_samples(self, samples: Sequence[Sample]) -> None:
        """Comparable past waits (this weekday and hour), for quotes and the kiosk's estimates."""
        self.history = samples
        self.histories_seen += 1

    def queue(self, now: datetime | None = None) -> Queue:
        """What a quote for a party arriving now rests on (the parties shown, replies included)."""
        snap = self.snapshot
        return Queue(
            now or self.clock.now(),
            active=self.rows(),
            recent=snap.recent if snap is not None and snap.ready else (),
            history=self.history or (),
            default_goal=self.default_goal,
            zone=self.zone,
        )

    def estimates(self) -> list[tuple[str, Quote]]:
        """The next party's quote per size bucket (the kiosk's line); empty until history is read.
        Worked out again when the data or the minute changes, not on every repaint."""
        if self.history is None:
            return []
        now = self.clock.now()
        minute = now.replace(second=0, microsecond=0)
        key = (self.snapshots_seen, self.histories_seen, self.overlay.version, minute)
        if self._estimates is None or self._estimates[0] != key:
            self._estimates = (key, next_party_estimates(self.queue(now)))
        return self._estimates[1]

    @property
    def default_goal(self) -> int | None:
        """The transmitter's ``defaultTargetGoal``: the stored settings, else what it answered."""
        snap = self.snapshot
        if snap is not None and snap.default_goal:
            return snap.default_goal
        return self.asked_default_goal
