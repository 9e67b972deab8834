"""The shipped agent unit under a real systemd, in throw-away namespaces.

`systemd-analyze` only reads the unit. This test boots the distribution's systemd as PID 1 of new
PID/mount/network/cgroup namespaces (the host's files are hidden behind bind mounts and tmpfs, so
nothing outside the test's temporary directory changes), installs pager-edge with the real
installer (pip included) into a copy of /etc, and starts `pager-edge.service` exactly as shipped
plus a test drop-in. It checks what the hardening must not break and what it must enforce: READY=1
reaches systemd, watchdog pings keep the service alive, a frozen process is killed by the watchdog
and restarted, the database is created 0640 in the only writable directory, the 0600 secrets file
is readable, W+X memory and foreign socket families are refused, Python/ctypes/aiocoap still work.
Then the web board's unit, as shipped: READY=1, the PIN gate, a staff board process that reads the
database under that hardening, no PIN in the journal, a clean stop.

Until `pager-edge run` itself sends sd_notify messages, the drop-in replaces ExecStart with a
stand-in that runs the same `agent.daemon.Agent` with `agent.sdnotify` wired in. Once
agent/daemon.py uses agent.sdnotify, the shipped ExecStart is used unchanged.

Needs root, util-linux `unshare`/`nsenter`, systemd installed but *not* running as PID 1 (a
container or VM without systemd, like CI), cgroup2, /usr/bin/python3 with venv, and the package
index pip uses. About 25 s, most of it pip.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
SYSTEMD = Path("/lib/systemd/systemd")
UNIT_LIB = Path("/usr/lib/systemd/system")
# Just enough of the distribution's units for default dependencies and journald.
BASE_UNITS = [
    "sysinit.target",
    "basic.target",
    "sockets.target",
    "paths.target",
    "timers.target",
    "slices.target",
    "local-fs.target",
    "swap.target",
    "network.target",
    "network-online.target",
    "time-sync.target",
    "multi-user.target",
    "shutdown.target",
    "final.target",
    "exit.target",
    "emergency.target",
    "rescue.target",
    "systemd-journald.service",
    "systemd-journald.socket",
    "systemd-journald-dev-log.socket",
    "systemd-exit.service",
]

pytestmark = pytest.mark.slow


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (namespaces, mounts, useradd --root)"
    if Path("/run/systemd/system").exists():
        return "the host runs systemd; this sandbox is for containers/VMs without it"
    for exe in ("unshare", "nsenter"):
        if shutil.which(exe) is None:
            return f"{exe} (util-linux) is not installed"
    if not SYSTEMD.exists() or not UNIT_LIB.is_dir():
        return "systemd is not installed"
    if not Path("/usr/bin/python3").exists():
        return "no /usr/bin/python3 for the virtual environment"
    if _cgroup2_mount() is None:
        return "no cgroup2 hierarchy mounted"
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount", "--net", "--cgroup", "true"], capture_output=True
    )
    if probe.returncode != 0:
        return f"cannot create namespaces: {probe.stderr.decode().strip()}"
    return None


def _cgroup2_mount() -> Path | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[0] == "cgroup2":
            return Path(left.split()[4])
    return None


BOOT = """\
#!/bin/bash
# PID 1 of fresh PID/mount/UTS/IPC/net/cgroup namespaces: hide the host, then exec systemd.
set -euo pipefail
S=$1
mount --make-rprivate /
mount --bind "$S/etc" /etc
mount -t tmpfs -o mode=0755 tmpfs /opt
mkdir /opt/pager-edge
mount --bind "$S/opt/pager-edge" /opt/pager-edge
mount -t tmpfs -o mode=0755 tmpfs /var
mkdir -p /var/tmp /var/lib /var/log /var/cache
chmod 1777 /var/tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mount --bind "$S/units" /usr/lib/systemd/system
mount --bind "$S/empty" /usr/lib/systemd/system-generators
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=1777 tmpfs /tmp
export container=pager-edge-test
exec /lib/systemd/systemd --system --unit=pager-edge-test.target \\
    --log-target=journal --show-status=false
