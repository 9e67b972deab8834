"""What both operators and the monitor share: the records an operator call yields, what can go
wrong and what to do about it, the data budget, and the :class:`Reading` that ties them together.
Pure: no I/O, no clock of its own.

- :class:`SessionInfo` / :class:`UsageInfo` — what one session or usage call said.
- :class:`OperatorError` / :class:`NetworkFailure` and their :data:`Reaction` — an answer that is
  not the data, or no answer at all, and whether the poller stops, slows down or asks again later.
- :func:`decide` — allowance + operator figure + the agent's own bytes since → sync mode.
  The operator's counter is the billing truth but it lags (ThingSpace: 15 min after a session
  ends, hours for long sessions) and is only read every 15–60 min. So *used* is the last operator
  figure plus the bytes the agent itself sent since that figure was read. Traffic of other devices
  behind the same modem is only seen through the operator figure; the projection covers it via the
  burn rate.
- :class:`Reading` — the latest state as one flat record, so the store inserts it as a row and
  scripts get stable keys. It never holds a credential or token: only figures, identifiers of
  state and error messages that already went through redaction.
"""

from __future__ import annotations

import calendar
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from agent.clock import iso_utc, parse_iso
from agent.config import BackhaulConfig
from agent.display import printable
from agent.logs import redact

# --- errors ---------------------------------------------------------------------------------------

# stop: a person must fix something (credentials, allowed IP range, ICCID); asking again cannot help
#   and, for ThingSpace logins, would lock the account.
# backoff: the operator asked us to slow down (rate limit); keep going, less often.
# retry_later: transient on the operator's side; ask again at the next regular interval.
# relogin: the session/bearer token expired; the client renews it once and repeats the call.
Reaction = Literal["stop", "backoff", "retry_later", "relogin"]


def _shown(text: str) -> str:
    """Operator-supplied text made fit for people: no control or escape sequence, no line break,
    no secret. Redacted before and after :func:`printable`, so that a secret the server echoed
    with an invisible character inside it is caught once that character is gone."""
    return redact(printable(redact(text)))


class OperatorError(Exception):
    """An answer from the operator (or something posing as it) that is not the data asked for.

    ``message`` is written for the person at the host stand; it and ``code`` quote the server, so
    both pass through :func:`_shown`: some servers echo request details back in error bodies, and
    anything can pose as the operator (a captive portal, a hostile proxy) and send terminal escapes
    or line breaks that would forge a log line. Every later use — log lines, the stored reading,
    ``status``, the CLI — gets the clean text.
    """

    def __init__(self, code: str, http_status: int | None, message: str, reaction: Reaction):
        self.code = _shown(code)
        self.http_status = http_status
        self.message = _shown(message)
        self.reaction: Reaction = reaction
        super().__init__(self.message)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, http_status={self.http_status!r}, "
            f"message={self.message!r}, reaction={self.reaction!r})"
        )


class NetworkFailure(OperatorError):
    """No answer at all (DNS, connect, TLS, timeout). Tells nothing about the SIM or credentials.

    The API is reached over the backhaul itself, so this usually means the link is down: the
    poller pauses instead of treating it as an operator error.
    """

    def __init__(self, message: str):
        super().__init__("network", None, message, "retry_later")


# --- what one call says ---------------------------------------------------------------------------


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


# --- the data budget ------------------------------------------------------------------------------

Mode = Literal["normal", "conserve", "critical", "blocked"]
Alert = Literal["warn", "critical", "exhausted"]

# The burn rate is measured over at least this long: one hour into a cycle, 10 MB would otherwise
# project to 7 GB and throttle the sync for no reason.
MIN_RATE_WINDOW = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Budget:
    mode: Mode
    alert: Alert | None  # on what is used now, not on the projection
    cap_bytes: int  # 0: no allowance configured
    used_bytes: int  # operator figure (0 if from an earlier cycle) + own bytes since it was read
    projected_bytes: int  # at cycle_end, at the current burn rate
    percent_used: float | None  # of cap_bytes; None without a cap
    percent_projected: float | None
    cycle_start: datetime
    cycle_end: datetime


def _add_months(moment: datetime, months: int, day: int) -> datetime:
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def cycle_bounds(now: datetime, cycle_start_day: int) -> tuple[datetime, datetime]:
    """The billing cycle containing `now`: [day `cycle_start_day` 00:00 UTC, same day next month).

    Operators cut cycles at midnight in their own zone; when the operator reports the exact window
    (Control Center's usageInZone does), pass it to :func:`decide` as ``cycle`` instead.
    """
    now = now.astimezone(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = _add_months(start, 0, cycle_start_day)
    if now < start:
        start = _add_months(start, -1, cycle_start_day)
    return start, _add_months(start, 1, cycle_start_day)


def decide(
    cap_bytes: int,
    operator_used_bytes: int,
    reading_taken_at: datetime,
    bytes_sent_since_reading: int,
    now: datetime,
    cycle_start_day: int = 1,
    warn_percent: float = 75.0,
    critical_percent: float = 95.0,
    *,
    cycle: tuple[datetime, datetime] | None = None,
) -> Budget:
    """The sync mode for this moment.

    Policy, exactly:

    - The cycle is ``cycle`` (the operator's window) if it contains `now`, else the one derived
      from `cycle_start_day` (:func:`cycle_bounds`).
    - Reset at the boundary: an operator reading taken before the current cycle started counts as
      0 used. The agent's own bytes since the reading are always counted (when the reading predates
      the cycle some of them belong to the previous one; over-counting is the safe side).
    - ``used = operator figure + own bytes``; the burn rate is ``used / max(elapsed, 1 day)``;
      ``projected = used + rate × time left in the cycle``.
    - Mode: ``used ≥ cap`` → ``blocked``; else ``projected ≥ critical %`` of cap → ``critical``;
      else ``projected ≥ warn %`` → ``conserve``; else ``normal``. Without a cap (0) → ``normal``.
    - Alert (what a router would flash, on *used*, not projected): ≥ 100 % → ``exhausted``,
      ≥ critical % → ``critical``, ≥ warn % → ``warn``, else None.
    """
    now = now.astimezone(UTC)
    if cycle is not None and cycle[0] <= now < cycle[1]:
        start, end = cycle
    else:
        start, end = cycle_bounds(now, cycle_start_day)
    operator = operator_used_bytes if reading_taken_at >= start else 0
    used = max(0, operator) + max(0, bytes_sent_since_reading)
    elapsed = max(now - start, MIN_RATE_WINDOW)
    left = max(end - now, timedelta(0))
    projected = used + round(used * (left / elapsed))
    if cap_bytes <= 0:
        return Budget("normal", None, 0, used, projected, None, None, start, end)
    pct_used = 100.0 * used / cap_bytes
    pct_projected = 100.0 * projected / cap_bytes
    mode: Mode
    if used >= cap_bytes:
        mode = "blocked"
    elif pct_projected >= critical_percent:
        mode = "critical"
    elif pct_projected >= warn_percent:
        mode = "conserve"
    else:
        mode = "normal"
    alert: Alert | None = None
    if pct_used >= 100.0:
        alert = "exhausted"
    elif pct_used >= critical_percent:
        alert = "critical"
    elif pct_used >= warn_percent:
        alert = "warn"
    return Budget(
        mode,
        alert,
        cap_bytes,
        used,
        projected,
        round(pct_used, 2),
        round(pct_projected, 2),
        start,
        end,
    )


# --- the reading ----------------------------------------------------------------------------------

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
