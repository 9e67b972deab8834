"""Done 1: the agent's real sync engine → a load balancer → two replicas → one PostgreSQL.

Every event exactly once, each session's in order, through an agent SIGKILLed mid-upload (the
replica had stored the batch, the agent never heard), a replica SIGKILLed mid-batch (inside its
database statement, held there by a row lock the test takes), and random 500s and connections
dropped before and after the replica stored the batch.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from agent.config import Config, with_overrides
from agent.store import Store
from agent.sync.engine import SyncEngine
from agent.sync.state import SyncState
from bench.sync import evening
from tests.cloud_helpers import add_site, query, run
from tests.cloud_proxy import Proxy
from tests.sync_receiver import write_events

pytest_plugins = ["tests.cloud_fixtures"]

SITE = "site-chain"
BATCH = 10

pytestmark = pytest.mark.slow


def store_events(db: Path) -> list[dict]:
    store = Store(db, readonly=True)
    try:
        return list(store.iter_events())
    finally:
        store.close()


def agent_config(tmp_path: Path, db: Path, url: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[site]\nid = "{SITE}"\n[store]\npath = "{db}"\n'
        f'[sync]\nendpoint = "{url}"\nmax_batch_events = {BATCH}\ntimeout = 10.0\n'
        "max_backoff = 0.3\n"
    )
    return path


def kill_agent_mid_upload(cfg_path: Path, token: str, proxy: Proxy) -> None:
    """`pager-edge sync --once` SIGKILLed while the balancer holds the replica's 200 for batch 3."""
    proxy.park_on = (3, "after")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pager_edge", "sync", "--once", "--config", str(cfg_path),
         "--retries", "0"],
        env={**os.environ, "PAGER_EDGE_SYNC_TOKEN": token},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proxy.parked.wait(30), proc.communicate(timeout=5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    proxy.park_on = None
    proxy.release.set()


async def wait_for_lock_waiter(dsn: str, timeout: float = 20.0) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                "'pager-edge-cloud' AND wait_event_type = 'Lock'"
            )
            if n:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("no replica ever waited on the test's row lock")
    finally:
        await conn.close()


async def drain(engine: SyncEngine, done: asyncio.Event, deadline: float) -> None:
    """Sync runs back to back (the engine's own backoff is the pause) until all is delivered."""
    while True:
        res = await engine.sync_once()
        if done.is_set() and res.done:
            return
        assert time.monotonic() < deadline, f"not drained: {res}"
        await asyncio.sleep(min(res.delay, 0.05) if res.error else 0.01)


def test_engine_two_replicas_faults_and_kills_exactly_once_in_order(tmp_path, cloud_db, replicas):
    token = run(add_site(cloud_db, SITE))
    reps = [replicas("a"), replicas("b")]
    proxy = Proxy([r.base for r in reps], seed=5).start()
    db = tmp_path / "site.db"
    writer = Store(db, synchronous="NORMAL")
    try:
        write_events(writer, evening(60, realistic=True))
        cfg_path = agent_config(tmp_path, db, proxy.url)

        # 1. The agent dies while batch 3 is stored but unanswered.
        kill_agent_mid_upload(cfg_path, token, proxy)
        inflight = SyncState(Store(db, readonly=True)).row()["inflight"]
        assert inflight, "the killed agent left its batch in flight"
        stored = run(query(cloud_db, "SELECT key FROM batches ORDER BY first_seq"))
        assert [r["key"] for r in stored] == [f"{SITE}:{a}-{a + 9}" for a in (1, 11, 21)]

        cfg = with_overrides(
            Config(),
            site={"id": SITE},
            store={"path": str(db), "synchronous": "NORMAL"},
            sync={"endpoint": proxy.url, "max_batch_events": BATCH, "timeout": 5.0,
                  "max_backoff": 0.3},
        )  # fmt: skip
        killed: list[int] = []

        async def scenario() -> None:
            engine = SyncEngine(cfg, token=token)
            done = asyncio.Event()
            # 2. A replica dies inside its statement: the test holds seq 35 (batch 31-40).
            blocker = await asyncpg.connect(cloud_db)
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute(
                "INSERT INTO events (site, seq, session, number, kind, source, batch_key)"
                " VALUES ($1, 35, 'blocker', 0, 'created', 'test', 'blocker')",
                SITE,
            )
            task = asyncio.create_task(drain(engine, done, time.monotonic() + 90))
            try:
                await wait_for_lock_waiter(cloud_db)
                busy = proxy.busy_backend()
                assert busy is not None
                reps[busy].kill()
                killed.append(busy)
                await tx.rollback()
                await blocker.close()
                # 3. Bad days at the balancer while the site keeps writing; the replica returns.
                proxy.fault_rate = 0.3
                for i in range(3):
                    write_events(
                        writer, evening(20, seed=100 + i, realistic=True, start=1_795_100_000 + i)
                    )
                    await asyncio.sleep(0.3)
                    if i == 1:
                        await asyncio.to_thread(reps[busy].start)
                done.set()
                await asyncio.wait_for(task, 120)
            finally:
                task.cancel()
                await engine.aclose()

        asyncio.run(scenario())
    finally:
        writer.close()
        proxy.stop()

    want = store_events(db)
    got = run(query(cloud_db, "SELECT * FROM events_export WHERE site = $1 ORDER BY seq", SITE))
    assert len(got) == len(want) > 300
    for g, w in zip(got, want, strict=True):
        assert g["id"] == f"{SITE}:{w['seq']}"
        assert _as_export(g) == w
    # Each event came in exactly one accepted batch, batches covering the log without overlap.
    batches = run(query(cloud_db, "SELECT * FROM batches ORDER BY first_seq"))
    assert sum(b["events"] for b in batches) == len(want)
    for a, b in itertools.pairwise(batches):
        assert a["last_seq"] < b["first_seq"]
        assert a["received_at"] <= b["received_at"], "a later batch was stored first"
    # Per session, no event was stored before an earlier one of the same session.
    order = run(
        query(
            cloud_db,
            "SELECT session, array_agg(received_at ORDER BY seq) AS t FROM events"
            " WHERE site = $1 GROUP BY session",
            SITE,
        )
    )
    for r in order:
        assert r["t"] == sorted(r["t"]), f"session {r['session']} stored out of order"
    # The bad days really happened.
    assert killed and proxy.faults["500"] and proxy.faults["drop_before"]
    assert proxy.faults["drop_after"] and proxy.statuses[409] >= 1
    assert proxy.by_backend[0] and proxy.by_backend[1]


def _as_export(row) -> dict:
    changes = row["changes"]
    return {
        "seq": row["seq"],
        "uuid": row["uuid"],
        "number": row["number"],
        "kind": row["kind"],
        "at": row["at"],
        "observed_at": row["observed_at"],
        "changes": json.loads(changes) if isinstance(changes, str) else changes,
        "source": row["source"],
    }
