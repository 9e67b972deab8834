"""Cloud sync against real HTTP/1.1 receivers on loopback: faults, crashes, rejections, outages.

The four "done means" scenarios are the tests marked in their docstrings; the rest pin the
behaviour around them (retry policy, budget modes, retention, lease, CLI, status, secrets).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from agent.config import Config, with_overrides
from agent.session import Event
from agent.status import collect_status, format_status
from agent.store import Store
from agent.sync.engine import SyncEngine, SyncSetupError, check_endpoint, parse_retry_after
from agent.sync.state import SyncState
from agent.sync.status import sync_status
from bench.sync import evening
from pager_edge.cli import cli
from tests.agent_helpers import status
from tests.sync_receiver import TOKEN, FaultyServer, assert_exactly_once, free_port, write_events

SITE = "site-t"


class FastSleep:
    """Stands in for asyncio.sleep: records what the engine asked to wait, waits a tick."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def make_cfg(db: Path, url: str, **sync) -> Config:
    sync = {"endpoint": url, "timeout": 5.0, "max_backoff": 5.0, **sync}
    return with_overrides(Config(), site={"id": SITE}, store={"path": str(db)}, sync=sync)


def make_engine(cfg: Config, **kw) -> SyncEngine:
    kw.setdefault("sleep", FastSleep())
    return SyncEngine(cfg, token=TOKEN, **kw)


async def drain(engine: SyncEngine, runs: int = 400) -> list:
    results = []
    for _ in range(runs):
        res = await engine.sync_once()
        results.append(res)
        if res.done:
            return results
        await engine.sleep(res.delay)
    raise AssertionError(f"not drained after {runs} runs: {results[-1]}")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "pe.db"
    Store(path).close()
    return path


@pytest.fixture
def writer(db: Path):
    store = Store(db, synchronous="NORMAL")
    yield store
    store.close()


@pytest.fixture
def receiver():
    servers: list[FaultyServer] = []

    def start(**kw) -> FaultyServer:
        srv = FaultyServer(**kw).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def all_events(db: Path) -> list[dict]:
    store = Store(db, readonly=True)
    try:
        return list(store.iter_events())
    finally:
        store.close()


def lifecycle(uuid: str, number: int, label: str | None = "Smith") -> list[tuple[Event, str, str]]:
    at = "2026-11-22T18:00:00Z"
    return [
        (Event("created", uuid, number, at, {"label": label, "party_size": 2}), at, "notify"),
        (Event("updated", uuid, number, at, {"party_size": 3}), at, "notify"),
        (Event("paged", uuid, number, at, {"page": 1}), at, "notify"),
        (Event("cleared", uuid, number, at, {}), at, "notify"),
    ]


# --- done means 1 ---------------------------------------------------------------------------


async def test_random_failures_end_with_every_event_exactly_once_in_order(db, writer, receiver):
    """Done 1: 500s, 429 + Retry-After, timeouts, dropped connections, slow answers — at random."""
    srv = receiver(seed=11, fault_rate=0.5, retry_after=1)
    engine = make_engine(make_cfg(db, srv.url, max_batch_events=25, timeout=0.3))
    events = evening(140, realistic=True)
    try:
        for i in range(0, len(events), 150):  # the agent keeps writing while sync runs
            write_events(writer, events[i : i + 150])
            await engine.sync_once()
        results = await drain(engine)
    finally:
        await engine.aclose()
    assert set(srv.fault_counts) == {
        "500", "503", "429", "timeout_before", "timeout_after", "drop_before", "drop_after", "slow"
    }  # fmt: skip
    assert_exactly_once(srv.log, all_events(db), SITE)
    assert srv.log.duplicate_keys > 0  # stored-but-unanswered batches came again, same bytes
    delays = engine.sleep.delays
    assert delays and max(delays) <= 5.0
    retried_429 = [r for r in results if r.error and r.error.startswith("HTTP 429")]
    assert all(r.delay >= 1.0 for r in retried_429)
    assert results[-1].pending == 0