"""

STANDIN = '''\
"""Stand-in for `pager-edge run` until the daemon sends sd_notify itself."""
import asyncio

from agent.config import load_config
from agent.daemon import Agent, run_until_signalled
from agent.logs import setup_logging
from agent.sdnotify import Notifier, watchdog_loop

cfg = load_config("/etc/pager-edge/config.toml")
setup_logging(cfg.logging.level)


async def main():
    notifier = Notifier(unset_environment=True)
    agent = Agent(cfg)
    tasks = []

    def ready():
        notifier.ready("stand-in agent running")
        tasks.append(asyncio.create_task(watchdog_loop(notifier, agent.healthy)))

    await run_until_signalled(agent, on_ready=ready)
    notifier.stopping()


asyncio.run(main())
'''

PROBE = """\
import ctypes, errno, mmap, os, socket
from agent.config import load_config
from agent.secrets import read_secrets_file

cfg = load_config("/etc/pager-edge/config.toml")
print("secret", read_secrets_file(cfg.secrets.path).get("SANDBOX_PROBE"))
for name in ("AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK", "AF_PACKET", "AF_BLUETOOTH"):
    kind = socket.SOCK_RAW if name == "AF_PACKET" else socket.SOCK_DGRAM
    try:
        socket.socket(getattr(socket, name), kind).close()
        print("family", name, "allowed")
    except OSError as e:
        print("family", name, "refused", errno.errorcode.get(e.errno))
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("wx allowed")
except OSError as e:
    print("wx refused", errno.errorcode.get(e.errno))
print("ctypes", ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 7)())
import aiocoap, httpx, sqlite_utils  # noqa: E401
try:
    open("/etc/pager-edge/probe", "w")
    print("etc writable")
except OSError as e:
    print("etc", errno.errorcode.get(e.errno))
open("/var/lib/pager-edge/probe", "w").write("x")
print("data writable", oct(os.stat("/var/lib/pager-edge/probe").st_mode & 0o777))
print("uid", os.getuid(), "home hidden", not os.path.exists("/root/.bashrc"))
"""


WEB_PIN = "51730968"
WEB_PROBE = """\
import asyncio, sys
import aiohttp

URL = "http://127.0.0.1:8080"


async def main():
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.post(URL + "/login", data={"pin": "00000000"}, allow_redirects=False) as r:
            print("wrong pin", r.status)
        async with http.post(URL + "/login", data={"pin": sys.argv[1]}, allow_redirects=False) as r:
            print("right pin", r.status)
            cookie = {"Cookie": "pager_edge_session=" + r.cookies["pager_edge_session"].value}
        # The agent's own link state, as the board read it from the database (without the
        # database the board could only say "unknown" under a banner).
        states = (b"CONNECTING", b"DISCONNECTED", b"connected")
        seen = b""
        async with http.ws_connect(URL + "/ws?width=120&height=40", headers=cookie) as ws:
            async with asyncio.timeout(60):
                while not any(s in seen for s in states):
                    msg = await ws.receive()
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        break
                    seen += msg.data
        print("board read the database", any(s in seen for s in states))


