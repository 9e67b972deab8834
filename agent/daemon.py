"""The agent daemon (`pager-edge run`) — link, ingest and the optional tasks, all supervised.

Shutdown order matters for "nothing half-written": stop the link (no new notifications), let the
ingest pipeline drain what is queued, commit, stamp ``stopped_at``, close the store, then shut the
aiocoap context down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiocoap

from agent.clock import SYSTEM_CLOCK, Clock, iso_utc
from agent.config import Config, ConfigError
from agent.controller.client import ControllerClient, client_for, create_context
from agent.controller.link import Link
from agent.health import HEARTBEAT_SECONDS, liveness
from agent.ingest import Heartbeat, Ingestor
from agent.sdnotify import Notifier, watchdog_loop
from agent.staff import StaffRequests
from agent.store import Store
from agent.supervise import supervise

log = logging.getLogger(__name__)


class Agent:
    """Everything `pager-edge run` does, usable in-process by the demo, tests and benchmarks."""

    def __init__(
        self, cfg: Config, *, context: aiocoap.Context | None = None, clock: Clock = SYSTEM_CLOCK
    ):
        self.cfg = cfg
        self.clock = clock
        self._own_context = context is None
        self.context = context
        self.store: Store | None = None
        self.client: ControllerClient | None = None
        self.ingest: Ingestor | None = None
        self.link: Link | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.crashes: dict[str, int] = {}
        self.extra_tasks: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        self.aux_store: Store | None = None
        self.staff_store: Store | None = None

    async def start(self) -> None:
        cfg = self.cfg
        self._add_optional_tasks()  # a configuration mistake stops start-up before anything runs
        if self.context is None:
            self.context = await create_context(cfg.controller.transport)
        c = cfg.controller
        self.client = client_for(cfg, self.context)
        self.store = Store(cfg.store.path, synchronous=cfg.store.synchronous)
        self.ingest = Ingestor(
            self.store,
            self.client,
            zone=cfg.transmitter_zone(),
            max_payload_bytes=c.max_payload_bytes,
            max_batch=cfg.store.commit_max_items,
            clock=self.clock,
        )
        self.link = Link(
            self.client,
            feed=self.ingest.feed,
            control=self.ingest.control,
            ping_interval=c.ping_interval,
            watchdog_intervals=c.watchdog_intervals,
            max_backoff=c.max_backoff,
        )
        self._spawn("ingest", self.ingest.run)
        self._spawn("link", self.link.run)
        self._spawn("heartbeat", self._heartbeat)
        # Staff requests (undo grace, close-out, lost parties) on a connection of their own.
        self.staff_store = Store(cfg.store.path, synchronous=cfg.store.synchronous)
        staff = StaffRequests(cfg, self.staff_store, self.client, self.ingest.control, self.clock)
        self._spawn("staff requests", staff.run)
        for name, factory in self.extra_tasks:
            self._spawn(name, factory)
        log.info("agent started: transmitter %s:%d, store %s", c.host, c.port, Path(cfg.store.path))

    def _add_optional_tasks(self) -> None:
        """Cloud sync and the backhaul monitor, when configured. Mistakes stop start-up here."""
        cfg = self.cfg
        if not (cfg.sync.enabled or cfg.backhaul.enabled):
            return
        from agent.sync.status import link_bytes as store_link_bytes

        # Their own connection: the ingest writer's connection belongs to its thread.
        aux = Store(cfg.store.path, synchronous=cfg.store.synchronous)

        def link_bytes() -> int:
            return store_link_bytes(aux)

        try:
            if cfg.backhaul.enabled:
                from agent.backhaul.monitor import daemon_task

                self.extra_tasks.append(("backhaul", daemon_task(cfg, aux, own_bytes=link_bytes)))
            if cfg.sync.enabled:
                from agent.backhaul.monitor import mode_provider
                from agent.sync.engine import SyncEngine, SyncSetupError

                provider = None
                if cfg.backhaul.enabled:
                    provider = mode_provider(cfg.backhaul, aux.latest_backhaul_reading, link_bytes)
                try:
                    engine = SyncEngine.from_config(cfg, mode_provider=provider)
                except SyncSetupError as exc:
                    raise ConfigError(str(exc), path=cfg.source, key="[sync]") from None
                self.extra_tasks.append(("sync", engine.run_forever))
        except BaseException:
            aux.close()
            raise
        self.aux_store = aux

    def _spawn(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        def crashed(task_name: str, exc: BaseException) -> None:
            self.crashes[task_name] = self.crashes.get(task_name, 0) + 1

        self.tasks.append(
            asyncio.create_task(
                supervise(name, factory, cap=self.cfg.controller.max_backoff, on_crash=crashed),
                name=name,
            )
        )

    async def _heartbeat(self) -> None:
        assert self.ingest is not None
        while True:
            self.ingest.control(Heartbeat())
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def healthy(self) -> bool:
        """For the systemd watchdog: the ingest loop took a heartbeat recently — alive by the
        same rule `status` and the board apply to the store's row."""
        if self.ingest is None:
            return False
        return liveness(self.ingest.health, self.clock.now(), self.cfg.agent.stale_after).running

    async def stop(self) -> None:
        """Stop taking notifications, drain and commit what is queued, close everything."""
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        if self.ingest is not None:
            # Everything aiocoap already ACKed is in the queue: fold it (no more requests to the
            # transmitter at this point) and commit it before saying goodbye.
            self.ingest.drain()
            self.ingest.health = self.ingest.health.but(
                state="stopped", stopped_at=iso_utc(self.clock.now())
            )
            if not await self.ingest.flush():
                log.error(
                    "could not write the last %d event(s) before stopping; the next start's "
                    "resync recovers what the transmitter still knows",
                    len(self.ingest.pending.events),
                )
            self.ingest.close()
        if self.store is not None:
            self.store.close()
        if self.aux_store is not None:
            self.aux_store.close()
        if self.staff_store is not None:
            self.staff_store.close()
        if self._own_context and self.context is not None:
            await self.context.shutdown()
        log.info("agent stopped cleanly")


async def run_until_signalled(agent: Agent, *, on_ready: Callable[[], None] | None = None) -> None:
    """Run the agent until SIGTERM or SIGINT, then stop it cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await agent.start()
    if on_ready is not None:
        on_ready()
    try:
        await stop.wait()
    finally:
        log.info("stopping on signal")
        await agent.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


async def run_service(agent: Agent) -> None:
    """Under systemd (Type=notify): READY=1 once started, watchdog pings while healthy."""
    notifier = Notifier(unset_environment=True)
    watchdog: asyncio.Task[None] | None = None

    def ready() -> None:
        nonlocal watchdog
        notifier.ready(f"observing {agent.cfg.controller.host}:{agent.cfg.controller.port}")
        watchdog = asyncio.create_task(watchdog_loop(notifier, agent.healthy), name="watchdog")

    try:
        await run_until_signalled(agent, on_ready=ready)
    finally:
        notifier.stopping()
        if watchdog is not None:
            watchdog.cancel()
        notifier.close()
