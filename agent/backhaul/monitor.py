"""The backhaul monitor: the poller, its wiring from configuration, the latest reading as the
status, the board and the sync see it, and the text people read.

Schedule: the session (online, IP) every ``session_interval`` (5–15 min), usage every
``usage_interval`` (15–60 min). What happens after a failed call depends on its reaction:

- network failure (no answer): the link the API is reached over is probably down. Pause: nothing
  is asked until a probe after 1, 2, 4 … min (capped at the session interval) gets an answer.
- ``backoff`` (rate limit): every interval is stretched ×2 (up to ×8); each success halves it.
- ``retry_later`` / ``relogin`` that could not be fixed by one renewal: ask again next interval.
- ``stop`` (credentials, allowed-IP range, unknown SIM, ThingSpace login refused): report it once
  and never ask again in this process. ``run()`` then waits for ever instead of returning, because
  the task supervisor restarts tasks that return — which here would mean retrying a refused login.

Every poll, successful or not, produces a :class:`Reading` for ``on_reading`` (the store); a
failure keeps the last figures and marks ``online`` unknown.

Secrets come from :func:`agent.secrets.secret` (environment, else the 0600 secrets file), which
also registers them for log redaction before any request is made.

A stored reading ages: the cycle may have turned since, and the agent has spent bytes since. So
its budget is never used as is; :func:`current` recomputes it from the operator figure, the
agent's cumulative traffic counter now, and the configuration. That works from another process
than the daemon (``pager-edge status``, ``pager-edge sync --once``) because it needs only the store.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx

from agent.backhaul.control_center import ControlCenterClient
from agent.backhaul.http import require_https
from agent.backhaul.reading import (
    Budget,
    NetworkFailure,
    OperatorError,
    Reading,
    SessionInfo,
    UsageInfo,
)
from agent.backhaul.thingspace import ThingSpaceClient
from agent.clock import SYSTEM_CLOCK, Clock
from agent.config import BackhaulConfig, Config, ConfigError
from agent.display import format_bytes, printable
from agent.secrets import secret

log = logging.getLogger(__name__)

Kind = Literal["session", "usage"]
KINDS: tuple[Kind, ...] = ("session", "usage")
PAUSE_FIRST = 60.0  # first probe after a network failure
MAX_SLOWDOWN = 8.0

CC_API_KEY = "PAGER_EDGE_CC_API_KEY"
TS_SECRETS = (
    "PAGER_EDGE_TS_CLIENT_ID",
    "PAGER_EDGE_TS_CLIENT_SECRET",
    "PAGER_EDGE_TS_USERNAME",
    "PAGER_EDGE_TS_PASSWORD",
)
# The figures cannot change faster than this (and the operators ask for no more).
MIN_USAGE_INTERVAL = 900.0
MIN_SESSION_INTERVAL = 300.0
# Between two calls of one poll: well under Control Center's 5 calls/s, which is per account and
# shared with the customer's other tools.
MIN_CALL_INTERVAL = 0.5

LatestRow = Callable[[], dict[str, Any] | None]  # e.g. store.latest_backhaul_reading
OwnBytes = Callable[[], int]  # the agent's cumulative bytes over the backhaul

PROVIDER_NAMES = {"control_center": "Cisco Control Center", "thingspace": "Verizon ThingSpace"}


# --- the poller -----------------------------------------------------------------------------------


class OperatorClient(Protocol):
    provider: str

    async def session(self) -> SessionInfo: ...

    async def usage(self) -> UsageInfo: ...

    async def aclose(self) -> None: ...


OnReading = Callable[[Reading], Awaitable[None] | None]


class BackhaulPoller:
    def __init__(
        self,
        cfg: BackhaulConfig,
        client: OperatorClient,
        on_reading: OnReading | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        own_bytes: Callable[[], int] | None = None,
    ):
        """`own_bytes()`: the agent's cumulative traffic counter over the backhaul (the sync's
        bytes sent + received); without it the budget sees only the operator figure."""
        self.cfg = cfg
        self.client = client
        self._on_reading = on_reading
        self.clock = clock
        self._own_bytes = own_bytes
        self.latest: Reading | None = None
        self.stopped: OperatorError | None = None  # set once a `stop` error ended polling
        self.slowdown = 1.0
        self.network_failures = 0

    # --- one poll -------------------------------------------------------------------------------

    async def poll_once(self) -> Reading:
        """Session and usage now, whatever the schedule (``pager-edge backhaul --once``)."""
        reading, _ = await self._poll(KINDS)
        return reading

    async def _poll(self, kinds: tuple[Kind, ...]) -> tuple[Reading, OperatorError | None]:
        reading = self.latest or Reading(self.client.provider, self.clock.now())
        reading = reading.without_error()
        failure: OperatorError | None = None
        try:
            for kind in kinds:
                if kind == "session":
                    reading = reading.with_session(await self.client.session(), self.clock.now())
                else:
                    usage = await self.client.usage()
                    reading = reading.with_usage(usage, self.clock.now(), self._own_counter())
        except OperatorError as err:
            failure = err
            reading = reading.with_error(err, self.clock.now())
        reading = reading.with_budget(self.budget(reading, self.clock.now()))
        self.latest = reading
        return reading, failure

    def _own_counter(self) -> int | None:
        return self._own_bytes() if self._own_bytes is not None else None

    def budget(self, reading: Reading, now: datetime) -> Budget | None:
        """The budget of `reading` at `now`, counting the agent's own bytes since the reading."""
        return reading.budget_at(now, self.cfg, self._own_counter())

    # --- the loop -------------------------------------------------------------------------------

    def _interval(self, kind: Kind) -> float:
        base = self.cfg.session_interval if kind == "session" else self.cfg.usage_interval
        return base * self.slowdown

    async def run(self) -> None:
        """Poll for ever on the schedule described in the module docstring."""
        if self.stopped is not None:
            await self._park(self.stopped)
        start = self.clock.monotonic()
        due: dict[Kind, float] = dict.fromkeys(KINDS, start)
        while True:
            now = self.clock.monotonic()
            kinds = tuple(k for k in KINDS if due[k] <= now)
            if kinds:
                reading, failure = await self._poll(kinds)
                await self._emit(reading)
                if failure is not None and failure.reaction == "stop":
                    await self._park(failure)
                self._reschedule(due, kinds, failure, self.clock.monotonic())
            wait = min(due.values()) - self.clock.monotonic()
            if wait > 0:
                await self.clock.sleep(wait)

    def _reschedule(
        self,
        due: dict[Kind, float],
        kinds: tuple[Kind, ...],
        failure: OperatorError | None,
        now: float,
    ) -> None:
        if failure is None:
            if self.network_failures:
                log.info(
                    "operator API answering again after %d failed tries", self.network_failures
                )
            self.network_failures = 0
            self.slowdown = max(1.0, self.slowdown / 2)
        elif isinstance(failure, NetworkFailure):
            self.network_failures += 1
            pause = min(PAUSE_FIRST * 2 ** (self.network_failures - 1), self.cfg.session_interval)
            if self.network_failures == 1:
                log.warning("%s; pausing backhaul polling (link down?)", failure.message)
            for k in KINDS:
                due[k] = max(due[k], now + pause) if k not in kinds else now + pause
            return
        elif failure.reaction == "backoff":
            self.slowdown = min(self.slowdown * 2, MAX_SLOWDOWN)
            log.warning("%s (intervals ×%g)", failure.message, self.slowdown)
        else:
            log.warning("backhaul poll failed, will ask again later: %s", failure.message)
        for k in kinds:
            due[k] = now + self._interval(k)

    async def _park(self, failure: OperatorError) -> None:
        self.stopped = failure
        log.error("backhaul polling stopped: %s", failure.message)
        await asyncio.get_running_loop().create_future()  # until the agent shuts down

    async def _emit(self, reading: Reading) -> None:
        if self._on_reading is None:
            return
        try:
            result = self._on_reading(reading)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("storing a backhaul reading failed")


