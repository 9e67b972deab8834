"""Helpers for the cloud tests: queries, sites, config files, service replicas as processes.

Replicas are real ``pager-edge cloud serve`` processes on fixed ports, so a test can SIGKILL one
and start it again where the load balancer expects it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

DSN_ENV = "PAGER_EDGE_CLOUD_DSN"


def run(coro):
    return asyncio.run(coro)


async def query(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def add_site(dsn: str, site: str, zone: str = "America/New_York", **kw) -> str:
    from cloud.sites import add_site as add

    conn = await asyncpg.connect(dsn)
    try:
        return await add(conn, site, zone, **kw)
    finally:
        await conn.close()


def cloud_config(tmp_path: Path, name: str = "cloud.toml", **cloud) -> Path:
    """A config file with a [cloud] section (host 127.0.0.1) and the given keys."""
    cloud.setdefault("host", "127.0.0.1")
    lines = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in cloud.items())
    path = tmp_path / name
    path.write_text(f'[cloud]\n{lines}[logging]\nlevel = "INFO"\n')
    return path


@dataclass
class Replica:
    """One `pager-edge cloud serve` process on a fixed port (so it can come back on it)."""

    config: Path
    dsn: str
    port: int
    log: Path
    proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/v1/batches"

    def start(self, *, wait: bool = True, **env: str) -> Replica:
        env = {**os.environ, DSN_ENV: self.dsn, **env}
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pager_edge", "cloud", "serve", "--config", str(self.config),
             "--port", str(self.port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out.close()
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"replica exited {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"replica not healthy within {timeout} s: {self.output()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def rss_peak(self) -> int:
        """Peak resident memory of the process so far (VmHWM), bytes."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")


def store_shaped(rows: list, first: int = 1) -> list[dict]:
    """`bench.sync.evening()` rows as the store exports them (what batches are built from)."""
    return [ev.record(first + i, observed, source) for i, (ev, observed, source) in enumerate(rows)]


def post(url: str, token: str | None, key: str, body: bytes, **headers: str) -> httpx.Response:
    """One batch POST with the agent's headers (overridable)."""
    h = {"Content-Type": "application/json", "Content-Encoding": "gzip", "Idempotency-Key": key}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers)
    return httpx.post(url, content=body, headers=h, timeout=30)
