"""The guest flow, the scripted scenario and the ``pager-edge simulate`` command."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import signal
import sys

import aiocoap
import pytest

from agent.clock import ScaledClock, VirtualClock
from agent.simulator.flow import REPAGE_SPACING, GuestFlow, play, scripted_scenario
from agent.simulator.model import Transmitter
from agent.simulator.server import Simulator
from tests.simfixtures import ZONE, doc


def run_scenario(seed: int) -> list[dict]:
    clock = VirtualClock()
    model = Transmitter(clock, ZONE, seed=seed)
    asyncio.run(play(model, scripted_scenario(seed), clock))
    return model.ground_truth()


def test_scenario_is_deterministic_and_varies_with_the_seed():
    assert scripted_scenario(3) == scripted_scenario(3)
    assert scripted_scenario(3) != scripted_scenario(4)
    assert run_scenario(3) == run_scenario(3)


@pytest.mark.parametrize("seed", [0, 7, 11, 13, 21, 99])
def test_scenario_covers_what_the_agent_must_handle(seed):
    actions = scripted_scenario(seed)
    truth = run_scenario(seed)
    assert len(truth) >= 60
    assert {r["state"] for r in truth} == {"waiting", "paged", "cleared", "removed"}
    labels = {r["label"] for r in truth}
    assert "" in labels and None in labels and any(lb and not lb.isascii() for lb in labels)
    assert any(r["page_count"] >= 2 for r in truth)
    assert len({r["number"] for r in truth}) < len(truth)  # pager numbers are reused
    assert any(a.op == "update" for a in actions)
    assert all(5 <= a.advance <= 30 for a in actions)
    last_page: dict[int, int] = {}
    for i, a in enumerate(actions):
        if a.op == "create":
            last_page.pop(a.number, None)
        if a.op == "page":
            if a.number in last_page:
                assert i - last_page[a.number] >= REPAGE_SPACING  # room to resync in between
            last_page[a.number] = i


async def test_play_drives_a_running_simulator():
    clock = VirtualClock()
    async with Simulator.running(clock=clock, tz=ZONE, seed=2) as sim:
        await play(sim, scripted_scenario(2)[:40], clock)
        assert sim.model.sequence == 40
        assert len(sim.ground_truth()) >= 10


async def test_guest_flow_runs_a_fast_evening():
    speed = 3000.0
    async with Simulator.running(clock=ScaledClock(speed), seed=5) as sim:
        flow = GuestFlow(sim, "rush", speed=speed, seed=5)
        task = asyncio.create_task(flow.run())
        await asyncio.sleep(2.0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        truth = sim.ground_truth()
    assert flow.parties_started >= 30
    states = collections.Counter(r["state"] for r in truth)
    assert states["cleared"] >= 5 and states["paged"] + states["cleared"] > states["removed"]
    assert all(1 <= r["number"] <= 99 for r in truth)
    assert all(1 <= r["party_size"] <= 8 and 300 <= r["goal_seconds"] <= 2700 for r in truth)
    served = [r for r in truth if r["notified"]]
    assert served and all(r["notified"] >= r["created"] for r in served)


def test_guest_flow_rejects_unknown_profiles():
    with pytest.raises(ValueError):
        GuestFlow(object(), "brunch")


async def test_simulate_command_serves_and_stops_cleanly_on_sigterm():
    args = ["simulate", "--port", "0", "--flow", "rush", "--speed", "100", "--seed", "1"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pager_edge",
        *args,
        "--ping-interval",
        "0.5",
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 15)).decode()
        match = re.search(r"listening on (coap://127\.0\.0\.1:\d+)", line)
        assert match, line
        ctx = await aiocoap.Context.create_client_context()
        try:
            msg = aiocoap.Message(code=aiocoap.GET, uri=match.group(1) + "/v1/settings")
            resp = await asyncio.wait_for(ctx.request(msg).response, 5)
            assert doc(resp)["deviceName"] == "T7470"
        finally:
            await ctx.shutdown()
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0, err
        assert b"Traceback" not in err and b"stopped" in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
