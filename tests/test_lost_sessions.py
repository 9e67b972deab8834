"""Sessions the transmitter forgot end `lost` — on authoritative evidence only, never from one
document — and staff re-add or dismiss them (recorded in the store)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.absence import AbsenceWatch
from agent.clock import VirtualClock
from agent.daemon import Agent
from agent.simulator.server import Simulator
from agent.store import Store
from tests.agent_helpers import ZONE, converges, eventually, exported, health, make_config


def test_absence_needs_a_complete_snapshot_and_a_reset_or_a_second_look():
    watch = AbsenceWatch(confirm_after=10)
    known = ["a", "b", "c"]
    # an incomplete snapshot accuses nobody
    assert watch.observe(known=known, present=set(), complete=False, reset=False, now=0) == []
    assert watch.suspects == {}
    # one complete snapshot without a reset: suspected, not concluded
    assert watch.observe(known=known, present={"a"}, complete=True, reset=False, now=1) == []
    assert set(watch.suspects) == {"b", "c"} and watch.confirmation_due() == 11
    # b came back; c is still absent, but too soon to confirm
    assert watch.observe(known=known, present={"a", "b"}, complete=True, reset=False, now=5) == []
    assert set(watch.suspects) == {"c"}
    # a second complete snapshot, later: c is lost
    assert watch.observe(known=known, present={"a", "b"}, complete=True, reset=False, now=12) == [
        "c"
    ]
    # a sequence reset confirms at once
    watch2 = AbsenceWatch()
    assert watch2.observe(known=["x", "y"], present={"y"}, complete=True, reset=True, now=0) == [
        "x"
    ]


@contextlib.asynccontextmanager
async def _stand(tmp_path, clock) -> AsyncIterator[tuple[Simulator, Path]]:
    """A simulated transmitter and an agent observing it, connected; both stopped after."""
    sim = await Simulator.start(ping_interval=0.3, clock=clock, tz=ZoneInfo(ZONE), seed=5)
    db = tmp_path / "agent.db"
    agent = Agent(make_config(db, sim.port))
    try:
        await agent.start()
        await eventually(lambda: health(db).state == "connected")
        yield sim, db
    finally:
        await agent.stop()
        await sim.stop()


async def _evening_start(sim, clock) -> None:
    for number, label in ((1, "Ana"), (2, "Bo"), (3, "Chen"), (4, "Dee")):
        sim.create(number, label=label, party_size=2, goal=600)
        clock.advance(30)
    sim.page(2)
    clock.advance(60)
    sim.clear(3)  # seated before the reboot: history says so
    clock.advance(30)


async def test_a_reboot_that_forgets_its_sessions_ends_them_lost_and_the_rest_is_exact(tmp_path):
    clock = VirtualClock()
    async with _stand(tmp_path, clock) as (sim, db):
        await _evening_start(sim, clock)
        await eventually(
            lambda: {r["number"]: r["state"] for r in exported(db)}.get(3) == "cleared"
        )
        await sim.restart(forget=True)  # sessions 1, 2 and 4 are gone, history too
        clock.advance(60)
        sim.create(2, label="Eve", party_size=4, goal=900)  # a new party on a reused pager
        clock.advance(40)
        sim.page(2)
        truth = await converges(db, sim, timeout=20)
        states = {(r["number"], r["label"]): r["state"] for r in truth}
        assert states == {
            (1, "Ana"): "lost",
            (2, "Bo"): "lost",
            (3, "Chen"): "cleared",
            (4, "Dee"): "lost",
            (2, "Eve"): "paged",
        }
        store = Store(db, readonly=True)
        try:
            lost = {v.number: v for v in store.lost_views()}
            assert sorted(lost) == [1, 2, 4] and all(v.cleared is None for v in lost.values())
            kinds = [e["kind"] for e in store.iter_events() if e["uuid"] == lost[1].uuid]
            assert kinds == ["created", "lost"]
        finally:
            store.close()


async def test_a_reboot_that_keeps_its_sessions_loses_nothing(tmp_path):
    clock = VirtualClock()
    async with _stand(tmp_path, clock) as (sim, db):
        await _evening_start(sim, clock)
        await eventually(lambda: len(exported(db)) == 4)
        await sim.restart(forget=False)  # only the sequence resets
        await eventually(lambda: (health(db).resyncs or 0) >= 2, timeout=10)
        clock.advance(30)
        sim.page(4)
        truth = await converges(db, sim, timeout=15)
        assert "lost" not in {r["state"] for r in truth}


async def test_a_notification_without_a_session_never_ends_it(tmp_path):
    """Documents may be partial: missing from one notification (or many) means nothing."""
    clock = VirtualClock()
    async with _stand(tmp_path, clock) as (sim, db):
        await _evening_start(sim, clock)
        await eventually(lambda: len(exported(db)) == 4)
        seq = sim.model.sequence
        for i in range(5):
            other = {
                "responseTypes": ["sessions"],
                "globalSessionSequence": seq + 1 + i,
                "sessions": [],  # an empty list of changed sessions: not a snapshot
            }
            sim.inject_raw(json.dumps(other).encode())
        clock.advance(30)
        sim.page(1)
        truth = await converges(db, sim, timeout=15)
        assert "lost" not in {r["state"] for r in truth}
