"""A transmitter whose clock is wrong: the zone hint, and `set-clock` (refused on an unsynced host)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from agent.clock import SYSTEM_CLOCK, ScaledClock, wall_time
from agent.config import with_overrides
from agent.controller.client import ControllerClient, create_context
from agent.daemon import Agent
from agent.simulator.server import Simulator
from agent.skew import transmitter_skew
from agent.status import judge
from pager_edge.cli import main
from tests.agent_helpers import eventually, health, make_config, status
from tests.test_operator_errors import _closed_udp_port

CHICAGO = ZoneInfo("America/Chicago")


async def test_a_one_hour_skew_is_called_a_zone_problem(tmp_path, caplog):
    """The transmitter runs an hour ahead (no DST applied, or the wrong zone): say so plainly."""
    sim = await Simulator.start(
        ping_interval=0.3, clock=ScaledClock(shift=timedelta(hours=1)), tz=CHICAGO
    )
    db = tmp_path / "agent.db"
    cfg = with_overrides(make_config(db, sim.port), controller={"timezone": "America/Chicago"})
    agent = Agent(cfg)
    try:
        await agent.start()
        await eventually(lambda: health(db).clock_skew_seconds is not None)
        report = status(db)
        t = report["transmitter"]
        assert t["clock_skew"] == "+1 h 0 m"
        assert t["skew_warning"].startswith(
            "transmitter clock is 1 h ahead of this host — check [controller] timezone, "
            "or set the transmitter's clock"
        )
        assert judge(report)["code"] == 1
        logged = [r.getMessage() for r in caplog.records if r.name == "agent.skew"]
        assert sum("1 h ahead of this host" in m for m in logged) == 1  # said once, plainly
    finally:
        await agent.stop()
        await sim.stop()


@pytest.fixture
def skewed_transmitter(tmp_path):
    """`pager-edge simulate` in a process, its clock set an hour and a half ahead over CoAP."""
    port = _closed_udp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pager_edge", "simulate", "--port", str(port),
         "--timezone", "America/Chicago"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    async def skew_it() -> float:
        context = await create_context()
        try:
            client = ControllerClient(context, "127.0.0.1", port, timeout=2.0)
            for _ in range(50):
                try:
                    await client.get_settings()
                    break
                except Exception:
                    await asyncio.sleep(0.1)
            ahead = wall_time(SYSTEM_CLOCK.now() + timedelta(minutes=90), CHICAGO)
            await client.set_settings(datetime=ahead.isoformat())
            return await transmitter_skew(client, CHICAGO, SYSTEM_CLOCK)
        finally:
            await context.shutdown()

    conf = tmp_path / "config.toml"
    conf.write_text(
        f'[controller]\nhost = "127.0.0.1"\nport = {port}\ntimezone = "America/Chicago"\n'
        f'[store]\npath = "{tmp_path / "agent.db"}"\n'
    )
    try:
        skew = asyncio.run(skew_it())
        assert 5390 < skew < 5410
        yield conf, port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def _skew_now(port: int) -> float:
    async def read() -> float:
        context = await create_context()
        try:
            client = ControllerClient(context, "127.0.0.1", port, timeout=2.0)
            return await transmitter_skew(client, CHICAGO, SYSTEM_CLOCK)
        finally:
            await context.shutdown()

    return asyncio.run(read())


def test_set_clock_brings_the_skew_under_two_seconds(skewed_transmitter, monkeypatch, capsys):
    conf, port = skewed_transmitter
    monkeypatch.setattr("agent.skew.host_clock_synchronised", lambda: True)
    main(["controller", "set-clock", "--yes", "--config", str(conf)])
    out = capsys.readouterr().out
    assert "transmitter clock is +1 h 30 m from this host" in out
    assert abs(_skew_now(port)) < 2


def test_set_clock_refuses_while_the_host_clock_is_not_synchronised(
    skewed_transmitter, monkeypatch, capsys
):
    conf, port = skewed_transmitter
    monkeypatch.setattr("agent.skew.host_clock_synchronised", lambda: False)
    with pytest.raises(SystemExit) as exc:
        main(["controller", "set-clock", "--yes", "--config", str(conf)])
    assert exc.value.code == 2
    assert "not synchronised" in capsys.readouterr().err
    assert _skew_now(port) > 5000  # nothing was pushed


def test_set_clock_asks_first(skewed_transmitter, monkeypatch):
    from click.testing import CliRunner

    from pager_edge.cli import cli

    conf, port = skewed_transmitter
    monkeypatch.setattr("agent.skew.host_clock_synchronised", lambda: True)
    result = CliRunner().invoke(
        cli, ["controller", "set-clock", "--config", str(conf)], input="n\n"
    )
    assert "Set it to" in result.output and result.exit_code == 1
    assert _skew_now(port) > 5000
