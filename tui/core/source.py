"""The board's read-only window on the agent's store: consistent snapshots, only when changed.

:class:`BoardSource` polls ``PRAGMA data_version`` and reads a :class:`Snapshot` (one read
transaction: sessions, health and the statistics/settings documents agree) only when the agent
committed something. It copes with "no database yet" (the kiosk starts before the agent), and in
kiosk mode it strips labels at the source, so guest names never reach the kiosk's widgets at all.
No SQL here: only the store's read API.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from agent.clock import SYSTEM_CLOCK, Clock, iso_utc
from agent.config import Config
from agent.health import Health
from agent.report import DayReport, report_of_day, service_day
from agent.session import SessionView
from agent.store import Store, StoreError
from agent.store.requests import RequestQueue, StaffRequest
from tui.core.quotes import (
    QUOTE_WEEKS,
    QUOTE_WINDOW_MINUTES,
    RATE_OLDEST_ARRIVAL,
    RATE_WINDOW_MINUTES,
    Sample,
    wait_samples,
)
from tui.core.waits import start_of_day


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent read of the store (or why there is none yet)."""

    ready: bool
    problem: str | None = None
    sessions: tuple[SessionView, ...] = ()
    lost: tuple[SessionView, ...] = ()  # the transmitter forgot them; staff re-add or dismiss
    requests: tuple[StaffRequest, ...] = ()  # staff actions waiting (undo grace) or running
    recent: tuple[SessionView, ...] = ()  # tables that came up in the last hour (live quotes)
    statistics: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None
    health: Health = field(default_factory=Health)
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)  # sync, backhaul, …
    today: DayReport | None = None  # the service day's figures (the header; same as the report)
    version: int | None = None
    read_at: datetime | None = None
    read_ms: float = 0.0

    @property
    def default_goal(self) -> int | None:
        goal = (self.settings or {}).get("defaultTargetGoal")
        return int(goal) if isinstance(goal, int | float) and goal > 0 else None


def without_labels(views: Sequence[SessionView]) -> list[SessionView]:
    return [v._replace(label=None) for v in views]


class BoardSource:
    """Thread-safe (one lock around the connection): the app polls from one worker thread and
    runs history and quote reads from others."""

    EXTRAS_EVERY = 2.0  # seconds between status-extras reads (sync/backhaul sections)
    QUOTE_CACHE = 300.0

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock = SYSTEM_CLOCK,
        zone: tzinfo | None = None,
        kiosk: bool = False,
        config: Config | None = None,
    ):
        self.path = Path(path)
        self.config = config  # lets the status sections that need it (backhaul) be computed
        self.clock = clock
        self.zone = zone
        self.kiosk = kiosk
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._version: int | None = None
        self._missing_reported = False
        self._extras: dict[str, dict[str, Any]] = {}
        self._today: DayReport | None = None
        self._extras_at = -math.inf
        self._samples: list[Sample] | None = None
        self._samples_at = -math.inf

    # connection --------------------------------------------------------------------------

    def _open(self) -> Store | None:
        if self._store is not None and self._store.stale:
            self._drop()  # read as immutable while the agent was stopped; it writes again
        if self._store is None:
            try:
                self._store = Store(self.path, readonly=True)
            except StoreError:
                return None
        return self._store

    def _drop(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            finally:
                self._store = None
                self._version = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _missing(self, why: str) -> Snapshot:
        return Snapshot(ready=False, problem=why, read_at=self.clock.now())

    # polling -----------------------------------------------------------------------------

    def poll(self, *, force: bool = False) -> Snapshot | None:
        """A fresh snapshot if the store changed since the last one (or `force`), else None."""
        with self._lock:
            store = self._open()
            if store is None:
                if force or not self._missing_reported:
                    self._missing_reported = True
                    return self._missing(f"waiting for the agent's database at {self.path}")
                return None
            try:
                version = store.data_version()
                if not force and version == self._version:
                    return None
                snap = self._read(store, version)
            except StoreError as exc:
                # The agent is still creating the schema, or the file is not a database.
                self._drop()
                if force or not self._missing_reported:
                    self._missing_reported = True
                    return self._missing(f"database at {self.path} not ready: {exc}")
                return None
            self._version = version
            self._missing_reported = False
            return snap

    def _read(self, store: Store, version: int) -> Snapshot:
        t0 = time.perf_counter()
        with store.read_transaction():  # sessions, health and snapshots agree
            sessions = store.active_views()
            now = self.clock.now()
            recent = store.called_views_since(
                iso_utc(now - timedelta(minutes=RATE_WINDOW_MINUTES)) or "",
                created_from=iso_utc(now - RATE_OLDEST_ARRIVAL) or "",
            )
            lost = [] if self.kiosk else store.lost_views()
            requests = [] if self.kiosk else RequestQueue(store.conn).open()
            statistics = store.latest_snapshot("statistics")
            settings = store.latest_snapshot("settings")
            health = store.health()
            if time.monotonic() - self._extras_at >= self.EXTRAS_EVERY:
                self._extras = self._read_extras(store)
                self._today = None if self.kiosk else self._read_day(store, self.clock.now())
                self._extras_at = time.monotonic()
        if self.kiosk:
            sessions, recent = without_labels(sessions), without_labels(recent)
        return Snapshot(
            ready=True,
            sessions=tuple(sessions),
            recent=tuple(recent),
            lost=tuple(lost),
            requests=tuple(requests),
            statistics=statistics,
            settings=settings,
            health=health,
            extras=self._extras,
            today=self._today,
            version=version,
            read_at=self.clock.now(),
            read_ms=(time.perf_counter() - t0) * 1000,
        )

    def _read_extras(self, store: Store) -> dict[str, dict[str, Any]]:
        """The optional features' status sections (sync, backhaul), as `status` shows them."""
        from agent.sections import optional_sections

        try:
            return optional_sections(store, self.config)
        except Exception:  # an optional section must never take the board down
            return {}

    def _read_day(self, store: Store, now: datetime) -> DayReport:
        return report_of_day(store, service_day(now, self.zone), self.zone)

    # other reads -------------------------------------------------------------------------

    def report(self, day: date) -> DayReport | None:
        """Any day's figures (the report screen); None before the database exists."""
        with self._lock:
            store = self._open()
            if store is None:
                return None
            try:
                return report_of_day(store, day, self.zone)
            except StoreError:
                return None

    def finished_today(self) -> list[SessionView]:
        """Today's finished parties (local day), newest first. Empty before the database exists."""
        since = iso_utc(start_of_day(self.clock.now(), self.zone)) or ""
        with self._lock:
            store = self._open()
            if store is None:
                return []
            try:
                rows = store.finished_views_since(since)
            except StoreError:
                return []
        return without_labels(rows) if self.kiosk else rows

    def quote_samples(self, *, refresh: bool = False) -> list[Sample]:
        """Comparable waits for this weekday and hour (cached for a few minutes)."""
        if not refresh and self._samples is not None:
            if time.monotonic() - self._samples_at < self.QUOTE_CACHE:
                return self._samples
        now = self.clock.now()
        start = iso_utc(now - timedelta(weeks=QUOTE_WEEKS, minutes=QUOTE_WINDOW_MINUTES)) or ""
        end = iso_utc(now + timedelta(seconds=1)) or ""
        with self._lock:
            store = self._open()
            if store is None:
                return []
            try:
                rows = store.finished_views_between(start, end)
            except StoreError:
                return []
        self._samples = wait_samples(rows, now, self.zone)
        self._samples_at = time.monotonic()
        return self._samples