# --- from configuration ---------------------------------------------------------------------------


def check_config(cfg: Config) -> BackhaulConfig:
    """Everything ``[backhaul]`` must say before a request is made (whether or not `enabled`)."""
    b, p = cfg.backhaul, cfg.source

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, path=p, key=f"[backhaul] {key}")

    if not b.base_url:
        raise fail("base_url", "expected the operator's API base URL (no [backhaul] configured?)")
    require_https(b.base_url, path=p)
    needed = {"control_center": ("iccid", "username"), "thingspace": ("account_number", "imei")}
    for key in needed[b.provider]:
        if not getattr(b, key):
            raise fail(key, f"required for provider {b.provider!r}")
    if b.usage_interval < MIN_USAGE_INTERVAL:
        raise fail("usage_interval", f"expected at least {MIN_USAGE_INTERVAL:g} s (15 min)")
    if b.session_interval < MIN_SESSION_INTERVAL:
        raise fail("session_interval", f"expected at least {MIN_SESSION_INTERVAL:g} s (5 min)")
    if b.cap_bytes < 0:
        raise fail("cap_bytes", "expected 0 (no cap) or a positive number of bytes")
    if not 0 < b.warn_percent <= b.critical_percent <= 100:
        raise fail("warn_percent", "expected 0 < warn_percent ≤ critical_percent ≤ 100")
    if b.timeout <= 0:
        raise fail("timeout", "expected a positive number of seconds")
    if not 0 <= b.first_reading_timeout < math.inf:  # inf or nan would hold the sync for ever
        raise fail("first_reading_timeout", "expected a number of seconds, 0 or more")
    return b