# --- done means 2 ---------------------------------------------------------------------------


def _sync_subprocess(cfg_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PAGER_EDGE_SYNC_TOKEN": TOKEN}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pager_edge",
            "sync",
            "--once",
            "--config",
            str(cfg_path),
            "--retries",
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("when", ["before", "after"])
def test_sigkill_mid_upload_then_restart_is_exactly_once(tmp_path, db, writer, receiver, when):
    """Done 2: SIGKILL while the receiver holds a request (before or after it stored the batch)."""
    srv = receiver(block_on=(3, when))
    write_events(writer, evening(40))
    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text(
        f'[site]\nid = "{SITE}"\n[store]\npath = "{db}"\n'
        f'[sync]\nendpoint = "{srv.url}"\nmax_batch_events = 20\ntimeout = 10.0\n'
    )
    proc = _sync_subprocess(cfg_path)
    try:
        assert srv.blocked.wait(20), proc.communicate(timeout=5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    srv.release.set()
    blocked = srv.blocked_key
    assert all_events(db) and SyncState(Store(db, readonly=True)).row()["inflight"]

    t0 = time.monotonic()
    rerun = _sync_subprocess(cfg_path)
    out, err = rerun.communicate(timeout=30)
    assert rerun.returncode == 0, err
    assert time.monotonic() - t0 < 15  # the dead holder's lease did not make it wait
    assert "nothing pending" in out
    assert_exactly_once(srv.log, all_events(db), SITE)
    if when == "after":  # the receiver had it: the same key came back with the same bytes
        assert blocked in srv.log.keys and srv.log.duplicate_keys >= 1


# --- done means 3 ---------------------------------------------------------------------------


async def test_rejected_batch_is_quarantined_shown_and_does_not_block(db, writer, receiver):
    """Done 3: a 400 for one batch; the rest goes, the bad event is quarantined and shown."""

    def reject(batch):
        bad = [e for e in batch["events"] if (e["changes"] or {}).get("label") == "REJECT-ME"]
        return "label not allowed" if bad else None

    srv = receiver(reject=reject)
    write_events(writer, evening(30))
    write_events(writer, lifecycle("bad-session", 7, label="REJECT-ME"))
    write_events(writer, evening(30, seed=99))
    engine = make_engine(make_cfg(db, srv.url, max_batch_events=50))
    try:
        res = await engine.sync_once()
    finally:
        await engine.aclose()
    events = all_events(db)
    bad = [e for e in events if e["changes"].get("label") == "REJECT-ME"]
    assert res.done and res.quarantined == 1 and res.pending == 0
    assert srv.log.count() == len(events) - 1
    assert f"{SITE}:{bad[0]['seq']}" not in srv.log.events
    assert max(int(k.split(":")[1]) for k in srv.log.events) == events[-1]["seq"]  # moved on
    report = status(db)
    s = report["sync"]
    assert s["quarantined"] == 1 and s["quarantined_events"] == 1 and s["backlog"] == 0
    q = s["quarantine"][0]
    assert q["status"] == 400 and "label not allowed" in q["reason"]
    assert q["key_range"] == f"{bad[0]['seq']}-{bad[0]['seq']}"
    assert "sync:" in format_status(report)


async def test_receiver_rejecting_everything_pauses_instead_of_quarantining_all(
    db, writer, receiver
):
    srv = receiver(reject=lambda batch: "schema v2 required")
    write_events(writer, evening(100))
    engine = make_engine(make_cfg(db, srv.url, max_batch_events=50))
    try:
        first = await engine.sync_once()
        second = await engine.sync_once()
    finally:
        await engine.aclose()
    assert first.quarantined == 8 and "check the receiver" in first.error
    assert first.delay == 5.0  # max_backoff
    assert second.quarantined == 0 and second.requests == 1  # one probe, nothing more lost
    assert second.pending == first.pending > 250
    other = make_engine(make_cfg(db, srv.url, max_batch_events=50))  # e.g. `sync --once`
    try:
        third = await other.sync_once()
    finally:
        await other.aclose()
    assert third.quarantined == 0 and third.requests == 1  # the streak is in the store


# --- done means 4 ---------------------------------------------------------------------------


class RssSampler:
    """Resident set size of this process, sampled every 20 ms on a thread, by phase."""

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def __init__(self) -> None:
        self.phase = "start"
        self.samples: dict[str, list[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @classmethod
    def rss(cls) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * cls.PAGE

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.samples.setdefault(self.phase, []).append(self.rss())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_long_outage_100k_backlog_memory_flat_then_drains(tmp_path, db, writer):
    """Done 4: endpoint down, 100,000 events pile up; memory stays flat; all drain after."""
    events = evening(33_334)[:100_000]
    write_events(writer, events, chunk=20_000)
    del events
    port = free_port()
    url = f"http://127.0.0.1:{port}/ingest"
    cfg = make_cfg(db, url, max_batch_events=5000, max_batch_bytes=4_000_000)

    async def scenario(rss: RssSampler):
        engine = make_engine(cfg)
        proc = None
        try:
            rss.phase = "down"
            for _ in range(4):  # down: connection refused, run after run
                res = await engine.sync_once()
                assert res.pending == 100_000 and res.retryable and "ConnectError" in res.error
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "agent.sync.receiver", "--port", str(port),
                "--token", TOKEN, "--count-only", stdout=subprocess.PIPE,
            )  # fmt: skip
            assert b"listening" in await proc.stdout.readline()
            rss.phase = "drain"
            res = await engine.sync_once()
            rss.phase = "after"
            async with httpx.AsyncClient() as client:
                stats = (await client.get(f"http://127.0.0.1:{port}/stats")).json()
            return res, stats
        finally:
            await engine.aclose()
            if proc is not None:
                proc.terminate()
                await proc.wait()

    base = RssSampler.rss()
    with RssSampler() as rss:
        res, stats = asyncio.run(scenario(rss))
    assert res.done and res.events == 100_000 and res.batches == 20
    assert stats["events"] == 100_000 and stats["duplicate_events"] == 0
    mb = 1 << 20
    down, drain = rss.samples["down"], rss.samples["drain"]
    # One 5,000-event batch in flight costs a few MB; holding the backlog would cost > 100 MB.
    assert max(down) - base < 25 * mb, (max(down) - base) / mb
    assert max(drain) - base < 25 * mb, (max(drain) - base) / mb
    third = len(drain) // 3  # no growth from the first third of the drain to the last
    assert max(drain[-third:]) - max(drain[:third]) < 8 * mb


# --- retry policy ---------------------------------------------------------------------------


async def test_keepalive_one_connection_and_byte_counts_match_the_receiver(db, writer, receiver):
    srv = receiver()
    write_events(writer, evening(60))
    engine = make_engine(make_cfg(db, srv.url, max_batch_events=30))
    try:
        res = await engine.sync_once()
        again = await engine.sync_once()
    finally:
        await engine.aclose()
    assert res.done and res.batches == 6 and again.requests == 0
    assert srv.log.connections == 1  # one connection, kept alive across batches
    assert (res.bytes_sent, res.bytes_received) == (srv.log.bytes_in, srv.log.bytes_out)
    store = Store(db, readonly=True)
    try:
        s = sync_status(store)
    finally:
        store.close()
    assert s["bytes_sent"] == srv.log.bytes_in and s["bytes_received"] == srv.log.bytes_out
    assert s["connections"] == 1 and s["last_success"] and s["last_cycle"]["pending"] == 0


async def test_retry_after_is_honoured_and_capped(db, writer, receiver):
    srv = receiver(seed=1, fault_rate=1.0, faults=("429",), retry_after=4)
    write_events(writer, evening(3))
    engine = make_engine(make_cfg(db, srv.url, max_backoff=30.0))
    capped = make_engine(make_cfg(db, srv.url, max_backoff=2.0))
    try:
        res = await engine.sync_once()
        res_capped = await capped.sync_once()
        srv.fault_rate = 0.0
        done = await engine.sync_once()
    finally:
        await engine.aclose()
        await capped.aclose()
    assert res.retryable and 4.0 <= res.delay <= 30.0
    assert res_capped.delay == 2.0
    assert done.done and done.delay == 30.0  # back to the interval
    assert parse_retry_after("120", 0) == 120.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 40.0) == 60.0
    assert parse_retry_after("soon", 0) is None


async def test_bad_token_pauses_and_quarantines_nothing(db, writer, receiver):
    srv = receiver(token="another-token")
    write_events(writer, evening(5))
    engine = make_engine(make_cfg(db, srv.url))
    try:
        res = await engine.sync_once()
    finally:
        await engine.aclose()
    assert not res.retryable and res.quarantined == 0 and res.delay == 5.0
    assert "HTTP 401" in res.error and "PAGER_EDGE_SYNC_TOKEN" in res.error
    assert res.pending == len(all_events(db))


def test_endpoint_and_token_rules(db):
    for ok in ("https://ingest.example.com/v1", "http://127.0.0.1:8080/x", "http://[::1]/x",
               "http://localhost/x", "http://127.8.9.10/x"):  # fmt: skip
        check_endpoint(ok)
    for bad in ("", "http://10.0.0.5/ingest", "http://ingest.example.com/", "ftp://x/",
                "https://user:pw@ingest.example.com/", "not a url"):  # fmt: skip
        with pytest.raises(SyncSetupError):
            check_endpoint(bad)
    with pytest.raises(SyncSetupError, match="PAGER_EDGE_SYNC_TOKEN"):
        SyncEngine(make_cfg(db, "https://ingest.example.com/"), token=None)


# --- budget modes ---------------------------------------------------------------------------


async def test_budget_modes_critical_defers_blocked_holds_normal_backfills(db, writer, receiver):
    srv = receiver()
    for i in range(10):
        write_events(writer, lifecycle(f"s{i}", i))  # 40 events, 10 of them "updated"
    mode = ["blocked"]
    engine = make_engine(make_cfg(db, srv.url, max_batch_events=8), mode_provider=lambda: mode[0])
    try:
        blocked = await engine.sync_once()
        assert blocked.requests == 0 and blocked.pending == 40 and "blocked" in blocked.error
        mode[0] = "critical"
        critical = await engine.sync_once()
        kinds = {e["kind"] for e in srv.log.events.values()}
        assert kinds == {"created", "paged", "cleared"} and srv.log.count() == 30
        assert critical.pending == 10 and "critical" in critical.error
        assert critical.batches == 1  # critical batches are 4× bigger
        assert critical.delay == 900.0  # and at least 15 min apart
        mode[0] = "normal"
        normal = await engine.sync_once()
    finally:
        await engine.aclose()
    assert normal.done and normal.events == 10
    assert_exactly_once(srv.log, all_events(db), SITE, ordered=False)  # updates came last


async def test_inflight_batch_is_resent_identically_after_a_mode_change(db, writer, receiver):
    """A batch that may have reached the receiver goes again as it was, whatever the mode now."""
    srv = receiver(seed=3, fault_rate=1.0, faults=("timeout_after",))
    for i in range(5):
        write_events(writer, lifecycle(f"s{i}", i))
    mode = ["normal"]
    cfg = make_cfg(db, srv.url, max_batch_events=12, timeout=0.3)
    engine = make_engine(cfg, mode_provider=lambda: mode[0])
    try:
        first = await engine.sync_once()
        assert first.retryable and srv.log.count() == 12  # stored, answer lost
        srv.fault_rate = 0.0
        mode[0] = "critical"  # would now cut (0, 48] lifecycle-only: not for the in-flight batch
        await engine.sync_once()
        mode[0] = "normal"
        await drain(engine)
    finally:
        await engine.aclose()
    assert srv.log.duplicate_keys == 1 and not srv.log.key_mismatches
    assert f"{SITE}:1-12" in srv.log.keys
    assert_exactly_once(srv.log, all_events(db), SITE, ordered=False)


# --- retention, size cap --------------------------------------------------------------------


async def test_retention_prunes_only_delivered_events(db, writer, receiver):
    srv = receiver(reject=lambda b: "no" if any(e["uuid"] == "bad" for e in b["events"]) else None)
    old = "2020-01-01T00:00:00Z"
    write_events(
        writer, [(Event("created", f"o{i}", i, old, {}), old, "notify") for i in range(20)]
    )
    write_events(writer, [(Event("created", "bad", 1, old, {}), old, "notify")])
    engine = make_engine(make_cfg(db, srv.url, max_batch_events=7, retention_days=30))
    try:
        await engine.sync_once()  # delivers 20, quarantines 1 (prune ran first: nothing synced)
        write_events(
            writer, [(Event("created", f"n{i}", i, old, {}), old, "notify") for i in range(5)]
        )
        store = Store(db)
        SyncState(store).conn.execute("UPDATE sync_state SET last_prune = NULL")
        store.conn.commit()
        store.close()
        engine.cfg = with_overrides(engine.cfg, sync={"mode": "blocked"})
        await engine.sync_once()  # prunes; sends nothing
    finally:
        await engine.aclose()
    left = all_events(db)
    assert [e["uuid"] for e in left] == ["bad"] + [f"n{i}" for i in range(5)]
    st = sync_status(Store(db, readonly=True))
    assert st["pruned"] == 20 and st["backlog"] == 5 and st["quarantined"] == 1


async def test_size_cap_alerts_loudly_and_never_drops_unsynced(db, writer, receiver, caplog):
    write_events(writer, evening(300))
    n = len(all_events(db))
    cfg = with_overrides(
        make_cfg(db, f"http://127.0.0.1:{free_port()}/ingest"), store={"max_db_bytes": 4096}
    )
    engine = make_engine(cfg)
    try:
        with caplog.at_level(logging.ERROR, logger="agent.sync"):
            res = await engine.sync_once()
    finally:
        await engine.aclose()
    assert res.pending == n and len(all_events(db)) == n  # nothing unsynced dropped
    assert any(
        "max_db_bytes" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
    )
    alert = sync_status(Store(db, readonly=True))["alert"]
    assert alert and f"{n} events not yet synced" in alert


# --- concurrency ----------------------------------------------------------------------------


async def test_lease_keeps_concurrent_runs_apart_and_dead_holders_out(db, writer, receiver):
    srv = receiver()
    write_events(writer, evening(10))
    a = make_engine(make_cfg(db, srv.url))
    b = make_engine(make_cfg(db, srv.url))
    try:
        held = await a._call_state(SyncState.acquire, a.owner, 60.0, time.time())
        assert held is None
        busy = await b.sync_once()
        assert busy.busy_pid == os.getpid() and busy.requests == 0 and not busy.done
        await a._call_state(SyncState.release, a.owner)
        # a holder that died (pid gone) is taken over at once, its lease unexpired
        dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
        await dead.wait()
        await a._call_state(SyncState.acquire, "ghost", 600.0, time.time())
        conn = (await a._in_db_thread(lambda: a.state)).conn
        await a._in_db_thread(
            lambda: (
                conn.execute("UPDATE sync_state SET lease_pid = ?", (dead.pid,)),
                conn.commit(),
            )
        )
        res = await b.sync_once()
    finally:
        await a.aclose()
        await b.aclose()
    assert res.done and srv.log.count() == len(all_events(db))


async def test_run_forever_keeps_up_with_new_events_and_closes_cleanly(db, writer, receiver):
    srv = receiver()
    engine = make_engine(make_cfg(db, srv.url, interval=0.01), sleep=asyncio.sleep)
    task = asyncio.create_task(engine.run_forever())
    try:
        for i in range(5):
            write_events(writer, lifecycle(f"r{i}", i))
            await asyncio.sleep(0.05)
        for _ in range(100):
            if srv.log.count() == 20:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert engine._http is None and engine._store is None
    assert_exactly_once(srv.log, all_events(db), SITE)


# --- CLI, status, secrets -------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def test_cli_exit_codes(tmp_path, db, writer, receiver, monkeypatch):
    srv = receiver()
    write_events(writer, evening(5))
    cfg = tmp_path / "c.toml"

    def conf(url: str) -> None:
        cfg.write_text(
            f'[site]\nid = "{SITE}"\n[store]\npath = "{db}"\n[sync]\nendpoint = "{url}"\n'
        )

    conf(srv.url)
    monkeypatch.delenv("PAGER_EDGE_SYNC_TOKEN", raising=False)
    r = _cli(["sync", "--once", "--config", str(cfg)])
    assert r.exit_code == 2 and "PAGER_EDGE_SYNC_TOKEN" in r.output
    env = {"PAGER_EDGE_SYNC_TOKEN": TOKEN}
    conf("http://192.0.2.10/ingest")
    r = _cli(["sync", "--once", "--config", str(cfg)], env)
    assert r.exit_code == 2 and "loopback" in r.output
    conf(f"http://127.0.0.1:{free_port()}/ingest")
    r = _cli(["sync", "--once", "--config", str(cfg), "--retries", "0"], env)
    assert r.exit_code == 1 and "events pending: ConnectError" in r.output
    r = _cli(["sync", "--once", "--config", str(cfg), "--db", str(tmp_path / "nope.db")], env)
    assert r.exit_code == 2 and "no database" in r.output
    conf(srv.url)
    r = _cli(["sync", "--once", "--config", str(cfg), "--mode", "blocked"], env)
    assert r.exit_code == 1 and "blocked" in r.output
    r = _cli(["sync", "--once", "--config", str(cfg), "--json"], env)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["done"] and doc["status"]["backlog"] == 0
    r = _cli(["status", "--json", "--db", str(db)])
    s = json.loads(r.output)["sync"]
    assert {"backlog", "last_success", "bytes_sent", "quarantined"} <= set(s)
    assert s["backlog"] == 0 and s["bytes_sent"] > 0 and s["quarantined"] == 0


def test_status_before_sync_ever_ran(tmp_path):
    """A store still at the pre-sync schema (read-only status cannot migrate it)."""
    import sqlite3

    from agent.store import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    import sqlite_utils

    MIGRATIONS[0](sqlite_utils.Database(conn))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    s = sync_status(Store(path, readonly=True))
    assert s == {"backlog": 0, "last_success": None, "bytes_sent": 0, "quarantined": 0}


async def test_token_never_reaches_logs_errors_or_status(db, writer, receiver, caplog):
    token = "sekrit-token-never-to-be-seen-42"
    srv = receiver(token=None, seed=5, fault_rate=1.0, faults=("500", "drop_before"))
    write_events(writer, evening(4))
    engine = SyncEngine(make_cfg(db, srv.url), token=token, sleep=FastSleep())
    errors = []
    try:
        with caplog.at_level(logging.DEBUG):
            for _ in range(4):
                errors.append((await engine.sync_once()).error)
            srv.token = "x"  # now 401
            errors.append((await engine.sync_once()).error)
            srv.token = None
            srv.fault_rate = 0
            await engine.sync_once()
            logging.getLogger("agent.sync").error("oops %s", engine._client().headers)
    finally:
        await engine.aclose()
    store = Store(db, readonly=True)
    text = caplog.text + repr(errors) + json.dumps(collect_status(store), default=str)
    text += repr(engine)
    store.close()
    assert token not in text
    assert all(errors[:5])
