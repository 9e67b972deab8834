"""Helpers for the web board tests: a served board on loopback, sign-in, board processes.

Everything is real: an aiohttp server on a loopback port, `pager-edge board` processes started by
textual-serve for each websocket, a real SQLite store, plain HTTP requests from aiohttp's client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from http.cookies import Morsel
from pathlib import Path
from typing import Any

import aiohttp

from agent.clock import VirtualClock
from agent.config import Config, load_config, to_toml, with_overrides
from tests.board_fixtures import board_config, make_store
from tui.web.server import COOKIE, WebBoard

# Eight digits: no process id (7 digits at most) or port in a log line can contain it by chance.
PIN = "73019482"
WRONG = "11111111"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def site_config(tmp_path: Path, **web: Any) -> Config:
    """A site config file (board data pinned by make_store) and the Config loaded from it."""
    db = make_store(tmp_path / "agent.db")
    cfg = with_overrides(board_config(db), web=web)
    path = tmp_path / "config.toml"
    path.write_text(to_toml(cfg))
    return load_config(path)


@contextlib.asynccontextmanager
async def served(
    cfg: Config, *, clock: VirtualClock | None = None, **kw: Any
) -> AsyncIterator[WebBoard]:
    """The web board on a free loopback port; the idle sweep runs only when a test calls it."""
    board = WebBoard(cfg, PIN, port=0, clock=clock or VirtualClock(), sweep_interval=3600, **kw)
    async with board:
        yield board


def client(**kw: Any) -> aiohttp.ClientSession:
    """An HTTP client that keeps no cookies of its own: each test says which cookie it sends."""
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=20), **kw
    )


async def post_pin(http: aiohttp.ClientSession, url: str, pin: str) -> aiohttp.ClientResponse:
    async with http.post(f"{url}/login", data={"pin": pin}, allow_redirects=False) as r:
        await r.read()
        return r


async def sign_in(http: aiohttp.ClientSession, url: str, pin: str = PIN) -> Morsel[str]:
    r = await post_pin(http, url, pin)
    assert r.status == 303, r.status
    return r.cookies[COOKIE]


def cookie_header(morsel: Morsel[str]) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={morsel.value}"}


async def eventually(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


async def first_output(ws: aiohttp.ClientWebSocketResponse, needle: bytes, timeout=30.0) -> bytes:
    """What the board process drew until `needle` appeared (its terminal output, as bytes)."""
    seen = b""
    async with asyncio.timeout(timeout):
        while needle not in seen:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                seen += msg.data
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                raise AssertionError(f"websocket closed before {needle!r}: {seen[-500:]!r}")
    return seen


async def until_closed(ws: aiohttp.ClientWebSocketResponse, timeout: float = 15.0) -> None:
    """Read (and drop) the board's output until the server closes the websocket."""
    async with asyncio.timeout(timeout):
        while (await ws.receive()).type not in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
        ):
            pass


def cmdline(pid: int) -> list[str]:
    """A process's argv (the board command runs under /bin/sh -c: look at its children too)."""
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return [a.decode() for a in raw.split(b"\0") if a]


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (from /proc's parent links)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [p for p, pp in parents.items() if pp == current]
        out += children
        frontier += children
    return out


def board_argvs(pid: int) -> list[list[str]]:
    """The argv of every board process (`python -m tui.web.tablet`) below `pid`."""
    found = []
    for child in descendants(pid):
        with contextlib.suppress(OSError):
            argv = cmdline(child)
            if "tui.web.tablet" in argv:
                found.append(argv)
    return found


def spawn_web(config: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """`pager-edge web --config …` as a site runs it, output (stdout and stderr) into `log`."""
    clean = {k: v for k, v in os.environ.items() if k != "PAGER_EDGE_WEB_PIN"}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pager_edge", "web", "--config", str(config)],
            env={**clean, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def wait_listening(proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while "web board on" not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            raise AssertionError(f"pager-edge web exited {proc.returncode}: {log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"pager-edge web did not listen: {log.read_text()}")
        await asyncio.sleep(0.05)