def _secret(cfg: Config, name: str) -> str:
    value = secret(cfg, name)
    if not value:
        where = f" or in {cfg.secrets.path}" if cfg.secrets.path else " or a [secrets] path file"
        raise ConfigError(f"secret {name} is not set (set it in the environment{where})")
    return value


def make_client(
    cfg: Config,
    *,
    http: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> OperatorClient:
    """The client for the configured provider. Pass `http` or `transport` to redirect the calls."""
    b = check_config(cfg)
    common: dict[str, Any] = {
        "timeout": b.timeout,
        "min_interval": MIN_CALL_INTERVAL,
        "client": http,
        "transport": transport,
        "clock": clock,
    }
    if b.provider == "control_center":
        return ControlCenterClient(
            b.base_url,
            iccid=b.iccid,
            username=b.username,
            api_key=_secret(cfg, CC_API_KEY),
            **common,
        )
    client_id, client_secret, username, password = (_secret(cfg, n) for n in TS_SECRETS)
    return ThingSpaceClient(
        b.base_url,
        account_number=b.account_number,
        imei=b.imei,
        iccid=b.iccid,
        client_id=client_id,
        client_secret=client_secret,
        username=username,
        password=password,
        cycle_start_day=b.cycle_start_day,
        **common,
    )


def make_poller(
    cfg: Config,
    on_reading: OnReading | None = None,
    *,
    own_bytes: Callable[[], int] | None = None,
    http: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> BackhaulPoller:
    client = make_client(cfg, http=http, transport=transport, clock=clock)
    return BackhaulPoller(cfg.backhaul, client, on_reading, clock=clock, own_bytes=own_bytes)


async def read_once(cfg: Config, **kwargs: Any) -> Reading:
    """One reading now, for `pager-edge backhaul --once` (``kwargs`` go to :func:`make_poller`)."""
    poller = make_poller(cfg, **kwargs)
    try:
        return await poller.poll_once()
    finally:
        await poller.client.aclose()


def daemon_task(
    cfg: Config,
    store: Any,
    *,
    own_bytes: Callable[[], int] | None = None,
) -> Callable[[], Awaitable[None]]:
    """A factory for ``Agent.extra_tasks``: poll for ever, each reading into the store.

    Configuration and secrets are checked now (start-up), so a mistake stops ``pager-edge run``
    with one line. The poller is built once and survives task restarts: a refused ThingSpace login
    stays remembered, and is never tried again by a restarted task.
    """
    poller = make_poller(cfg, lambda r: store.add_backhaul_reading(r.to_row()), own_bytes=own_bytes)

    async def run() -> None:
        try:
            await poller.run()
        except asyncio.CancelledError:
            await poller.client.aclose()
            raise

    return run


# --- the latest reading, now ----------------------------------------------------------------------


def current(
    row: dict[str, Any] | None,
    cfg: BackhaulConfig,
    now: datetime,
    own_bytes_now: int | None = None,
) -> Reading | None:
    """A stored reading (``Reading.to_row()`` form) with its budget recomputed for `now`."""
    if row is None:
        return None
    r = Reading.from_row(row)
    return r.with_budget(r.budget_at(now, cfg, own_bytes_now))


def decided_mode(
    row: dict[str, Any] | None,
    cfg: BackhaulConfig,
    now: datetime,
    own_bytes_now: int | None = None,
) -> str | None:
    """The budget mode a stored reading decides at `now`; None while no reading has usage
    figures (none yet, or only failed or session-only polls)."""
    r = current(row, cfg, now, own_bytes_now)
    return r.mode if r is not None and r.mode else None


def mode_provider(
    cfg: BackhaulConfig,
    latest_row: LatestRow,
    own_bytes: OwnBytes | None = None,
    *,
    default: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[], str | None]:
    """For ``SyncEngine(mode_provider=...)``: the budget mode now; while no reading has decided
    one, `default` — None, so that the engine holds every event until the first reading (and
    goes on in conserve after ``first_reading_timeout``: :mod:`agent.sync.modes`). A [sync] mode
    there instead would let a fresh install over its cap send until its first reading."""

    def mode() -> str | None:
        decided = decided_mode(latest_row(), cfg, clock(), own_bytes() if own_bytes else None)
        return decided or default

    return mode


def status_section(
    cfg: BackhaulConfig, own_bytes: Callable[[Any], int] | None = None
) -> Callable[[Any], dict[str, Any]]:
    """For :func:`agent.status.collect_status`: ``(store) -> {"backhaul": {...}}`` — the reading's
    ``--json`` keys re-budgeted for now, plus ``age_seconds`` and a one-line ``summary``
    (``{"reading": None, ...}`` before the first reading). `own_bytes(store)` reads the counter."""

    def section(store: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        counter = own_bytes(store) if own_bytes else None
        r = current(store.latest_backhaul_reading(), cfg, now, counter)
        if r is None:
            return {"backhaul": {"reading": None, "summary": header(None)}}
        doc = printable_json(r)
        taken = r.usage_taken_at or r.session_taken_at
        doc["age_seconds"] = None if taken is None else round((now - taken).total_seconds())
        doc["summary"] = header(r, now)
        return {"backhaul": doc}

    return section


# --- text for people ------------------------------------------------------------------------------
# Error messages are clean from the start (:class:`OperatorError`), but the SIM status, the rate
# plan and a reading stored by an older version are the operator's words as they came: every text
# value goes through `printable` on its way to a person.


def printable_json(r: Reading) -> dict[str, Any]:
    """The reading's ``--json`` keys, every text value made printable (``--json``, ``status``)."""
    return {k: printable(v) if isinstance(v, str) else v for k, v in r.to_json().items()}


def fmt_age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    s = max(0, int((now - moment).total_seconds()))
    if s < 90:
        return f"{s} s ago"
    if s < 90 * 60:
        return f"{s // 60} min ago"
    if s < 48 * 3600:
        return f"{s // 3600} h ago"
    return f"{s // 86400} days ago"


def _link(r: Reading) -> str:
    state = {True: "online", False: "offline", None: "online?"}[r.online]
    addresses = " ".join(printable(a) for a in (r.ipv4, r.ipv6) if a)
    return f"{state} {addresses}".rstrip()


def _used(r: Reading) -> str:
    if r.used_bytes is None:
        return "usage unknown"
    if not r.cap_bytes:
        return f"{format_bytes(r.used_bytes)} used (no cap configured)"
    return f"{format_bytes(r.used_bytes)} of {format_bytes(r.cap_bytes)} ({r.percent_used:.0f} %)"


def summary(r: Reading, now: datetime | None = None) -> str:
    """A few lines for ``pager-edge backhaul --once``."""
    now = now or datetime.now(UTC)
    lines = [f"{PROVIDER_NAMES.get(r.provider) or printable(r.provider)}: {_link(r)}"]
    if r.error:
        lines.append(f"  ERROR: {printable(r.error)}")
    plan = f"plan {printable(r.rate_plan)!r}" if r.rate_plan else ""
    sim = " ".join(x for x in (printable(r.sim_status), plan) if x)
    if sim:
        lines.append(f"  SIM:        {sim}")
    if r.used_bytes is not None:
        lines.append(f"  used:       {_used(r)}")
        end = r.cycle_end.strftime("%Y-%m-%d") if r.cycle_end else "?"
        lines.append(f"  projected:  {format_bytes(r.projected_bytes)} by {end}")
        alert = f", alert {r.alert}" if r.alert else ""
        lines.append(f"  sync mode:  {r.mode}{alert}")
    lines.append(f"  reading:    {fmt_age(r.usage_taken_at or r.session_taken_at, now)}")
    return "\n".join(lines)


def header(r: Reading | None, now: datetime | None = None) -> str:
    """One line for the board's header: link, used of cap, projection, mode, age."""
    if r is None:
        return "backhaul: no reading yet"
    now = now or datetime.now(UTC)
    parts = [f"backhaul {_link(r)}"]
    if r.used_bytes is not None:
        parts.append(_used(r))
        parts.append(f"→ {format_bytes(r.projected_bytes)}")
        parts.append(str(r.mode))
    parts.append(fmt_age(r.usage_taken_at or r.session_taken_at, now))
    if r.error:
        parts.append("error")
    return " · ".join(parts)
