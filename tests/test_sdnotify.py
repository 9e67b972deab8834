"""agent.sdnotify against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from agent.sdnotify import Notifier, watchdog_loop
from tests import notify_socket as fake_systemd
from tests.notify_socket import FakeNotifySocket

# The shared fixtures (see tests/notify_socket.py).
notify_socket = fake_systemd.notify_socket
abstract_notify_socket = fake_systemd.abstract_notify_socket

REPO = Path(__file__).resolve().parents[1]


def test_no_notify_socket_is_a_silent_no_op():
    n = Notifier(environ={})
    assert not n.enabled
    assert n.ready() is False
    assert n.watchdog() is False
    assert n.stopping() is False
    assert n.status("x") is False
    assert n.watchdog_interval() is None


def test_relative_notify_socket_is_ignored():
    n = Notifier(environ={"NOTIFY_SOCKET": "relative/path", "WATCHDOG_USEC": "1000000"})
    assert not n.enabled
    assert n.watchdog_interval() is None


def test_ready_status_stopping_arrive(notify_socket):
    n = Notifier(environ=notify_socket.env())
    assert n.enabled
    assert n.ready("observing 192.0.2.10")
    msg = notify_socket.wait_for("READY")
    assert msg["STATUS"] == "observing 192.0.2.10"
    assert msg.pid == os.getpid()
    assert n.status("line one\nFAKE=1")
    msg = notify_socket.receive()
    assert msg.fields == {"STATUS": "line one FAKE=1"}  # a newline cannot smuggle a key in
    assert n.stopping()
    notify_socket.wait_for("STOPPING")
    assert n.extend_timeout(120)
    assert notify_socket.receive()["EXTEND_TIMEOUT_USEC"] == "120000000"
    n.close()


def test_abstract_namespace_socket(abstract_notify_socket):
    assert abstract_notify_socket.address.startswith("@")
    n = Notifier(environ=abstract_notify_socket.env())
    assert n.ready()
    abstract_notify_socket.wait_for("READY")
    n.close()


def test_watchdog_interval_is_half_of_watchdog_usec(notify_socket):
    env = notify_socket.env(watchdog_usec=30_000_000)
    assert Notifier(environ=env).watchdog_interval() == 15.0
    own = notify_socket.env(watchdog_usec=30_000_000, watchdog_pid=os.getpid())
    assert Notifier(environ=own).watchdog_interval() == 15.0
    other = notify_socket.env(watchdog_usec=30_000_000, watchdog_pid=os.getpid() + 1)
    assert Notifier(environ=other).watchdog_interval() is None
    for bad in ("0", "-5", "soon", ""):
        assert Notifier(environ={**env, "WATCHDOG_USEC": bad}).watchdog_interval() is None
    assert Notifier(environ={"WATCHDOG_USEC": "30000000"}).watchdog_interval() is None


def test_unset_environment(monkeypatch, notify_socket):
    for key, value in notify_socket.env(watchdog_usec=1_000_000).items():
        monkeypatch.setenv(key, value)
    n = Notifier(unset_environment=True)
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ
    assert n.watchdog_interval() == 0.5
    assert n.ready()
    notify_socket.wait_for("READY")
    n.close()


def test_send_failure_does_not_raise(caplog):
    with FakeNotifySocket() as fake:
        n = Notifier(environ=fake.env())
    # The listener is gone: sending fails, once logged, never raised.
    assert n.ready() is False
    assert n.watchdog() is False
    assert sum("sd_notify" in r.getMessage() for r in caplog.records) == 1
    n.close()


async def _collect_async(fake: FakeNotifySocket, duration: float):
    return await asyncio.to_thread(fake.collect, duration)


async def test_watchdog_loop_pings_only_while_healthy(notify_socket):
    n = Notifier(environ=notify_socket.env(watchdog_usec=100_000))  # ping every 0.05 s
    assert n.watchdog_interval() == 0.05
    healthy = True
    task = asyncio.create_task(watchdog_loop(n, lambda: healthy))
    try:
        pings = [m for m in await _collect_async(notify_socket, 0.4) if m.get("WATCHDOG")]
        assert len(pings) >= 4

        healthy = False
        await asyncio.sleep(0.1)  # let a ping already in flight land
        notify_socket.collect(0.05)
        quiet = await _collect_async(notify_socket, 0.4)
        assert not [m for m in quiet if m.get("WATCHDOG")]

        healthy = True
        resumed = await _collect_async(notify_socket, 0.3)
        assert [m for m in resumed if m.get("WATCHDOG")]
        assert any(m.get("STATUS") == "healthy" for m in resumed)
    finally:
        task.cancel()
        n.close()
    statuses = [m.get("STATUS") for m in notify_socket.messages if m.get("STATUS")]
    assert any(s.startswith("unhealthy") for s in statuses)


async def test_watchdog_loop_health_check_raising_counts_as_unhealthy(notify_socket):
    n = Notifier(environ=notify_socket.env())

    def broken() -> bool:
        raise RuntimeError("store gone")

    task = asyncio.create_task(watchdog_loop(n, broken, interval=0.02))
    try:
        got = await _collect_async(notify_socket, 0.2)
    finally:
        task.cancel()
        n.close()
    assert not [m for m in got if m.get("WATCHDOG")]
    assert not task.done() or task.cancelled()


async def test_watchdog_loop_returns_without_watchdog():
    await asyncio.wait_for(watchdog_loop(Notifier(environ={}), lambda: True), timeout=1)


STAND_IN = textwrap.dedent(
    """
    import asyncio, sys, time
    from agent.sdnotify import Notifier, watchdog_loop

    async def main(stuck_after):
        n = Notifier(unset_environment=True)
        asyncio.create_task(watchdog_loop(n, lambda: True))
        await asyncio.sleep(0.05)
        n.ready("stand-in up")
        await asyncio.sleep(stuck_after)
        time.sleep(30)   # a blocking call: the event loop is stuck, pings must stop

    asyncio.run(main(float(sys.argv[1])))
    """
)


def test_stand_in_daemon_under_fake_systemd(notify_socket):
    """A separate process, configured only by the environment systemd would give it."""
    env = {
        **os.environ,
        **notify_socket.env(watchdog_usec=100_000),
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.Popen([sys.executable, "-c", STAND_IN, "0.6"], env=env)
    try:
        ready = notify_socket.wait_for("READY", timeout=10)
        assert ready.pid == proc.pid  # sent by the main process: NotifyAccess=main accepts it
        assert ready["STATUS"] == "stand-in up"
        pings = [m for m in notify_socket.collect(0.4) if m.get("WATCHDOG")]
        assert len(pings) >= 3 and {m.pid for m in pings} == {proc.pid}
        # After 0.6 s the stand-in blocks its event loop: the pings stop.
        notify_socket.collect(0.5)
        stuck = [m for m in notify_socket.collect(0.5) if m.get("WATCHDOG")]
        assert stuck == []
        assert proc.poll() is None  # alive but silent: exactly what systemd's watchdog catches
    finally:
        proc.kill()
        proc.wait()


def test_stand_in_ignores_watchdog_meant_for_another_pid(notify_socket):
    env = {
        **os.environ,
        **notify_socket.env(watchdog_usec=100_000, watchdog_pid=os.getpid()),
        "PYTHONPATH": str(REPO),
    }
    code = (
        "from agent.sdnotify import Notifier; n = Notifier(); "
        "print(n.watchdog_interval()); n.ready()"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "None"  # WATCHDOG_PID names the parent, not this process
    notify_socket.wait_for("READY")