asyncio.run(main())
"""


class Sandbox:
    def __init__(self, stage: Path):
        self.stage = stage
        self.log = open(stage / "boot.log", "wb")
        # A cgroup of our own: the namespace's systemd builds its tree below it, and closing the
        # sandbox removes exactly that subtree.
        cgroot = _cgroup2_mount()
        assert cgroot is not None
        self.cgroup = cgroot / f"pager-edge-test-{uuid.uuid4().hex[:12]}"
        self.cgroup.mkdir()
        self.proc = subprocess.Popen(
            [
                "bash",
                "-c",
                'echo $$ > "$1/cgroup.procs" && exec "${@:2}"',
                "enter-cgroup",
                str(self.cgroup),
                *("unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net"),
                *("--cgroup", "--mount-proc", "bash", str(stage / "boot.sh"), str(stage)),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            self.pid1 = self._find_pid1()
        except BaseException:
            self.proc.kill()
            self.pid1 = 0
            self.close()
            raise

    def _find_pid1(self) -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            if children.exists() and children.read_text().split():
                pid = int(children.read_text().split()[0])
                if Path(f"/proc/{pid}/exe").resolve().name == "systemd":
                    return pid
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"systemd did not start: {(self.stage / 'boot.log').read_text()}")

    def run(self, *cmd: str, check: bool = True) -> str:
        res = subprocess.run(
            ["nsenter", "-t", str(self.pid1), "-a", *cmd],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert res.returncode == 0, f"{cmd}: {res.stdout}{res.stderr}"
        return res.stdout

    def show(self, unit: str, *props: str, check: bool = True) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, *(f"--property={p}" for p in props), check=check)
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait(self, unit: str, pred, timeout: float, what: str) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        props: dict[str, str] = {}
        while time.monotonic() < deadline:
            props = self.show(
                unit,
                "ActiveState",
                "SubState",
                "MainPID",
                "NRestarts",
                "StatusText",
                "Result",
                check=False,  # the manager's socket may not be up yet
            )
            if props and pred(props):
                return props
            time.sleep(0.2)
        journal = self.run("journalctl", "--no-pager", "-n", "60", check=False)
        raise AssertionError(f"{unit}: waited {timeout}s for {what}; last {props}\n{journal}")

    def journal(self, unit: str) -> str:
        return self.run("journalctl", "--no-pager", "-o", "cat", "-u", unit, check=False)

    def close(self) -> None:
        if self.pid1:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid1, signal.SIGKILL)  # PID 1 of the namespace: all of it goes
        self.proc.wait(timeout=20)
        self.log.close()
        for d in sorted(
            (p for p in [self.cgroup, *self.cgroup.rglob("*")] if p.is_dir()),
            key=lambda p: -len(p.parts),
        ):
            for _ in range(50):  # a cgroup is removable once its last process is reaped
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


def _stage(stage: Path) -> None:
    """The target tree: a copy of /etc, the real installer's output, test drop-ins, base units."""
    shutil.copytree("/etc", stage / "etc", symlinks=True)
    shutil.rmtree(stage / "etc/pager-edge", ignore_errors=True)
    res = subprocess.run(
        ["bash", str(DEPLOY / "install.sh"), "--root", str(stage), "--kiosk", "none"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-4000:]

    config = stage / "etc/pager-edge/config.toml"
    config.write_text(re.sub(r"(?m)^host = .*$", 'host = "127.0.0.1"', config.read_text()))
    with open(stage / "etc/pager-edge/secrets.env", "a") as f:
        f.write(f"SANDBOX_PROBE=found-it\nPAGER_EDGE_WEB_PIN={WEB_PIN}\n")
    opt = stage / "opt/pager-edge"
    (opt / "probe.py").write_text(PROBE)
    (opt / "webprobe.py").write_text(WEB_PROBE)
    units = stage / "etc/systemd/system"
    # The watchdog at test speed; everything else as shipped.
    dropin = ["[Service]", "WatchdogSec=2"]
    if "sdnotify" not in (REPO / "agent/daemon.py").read_text():
        (opt / "standin.py").write_text(STANDIN)
        dropin += [
            "ExecStart=",
            "ExecStart=/opt/pager-edge/venv/bin/python /opt/pager-edge/standin.py",
        ]
    (units / "pager-edge.service.d").mkdir()
    (units / "pager-edge.service.d/test.conf").write_text("\n".join(dropin) + "\n")
    # The probe runs under the very same unit file, as a oneshot.
    shutil.copy2(units / "pager-edge.service", units / "pager-edge-probe.service")
    (units / "pager-edge-probe.service.d").mkdir()
    (units / "pager-edge-probe.service.d/probe.conf").write_text(
        textwrap.dedent(
            """\
            [Service]
            Type=oneshot
            WatchdogSec=0
            Restart=no
            ExecStart=
            ExecStart=/opt/pager-edge/venv/bin/python /opt/pager-edge/probe.py
            """
        )
    )
    (stage / "units").mkdir()
    for name in BASE_UNITS:
        if (UNIT_LIB / name).exists():
            shutil.copy2(UNIT_LIB / name, stage / "units" / name)
    (stage / "units/pager-edge-test.target").write_text(
        "[Unit]\nDescription=pager-edge sandbox\nWants=systemd-journald.service pager-edge.service\n"
    )
    (stage / "empty").mkdir()
    (stage / "boot.sh").write_text(BOOT)


@pytest.fixture
def sandbox(tmp_path):
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    box = None
    try:
        _stage(tmp_path)
        box = Sandbox(tmp_path)
        yield box
    finally:
        if box is not None:
            box.close()
        # Do not leave a copy of the host's /etc (shadow included) or a venv behind in /tmp.
        for name in ("etc", "opt", "var", "units"):
            shutil.rmtree(tmp_path / name, ignore_errors=True)


def test_agent_unit_under_a_real_systemd(sandbox):
    # 1. READY=1 reaches systemd; the database appears, 0640, in the only writable directory.
    props = sandbox.wait(
        "pager-edge.service",
        lambda p: p["ActiveState"] == "active" or p["ActiveState"] == "failed",
        60,
        "active (READY=1)",
    )
    assert props["ActiveState"] == "active", sandbox.journal("pager-edge.service")
    assert props["SubState"] == "running"
    assert props["StatusText"], "no STATUS= from the agent"
    assert props["NRestarts"] == "0"
    listing = sandbox.run(
        "stat", "-c", "%a %U:%G %n", "/var/lib/pager-edge", "/var/lib/pager-edge/pager-edge.db"
    )
    assert "750 pager-edge:pager-edge /var/lib/pager-edge\n" in listing
    assert "640 pager-edge:pager-edge /var/lib/pager-edge/pager-edge.db" in listing

    # 2. The hardening is enforced, and what the agent needs still works (same unit, as a oneshot).
    sandbox.run("systemctl", "start", "pager-edge-probe.service", check=False)
    out = sandbox.journal("pager-edge-probe.service")
    assert "secret found-it" in out  # 0600 secrets file, owned by pager-edge, under PrivateUsers
    for family in ("AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"):
        assert f"family {family} allowed" in out
    assert "family AF_PACKET refused EAFNOSUPPORT" in out
    assert "family AF_BLUETOOTH refused EAFNOSUPPORT" in out
    assert "wx refused EPERM" in out  # MemoryDenyWriteExecute
    assert "ctypes 7" in out  # ...and libffi closures still work
    assert "etc EROFS" in out  # ProtectSystem=strict
    assert "data writable 0o640" in out  # the data dir, UMask=0027
    assert "home hidden True" in out

    # 3. Watchdog: pings keep a healthy agent; a frozen one is killed and restarted.
    props = sandbox.show("pager-edge.service", "MainPID", "NRestarts")
    pid, restarts = props["MainPID"], int(props["NRestarts"])
    time.sleep(3)  # longer than WatchdogSec=2: only the pings keep it alive
    props = sandbox.show("pager-edge.service", "ActiveState", "MainPID", "NRestarts")
    assert (props["ActiveState"], props["MainPID"], int(props["NRestarts"])) == (
        "active",
        pid,
        restarts,
    )
    # Freeze the process (as a stuck event loop would be): no pings, watchdog, restart.
    sandbox.run("systemctl", "kill", "--signal=SIGSTOP", "pager-edge.service")
    props = sandbox.wait(
        "pager-edge.service",
        lambda p: int(p["NRestarts"]) > restarts and p["ActiveState"] == "active",
        30,
        "a watchdog restart",
    )
    assert props["MainPID"] != pid
    assert "Watchdog timeout" in sandbox.run("journalctl", "--no-pager", "-o", "cat")

    # 4. The web board's unit, as shipped: READY=1 once listening; the PIN from the 0600 secrets
    # file; a signed-in websocket starts a staff board that reads the database with nothing
    # writable; the PIN is in no journal line; a clean stop.
    sandbox.run("systemctl", "start", "pager-edge-web.service")
    props = sandbox.wait(
        "pager-edge-web.service",
        lambda p: p["ActiveState"] in ("active", "failed"),
        60,
        "active (READY=1)",
    )
    assert props["ActiveState"] == "active", sandbox.journal("pager-edge-web.service")
    out = sandbox.run("/opt/pager-edge/venv/bin/python", "/opt/pager-edge/webprobe.py", WEB_PIN)
    assert "wrong pin 401" in out and "right pin 303" in out
    assert "board read the database True" in out, sandbox.journal("pager-edge-web.service")
    sandbox.run("systemctl", "stop", "pager-edge-web.service")
    props = sandbox.show("pager-edge-web.service", "ActiveState", "Result")
    assert (props["ActiveState"], props["Result"]) == ("inactive", "success")
    journal = sandbox.journal("pager-edge-web.service")
    assert "staff session 1 started for 127.0.0.1" in journal
    assert "staff session 1 ended" in journal
    assert WEB_PIN not in sandbox.run("journalctl", "--no-pager", "-o", "cat")
