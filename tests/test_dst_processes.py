"""The simulator and the agent as processes under a shifted clock, across a daylight-saving change.

Debian's libfaketime (``LD_PRELOAD``, an offset in ``FAKETIME``, the monotonic clock left alone)
moves both processes' wall clocks to just before a change in America/Chicago. The test drives the
transmitter over CoAP like a host stand, SIGKILLs the agent in the repeated hour (or just after
the spring gap), acts while it is down, restarts it, and compares the agent's export with the
simulator's ground truth (written by ``pager-edge simulate --ground-truth`` when it stops).
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.controller.client import ControllerClient, create_context
from tests.agent_helpers import eventually, exported, health

LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        LIBFAKETIME is None, reason="libfaketime is not installed (apt-get install faketime)"
    ),
]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Shifted:
    """Processes whose wall clock reads `start` now and then runs at real speed."""

    def __init__(self, start: datetime):
        self.offset = round(start.timestamp() - time.time())
        self.env = {
            **os.environ,
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME": f"{self.offset:+d}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_NO_CACHE": "1",
        }

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.offset, UTC)

    async def until(self, moment: datetime) -> None:
        await asyncio.sleep(max(0.0, (moment - self.now()).total_seconds()))

    def spawn(self, *args: str, log: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "pager_edge", *args],
            env=self.env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )


def _config(tmp: Path, db: Path, port: int) -> Path:
    conf = tmp / "config.toml"
    conf.write_text(
        f'[store]\npath = "{db}"\n[controller]\nhost = "127.0.0.1"\nport = {port}\n'
        'timezone = "America/Chicago"\nping_interval = 1.0\nrequest_timeout = 1.0\n'
        "max_backoff = 0.5\n"
    )
    return conf


async def _evening_across(tmp_path: Path, change: datetime) -> list[dict]:
    clock = Shifted(change - _seconds(16))
    port = _free_udp_port()
    db = tmp_path / "agent.db"
    truth_file = tmp_path / "truth.json"
    conf = _config(tmp_path, db, port)
    sim = clock.spawn(
        "simulate", "--port", str(port), "--ping-interval", "1", "--seed", "21",
        "--timezone", "America/Chicago", "--ground-truth", str(truth_file),
        log=tmp_path / "sim.log",
    )  # fmt: skip
    agent = clock.spawn("run", "--config", str(conf), log=tmp_path / "agent.log")
    context = await create_context()
    t7470 = ControllerClient(context, "127.0.0.1", port, timeout=2.0)
    try:
        await eventually(lambda: health(db).state == "connected", timeout=20)
        for number, label in ((1, "Ana"), (2, "Bo"), (3, "Chen"), (4, "Dvořák")):
            await t7470.create_session(number, label=label, party_size=2, goal=600)
        await clock.until(change + _seconds(4))  # the other side of the change
        await t7470.page(1)
        await t7470.page(2)
        await t7470.clear(3)  # seated
        await asyncio.sleep(2.0)
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=10)
        await t7470.page(4)  # while the agent is down
        await t7470.create_session(5, label="Eve", party_size=3, goal=900)
        await asyncio.sleep(1.2)
        await t7470.page(5)
        await t7470.remove(2)
        await t7470.page(1)  # a re-page
        agent = clock.spawn("run", "--config", str(conf), log=tmp_path / "agent2.log")
        await eventually(lambda: len(exported(db)) == 5, timeout=20)
        await asyncio.sleep(3.0)  # the resync's history fetch lands the ends
    finally:
        await context.shutdown()
        agent.send_signal(signal.SIGTERM)
        sim.send_signal(signal.SIGTERM)
        for proc in (agent, sim):
            proc.wait(timeout=15)
    truth = sorted(json.loads(truth_file.read_text()), key=lambda r: (r["created"], r["uuid"]))
    got = sorted(exported(db), key=lambda r: (r["created"] or "", r["uuid"]))
    assert got == truth, (tmp_path / "agent2.log").read_text()[-3000:]
    return truth


def _seconds(n: float):
    from datetime import timedelta

    return timedelta(seconds=n)


async def test_autumn_change_with_a_sigkill_in_the_repeated_hour(tmp_path):
    change = datetime(2026, 11, 1, 7, 0, tzinfo=UTC)  # 02:00 CDT → 01:00 CST
    truth = await _evening_across(tmp_path, change)
    first = {r["number"]: r for r in truth}
    # Created at 01:59:xx CDT, paged at 01:00:xx CST: an hour "earlier" on the wall, yet after.
    assert first[1]["created"] < "2026-11-01T07:00:00Z" < first[1]["notified"]
    assert first[1]["page_count"] == 2 and first[3]["state"] == "cleared"


async def test_spring_change_with_a_sigkill_after_the_gap(tmp_path):
    change = datetime(2026, 3, 8, 8, 0, tzinfo=UTC)  # 02:00 CST → 03:00 CDT
    truth = await _evening_across(tmp_path, change)
    assert all(r["created"] < "2026-03-08T08:00:00Z" for r in truth if r["number"] != 5)
