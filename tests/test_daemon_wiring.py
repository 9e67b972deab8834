"""`pager-edge run` with every optional task: sync to a real receiver, backhaul from a fake operator.

The parts are tested on their own elsewhere; this checks the daemon wires them together: history
flows transmitter → store → cloud exactly once, a backhaul reading lands in the store, and
`pager-edge status --json` shows the transmitter, the sync and the backhaul — without the secrets.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from click.testing import CliRunner

from agent.simulator.flow import play, scripted_scenario
from agent.sync.receiver import IngestServer
from pager_edge.cli import cli
from tests import backhaul_fakes as fakes
from tests.agent_helpers import config_text, converges, eventually, health, spawn_agent
from tests.test_agent import PING, _sim

CC_ROOT = f"/rws/api/v1/devices/{fakes.CC_ICCID}"
TOKEN = "sync-token-CANARY-7731"
API_KEY = "cc-key-CANARY-4410"


async def test_run_with_sync_and_backhaul(tmp_path):
    db = tmp_path / "agent.db"
    sim, clock = await _sim(seed=17)
    receiver = IngestServer(token=TOKEN).start()
    operator = fakes.FakeOperator().start()
    operator.on("GET", f"{CC_ROOT}/sessionInfo", fakes.answer(fakes.SEED_SESSION_INFO))
    operator.on("GET", f"{CC_ROOT}/ctdUsages", fakes.answer(fakes.SEED_CTD_USAGES))
    operator.on("GET", f"{CC_ROOT}/usageInZone", fakes.answer(fakes.SEED_USAGE_IN_ZONE))
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        config_text(db, sim.port, ping_interval=PING)
        + '[site]\nid = "bistro-7"\n'
        + f'[sync]\nenabled = true\nendpoint = "{receiver.url}"\ninterval = 0.2\nmax_delay = 0.5\n'
        + '[backhaul]\nenabled = true\nprovider = "control_center"\n'
        + f'base_url = "{operator.url}/rws/api/v1/"\niccid = "{fakes.CC_ICCID}"\n'
        + 'username = "site-api-user"\ncap_bytes = 5000000000\n'
    )
    proc = spawn_agent(cfg, PAGER_EDGE_SYNC_TOKEN=TOKEN, PAGER_EDGE_CC_API_KEY=API_KEY)
    try:
        await eventually(lambda: health(db).state == "connected", timeout=20)
        await play(sim, scripted_scenario(seed=17)[:90], clock, delay=0.01)
        expected = await converges(db, sim)
        from agent.store import Store

        store = Store(db, readonly=True)
        try:
            total_events = store.event_count()
            await eventually(lambda: len(receiver.log.events) == total_events, timeout=15)
            await eventually(lambda: store.latest_backhaul_reading() is not None, timeout=10)
        finally:
            store.close()
        ids = list(receiver.log.events)
        assert ids == [f"bistro-7:{n}" for n in range(1, total_events + 1)]
        assert receiver.log.duplicate_events == 0
        assert len(expected) > 20

        result = CliRunner().invoke(cli, ["status", "--json", "--config", str(cfg)])
        status = json.loads(result.stdout)
        # The simulator's virtual evening is months from the host's clock: status warns of the
        # skew (exit 1), and of nothing else.
        assert result.exit_code == 1, result.output
        (reason,) = status["verdict"]["reasons"]
        assert reason.startswith("transmitter clock is") and "behind this host" in reason
        assert status["transmitter"]["connected"] is True
        assert status["sync"]["backlog"] == 0 and status["sync"]["bytes_sent"] > 0
        assert status["backhaul"]["sim_status"] == "ACTIVATED"
        assert status["backhaul"]["ipv6"] == "2605:9780:309e::/64"
        human = CliRunner().invoke(cli, ["status", "--config", str(cfg)])
        assert "backhaul:" in human.output and "sync:" in human.output
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        receiver.stop()
        operator.stop()
        await sim.stop()
    assert proc.returncode == 0, out
    for secret in (TOKEN, API_KEY):
        assert secret not in out
        assert secret not in result.output and secret not in human.output
    assert "Traceback" not in out


def test_run_refuses_sync_without_a_token(tmp_path, monkeypatch):
    monkeypatch.delenv("PAGER_EDGE_SYNC_TOKEN", raising=False)
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        config_text(tmp_path / "a.db", 1, ping_interval=PING)
        + '[sync]\nenabled = true\nendpoint = "https://ingest.example.com/v1"\n'
    )
    import subprocess

    r = subprocess.run(
        [sys.executable, "-m", "pager_edge", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if k != "PAGER_EDGE_SYNC_TOKEN"},
    )
    assert r.returncode == 2, r.stderr
    assert "configuration error" in r.stderr and "[sync]" in r.stderr
    assert "Traceback" not in r.stderr


async def test_run_notifies_systemd_ready_watchdog_and_stopping(tmp_path):
    from tests.notify_socket import FakeNotifySocket

    db = tmp_path / "agent.db"
    sim, _clock = await _sim(seed=2)
    cfg = tmp_path / "config.toml"
    cfg.write_text(config_text(db, sim.port, ping_interval=PING))
    with FakeNotifySocket() as sock:
        proc = spawn_agent(cfg, **sock.env(watchdog_usec=400_000))
        try:
            ready = sock.wait_for("READY", timeout=20)
            assert ready.pid == proc.pid  # NotifyAccess=main
            pings = [m for m in sock.collect(1.2) if m.get("WATCHDOG") == "1"]
            assert len(pings) >= 3  # every half WATCHDOG_USEC while healthy
            assert all(m.pid == proc.pid for m in pings)
            proc.send_signal(signal.SIGTERM)
            sock.wait_for("STOPPING", timeout=10)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            await sim.stop()
