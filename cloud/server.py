"""`pager-edge cloud serve`: the receiving side of the sync, an aiohttp app over an asyncpg pool.

Stateless: nothing a request decides depends on this process's memory, so any number of replicas
run behind any load balancer against one PostgreSQL (see :mod:`cloud.ingest` for how exactly-once
comes from the database). A replica starts listening at once; until it has connected and migrated
the schema, ingest answers 503 (the agent retries) and ``/healthz`` 503 (the balancer waits).

One ``POST`` to the ingest route, in the order the checks run (the contract is
``agent/sync/README.md``):

======  ==============================================================================
401     no bearer token, or one that is unknown, expired (rotated) or revoked
415     not ``Content-Encoding: gzip`` with ``Content-Type: application/json``
413     ``Content-Length`` over ``max_body_bytes`` (refused before reading), a body that
        grows past it, or one that decompresses past ``max_decoded_bytes`` (gzip bombs)
400     not gzip, not a batch (``agent.sync.wire.decode_body`` says why), a key that does
        not name the batch's first and last event, values PostgreSQL would refuse
403     a batch for another site than the token's
409     the ``Idempotency-Key`` was taken before
204     stored and committed (new and duplicate events: the access log); a heartbeat recorded
503     the database is unavailable or slow (``Retry-After``)
======  ==============================================================================
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from agent.config import CloudConfig
from agent.display import printable
from agent.sdnotify import Notifier, watchdog_loop
from agent.supervise import backoff_delays, supervise
from agent.sync.wire import WireError, decode_body, idempotency_key
from cloud.body import BadBody, BodyTooLarge, gunzip_bounded
from cloud.ingest import problem, record_heartbeat, store_batch
from cloud.schema import migrate
from cloud.sites import apply_retention, site_for_token
from cloud.tokens import bearer

log = logging.getLogger("cloud.server")
access = logging.getLogger("cloud.access")

INGEST_ROUTE = "/v1/batches"  # agent/sync/README.md
RETRY_AFTER = "2"
RETENTION_EVERY = 3600.0
_CHUNK = 64 * 1024

# Connection trouble, overload, a conflict PostgreSQL asks to retry: the agent should try again.
_TRY_LATER = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.QueryCanceledError,
    asyncpg.AdminShutdownError,
)


class Refused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _reply(status: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


async def read_bounded(request: web.Request, limit: int) -> bytes:
    """The request body, refused as soon as it grows past `limit` (chunked bodies too)."""
    buf = bytearray()
    async for chunk in request.content.iter_chunked(_CHUNK):
        buf += chunk
        if len(buf) > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
    return bytes(buf)


class Service:
    """The pool, the readiness flag and the handlers of one replica."""

    def __init__(self, cfg: CloudConfig, dsn: str):
        self.cfg = cfg
        self._dsn = dsn
        self.pool: asyncpg.Pool | None = None
        self.ready = False
        self.slots = asyncio.Semaphore(cfg.max_concurrent_batches)
        self._tasks: list[asyncio.Task[None]] = []

    # database ----------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Pool + migrations, retried with backoff until the database answers."""
        delays = backoff_delays(initial=0.5, cap=30.0)
        while self.pool is None:
            try:
                pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=self.cfg.pool_size,
                    command_timeout=self.cfg.db_timeout,
                    timeout=self.cfg.db_timeout,
                    # 2xx means durably committed, whatever the database's own default says.
                    server_settings={
                        "application_name": "pager-edge-cloud",
                        "synchronous_commit": "on",
                    },
                )
                try:
                    async with pool.acquire() as conn:
                        applied = await migrate(conn)
                except BaseException:
                    await pool.close()
                    raise
            except (*_TRY_LATER, asyncpg.PostgresError) as exc:
                delay = next(delays)
                log.warning("database not ready (%s); again in %.1f s", _what(exc), delay)
                await asyncio.sleep(delay)
                continue
            if applied:
                log.info("schema migrated to version %d", applied[-1])
            self.pool = pool
        self.ready = True

    async def retention(self) -> None:
        """Label retention, hourly (one replica at a time does the work: see apply_retention)."""
        while True:
            if self.pool is not None:
                try:
                    async with self.pool.acquire(timeout=self.cfg.db_timeout) as conn:
                        n = await apply_retention(conn, self.cfg.label_retention_days)
                    if n:
                        log.info("label retention: erased labels from %d events", n)
                except _TRY_LATER as exc:
                    log.warning("label retention: database unavailable (%s)", _what(exc))
            await asyncio.sleep(RETENTION_EVERY)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.connect(), name="connect"))
        self._tasks.append(
            loop.create_task(supervise("retention", self.retention, cap=300.0), name="retention")
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    # handlers ----------------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        """200 only when this replica is migrated and the database answers now."""
        if self.pool is None or not self.ready:
            return _reply(503, {"status": "starting"})
        try:
            async with asyncio.timeout(2.0):
                await self.pool.fetchval("SELECT 1")
        except (*_TRY_LATER, asyncpg.PostgresError) as exc:
            return _reply(503, {"status": "database unavailable", "error": _what(exc)})
        return _reply(200, {"status": "ok"})

    async def ingest(self, request: web.Request) -> web.Response:
        info: dict[str, Any] = {}
        request["access"] = info
        try:
            async with asyncio.timeout(self.cfg.request_timeout):
                return await self._ingest(request, info)
        except Refused as exc:
            info["error"] = exc.reason
            headers = {"Retry-After": RETRY_AFTER} if exc.status == 503 else None
            return _reply(exc.status, {"error": exc.reason}, headers)
        except _TRY_LATER as exc:
            info["error"] = _what(exc)
            log.warning("ingest %s: try later: %s", info.get("key", "?"), _what(exc))
            return _reply(503, {"error": "try later"}, {"Retry-After": RETRY_AFTER})
        except asyncpg.DataError as exc:  # a value PostgreSQL refuses: this batch, not the service
            info["error"] = _what(exc)
            return _reply(400, {"error": f"refused by the database: {_what(exc)}"})
        except Exception as exc:
            info["error"] = type(exc).__name__
            log.exception("ingest %s failed", info.get("key", "?"))
            return _reply(500, {"error": "internal error"})

    async def _ingest(self, request: web.Request, info: dict[str, Any]) -> web.Response:
        cfg = self.cfg
        pool = self.pool
        if pool is None or not self.ready:
            raise Refused(503, "starting: database not ready")
        token = bearer(request.headers.get("Authorization"))
        if token is None:
            raise Refused(401, "expected Authorization: Bearer <token>")
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json" or request.headers.get("Content-Encoding") != "gzip":
            raise Refused(415, "expected Content-Type: application/json, Content-Encoding: gzip")
        length = request.content_length
        if length is not None and length > cfg.max_body_bytes:
            raise Refused(413, f"body over {cfg.max_body_bytes} bytes")
        site = await site_for_token(pool, token, timeout=cfg.db_timeout)
        if site is None:
            raise Refused(401, "unknown, expired or revoked token")
        info["site"] = site
        key = request.headers.get("Idempotency-Key", "")
        info["key"] = printable(key[:200])
        async with self.slots:  # bounds the bodies and batches held in memory at once
            try:
                body = await read_bounded(request, cfg.max_body_bytes)
                batch = decode_body(gunzip_bounded(body, cfg.max_decoded_bytes), gzipped=False)
            except BodyTooLarge as exc:
                raise Refused(413, str(exc)) from None
            except (BadBody, WireError) as exc:
                raise Refused(400, str(exc)) from None
            if batch.get("site") != site:
                raise Refused(403, "this token writes only its own site's events")
            if batch["heartbeat"] is not None:
                async with pool.acquire(timeout=cfg.db_timeout) as conn:
                    await record_heartbeat(conn, site, batch, timeout=cfg.db_timeout)
                info["heartbeat"] = True
                return web.Response(status=204)
            if not batch["events"]:  # a v1 batch without events: nothing to store
                return web.Response(status=204)
            why = problem(batch)
            if why:
                raise Refused(400, why)
            expected = idempotency_key(site, batch["first"], batch["last"])
            if key != expected:
                raise Refused(400, f"Idempotency-Key {info['key']!r}, expected {expected!r}")
            async with pool.acquire(timeout=cfg.db_timeout) as conn:
                stored = await store_batch(
                    conn,
                    site,
                    key,
                    hashlib.sha256(body).digest(),
                    batch,
                    timeout=cfg.db_timeout,
                )
        info["new"], info["duplicates"] = stored.new, stored.duplicates
        if stored.duplicate_key:
            return _reply(409, {"duplicate": key})
        return web.Response(status=204)  # the smallest answer: the agent reads nothing from it


def _what(exc: BaseException) -> str:
    """One line about an error, for logs and answers (never the DSN: asyncpg does not echo it)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return printable(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:300]


class JsonAccessLog(AbstractAccessLogger):
    """One JSON line per request: no headers at all, so never a token."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        doc: dict[str, Any] = {
            "method": request.method,
            "path": printable(request.path[:200]),
            "status": response.status,
            "ms": round(time * 1000, 1),
            "in": request.content_length,
            "out": response.body_length,
            "peer": request.remote,
        }
        doc.update(request.get("access") or {})
        self.logger.info(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))


