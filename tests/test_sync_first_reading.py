"""The first-reading rule: with ``[backhaul] enabled`` the sync sends no event until a backhaul
reading has decided its budget mode, and goes on in conserve when none comes in time.

Real parts: the engine's own ``step()`` loop on a virtual clock, a receiver on loopback, a store
file, the backhaul poller asking a fake Control Center over HTTP (its readings stored as the
daemon stores them), the mode provider wired as the daemon wires it, and ``pager-edge status``'s
own document and text.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.backhaul.monitor import make_poller, mode_provider
from agent.clock import VirtualClock
from agent.config import Config, with_overrides
from agent.status import collect_status, format_status
from agent.store import Store
from agent.sync.engine import SyncEngine
from agent.sync.status import link_bytes
from agent.sync.wire import LIFECYCLE_KINDS
from bench.sync import evening
from tests import backhaul_fakes as f
from tests.sync_receiver import TOKEN, FaultyServer, write_events

SITE = "site-first"
CC_ROOT = f"/rws/api/v1/devices/{f.CC_ICCID}"
CAP = 5_000_000_000
# After the evening of `evening()` (2026-11-18): its events are long due. The cycle began on
# 1 November, 19.5 days ago, with 10.5 days to go: the projection is ~1.54 × what is used.
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LOOK = 30.0  # [sync] interval


@pytest.fixture
def operator(monkeypatch):
    monkeypatch.setenv("PAGER_EDGE_CC_API_KEY", "cc-key-first-reading")
    server = f.FakeOperator().start()
    yield server
    server.stop()


@pytest.fixture
def receiver():
    server = FaultyServer().start()
    yield server
    server.stop()


def serve_usage(operator: f.FakeOperator, used_bytes: int) -> None:
    usage = f.SEED_CTD_USAGES.replace('"ctdDataUsage": 0', f'"ctdDataUsage": {used_bytes}')
    operator.on("GET", f"{CC_ROOT}/sessionInfo", f.answer(f.SEED_SESSION_INFO))
    operator.on("GET", f"{CC_ROOT}/ctdUsages", f.answer(usage))
    operator.on("GET", f"{CC_ROOT}/usageInZone", f.answer(f.SEED_USAGE_IN_ZONE))


class Site:
    """A fresh install: its store with an evening's events, the engine and the poller."""

    def __init__(self, db: Path, receiver: FaultyServer, operator: f.FakeOperator) -> None:
        self.clock = VirtualClock(START)
        self.cfg = with_overrides(
            Config(),
            site={"id": SITE},
            store={"path": str(db)},
            sync={"enabled": True, "endpoint": receiver.url, "interval": LOOK, "timeout": 5.0},
            backhaul={
                "enabled": True,
                "base_url": f"{operator.url}/rws/api/v1/",
                "iccid": f.CC_ICCID,
                "username": "site-api-user",
                "cap_bytes": CAP,
            },
        )
        self.store = Store(db, synchronous="NORMAL")
        write_events(self.store, evening(19, realistic=True))
        self.events = list(self.store.iter_events())

        def own_bytes() -> int:
            return link_bytes(self.store)

        clock = self.clock
        self.engine = SyncEngine(
            self.cfg,
            token=TOKEN,
            # as agent/daemon.py wires it
            mode_provider=mode_provider(
                self.cfg.backhaul, self.store.latest_backhaul_reading, own_bytes, clock=clock.now
            ),
            clock=lambda: clock.now().timestamp(),
            monotonic=clock.monotonic,
            sleep=clock.sleep,
        )
        self.poller = make_poller(self.cfg, own_bytes=own_bytes, clock=clock)

    async def look(self, times: int = 1) -> None:
        """The engine's loop: a look, then the pause it asks for."""
        for _ in range(times):
            self.clock.advance(await self.engine.step())

    async def reading(self) -> None:
        """One poll of the operator API, stored as the daemon's backhaul task stores it."""
        reading = await self.poller.poll_once()
        self.store.add_backhaul_reading(reading.to_row())

    def status(self) -> tuple[dict, str]:
        reader = Store(self.store.path, readonly=True)
        try:
            doc = collect_status(reader, config=self.cfg)
        finally:
            reader.close()
        (line,) = [ln for ln in format_status(doc).splitlines() if ln.startswith("sync:")]
        return doc["sync"], line

    async def close(self) -> None:
        await self.engine.aclose()
        await self.poller.client.aclose()
        self.store.close()


