"""The backhaul reading: what the operator last said about the SIM, when, and what it means for the
budget. One flat record so the store can insert it as a row and scripts get stable keys.

It never holds a credential or token: only figures, identifiers of state and error messages that
already went through redaction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.backhaul.budget import Budget, decide
from agent.backhaul.errors import OperatorError
from agent.clock import iso_utc, parse_iso
from agent.config import BackhaulConfig


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """Is the SIM in a data session, with which addresses (Control Center sessionInfo,
    ThingSpace device list)."""

    online: bool | None
    ipv4: str | None = None
    ipv6: str | None = None  # may be a prefix such as "2605:9780:309e::/64"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    sim_status: str | None = None  # ThingSpace reports it here; Control Center in ctdUsages


@dataclass(frozen=True, slots=True)
class UsageInfo:
    """Cycle-to-date usage. None means "not reported", never zero."""

    cycle_bytes: int | None
    sms_count: int | None = None
    voice_seconds: int | None = None
    session_count: int | None = None
    sim_status: str | None = None
    rate_plan: str | None = None
    overage_limit_reached: bool | None = None
    overage_limit_override: str | None = None
    cycle_start: datetime | None = None  # the operator's own window, when it says
    cycle_end: datetime | None = None


_TIME_FIELDS = frozenset(
    {
        "taken_at",
        "session_started_at",
        "session_ended_at",
        "session_taken_at",
        "operator_cycle_start",
        "operator_cycle_end",
        "usage_taken_at",
        "cycle_start",
        "cycle_end",
    }
)


@dataclass(frozen=True, slots=True)
class Reading:
    """The latest state, merged from the session and usage polls (each keeps its own time).

    ``taken_at`` is when this record was produced; ``session_taken_at``/``usage_taken_at`` when each
    half was last read successfully, so a failed call keeps the last figures and shows their age.
    """

    provider: str
    taken_at: datetime
    online: bool | None = None  # None: unknown (never read, or the last call failed)
    ipv4: str | None = None
    ipv6: str | None = None
    session_started_at: datetime | None = None
    session_ended_at: datetime | None = None
    session_taken_at: datetime | None = None
    sim_status: str | None = None
    rate_plan: str | None = None
    cycle_bytes: int | None = None  # the operator's figure for this cycle
    sms_count: int | None = None
    voice_seconds: int | None = None
    session_count: int | None = None
    overage_limit_reached: bool | None = None
    overage_limit_override: str | None = None
    operator_cycle_start: datetime | None = None
    operator_cycle_end: datetime | None = None
    usage_taken_at: datetime | None = None
    # The agent's own cumulative traffic counter (bytes over the backhaul) when usage was read:
    # the counter now minus this is what the agent spent since the operator's figure.
    own_bytes_at_usage: int | None = None
    # The budget at taken_at (recompute with :meth:`budget_at` for a later moment).
    cap_bytes: int | None = None
    used_bytes: int | None = None
    projected_bytes: int | None = None
    percent_used: float | None = None
    mode: str | None = None
    alert: str | None = None
    cycle_start: datetime | None = None
    cycle_end: datetime | None = None
    error: str | None = None
    error_code: str | None = None
    error_reaction: str | None = None

    # --- merging (used by the poller) ---------------------------------------------------------

    def with_session(self, info: SessionInfo, at: datetime) -> Reading:
        return dataclasses.replace(
            self,
            taken_at=at,
            online=info.online,
            ipv4=info.ipv4,
            ipv6=info.ipv6,
            session_started_at=info.started_at,
            session_ended_at=info.ended_at,
            session_taken_at=at,
            sim_status=info.sim_status or self.sim_status,
        )

    def with_usage(self, info: UsageInfo, at: datetime, own_bytes: int | None = None) -> Reading:
        return dataclasses.replace(
            self,
            taken_at=at,
            cycle_bytes=info.cycle_bytes,
            sms_count=info.sms_count,
            voice_seconds=info.voice_seconds,
            session_count=info.session_count,
            sim_status=info.sim_status or self.sim_status,
            rate_plan=info.rate_plan,
            overage_limit_reached=info.overage_limit_reached,
            overage_limit_override=info.overage_limit_override,
            operator_cycle_start=info.cycle_start,
            operator_cycle_end=info.cycle_end,
            usage_taken_at=at,
            own_bytes_at_usage=own_bytes,
        )

    def with_error(self, err: OperatorError, at: datetime) -> Reading:
        """Record a failed call. It says nothing about the link, so ``online`` becomes unknown; the
        last figures stay, with their own times."""
        return dataclasses.replace(
            self,
            taken_at=at,
            online=None,
            error=err.message,
            error_code=err.code,
            error_reaction=err.reaction,
        )

    def without_error(self) -> Reading:
        return dataclasses.replace(self, error=None, error_code=None, error_reaction=None)

    def with_budget(self, b: Budget | None) -> Reading:
        if b is None:
            return self
        return dataclasses.replace(
            self,
            cap_bytes=b.cap_bytes,
            used_bytes=b.used_bytes,
            projected_bytes=b.projected_bytes,
            percent_used=b.percent_used,
            mode=b.mode,
            alert=b.alert,
            cycle_start=b.cycle_start,
            cycle_end=b.cycle_end,
        )

    def own_bytes_since_usage(self, own_bytes_now: int | None) -> int:
        """What the agent spent since the operator's figure, from its cumulative counter: 0 without
        a baseline; a counter that went backwards (store recreated) counts in full, because
        over-counting is the safe side of a budget."""
        if own_bytes_now is None or self.own_bytes_at_usage is None:
            return 0
        if own_bytes_now < self.own_bytes_at_usage:
            return own_bytes_now
        return own_bytes_now - self.own_bytes_at_usage

    def budget_at(
        self, now: datetime, cfg: BackhaulConfig, own_bytes_now: int | None = None
    ) -> Budget | None:
        """The budget at `now` from this reading's operator figure plus the agent's own bytes
        since (`own_bytes_now`: its cumulative counter now); None if usage was never read."""
        if self.cycle_bytes is None or self.usage_taken_at is None:
            return None
        window = None
        if self.operator_cycle_start and self.operator_cycle_end:
            window = (self.operator_cycle_start, self.operator_cycle_end)
        return decide(
            cfg.cap_bytes,
            self.cycle_bytes,
            self.usage_taken_at,
            self.own_bytes_since_usage(own_bytes_now),
            now,
            cfg.cycle_start_day,
            cfg.warn_percent,
            cfg.critical_percent,
            cycle=window,
        )

    # --- serialising ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The ``pager-edge backhaul --json`` object: every field, times as UTC ISO strings."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = iso_utc(value) if f.name in _TIME_FIELDS else value
        return out

    def to_row(self) -> dict[str, Any]:
        """A flat dict of scalars for the store's ``backhaul_readings`` table (same keys as JSON)."""
        return self.to_json()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Reading:
        """Rebuild from :meth:`to_row` output (e.g. ``Store.latest_backhaul_reading()``).
        Unknown keys (store columns such as ``id``) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in row.items():
            if key not in known:
                continue
            if key in _TIME_FIELDS and isinstance(value, str):
                value = parse_iso(value)
            values[key] = value
        return cls(**values)
