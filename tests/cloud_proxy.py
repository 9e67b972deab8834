"""A small HTTP load balancer for the cloud tests: round-robin over replicas, with bad days.

Runs in its own thread and event loop. Per request (seeded RNG, at `fault_rate`): answer 500
without forwarding, drop the client connection before forwarding, or forward and drop it after the
replica answered (the batch is stored, the agent never hears so). A replica that is down or dies
mid-request gives 502, as a real balancer would. `park_on=(n, "after")` holds the n-th request
after the replica answered until `release` is set — the moment a test SIGKILLs the uploader.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

from cloud.pgtemp import free_port

FAULTS = ("500", "drop_before", "drop_after")
FORWARDED = ("Authorization", "Content-Type", "Content-Encoding", "Idempotency-Key")


class Proxy:
    def __init__(self, backends: list[str], *, seed: int = 0, fault_rate: float = 0.0):
        self.backends = backends  # base URLs, http://127.0.0.1:port
        self.rnd = random.Random(seed)
        self.fault_rate = fault_rate
        self.port = free_port()
        self.lock = threading.Lock()
        self.requests = 0
        self.faults: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()  # what the replicas answered
        self.by_backend: Counter[int] = Counter()
        self.inflight: dict[int, int] = {}  # backend index → requests forwarded, not answered
        self.park_on: tuple[int, str] | None = None
        self.parked = threading.Event()
        self.release = threading.Event()
        self._next = 0
        self._bag: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="proxy")
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/batches"

    def start(self) -> Proxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30), auto_decompress=False
        )
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        self.release.set()

        async def _stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            if self._session is not None:
                await self._session.close()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _plan(self) -> tuple[int, int, str | None]:
        with self.lock:
            self.requests += 1
            n = self.requests
            backend = self._next % len(self.backends)
            self._next += 1
            fault = None
            if self.rnd.random() < self.fault_rate:
                if not self._bag:  # every fault once per round, in random order
                    self._bag = list(FAULTS)
                    self.rnd.shuffle(self._bag)
                fault = self._bag.pop()
                self.faults[fault] += 1
            return n, backend, fault

    @staticmethod
    def _drop(request: web.Request) -> web.Response:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=599)  # never reaches anyone

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        n, backend, fault = self._plan()
        if fault == "500":
            return web.Response(status=500, text="injected")
        if fault == "drop_before":
            return self._drop(request)
        headers = {k: request.headers[k] for k in FORWARDED if k in request.headers}
        url = self.backends[backend] + request.path_qs
        with self.lock:
            self.inflight[backend] = self.inflight.get(backend, 0) + 1
            self.by_backend[backend] += 1
        try:
            assert self._session is not None
            async with self._session.request(
                request.method, url, data=body, headers=headers
            ) as resp:
                data = await resp.read()
                status = resp.status
                answer: dict[str, Any] = {
                    k: resp.headers[k] for k in ("Content-Type", "Retry-After") if k in resp.headers
                }
        except (aiohttp.ClientError, TimeoutError) as exc:
            return web.Response(status=502, text=f"bad gateway: {type(exc).__name__}")
        finally:
            with self.lock:
                self.inflight[backend] -= 1
        with self.lock:
            self.statuses[status] += 1
        if self.park_on is not None and self.park_on == (n, "after"):
            self.parked.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
            return self._drop(request)
        if fault == "drop_after":
            return self._drop(request)
        return web.Response(status=status, body=data, headers=answer)

    def busy_backend(self) -> int | None:
        """The replica that holds a forwarded request now (one at a time from one agent)."""
        with self.lock:
            busy = [b for b, k in self.inflight.items() if k > 0]
        return busy[0] if len(busy) == 1 else None
