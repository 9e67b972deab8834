"""`pager-edge backup` while the agent writes, and `pager-edge report` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from zoneinfo import ZoneInfo

from agent.clock import VirtualClock
from agent.daemon import Agent
from agent.simulator.flow import play, scripted_scenario
from agent.simulator.server import Simulator
from agent.store import Store
from tests.agent_helpers import ZONE, converges, eventually, exported, health, make_config


def _pager_edge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pager_edge", *args], capture_output=True, text=True, timeout=60
    )


async def test_a_backup_taken_while_the_agent_writes_is_a_consistent_database(tmp_path):
    import asyncio

    clock = VirtualClock()
    sim = await Simulator.start(ping_interval=0.3, clock=clock, tz=ZoneInfo(ZONE), seed=4)
    db = tmp_path / "agent.db"
    copies = tmp_path / "copies"
    copies.mkdir()
    agent = Agent(make_config(db, sim.port))
    try:
        await agent.start()
        await eventually(lambda: health(db).state == "connected")
        actions = scripted_scenario(seed=4, sessions=30)
        half = len(actions) // 2
        await play(sim, actions[:half], clock, delay=0.002)
        # The agent keeps writing while the copy is taken (the rest of the evening plays on).
        rest = asyncio.create_task(play(sim, actions[half:], clock, delay=0.002))
        mid = await asyncio.to_thread(
            _pager_edge, "backup", str(copies / "mid.db"), "--db", str(db)
        )
        await rest
        truth = await converges(db, sim)
        end = await asyncio.to_thread(_pager_edge, "backup", str(copies), "--db", str(db))
    finally:
        await agent.stop()
        await sim.stop()
    assert mid.returncode == 0 and end.returncode == 0, mid.stderr + end.stderr
    check = Store(copies / "mid.db", readonly=True)
    try:
        assert check.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = [e["seq"] for e in check.iter_events()]
        assert ids == list(range(1, len(ids) + 1)) and ids  # a whole prefix of the log
        sessions = {v.uuid for v in check.iter_views()}
        assert {e["uuid"] for e in check.iter_events()} <= sessions  # every event has its row
    finally:
        check.close()
    (final,) = [c for c in copies.iterdir() if c.name.startswith("agent-")]
    assert exported(final) == exported(db) == truth  # restored, it is the record


def test_report_from_the_command_line(tmp_path):
    from tests.board_fixtures import make_store

    db = make_store(tmp_path / "agent.db")
    conf = tmp_path / "config.toml"
    conf.write_text(f'[store]\npath = "{db}"\n[controller]\ntimezone = "Europe/Paris"\n')
    r = _pager_edge("report", "--date", "2026-03-13", "--format", "json", "--config", str(conf))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["parties"], doc["seated"], doc["walk_aways"]) == (12, 3, 1)
    text = _pager_edge("report", "--date", "2026-03-13", "--config", str(conf)).stdout
    assert "Parties 12 · seated 3 · walked away 1 · lost 0 · still open 8" in text
    csv_text = _pager_edge(
        "report", "--date", "2026-03-13", "--format", "csv", "--config", str(conf)
    )
    assert csv_text.stdout.splitlines()[1].startswith("day,2026-03-13,12,3,1,0,8,")
