"""Daylight saving: the transmitter's zone-less wall times across both changes, resolved right.

America/Chicago, 2026: on 8 March 02:00–03:00 CST never happens (08:00 UTC); on 1 November
01:00–02:00 happens twice, CDT then CST (the change is at 07:00 UTC). The simulator and the agent
share one virtual clock moved across each change; the agent's export must equal the simulator's
ground truth (which keeps the true instants).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agent.clock import VirtualClock, resolve_wall, wall_instants
from agent.config import with_overrides
from agent.controller.protocol import parse_document
from agent.daemon import Agent
from agent.lifecycle import fold
from agent.simulator.flow import play, scripted_scenario
from agent.simulator.server import Simulator
from agent.skew import measured_skew
from tests.agent_helpers import converges, eventually, health, make_config

CHICAGO = ZoneInfo("America/Chicago")
AUTUMN_CHANGE = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)
SPRING_CHANGE = datetime(2026, 3, 8, 8, 0, tzinfo=UTC)


def test_wall_instants_of_the_repeated_hour_and_the_gap():
    assert wall_instants(datetime(2026, 11, 1, 1, 30), CHICAGO) == (
        "2026-11-01T06:30:00Z",
        "2026-11-01T07:30:00Z",
    )
    assert wall_instants(datetime(2026, 11, 1, 2, 30), CHICAGO) == ("2026-11-01T08:30:00Z",)
    # 02:30 on 8 March never shows on a Chicago clock: read with the offset before the change.
    assert wall_instants(datetime(2026, 3, 8, 2, 30), CHICAGO) == ("2026-03-08T08:30:00Z",)


def test_resolution_uses_the_observation_and_the_order_of_a_sessions_times():
    wall = datetime(2026, 11, 1, 1, 30)
    assert resolve_wall(wall, CHICAGO, not_after="2026-11-01T07:10:00Z") == "2026-11-01T06:30:00Z"
    assert resolve_wall(wall, CHICAGO, not_after="2026-11-01T07:40:00Z") == "2026-11-01T07:30:00Z"
    # A re-page after a page at 07:00Z cannot be the first pass, whatever the observation says.
    later = resolve_wall(
        wall, CHICAGO, not_after="2026-11-01T07:10:00Z", not_before="2026-11-01T07:00:00Z"
    )
    assert later == "2026-11-01T07:30:00Z"
    assert resolve_wall(wall, CHICAGO) == "2026-11-01T06:30:00Z"  # no evidence: the first pass


def test_a_party_paged_in_the_second_pass_is_paged_after_it_was_created():
    """Created 01:30 CDT, paged 01:05 CST (35 min later): the bug stored it paged before created."""
    doc = parse_document(
        b'{"responseTypes":["sessions"],"sessions":[{"id":1,"uuid":"u1","number":4,'
        b'"partySize":2,"goalInSeconds":900,"created":"2026-11-01T01:30:00",'
        b'"notified":"2026-11-01T01:05:00","label":"Ana","state":"paged"}]}'
    )
    assert doc.sessions is not None
    result = fold(
        None,
        doc.sessions[0],
        zone=CHICAGO,
        doc_time=None,
        observed_at="2026-11-01T07:05:01Z",
        not_after="2026-11-01T07:05:03Z",
    )
    assert result.view is not None
    assert result.view.created == "2026-11-01T06:30:00Z"
    assert result.view.notified == "2026-11-01T07:05:00Z"


def test_the_measured_skew_picks_the_transmitters_current_offset():
    second_pass = datetime(2026, 11, 1, 7, 5, 2, tzinfo=UTC)  # 01:05:02 CST
    skew = measured_skew(datetime(2026, 11, 1, 1, 5, 0), CHICAGO, second_pass)
    assert skew == timedelta(seconds=-2)
    first_pass = datetime(2026, 11, 1, 6, 5, 2, tzinfo=UTC)  # 01:05:02 CDT
    assert measured_skew(datetime(2026, 11, 1, 1, 5, 0), CHICAGO, first_pass) == timedelta(
        seconds=-2
    )


async def _evening(tmp_path, start: datetime, seed: int) -> list[dict]:
    db = tmp_path / "agent.db"
    clock = VirtualClock(start)
    sim = await Simulator.start(ping_interval=0.3, clock=clock, tz=CHICAGO, seed=seed)
    cfg = with_overrides(make_config(db, sim.port), controller={"timezone": "America/Chicago"})
    agent = Agent(cfg, clock=clock)
    try:
        await agent.start()
        await eventually(lambda: health(db).state == "connected")
        await play(sim, scripted_scenario(seed=seed, sessions=70), clock, delay=0.002)
        return await converges(db, sim, timeout=60)  # generous: CI machines are shared
    finally:
        await agent.stop()
        await sim.stop()


@pytest.mark.slow
async def test_an_evening_across_the_autumn_change_exports_the_ground_truth(tmp_path):
    truth = await _evening(tmp_path, AUTUMN_CHANGE - timedelta(minutes=40), seed=11)
    change = "2026-11-01T07:00:00Z"
    # The evening really exercised the repeated hour: parties created in the first pass and
    # paged or ended in the second, all at 01:xx on the wall.
    across = [
        r
        for r in truth
        if r["created"] < change <= (r["notified"] or r["cleared"] or "")
        and "2026-11-01T06:00:00Z" <= r["created"]
    ]
    assert across, "the scenario did not cross the change inside the repeated hour"
    for r in truth:
        assert r["created"] <= (r["notified"] or r["created"]) <= (r["cleared"] or "9")


@pytest.mark.slow
async def test_an_evening_across_the_spring_change_exports_the_ground_truth(tmp_path):
    truth = await _evening(tmp_path, SPRING_CHANGE - timedelta(minutes=40), seed=12)
    assert any(r["created"] < "2026-03-08T08:00:00Z" < (r["notified"] or "") for r in truth)


def test_a_history_answer_long_after_the_end_reads_its_times_as_of_the_end(tmp_path):
    """The end was seen in the first pass of the repeated hour; the history that says how it
    ended comes in the second pass (the transmitter away meanwhile). Its wall times are read as of
    the end the agent saw — not an hour later, and the page is not counted twice."""
    import json

    from agent.controller.protocol import parse_document
    from agent.ingest import Ingestor
    from agent.store import Store

    store = Store(tmp_path / "agent.db")
    ingest = Ingestor(store, None, zone=CHICAGO)

    def doc(stamp: str, key: str, item: dict) -> object:
        body = {"responseTypes": [key], "timestamp": stamp, key: [item]}
        return parse_document(json.dumps(body).encode())

    item = {"uuid": "u-1", "number": 7, "created": "2026-11-01T01:10:00", "partySize": 2}
    try:
        steps = [  # (transmitter's time, observed at (UTC), the session as listed)
            ("2026-11-01T01:10:00", "2026-11-01T06:10:01Z", {**item, "state": "started"}),
            (
                "2026-11-01T01:15:00",
                "2026-11-01T06:15:01Z",
                {**item, "state": "paged", "notified": "2026-11-01T01:15:00"},
            ),
            (
                "2026-11-01T01:20:00",
                "2026-11-01T06:20:01Z",
                {
                    **item,
                    "state": "cleared",
                    "notified": "2026-11-01T01:15:00",
                    "cleared": "2026-11-01T01:20:00",
                },
            ),
        ]
        for stamp, seen, session in steps:
            ingest.apply(doc(stamp, "sessions", session), observed_at=seen, source="notify")
        history = {
            **item,
            "notified": "2026-11-01T01:15:00",
            "cleared": "2026-11-01T01:20:00",
            "clearType": "STOP",
        }
        # 01:30 CST, the second pass: an hour and ten minutes after the end
        late = doc("2026-11-01T01:30:00", "session_history", history)
        ingest.apply(late, observed_at="2026-11-01T07:30:01Z", source="history")
        view = ingest.pending.views["u-1"]
        assert view.state == "cleared"
        assert view.cleared == "2026-11-01T06:20:00Z"
        assert view.notified == "2026-11-01T06:15:00Z"
        assert view.page_count == 1
    finally:
        ingest.close()
        store.close()
