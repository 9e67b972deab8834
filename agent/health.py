"""The agent's health: one typed record, and the one rule that says whether the agent is alive.

The ingest writes :class:`Health` into the store's one ``health`` row with every group commit that
changed it; ``pager-edge status``, the daemon's systemd watchdog, the board's source and header
read it back. Whether the agent is still there is decided in one place, :func:`liveness`, against
one configured threshold (``[agent] stale_after``): before, status, the watchdog and the board each
had their own number (30 s, 20 s, 90 s) and could disagree about the same heartbeat.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.clock import age_seconds, parse_iso

HEARTBEAT_SECONDS = 5.0  # how often the daemon stamps ``heartbeat_at`` (through the ingest loop)


@dataclass(frozen=True, slots=True)
class Health:
    """The transmitter link and the agent process, as the ingest last committed them.

    Field names are the store's column names; times are the store's UTC ``…Z`` text.
    """

    # the observation link (agent/controller/link.py)
    state: str | None = None  # connecting | connected | disconnected | stopped
    since: str | None = None  # when the link last changed state
    last_error: str | None = None
    reconnects: int = 0
    # what the transmitter's documents said
    last_ping_at: str | None = None
    last_data_at: str | None = None
    device_name: str | None = None
    firmware: str | None = None
    clock_skew_seconds: float | None = None  # the transmitter's clock minus the host's
    host_clock_synced: bool | None = None  # the host's own clock (NTP), when the skew was measured
    sequence: int | None = None  # the last globalSessionSequence
    # the ingest's counters, since this run of the agent started
    notifications: int = 0
    gaps: int = 0
    resyncs: int = 0
    malformed: int = 0
    # the agent process
    agent_pid: int | None = None
    agent_version: str | None = None
    agent_started_at: str | None = None
    heartbeat_at: str | None = None
    stopped_at: str | None = None  # stamped by a clean stop

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Health:
        """From the store's row (columns a newer schema added and this one lacks are ignored;
        a counter never written reads 0)."""
        values: dict[str, Any] = {f.name: row.get(f.name) for f in _FIELDS}
        for name in _COUNTERS:
            values[name] = values[name] or 0
        synced = values["host_clock_synced"]
        values["host_clock_synced"] = None if synced is None else bool(synced)
        return cls(**values)

    def row(self) -> dict[str, Any]:
        """The store's columns (SQLite has no booleans: the host clock's flag as 0/1)."""
        out = {f.name: getattr(self, f.name) for f in _FIELDS}
        if self.host_clock_synced is not None:
            out["host_clock_synced"] = int(self.host_clock_synced)
        return out

    def but(self, **changes: Any) -> Health:
        """A copy with some fields changed (``dataclasses.replace``, checked by name)."""
        return dataclasses.replace(self, **changes)


_FIELDS = dataclasses.fields(Health)
_COUNTERS = ("reconnects", "notifications", "gaps", "resyncs", "malformed")


@dataclass(frozen=True, slots=True)
class Liveness:
    """Whether the agent is there, as :func:`liveness` decided it."""

    running: bool  # a heartbeat within the threshold and no stop stamped
    stopped: bool  # it said goodbye (``stopped_at``)
    since: datetime | None  # the last heartbeat, or the stop
    heartbeat_age: float | None  # seconds since the last heartbeat (None: never)
    connected: bool  # running, and its link to the transmitter is up

    @property
    def stale(self) -> bool:
        return not self.running


def liveness(health: Health, now: datetime, stale_after: float) -> Liveness:
    """The one rule: the agent is running while its last heartbeat is at most `stale_after`
    seconds old (``[agent] stale_after``) and it has not stamped a stop."""
    stopped_at = parse_iso(health.stopped_at)
    beat = parse_iso(health.heartbeat_at)
    age = age_seconds(health.heartbeat_at, now)
    if stopped_at is not None:
        return Liveness(False, True, stopped_at, age, False)
    running = age is not None and age <= stale_after
    return Liveness(running, False, beat, age, running and health.state == "connected")
