"""Fixtures for the cloud tests: a real PostgreSQL, a fresh database per test, replicas.

``postgres`` (session scope; one cluster per xdist worker) runs Debian's initdb + pg_ctl in a temp
dir as ``nobody`` on a private port (:class:`cloud.pgtemp.TempCluster`), fsync off: durability is
PostgreSQL's business, what the tests check is what the service commits and answers.
``cloud_db`` gives each test an empty, migrated database of its own, so tests run in parallel.

Test modules load these with ``pytest_plugins = ["tests.cloud_fixtures"]``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from cloud.pgtemp import PostgresUnavailable, TempCluster, free_port
from cloud.schema import migrate
from tests.cloud_helpers import Replica, cloud_config, run


@pytest.fixture(scope="session")
def postgres() -> Iterator[TempCluster]:
    try:
        cluster = TempCluster(durable=False)
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    with cluster:
        yield cluster


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
