"""A fake systemd notify socket for tests.

Binds a real AF_UNIX datagram socket, as systemd does, and records every message with the PID
of its sender (SO_PASSCRED), so a test can check that the *main* process notified
(the unit uses ``NotifyAccess=main``).

Use the fixtures by binding them in a test module (a plain assignment keeps ruff quiet)::

    from tests import notify_socket as fake_systemd

    notify_socket = fake_systemd.notify_socket

    def test_daemon_ready(notify_socket):
        proc = subprocess.Popen([...], env={**os.environ, **notify_socket.env(watchdog_usec=200_000)})
        msg = notify_socket.wait_for("READY", timeout=10)
        assert msg.pid == proc.pid

or build a :class:`FakeNotifySocket` directly (it is a context manager).
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

_CREDS = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class NotifyMessage:
    """One datagram: its ``KEY=value`` assignments, the raw bytes and the sender's PID."""

    fields: dict[str, str]
    raw: bytes
    pid: int | None
    at: float = field(default_factory=time.monotonic)

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.fields.get(key, default)


class FakeNotifySocket:
    """Listens where ``$NOTIFY_SOCKET`` points; ``abstract=True`` uses an ``@name`` address."""

    def __init__(self, *, abstract: bool = False) -> None:
        self._dir: str | None = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        if abstract:
            name = f"pager-edge-test-notify-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            # tmp_path can exceed the 108-byte sun_path limit; keep the path short.
            self._dir = tempfile.mkdtemp(prefix="pe-notify-")
            self.address = os.path.join(self._dir, "notify.sock")
            self.sock.bind(self.address)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages: list[NotifyMessage] = []

    def env(self, *, watchdog_usec: int | None = None, watchdog_pid: int | None = None) -> dict:
        """Environment variables for the process under test, as systemd would set them."""
        env = {"NOTIFY_SOCKET": self.address}
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        if watchdog_pid is not None:
            env["WATCHDOG_PID"] = str(watchdog_pid)
        return env

    def receive(self, timeout: float = 5.0) -> NotifyMessage | None:
        """The next datagram, or None if none arrived within `timeout` seconds."""
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return None
        data, ancdata, _flags, _addr = self.sock.recvmsg(65536, socket.CMSG_SPACE(_CREDS.size))
        pid = None
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = _CREDS.unpack(payload[: _CREDS.size])[0]
        fields = {}
        for line in data.decode("utf-8", "replace").split("\n"):
            if "=" in line:
                key, value = line.split("=", 1)
                fields[key] = value
        msg = NotifyMessage(fields=fields, raw=data, pid=pid)
        self.messages.append(msg)
        return msg

    def collect(self, duration: float) -> list[NotifyMessage]:
        """Every datagram that arrives during the next `duration` seconds."""
        out = []
        deadline = time.monotonic() + duration
        while (left := deadline - time.monotonic()) > 0:
            msg = self.receive(left)
            if msg is not None:
                out.append(msg)
        return out

    def wait_for(self, key: str, value: str = "1", timeout: float = 5.0) -> NotifyMessage:
        """The first datagram carrying ``key=value``; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = self.receive(left)
            if msg is not None and msg.get(key) == value:
                return msg
        seen = [m.fields for m in self.messages]
        raise AssertionError(f"no {key}={value} within {timeout}s; received {seen}")

    def close(self) -> None:
        self.sock.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> FakeNotifySocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def notify_socket() -> Iterator[FakeNotifySocket]:
    """A fake notify socket at a filesystem path."""
    with FakeNotifySocket() as fake:
        yield fake


@pytest.fixture
def abstract_notify_socket() -> Iterator[FakeNotifySocket]:
    """A fake notify socket in the abstract namespace (``NOTIFY_SOCKET=@...``)."""
    with FakeNotifySocket(abstract=True) as fake:
        yield fake