@pytest.mark.parametrize(
    ("used", "mode"),
    [
        (6_000_000_000, "blocked"),  # over the cap: nothing may go
        (3_500_000_000, "critical"),  # projected over 95 % of it: lifecycle steps only
    ],
)
async def test_a_fresh_install_over_its_cap_sends_nothing_before_the_first_reading(
    tmp_path, receiver, operator, used, mode
):
    site = Site(tmp_path / "pe.db", receiver, operator)
    try:
        await site.look(5)  # 2.5 minutes: the poller has not answered yet (a slow operator API)
        assert receiver.log.count() == 0 and receiver.log.requests == 0
        sync, line = site.status()
        assert sync["mode"] == "waiting" and sync["backlog"] == len(site.events)
        why = "waiting for the first backhaul reading to decide the budget mode"
        assert sync["mode_reason"].startswith(why) and "conserve if none within 10 min" in line
        assert why in line

        serve_usage(operator, used)
        await site.reading()
        await site.look(3)
        sync, line = site.status()
    finally:
        await site.close()
    assert sync["mode"] == mode and sync["mode_reason"] is None and "waiting" not in line
    got = [ev["kind"] for ev in receiver.log.events.values()]
    if mode == "blocked":
        assert got == [] and receiver.log.requests == 0
    else:
        lifecycle = [ev for ev in site.events if ev["kind"] in LIFECYCLE_KINDS]
        assert len(got) == len(lifecycle) < len(site.events)  # the `updated` ones wait
        assert set(got) <= set(LIFECYCLE_KINDS)


async def test_no_first_reading_goes_on_in_conserve_after_the_timeout(
    tmp_path, receiver, operator, caplog
):
    operator.on(
        "GET", f"{CC_ROOT}/sessionInfo", f.answer(f.cc_error_body("10000001", "Bad"), 401)
    )  # credentials refused: the poller stops, no reading will ever come
    caplog.set_level(logging.INFO, logger="agent.sync")
    site = Site(tmp_path / "pe.db", receiver, operator)
    try:
        await site.reading()
        assert site.store.latest_backhaul_reading()["error"]  # stored, and decides nothing
        await site.look(19)  # 9.5 minutes after the engine's first look
        assert site.clock.monotonic() == 19 * LOOK and receiver.log.requests == 0
        assert site.status()[0]["mode"] == "waiting"

        await site.look(3)  # 10 minutes passed: conserve
        sync, line = site.status()
        assert sync["mode"] == "conserve" and receiver.log.count() == len(site.events)
        fallback = "no backhaul reading within 10 min of the start: conserve until one decides"
        assert sync["mode_reason"].startswith(fallback) and fallback in line
        await site.look(10)
        said = [r for r in caplog.records if fallback in r.getMessage()]
        assert len(said) == 1 and said[0].levelno == logging.WARNING  # once

        serve_usage(operator, 100_000_000)  # the credentials fixed: the budget decides again
        await site.reading()
        await site.look()
        sync, line = site.status()
    finally:
        await site.close()
    assert sync["mode"] == "normal" and sync["mode_reason"] is None and "conserve" not in line
    assert any("decided the budget mode: normal" in r.getMessage() for r in caplog.records)


async def test_a_reading_from_before_the_start_counts_as_the_first(tmp_path, receiver, operator):
    serve_usage(operator, 100_000_000)
    site = Site(tmp_path / "pe.db", receiver, operator)
    try:
        await site.reading()  # stored by the previous run of the agent
        await site.look()
        sync, _ = site.status()
    finally:
        await site.close()
    assert receiver.log.count() == len(site.events) and sync["mode"] == "normal"
