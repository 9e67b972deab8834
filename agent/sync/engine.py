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
import email.utils
import ipaddress
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx

from agent import __version__
from agent.clock import iso_of_epoch
from agent.config import Config, secret
from agent.logs import redact, register_secret
from agent.store import Store
from agent.supervise import backoff_delays
from agent.sync.state import BatchKind, BatchSpec, Delta, SyncState
from agent.sync.wire import CONTENT_ENCODING, CONTENT_TYPE, BatchEncoder

log = logging.getLogger("agent.sync")

TOKEN_ENV = "PAGER_EDGE_SYNC_TOKEN"
SYSTEMIC_REJECTIONS = 8
PRUNE_EVERY = 3600.0
ALERT_LOG_EVERY = 600.0
MAX_RESPONSE_BYTES = 16 * 1024
# Keep the connection (and its TLS session: 4–6 KB of handshake on the metered link) between runs;
# the receiver's own idle timeout usually decides sooner.
KEEPALIVE_SECONDS = 300.0
_MODE_WARNED: set[str] = set()
T = TypeVar("T")


class SyncSetupError(Exception):
    """Sync cannot start as configured; the message says what to change."""


@dataclass(frozen=True)
class ModePolicy:
    kinds: BatchKind | None  # what goes out; None: nothing (store and forward)
    batch_factor: int  # × max_batch_events and max_batch_bytes
    interval_factor: float  # × interval …
    min_interval: float = 0.0  # … but at least this


# Headers, the batch's fixed JSON and the answer cost ~600 bytes per request whatever it holds. A
# busy dinner service fills ~2 events per 30 s but ~55 per 15 min (`pager-edge bench sync`), so
# the saving modes wait at least 15 minutes: ~110 bytes per lifecycle instead of ~900.
MODES: dict[str, ModePolicy] = {
    "normal": ModePolicy("all", 1, 1.0),
    "conserve": ModePolicy("all", 4, 4.0, 900.0),
    "critical": ModePolicy("lifecycle", 4, 4.0, 900.0),
    "blocked": ModePolicy(None, 1, 1.0),
}


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


@dataclass
class _Outcome:
    kind: str  # accepted | rejected | retry | refused
    status: int | None
    reason: str
    retry_after: float | None = None
    delta: Delta = field(default_factory=Delta)


def check_endpoint(url: str) -> httpx.URL:
    """The endpoint as a URL; https, or plain http to a loopback address only."""
    if not url:
        raise SyncSetupError(
            "no [sync] endpoint configured (an https:// URL of the ingest service)"
        )
    try:
        u = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise SyncSetupError(f"[sync] endpoint is not a valid URL: {exc}") from None
    if u.userinfo:
        raise SyncSetupError(
            f"[sync] endpoint must not carry credentials; the token comes from {TOKEN_ENV}"
        )
    if u.scheme == "https" and u.host:
        return u
    if u.scheme == "http" and u.host:
        if u.host == "localhost":
            return u
        try:
            if ipaddress.ip_address(u.host).is_loopback:
                return u
        except ValueError:
            pass
        raise SyncSetupError(
            f"[sync] endpoint {url!r}: plain http:// is only allowed to a loopback address "
            "(127.0.0.1, ::1, localhost); use https://"
        )
    raise SyncSetupError(f"[sync] endpoint {url!r}: expected an https:// URL")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _request_head_size(request: Any) -> int:
    """Bytes h11 writes for the request line and headers (what crosses the link)."""
    n = len(request.method) + 1 + len(request.url.target) + len(b" HTTP/1.1\r\n") + 2
    return n + sum(len(k) + len(v) + 4 for k, v in request.headers)


def _response_head_size(http_version: bytes, status: int, reason: bytes, headers: Any) -> int:
    n = len(http_version) + 1 + len(str(status)) + 1 + len(reason) + 2 + 2
    return n + sum(len(k) + len(v) + 4 for k, v in headers)


def _excerpt(data: bytes, limit: int = 200) -> str:
    text = data[:limit].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return redact(text)


