"""The sync task: the event log, after its durable cursor, to the ingest endpoint.

One :class:`SyncEngine` runs inside the agent (``run_forever``) or once from
``pager-edge sync --once`` (``sync_once``). Each run takes the lease, housekeeps the store (retention,
size cap), then sends batch after batch until nothing is due, the budget mode says stop, or the
endpoint fails:

* 2xx or 409 → the cursor moves past the batch;
* 408/425/429, 5xx, timeouts, connection errors → the run stops; the next one comes after an
  exponential backoff with jitter (``agent.supervise.backoff_delays``), at least ``Retry-After``,
  at most ``[sync] max_backoff``; the same batch (same bytes) is sent again;
* 401/403/404/405/407/410/411/415/426 and redirects → the endpoint or token is wrong: nothing is
  quarantined (every batch would be), the run stops and waits ``max_backoff``;
* any other 4xx (400, 413, 422 …) → the batch is split in halves and each half sent again, down to
  single events; a single event still rejected is quarantined (kept, counted, shown) and the queue
  moves on. After ``SYSTEMIC_REJECTIONS`` quarantined events in a row without an accepted batch
  the receiver is taken to reject everything (a schema mismatch, say): the engine stops splitting,
  quarantines nothing more and probes once per ``max_backoff``.

SQLite work runs on one dedicated thread with the engine's own connection, so the event loop (and
the transmitter observation it also serves) never waits on an fsync or on the ingest writer's lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import httpx

from agent import __version__
from agent.clock import iso_of_epoch
from agent.config import Config
from agent.logs import register_secret
from agent.secrets import secret
from agent.store import Store
from agent.supervise import backoff_delays
from agent.sync.answers import TOKEN_ENV, Outcome, classify, excerpt, parse_retry_after
from agent.sync.counted_transport import LinkBackend, LinkCounter, LinkTransport, ssl_context
from agent.sync.endpoint import SyncSetupError, check_endpoint
from agent.sync.housekeeping import housekeep
from agent.sync.modes import MODES, WAITING, FirstReading, policy
from agent.sync.schedule import Pending, flush_wait, heartbeat_wait
from agent.sync.state import BatchSpec, Delta, SyncState
from agent.sync.wire import CONTENT_ENCODING, CONTENT_TYPE, BatchEncoder, heartbeat_body

log = logging.getLogger("agent.sync")
__all__ = [
    "MODES",
    "TOKEN_ENV",
    "SyncEngine",
    "SyncResult",
    "SyncSetupError",
    "check_endpoint",
    "parse_retry_after",
]

SYSTEMIC_REJECTIONS = 8
MAX_RESPONSE_BYTES = 16 * 1024
# Keep the connection between runs (a new one costs a TLS handshake: ~2.5 KB resumed, ~5.5 KB
# with the certificate chain); the receiver's or the path's idle timeout usually decides sooner.
KEEPALIVE_SECONDS = 900.0
# A kept connection lost after at least this long idle is taken for a NAT's (or firewall's) idle
# timeout: from then on the engine opens a new connection (a resumed TLS handshake) after that much
# idle time rather than lose a request to a connection the path has forgotten.
MIN_PATH_IDLE = 20.0
RENEW_AT = 0.8  # … with a margin: a connection idle this share of that time is renewed,
KEEP_WARM = 0.7  # and pending events go before the open connection is idle this share of it
_MODE_WARNED: set[str] = set()
P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class SyncResult:
    """What one run did, and whether everything pending went out."""

    mode: str
    events: int = 0  # delivered (accepted) this run
    batches: int = 0
    quarantined: int = 0  # events quarantined this run
    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    pending: int = 0  # backlog after the run (quarantined events are not pending)
    error: str | None = None  # why the run stopped early, one line
    retryable: bool = False  # the error may pass by itself (network, 5xx, 429)
    delay: float = 0.0  # when the next run should start
    busy_pid: int | None = None  # another run held the lease

    @property
    def done(self) -> bool:
        return self.pending == 0 and self.error is None


class SyncEngine:
    """Uploads the event log in batches over one reused connection (HTTP/2 when the endpoint
    offers it, else HTTP/1.1).

    `mode_provider` returns the budget mode (normal | conserve | critical | blocked) — the backhaul
    monitor's projection — or None while nothing has decided it (no backhaul reading yet: the
    first-reading rule of :mod:`.modes` applies); by default ``[sync] mode``. `clock` is wall
    time (lease, timestamps, the age of events); `monotonic` schedules (when a batch is due,
    keep-alive, the first-reading timeout);
    `sleep` is what :meth:`run_forever` and the CLI wait with. A `transport` replaces the link
    (then nothing is counted).
    """

    def __init__(
        self,
        cfg: Config,
        store_path: str | Path | None = None,
        *,
        token: str | None,
        transport: httpx.AsyncBaseTransport | None = None,
        mode_provider: Callable[[], str | None] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        http2: bool = True,
    ):
        self.cfg = cfg
        s = cfg.sync
        self.endpoint = check_endpoint(s.endpoint)
        if not token:
            raise SyncSetupError(
                f"no sync token: set {TOKEN_ENV} in the environment or in the secrets file "
                "([secrets] path, mode 0600)"
            )
        register_secret(token)
        self._token = token
        self.site = cfg.sync_site_id
        self.store_path = Path(store_path or cfg.store.path)
        self._transport = transport
        self._mode_provider: Callable[[], str | None] = mode_provider or (
            lambda: self.cfg.sync.mode
        )
        self._first_reading = FirstReading()
        self._recorded_mode: str | None = None  # the mode the store shows (status)
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic
        self.http2 = http2
        self.lease_ttl = 3 * s.timeout + 60.0
        self.owner = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"
        # Totals since this engine started (the store has the lifetime totals, see sync_status).
        self.bytes_sent = 0
        self.bytes_received = 0
        self.connections = 0
        self.link = LinkCounter()  # bytes below HTTP, all connections (TLS included)
        self._ssl = ssl_context(s.ca_file) if self.endpoint.scheme == "https" else None
        self._backend: LinkBackend | None = None
        self._last_io: float | None = None  # monotonic end of the last request
        self._path_idle: float | None = None  # idle time after which the path lost a connection
        self._pending_since: tuple[int, float] | None = None  # (oldest pending rowid, seen at)
        self._retry_at = 0.0  # monotonic: no request before this (backoff)
        self._http: httpx.AsyncClient | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._store: Store | None = None
        self._state: SyncState | None = None
        self._delays: Iterator[float] | None = None
        self._streak = 0  # quarantined batches since the last accepted one
        self._last_alert_log = 0.0
        self._last_error: str | None = None

    @classmethod
    def from_config(
        cls, cfg: Config, store_path: str | Path | None = None, **kw: Any
    ) -> SyncEngine:
        """Engine with the token from the environment or the secrets file."""
        return cls(cfg, store_path, token=secret(cfg, TOKEN_ENV), **kw)

    def __repr__(self) -> str:
        return f"<SyncEngine {self.endpoint} site={self.site!r}>"

    # plumbing --------------------------------------------------------------------------------

    async def _in_db_thread(self, fn: Callable[P, T], /, *args: P.args, **kw: P.kwargs) -> T:
        """Run store work on the engine's own thread (one connection, one thread at a time)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="sync-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kw))

    async def _call_state(
        self, method: Callable[Concatenate[SyncState, P], T], /, *args: P.args, **kw: P.kwargs
    ) -> T:
        """``SyncState.<method>(state, …)`` on the store thread, type-checked like a direct call.
        The unbound method is passed (not ``self.state.<method>``) so that the store is opened on
        that thread too, on first use, and never on the event loop."""
        return await self._in_db_thread(lambda: method(self.state, *args, **kw))

    @property
    def state(self) -> SyncState:
        if self._state is None:
            self._store = Store(self.store_path, synchronous=self.cfg.store.synchronous)
            self._state = SyncState(self._store)
        return self._state

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            s = self.cfg.sync
            transport = self._transport
            if transport is None:
                link = LinkTransport(
                    self.link,
                    verify=self._ssl or ssl_context(),
                    http2=self.http2,
                    keepalive_expiry=KEEPALIVE_SECONDS,
                )
                self._backend = link.backend
                transport = link
            client = httpx.AsyncClient(
                transport=transport,
                timeout=httpx.Timeout(s.timeout),
                follow_redirects=False,
                trust_env=False,
            )
            # Every header costs bytes on every request: send only what the receiver needs.
            for name in ("user-agent", "accept", "accept-encoding", "connection"):
                client.headers.pop(name, None)
            client.headers.update(
                {
                    "Authorization": f"Bearer {self._token}",
                    "Content-Type": CONTENT_TYPE,
                    "Content-Encoding": CONTENT_ENCODING,
                }
            )
            self._http = client
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._executor is not None:
            if self._store is not None:
                await self._in_db_thread(self._store.close)
            self._executor.shutdown(wait=False)
            self._executor = None
        self._store = self._state = None

    def mode(self) -> str:
        """The provider's mode, or the first-reading rule's while it has none (:mod:`.modes`)."""
        try:
            mode = self._mode_provider()
        except Exception:
            log.exception("sync: budget mode provider failed; using [sync] mode")
            mode = self.cfg.sync.mode
        if mode is not None and mode not in MODES:
            if mode not in _MODE_WARNED:
                _MODE_WARNED.add(mode)
                log.warning("sync: unknown budget mode %r, treated as normal", mode)
            mode = "normal"
        timeout = self.cfg.backhaul.first_reading_timeout
        return self._first_reading.mode(mode, self.monotonic(), timeout)

    def interval(self, mode: str) -> float:
        p = policy(mode)
        return max(self.cfg.sync.interval * p.interval_factor, p.min_interval)

    # one run ---------------------------------------------------------------------------------

    async def sync_once(self) -> SyncResult:
        """Send everything due now; never raises for network or receiver trouble."""
        started = self.clock()
        mode = self.mode()
        res = SyncResult(mode=mode, delay=self.interval(mode))
        busy = await self._call_state(SyncState.acquire, self.owner, self.lease_ttl, started)
        if busy is not None:
            res.busy_pid = busy
            res.error = f"another sync run (pid {busy}) holds the lease"
            res.pending = await self._call_state(SyncState.backlog)
            return res
        try:
            self._streak = await self._call_state(SyncState.rejections_since_success)
            await self._in_db_thread(self._housekeeping, started)
            while True:
                mode = res.mode = self.mode()
                p = policy(mode)
                s = self.cfg.sync
                nxt = await self._call_state(
                    SyncState.next_batch,
                    p.kinds,
                    s.max_batch_events * p.batch_factor,
                    s.max_batch_bytes * p.batch_factor,
                )
                if nxt is None:
                    break
                stop = await self._deliver(*nxt, res)
                if stop is not None:
                    res.error, res.delay, res.retryable = stop
                    break
        finally:
            res.pending = await self._call_state(SyncState.backlog)
            cycle = {
                "at": iso_of_epoch(started),
                "events": res.events,
                "batches": res.batches,
                "requests": res.requests,
                "bytes_sent": res.bytes_sent,
                "bytes_received": res.bytes_received,
                "quarantined": res.quarantined,
                "pending": res.pending,
                "error": res.error,
            }
            await self._call_state(SyncState.end_cycle, mode=res.mode, started=started, cycle=cycle)
            self._recorded_mode = res.mode
            await self._call_state(SyncState.release, self.owner)
        if res.error is None:
            self._delays = None
            res.delay = self.interval(res.mode)
            if res.pending and res.mode == WAITING:
                res.error = f"waiting for the first backhaul reading: {res.pending} events held"
            elif res.pending and MODES[res.mode].kinds is None:
                res.error = f"budget mode is blocked: {res.pending} events stored, none sent"
            elif res.pending and res.mode == "critical":
                res.error = f"budget mode is critical: {res.pending} non-lifecycle events deferred"
        return res

    async def _deliver(
        self, spec: BatchSpec, events: list[dict[str, Any]], res: SyncResult
    ) -> tuple[str, float, bool] | None:
        """Send one batch, splitting it on rejection; (error, delay, retryable) to stop the run."""
        stack = [(spec, events)]
        while stack:
            spec, evs = stack.pop()
            key, body = await self._in_db_thread(self._encode, evs, spec.version)
            await self._call_state(
                SyncState.set_inflight, spec, lease_until=self.clock() + self.lease_ttl
            )
            out = await self._post(key, body)
            d = out.delta
            res.requests += 1
            res.bytes_sent += d.sent
            res.bytes_received += d.received
            now = self.clock()
            if out.kind == "accepted":
                await self._call_state(SyncState.accepted, spec, d, now)
                res.events += len(evs)
                res.batches += 1
                self._streak = 0
                self._delays = None
                self._last_error = None
                continue
            if out.kind == "rejected" and self._streak < SYSTEMIC_REJECTIONS:
                if len(evs) > 1:
                    await self._call_state(SyncState.failed, out.reason, d)
                    mid = len(evs) // 2
                    cut = evs[mid - 1]["seq"]
                    log.info("sync: batch %s rejected (%s); retrying it in halves", key, out.reason)
                    stack.append((dataclasses.replace(spec, lo=cut), evs[mid:]))
                    stack.append((dataclasses.replace(spec, hi=cut), evs[:mid]))
                    continue
                await self._call_state(
                    SyncState.quarantine, spec, evs, out.status, out.reason, d, now
                )
                res.quarantined += len(evs)
                self._streak += 1
                log.warning("sync: quarantined %s: %s; the queue moves on", key, out.reason)
                if self._streak < SYSTEMIC_REJECTIONS:
                    continue
                out = Outcome(
                    "refused",
                    out.status,
                    f"{out.reason}; the receiver rejected "
                    f"{self._streak} events in a row: paused, check the receiver",
                )
                d = Delta()
            elif out.kind == "rejected":
                out.reason = (
                    f"{out.reason}; the receiver rejects everything lately "
                    f"({self._streak} quarantined in a row): paused, check the receiver"
                )
            await self._call_state(SyncState.failed, out.reason, d)
            self._note_error(out.reason)
            return out.reason, self._delay_for(out), out.kind == "retry"
        return None

    def _delay_for(self, out: Outcome) -> float:
        cap = self.cfg.sync.max_backoff
        if out.kind != "retry":
            return cap
        if self._delays is None:
            self._delays = backoff_delays(initial=min(1.0, cap), cap=cap)
        delay = next(self._delays)
        if out.retry_after is not None:
            delay = max(delay, out.retry_after)
        return min(delay, cap)

    def _note_error(self, reason: str) -> None:
        if reason != self._last_error:
            log.warning("sync: %s", reason)
            self._last_error = reason

    def _encode(self, events: list[dict[str, Any]], version: int) -> tuple[str, bytes]:
        enc = BatchEncoder(self.site, __version__, version=version)
        for ev in events:
            enc.add(ev)
        return enc.key(), enc.body()

    def _idle(self) -> float:
        return math.inf if self._last_io is None else self.monotonic() - self._last_io

    async def _fresh_connection(self) -> None:
        """Drop the connection before a request when it cannot be good any more: idle longer than
        the keep-alive (on the injected clock), longer than the path was seen to forget
        connections (a NAT), or closed by the server meanwhile."""
        idle = self._idle()
        forgotten = self._path_idle is not None and idle >= RENEW_AT * self._path_idle
        closed = self._backend is not None and self._backend.peer_closed()
        if self._http is not None and (idle > KEEPALIVE_SECONDS or forgotten or closed):
            await self._http.aclose()
            self._http = None

    async def _post(self, key: str | None, body: bytes) -> Outcome:
        """One POST; a request lost with a reused connection (a NAT forgot it) goes again at once
        on a new one. Every byte either attempt moved is counted."""
        await self._fresh_connection()
        idle = self._idle()
        d = Delta()
        for attempt in (1, 2):
            before = (self.link.sent, self.link.received, self.link.connections)
            out = await self._request(key, body)
            d.requests += 1
            d.sent += self.link.sent - before[0]
            d.received += self.link.received - before[1]
            new = self.link.connections - before[2]
            d.connections += new
            self._last_io = self.monotonic()
            stale = (
                out.kind == "retry"
                and out.status is None
                and not new
                and "Timeout" not in out.reason
            )
            if attempt == 2 or not stale:
                break
            log.info("sync: the kept connection was gone (%s); again on a new one", out.reason)
            if idle >= MIN_PATH_IDLE:  # a path that forgets idle connections: learn how soon
                self._path_idle = min(self._path_idle or math.inf, idle)
            if self._http is not None:
                await self._http.aclose()
                self._http = None
        out.delta = d
        return self._count(out)

    async def _request(self, key: str | None, body: bytes) -> Outcome:
        status: int | None = None
        headers = {"Idempotency-Key": key} if key is not None else None
        try:
            async with self._client().stream(
                "POST", self.endpoint, content=body, headers=headers
            ) as resp:
                status = resp.status_code
                data = b""
                async for chunk in resp.aiter_raw():
                    data += chunk
                    if len(data) > MAX_RESPONSE_BYTES:
                        break
        except httpx.TimeoutException:
            return Outcome("retry", status, f"no answer within {self.cfg.sync.timeout:g} s")
        except httpx.HTTPError as exc:
            what = excerpt(str(exc).encode()) or "connection failed"
            return Outcome("retry", status, f"{type(exc).__name__}: {what}")
        return classify(resp, data, self.clock())

    def _count(self, out: Outcome) -> Outcome:
        self.bytes_sent += out.delta.sent
        self.bytes_received += out.delta.received
        self.connections += out.delta.connections
        return out

    # housekeeping ----------------------------------------------------------------------------

    def _housekeeping(self, now: float) -> None:
        """Retention (hourly) and the database size cap (every run); on the store thread."""
        self._last_alert_log = housekeep(self.state, self.cfg, now, self._last_alert_log)

    async def housekeeping(self) -> None:
        """Retention and size-cap check alone (for a daemon that runs no sync)."""
        await self._in_db_thread(self._housekeeping, self.clock())

    # forever ---------------------------------------------------------------------------------

    async def step(self) -> float:
        """One look: send what is due (a batch, else perhaps a heartbeat); seconds to the next."""
        s = self.cfg.sync
        now_mono = self.monotonic()
        if now_mono < self._retry_at:
            return self._retry_at - now_mono
        mode = self.mode()
        p = policy(mode)
        if mode != self._recorded_mode:  # status shows the mode now, not the last run's
            await self._call_state(SyncState.set_mode, mode)
            self._recorded_mode = mode
        look = min(s.interval, self.interval(mode))
        if p.kinds is None:  # blocked, waiting: a run records it (and housekeeps), sends nothing
            return await self._run()
        full = s.max_batch_events * p.batch_factor
        count, seq, observed, urgent = await self._call_state(SyncState.due_now, p.kinds, full)
        if seq is None or self._pending_since is None or self._pending_since[0] != seq:
            self._pending_since = None if seq is None else (seq, now_mono)
        seen_for = now_mono - self._pending_since[1] if self._pending_since else 0.0
        wait = flush_wait(
            Pending(count, seq, observed, urgent),
            now=self.clock(),
            seen_for=seen_for,
            max_delay=max(s.max_delay, self.interval(mode) if mode != "normal" else 0.0),
            full_at=full,
            connection_left=self._connection_left(),
        )
        if wait <= 0:
            return await self._run()
        await self._in_db_thread(
            self._housekeeping, self.clock()
        )  # retention, size cap: every look
        if wait == math.inf:
            success, beat, agent = await self._call_state(SyncState.heartbeat_row)
            contact = max((t for t in (success, beat) if t), default=None)
            due = heartbeat_wait(
                now=self.clock(),
                last_contact=contact,
                announced=agent,
                agent=__version__,
                every=s.heartbeat_minutes * 60.0,
            )
            if due <= 0:
                await self._heartbeat()
                return look
            wait = due
        return min(look, wait)

    def _connection_left(self) -> float:
        """Seconds until the open connection reaches the idle time the path forgets after."""
        if self._path_idle is None or self._http is None or self._last_io is None:
            return math.inf
        return KEEP_WARM * self._path_idle - self._idle()

    async def _run(self) -> float:
        res = await self.sync_once()
        if res.events or res.quarantined:
            log.info(
                "sync: %d events in %d batches, %d B out, %d B in, %d pending",
                res.events,
                res.batches,
                res.bytes_sent,
                res.bytes_received,
                res.pending,
            )
        if res.error is not None and res.busy_pid is None:
            self._retry_at = self.monotonic() + res.delay
            return res.delay
        return min(self.cfg.sync.interval, res.delay)

    async def _heartbeat(self) -> None:
        """Tell the receiver the site is alive (format 2, no events, no Idempotency-Key)."""
        now = self.clock()
        if await self._call_state(SyncState.acquire, self.owner, self.lease_ttl, now) is not None:
            return
        try:
            pending = await self._call_state(SyncState.backlog)
            out = await self._post(None, heartbeat_body(self.site, __version__, int(now), pending))
            if out.kind == "accepted":
                await self._call_state(SyncState.heartbeat, out.delta, self.clock(), __version__)
                log.debug("sync: heartbeat taken (%d events pending)", pending)
            else:
                await self._call_state(SyncState.failed, f"heartbeat: {out.reason}", out.delta)
                self._note_error(f"heartbeat: {out.reason}")
                self._retry_at = self.monotonic() + self._delay_for(out)
        finally:
            await self._call_state(SyncState.release, self.owner)

    async def run_forever(self) -> None:
        """The agent's task: look every ``interval``, send when due (see :mod:`.schedule`)."""
        log.info("sync: to %s as site %r", self.endpoint, self.site)
        try:
            while True:
                await self.sleep(await self.step())
        finally:
            await self.aclose()
