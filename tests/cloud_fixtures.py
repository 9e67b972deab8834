"""A real PostgreSQL for the cloud tests, fresh databases from it, and service replicas.

``postgres`` (session scope; one cluster per xdist worker) runs Debian's initdb + pg_ctl in a temp
dir as ``nobody`` on a private port (:class:`cloud.pgtemp.TempCluster`), fsync off: durability is
PostgreSQL's business, what the tests check is what the service commits and answers.
``cloud_db`` gives each test an empty, migrated database of its own, so tests run in parallel.
Replicas are real ``pager-edge cloud serve`` processes, so a test can SIGKILL one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from cloud.pgtemp import PostgresUnavailable, TempCluster, free_port
from cloud.schema import migrate

DSN_ENV = "PAGER_EDGE_CLOUD_DSN"


@pytest.fixture(scope="session")
def postgres() -> Iterator[TempCluster]:
    try:
        cluster = TempCluster(durable=False)
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    with cluster:
        yield cluster


def run(coro):
    return asyncio.run(coro)


async def _admin(cluster: TempCluster, sql: str) -> None:
    conn = await asyncpg.connect(cluster.dsn())
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _migrate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()


@pytest.fixture
def cloud_db(postgres: TempCluster) -> Iterator[str]:
    """The DSN of a new, migrated database (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    run(_admin(postgres, f"CREATE DATABASE {name}"))
    dsn = postgres.dsn(name)
    run(_migrate(dsn))
    try:
        yield dsn
    finally:
        run(_admin(postgres, f"DROP DATABASE {name} WITH (FORCE)"))


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
    path.write_text(f"[cloud]\n{lines}[logging]\nlevel = \"INFO\"\n")
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

    def start(self, *, wait: bool = True) -> Replica:
        env = {**os.environ, DSN_ENV: self.dsn}
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "cloud", "serve", "--config", str(self.config),
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


@pytest.fixture
def replicas(tmp_path: Path, cloud_db: str):
    """start(**cloud_keys) → a healthy replica against this test's database; all stopped after."""
    started: list[Replica] = []

    def start(name: str | None = None, **cloud) -> Replica:
        name = name or f"r{len(started)}"
        cfg = cloud_config(tmp_path, f"{name}.toml", **cloud)
        rep = Replica(cfg, cloud_db, free_port(), tmp_path / f"{name}.log")
        started.append(rep)
        return rep.start()

    yield start
    for rep in started:
        rep.stop()


__all__ = [
    "DSN_ENV",
    "Replica",
    "add_site",
    "cloud_config",
    "cloud_db",
    "postgres",
    "query",
    "replicas",
    "run",
]
