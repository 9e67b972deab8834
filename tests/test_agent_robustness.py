"""Regressions from the core review: poison values, impossible times, history lag, shutdown with
work queued, resync storms, sequence wrap with duplicates and reordering."""

from __future__ import annotations

import asyncio
import json

import pytest

from agent.config import with_overrides
from agent.daemon import Agent
from agent.ingest import Resync
from agent.simulator.flow import play, scripted_scenario
from tests.agent_helpers import converges, eventually, exported, health, make_config
from tests.test_agent import PING, _assert_events_consistent, _sim


async def _started(tmp_path, **sim_kw):
    db = tmp_path / "agent.db"
    sim, clock = await _sim(**sim_kw)
    agent = Agent(make_config(db, sim.port, ping_interval=PING))
    await agent.start()
    await eventually(lambda: health(db).state == "connected")
    return db, sim, clock, agent


@pytest.mark.parametrize(
    "poison",
    [
        b'{"responseTypes":["sessions"],"sessions":[{"uuid":"bad-1","number":7,"partySize":1e20}]}',
        b'{"responseTypes":["sessions"],"sessions":[{"uuid":"bad-2","number":7,"id":99999999999999999999}]}',
        b'{"responseTypes":["ping"],"timestamp":"9999-12-31T23:59:59"}',
        b'{"responseTypes":["sessions"],"sessions":[{"uuid":"bad-3","number":7,"notified":"0001-01-01T00:00:00"}]}',
    ],
)
async def test_poison_values_are_malformed_not_fatal(tmp_path, poison):
    db, sim, clock, agent = await _started(tmp_path, seed=1)
    try:
        sim.inject_raw(poison)
        await eventually(lambda: agent.ingest.counters.malformed >= 1)
        clock.advance(10)
        sim.create(42, label="after", party_size=4)
        await converges(db, sim, timeout=5)
        assert agent.ingest.counters.write_errors == 0
        assert not agent.crashes, agent.crashes
        assert "bad" not in json.dumps(exported(db))
    finally:
        await agent.stop()
        await sim.stop()


async def test_an_end_missing_from_history_is_asked_again_until_it_appears(tmp_path):
    db, sim, clock, agent = await _started(tmp_path, seed=5)
    try:
        clock.advance(10)
        sim.create(5, label="x", party_size=2)
        await eventually(lambda: len(exported(db)) == 1)
        real = sim.model.history_document
        hidden = {"n": 2}

        def lagging():  # the device writes history a moment after the notification
            doc = real()
            if hidden["n"] > 0:
                hidden["n"] -= 1
                doc = dict(doc, session_history=[])
            return doc

        sim.model.history_document = lagging
        clock.advance(60)
        sim.clear(5)
        await converges(db, sim, timeout=8)
        assert hidden["n"] == 0
        assert exported(db)[0]["state"] == "cleared"
    finally:
        await agent.stop()
        await sim.stop()


async def test_stop_commits_what_was_acknowledged_even_during_a_stuck_request(tmp_path):
    db = tmp_path / "agent.db"
    sim, _clock = await _sim(seed=3)
    cfg = with_overrides(
        make_config(db, sim.port, ping_interval=PING), controller={"request_timeout": 8.0}
    )
    agent = Agent(cfg)
    try:
        await agent.start()
        await eventually(lambda: health(db).state == "connected")
        sim.silence()
        agent.ingest.control(Resync("test"))
        await asyncio.sleep(0.2)  # the ingest task now waits on GET /v1/sessions
        doc = {
            "responseTypes": ["sessions"],
            "sessions": [
                {
                    "uuid": "late-1",
                    "number": 9,
                    "created": "2026-03-07T18:00:00",
                    "state": "started",
                }
            ],
        }
        agent.ingest.feed(json.dumps(doc).encode())  # a notification aiocoap already ACKed
    finally:
        await agent.stop()
        await sim.stop()
    assert "late-1" in [r["uuid"] for r in exported(db)]


async def test_notifications_overtaken_by_a_resync_are_not_gaps(tmp_path):
    db, sim, clock, agent = await _started(tmp_path, seed=7)
    try:
        await asyncio.sleep(0.3)
        before = agent.ingest.counters.resyncs
        acts = scripted_scenario(seed=7)
        forced = 0
        for i in range(0, len(acts), 20):
            agent.ingest.control(Resync("forced"))
            forced += 1
            await play(sim, acts[i : i + 20], clock, delay=0.001)
        await converges(db, sim)
        # No drops: every resync beyond the forced ones would be a false alarm feeding a storm.
        assert agent.ingest.counters.gaps == 0
        assert agent.ingest.counters.resyncs - before <= forced
    finally:
        await agent.stop()
        await sim.stop()


@pytest.mark.parametrize("seed", [2, 4])
async def test_sequence_wrap_with_duplicates_reordering_and_drops(tmp_path, seed):
    db, sim, clock, agent = await _started(
        tmp_path,
        seed=seed,
        start_sequence=65450,
        duplicate_rate=0.1,
        reorder_rate=0.1,
        drop_rate=0.05,
    )
    try:
        await play(sim, scripted_scenario(seed=seed), clock, delay=0.002)
        assert sim.model.sequence < 65450  # it wrapped
        expected = await converges(db, sim)
        _assert_events_consistent(db, expected)
    finally:
        await agent.stop()
        await sim.stop()


async def test_a_value_sqlite_refuses_is_set_aside_and_the_rest_is_written(tmp_path):
    from agent.ingest import Ingestor
    from agent.session import Event, SessionView
    from agent.store import Store

    store = Store(tmp_path / "agent.db")
    ingest = Ingestor(store, None, zone=None)
    try:
        good = SessionView(uuid="good", number=1, created="2026-01-01T18:00:00Z")
        bad = SessionView(uuid="bad", number=10**20, created="2026-01-01T18:00:00Z")
        for view in (good, bad):
            ev = Event("created", view.uuid, view.number, "2026-01-01T18:00:00Z")
            ingest.pending.events.append((ev, "2026-01-01T18:00:01Z", "notify"))
            ingest.pending.views[view.uuid] = view
        assert await ingest.flush()
        assert ingest.counters.write_errors == 0 and ingest.counters.malformed == 1
        assert [v.uuid for v in store.iter_views()] == ["good"]
        assert [e["uuid"] for e in store.iter_events()] == ["good"]
    finally:
        ingest.close()
        store.close()