async def _no_server_header(request: web.Request, response: web.StreamResponse) -> None:
    # Every byte of an answer crosses the site's metered link: no product banner.
    response.headers.popall("Server", None)


def make_app(service: Service, cfg: CloudConfig) -> web.Application:
    app = web.Application(client_max_size=cfg.max_body_bytes)
    app.router.add_post(INGEST_ROUTE, service.ingest)
    app.router.add_get("/healthz", service.healthz)
    app.on_response_prepare.append(_no_server_header)
    return app


async def serve(
    cfg: CloudConfig,
    dsn: str,
    *,
    on_listening: Callable[[list[str]], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or `stop`); requests in flight finish within shutdown_timeout.

    Under systemd (``Type=notify``) it sends READY=1 once listening and WATCHDOG=1 while the
    event loop runs; readiness for traffic is ``/healthz``, which waits for the database.
    """
    stop = stop or asyncio.Event()
    notifier = Notifier(unset_environment=True)
    watchdog: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = Service(cfg, dsn)
    runner = web.AppRunner(
        make_app(service, cfg),
        access_log_class=JsonAccessLog,
        access_log=access,
        shutdown_timeout=cfg.shutdown_timeout,
        # The body is gunzipped here, under max_decoded_bytes; aiohttp's own inflating would
        # decompress a gzip bomb without a limit.
        auto_decompress=False,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True)
        await site.start()
        urls = [f"http://{_hostport(a)}{INGEST_ROUTE}" for a in runner.addresses]
        log.info("listening on %s", ", ".join(urls))
        if on_listening is not None:
            on_listening(urls)
        await service.start()
        notifier.ready(f"listening on {' '.join(urls)}")
        watchdog = loop.create_task(watchdog_loop(notifier, lambda: True), name="watchdog")
        await stop.wait()
        log.info("stopping: finishing requests in flight")
        notifier.stopping()
    finally:
        if watchdog is not None:
            watchdog.cancel()
        started = time.monotonic()
        await runner.cleanup()
        await service.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("stopped in %.1f s", time.monotonic() - started)


def _hostport(address: Any) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
