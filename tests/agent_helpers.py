"""Shared helpers for end-to-end agent tests: config, polling, subprocess agent."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.clock import VirtualClock
from agent.config import Config, parse_config
from agent.export import session_records
from agent.health import Health
from agent.status import collect_status
from agent.store import Store, StoreError

__all__ = ["VirtualClock"]

ZONE = "America/New_York"


def config_text(db: Path, port: int, *, ping_interval: float = 0.3, **controller: Any) -> str:
    extra = "".join(f"{k} = {v!r}\n" for k, v in controller.items())
    return (
        f'[store]\npath = "{db}"\n'
        f'[controller]\nhost = "127.0.0.1"\nport = {port}\nping_interval = {ping_interval}\n'
        f'timezone = "{ZONE}"\nrequest_timeout = 1.0\nmax_backoff = 0.5\n{extra}'
    ).replace("'", '"')


def make_config(db: Path, port: int, **kw: Any) -> Config:
    return parse_config(config_text(db, port, **kw))


async def eventually(predicate: Callable[[], bool], *, timeout: float = 10.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


def _open(db: Path) -> Store | None:
    try:
        return Store(db, readonly=True)
    except StoreError:  # not created or not initialised yet
        return None


def exported(db: Path) -> list[dict[str, Any]]:
    store = _open(db)
    if store is None:
        return []
    try:
        return sorted(session_records(store), key=lambda r: (r["created"] or "", r["uuid"]))
    finally:
        store.close()


def status(db: Path) -> dict[str, Any]:
    """`pager-edge status --json` of the store at `db`, as the command builds it."""
    store = Store(db, readonly=True)
    try:
        return collect_status(store)
    finally:
        store.close()


def truth(sim) -> list[dict[str, Any]]:
    return sorted(sim.ground_truth(), key=lambda r: (r["created"] or "", r["uuid"]))


def health(db: Path) -> Health:
    store = _open(db)
    if store is None:
        return Health()
    try:
        return store.health()
    finally:
        store.close()


def spawn_agent(config: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pager_edge", "run", "--config", str(config)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def converges(db: Path, sim, *, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Wait until the export equals the simulator's ground truth; on timeout show the difference."""
    try:
        await eventually(lambda: exported(db) == truth(sim), timeout=timeout)
    except AssertionError:
        got = {r["uuid"]: r for r in exported(db)}
        want = {r["uuid"]: r for r in truth(sim)}
        diff = {
            u: (want.get(u), got.get(u))
            for u in want.keys() | got.keys()
            if want.get(u) != got.get(u)
        }
        raise AssertionError(f"export differs from ground truth (want, got): {diff}") from None
    return truth(sim)