class SyncEngine:
    """Uploads the event log in batches over one reused HTTP connection.

    `mode_provider` returns the budget mode (normal | conserve | critical | blocked) — the backhaul
    monitor's projection once it exists; by default ``[sync] mode``. `clock` is wall time (lease,
    timestamps); `sleep` is what :meth:`run_forever` and the CLI wait with.
    """

    def __init__(
        self,
        cfg: Config,
        store_path: str | Path | None = None,
        *,
        token: str | None,
        transport: httpx.AsyncBaseTransport | None = None,
        mode_provider: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] = asyncio.sleep,
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
        self._mode_provider = mode_provider or (lambda: self.cfg.sync.mode)
        self.clock = clock
        self.sleep = sleep
        self.lease_ttl = 3 * s.timeout + 60.0
        self.owner = f"{os.getpid()}:{uuid.uuid4().hex[:12]}"
        # Totals since this engine started (the store has the lifetime totals, see sync_status).
        self.bytes_sent = 0
        self.bytes_received = 0
        self.connections = 0
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

    async def _db(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run store work on the engine's own thread (one connection, one thread at a time)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="sync-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kw))

    async def _st(self, method: str, *args: Any, **kw: Any) -> Any:
        """A :class:`SyncState` method on the store thread (which also opens the store)."""
        return await self._db(lambda: getattr(self.state, method)(*args, **kw))

    @property
    def state(self) -> SyncState:
        if self._state is None:
            self._store = Store(self.store_path, synchronous=self.cfg.store.synchronous)
            self._state = SyncState(self._store)
        return self._state

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            s = self.cfg.sync
            client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(s.timeout),
                limits=httpx.Limits(
                    max_connections=1,
                    max_keepalive_connections=1,
                    keepalive_expiry=KEEPALIVE_SECONDS,
                ),
                follow_redirects=False,
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
                await self._db(self._store.close)
            self._executor.shutdown(wait=False)
            self._executor = None
        self._store = self._state = None

    def mode(self) -> str:
        try:
            mode = self._mode_provider()
        except Exception:
            log.exception("sync: budget mode provider failed; using [sync] mode")
            mode = self.cfg.sync.mode
        if mode not in MODES:
            if mode not in _MODE_WARNED:
                _MODE_WARNED.add(mode)
                log.warning("sync: unknown budget mode %r, treated as normal", mode)
            return "normal"
        return mode

    def interval(self, mode: str) -> float:
        p = MODES[mode]
        return max(self.cfg.sync.interval * p.interval_factor, p.min_interval)

    # one run ---------------------------------------------------------------------------------

    async def sync_once(self) -> SyncResult:
        """Send everything due now; never raises for network or receiver trouble."""
        started = self.clock()
        mode = self.mode()
        res = SyncResult(mode=mode, delay=self.interval(mode))
        busy = await self._st("acquire", self.owner, self.lease_ttl, started)
        if busy is not None:
            res.busy_pid = busy
            res.error = f"another sync run (pid {busy}) holds the lease"
            res.pending = await self._st("backlog")
            return res
        try:
            self._streak = await self._st("rejections_since_success")
            await self._db(self._housekeeping, started)
            while True:
                mode = res.mode = self.mode()
                policy = MODES[mode]
                s = self.cfg.sync
                nxt: tuple[BatchSpec, list[dict[str, Any]]] | None = await self._st(
                    "next_batch",
                    policy.kinds,
                    s.max_batch_events * policy.batch_factor,
                    s.max_batch_bytes * policy.batch_factor,
                )
                if nxt is None:
                    break
                stop = await self._deliver(*nxt, res)
                if stop is not None:
                    res.error, res.delay, res.retryable = stop
                    break
        finally:
            res.pending = await self._st("backlog")
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
            await self._st("end_cycle", mode=res.mode, started=started, cycle=cycle)
            await self._st("release", self.owner)
        if res.error is None:
            self._delays = None
            res.delay = self.interval(res.mode)
            if res.pending and MODES[res.mode].kinds is None:
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
            key, body = await self._db(self._encode, evs)
            await self._st("set_inflight", spec, lease_until=self.clock() + self.lease_ttl)
            out = await self._post(key, body)
            d = out.delta
            res.requests += 1
            res.bytes_sent += d.sent
            res.bytes_received += d.received
            now = self.clock()
            if out.kind == "accepted":
                await self._st("accepted", spec, d, now)
                res.events += len(evs)
                res.batches += 1
                self._streak = 0
                self._delays = None
                self._last_error = None
                continue
            if out.kind == "rejected" and self._streak < SYSTEMIC_REJECTIONS:
                if len(evs) > 1:
                    await self._st("failed", out.reason, d)
                    mid = len(evs) // 2
                    cut = evs[mid - 1]["seq"]
                    log.info("sync: batch %s rejected (%s); retrying it in halves", key, out.reason)
                    stack.append((BatchSpec(spec.kind, cut, spec.hi), evs[mid:]))
                    stack.append((BatchSpec(spec.kind, spec.lo, cut), evs[:mid]))
                    continue
                await self._st("quarantine", spec, evs, out.status, out.reason, d, now)
                res.quarantined += len(evs)
                self._streak += 1
                log.warning("sync: quarantined %s: %s; the queue moves on", key, out.reason)
                if self._streak < SYSTEMIC_REJECTIONS:
                    continue
                out = _Outcome(
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
            await self._st("failed", out.reason, d)
            self._note_error(out.reason)
            return out.reason, self._delay_for(out), out.kind == "retry"
        return None

    def _delay_for(self, out: _Outcome) -> float:
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

    def _encode(self, events: list[dict[str, Any]]) -> tuple[str, bytes]:
        enc = BatchEncoder(self.site, __version__)
        for ev in events:
            enc.add(ev)
        return enc.key(), enc.body()

    async def _post(self, key: str, body: bytes) -> _Outcome:
        d = Delta(requests=1)
        head = 0

        async def trace(name: str, info: dict[str, Any]) -> None:
            nonlocal head
            if name == "connection.connect_tcp.complete":
                d.connections += 1
            elif name == "http11.send_request_headers.started":
                head = _request_head_size(info["request"])
            elif name.startswith("http11.send_request_headers.") and not name.endswith("started"):
                d.sent += head
            elif name.startswith("http11.send_request_body.") and not name.endswith("started"):
                d.sent += len(body)
            elif name == "http11.receive_response_headers.complete":
                d.received += _response_head_size(*info["return_value"])

        status: int | None = None
        try:
            async with self._client().stream(
                "POST",
                self.endpoint,
                content=body,
                headers={"Idempotency-Key": key},
                extensions={"trace": trace},
            ) as resp:
                status = resp.status_code
                data = b""
                async for chunk in resp.aiter_raw():
                    data += chunk
                    if len(data) > MAX_RESPONSE_BYTES:
                        break
                d.received += resp.num_bytes_downloaded
        except httpx.TimeoutException:
            return self._count(
                _Outcome("retry", status, f"no answer within {self.cfg.sync.timeout:g} s", None, d)
            )
        except httpx.HTTPError as exc:
            what = _excerpt(str(exc).encode()) or "connection failed"
            return self._count(_Outcome("retry", status, f"{type(exc).__name__}: {what}", None, d))
        return self._count(self._classify(resp, data, d))

    def _count(self, out: _Outcome) -> _Outcome:
        self.bytes_sent += out.delta.sent
        self.bytes_received += out.delta.received
        self.connections += out.delta.connections
        return out

    def _classify(self, resp: httpx.Response, data: bytes, d: Delta) -> _Outcome:
        s = resp.status_code
        said = f"HTTP {s}" + (f": {_excerpt(data)}" if data and s >= 300 else "")
        if 200 <= s < 300 or s == 409:
            return _Outcome("accepted", s, f"HTTP {s}", None, d)
        if s in (408, 425, 429) or s >= 500:
            after = parse_retry_after(resp.headers.get("retry-after"), self.clock())
            return _Outcome("retry", s, said, after, d)
        if s in (401, 403, 407):
            return _Outcome(
                "refused", s, f"{said} — the endpoint refused the token ({TOKEN_ENV})", None, d
            )
        if 300 <= s < 400:
            where = resp.headers.get("location", "?")
            return _Outcome(
                "refused",
                s,
                f"HTTP {s} redirect to {where}: set [sync] endpoint to the final URL",
                None,
                d,
            )
        if s in (404, 405, 410, 411, 415, 426) or s < 200:
            return _Outcome("refused", s, f"{said} — check [sync] endpoint", None, d)
        return _Outcome("rejected", s, said, None, d)

    # housekeeping ----------------------------------------------------------------------------

    def _housekeeping(self, now: float) -> None:
        """Retention (hourly) and the database size cap (every run); on the store thread."""
        st = self.state
        days = self.cfg.sync.retention_days
        row = st.row()
        if days > 0 and (row["last_prune"] is None or now - row["last_prune"] >= PRUNE_EVERY):
            n = st.prune(older_than=iso_of_epoch(now - days * 86400))
            st.set_prune_time(now)
            if n:
                log.info("sync: pruned %d delivered events older than %d days", n, days)
        cap = self.cfg.store.max_db_bytes
        used = st.store.used_bytes()
        if used > cap:
            pruned = 0
            while used > cap:
                n = st.prune(older_than=None, max_rows=5000)
                if not n:
                    break
                pruned += n
                used = st.store.used_bytes()
            if pruned:
                log.warning(
                    "sync: database over its size cap; pruned %d delivered events early", pruned
                )
        alert = None
        if used > cap:
            backlog = st.backlog()
            alert = (
                f"database holds {used / 1e6:.1f} MB, over the {cap / 1e6:.1f} MB cap "
                f"([store] max_db_bytes) with {backlog} events not yet synced; they are kept, "
                "nothing unsynced is dropped: restore the sync link or raise the cap"
            )
            if now - self._last_alert_log >= ALERT_LOG_EVERY:
                log.error("sync: %s", alert)
                self._last_alert_log = now
        if alert != row["alert"]:
            st.set_alert(alert)

    async def housekeeping(self) -> None:
        """Retention and size-cap check alone (for a daemon that runs no sync)."""
        await self._db(self._housekeeping, self.clock())

    # forever ---------------------------------------------------------------------------------

    async def run_forever(self) -> None:
        """The agent's task: a run, a pause (interval, or backoff after a failure), again."""
        log.info("sync: to %s as site %r", self.endpoint, self.site)
        try:
            while True:
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
                await self.sleep(res.delay)
        finally:
            await self.aclose()
