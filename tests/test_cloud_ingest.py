"""The ingest contract of agent/sync/README.md against a replica and a real PostgreSQL.

Done 3 is here: a token writes only its own site (403, and the real engine pauses without
quarantining), a revoked token is refused, a gzip bomb and an oversized body are refused without
the replica's memory growing.
"""

from __future__ import annotations

import asyncio
import json
import signal
import struct
import time
import zlib
from pathlib import Path

import asyncpg
import httpx
from click.testing import CliRunner

from agent.config import Config, with_overrides
from agent.store import Store
from agent.sync.engine import SyncEngine
from agent.sync.wire import BatchEncoder, compress, encode_batch, heartbeat_body
from bench.sync import evening
from cloud.pgtemp import free_port
from pager_edge.cli import cli
from tests import notify_socket as fake_systemd
from tests.cloud_helpers import (
    DSN_ENV,
    Replica,
    add_site,
    cloud_config,
    post,
    query,
    run,
    store_shaped,
)
from tests.sync_receiver import write_events

pytest_plugins = ["tests.cloud_fixtures"]
notify_socket = fake_systemd.notify_socket

MB = 1 << 20


def engine_for(tmp_path: Path, site: str, url: str, token: str, rows: list | None = None):
    db = tmp_path / f"{site}.db"
    if not db.exists():
        store = Store(db, synchronous="NORMAL")
        write_events(store, rows if rows is not None else evening(10))
        store.close()
    cfg = with_overrides(
        Config(),
        site={"id": site},
        store={"path": str(db), "synchronous": "NORMAL"},
        sync={"endpoint": url, "max_batch_events": 25, "timeout": 5.0, "max_backoff": 7.0},
    )
    return SyncEngine(cfg, token=token)


async def sync(engine: SyncEngine):
    try:
        return await engine.sync_once()
    finally:
        await engine.aclose()


def stored(dsn: str, site: str) -> int:
    return run(query(dsn, "SELECT count(*) AS n FROM events WHERE site = $1", site))[0]["n"]


# --- done 3: tokens -----------------------------------------------------------------------------


def test_a_token_writes_only_its_own_site_403_pauses_the_engine(tmp_path, cloud_db, replicas):
    token_a = run(add_site(cloud_db, "site-a"))
    run(add_site(cloud_db, "site-b"))
    rep = replicas()
    res = asyncio.run(sync(engine_for(tmp_path, "site-b", rep.url, token_a)))
    assert "HTTP 403" in res.error and "PAGER_EDGE_SYNC_TOKEN" in res.error
    assert res.quarantined == 0 and not res.retryable and res.delay == 7.0  # paused
    assert res.requests == 1 and res.pending == 30  # nothing quarantined, all still pending
    assert stored(cloud_db, "site-a") == stored(cloud_db, "site-b") == 0
    # the same token for its own site goes through
    ok = asyncio.run(sync(engine_for(tmp_path, "site-a", rep.url, token_a)))
    assert ok.done and ok.events == 30 and stored(cloud_db, "site-a") == 30


def test_rotated_token_overlaps_then_revoked_site_is_refused(tmp_path, cloud_db, replicas):
    old = run(add_site(cloud_db, "site-r"))
    rep = replicas()
    env = {DSN_ENV: cloud_db}
    cmd = CliRunner().invoke(cli, ["cloud", "rotate-token", "site-r"], env=env)
    assert cmd.exit_code == 0, cmd.output
    new = cmd.stdout.strip()
    assert new.startswith("pe_") and new != old and old not in cmd.output
    rows = store_shaped(evening(4))
    for token, part in ((old, rows[:6]), (new, rows[6:])):  # both valid during the overlap
        key, body = encode_batch("site-r", "t", part)
        assert post(rep.url, token, key, body).status_code == 204
    cmd = CliRunner().invoke(
        cli, ["cloud", "rotate-token", "site-r", "--overlap-hours", "0"], env=env
    )
    newest = cmd.stdout.strip()
    key, body = encode_batch("site-r", "t", rows[:6])
    for token in (old, new):
        r = post(rep.url, token, key, body)
        assert r.status_code == 401, r.text
    assert post(rep.url, newest, key, body).status_code == 409  # taken before: still valid
    cmd = CliRunner().invoke(cli, ["cloud", "revoke-site", "site-r"], env=env)
    assert cmd.exit_code == 0 and "revoked (1 tokens)" in cmd.output
    res = asyncio.run(sync(engine_for(tmp_path, "site-r", rep.url, newest)))
    assert "HTTP 401" in res.error and res.quarantined == 0 and res.delay == 7.0
    assert stored(cloud_db, "site-r") == 12  # the site's data stays
    # rotate-token brings a revoked site back, with only the new token
    cmd = CliRunner().invoke(cli, ["cloud", "rotate-token", "site-r"], env=env)
    back = cmd.stdout.strip()
    assert post(rep.url, back, key, body).status_code == 409
    assert post(rep.url, newest, key, body).status_code == 401


# --- done 3: sizes --------------------------------------------------------------------------------


def gzip_bomb(megabytes: int) -> bytes:
    """A valid gzip member of `megabytes` MiB of zeros, ~1 KB per MiB (one deflate block repeated)."""
    zeros = bytes(MB)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)  # the same bytes for every MiB
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    head = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return (
        head + block * megabytes + b"\x03\x00" + struct.pack("<II", crc, (megabytes * MB) % 2**32)
    )


def test_gzip_bomb_and_oversized_bodies_are_refused_without_memory(tmp_path, cloud_db, replicas):
    token = run(add_site(cloud_db, "site-z"))
    rep = replicas()  # defaults: max_body_bytes 1 MiB, max_decoded_bytes 16 MiB
    rows = store_shaped(evening(3))
    key, good = encode_batch("site-z", "t", rows)
    assert post(rep.url, token, key, good).status_code == 204
    before = rep.rss_peak()

    bomb = gzip_bomb(900)  # 900 MiB of zeros in 0.9 MB: under max_body_bytes
    assert len(bomb) < MB and zlib.decompressobj(31).decompress(bomb, 100) == bytes(100)
    for _ in range(3):
        r = post(rep.url, token, key, bomb)
        assert r.status_code == 413 and "decompressed" in r.json()["error"]
    # a bomb in a JSON-looking batch body changes nothing either
    big = compress(b'{"format":"pager-edge-sync/1","pad":"' + b" " * (20 * MB) + b'"}')
    assert post(rep.url, token, key, big).status_code == 413

    oversized = bytes(5 * MB)  # refused on Content-Length, before reading
    r = post(rep.url, token, key, oversized)
    assert r.status_code == 413 and "body over" in r.json()["error"]

    def stream():  # no Content-Length: refused once 1 MiB has arrived
        for _ in range(40):
            yield bytes(256 * 1024)

    r = httpx.post(
        rep.url,
        content=stream(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                 "Content-Encoding": "gzip", "Idempotency-Key": key},
        timeout=30,
    )  # fmt: skip
    assert r.status_code == 413
    grown = rep.rss_peak() - before
    assert grown < 48 * MB, f"peak RSS grew {grown / MB:.0f} MiB"  # 900 MiB if decompressed
    assert post(rep.url, token, key, good).status_code == 409  # alive, and the batch still there
    assert stored(cloud_db, "site-z") == len(rows)


# --- the rest of the contract -------------------------------------------------------------------


def test_status_codes_dedup_and_headers(cloud_db, replicas):
    token = run(add_site(cloud_db, "site-c"))
    rep = replicas()
    rows = store_shaped(evening(10, realistic=True))
    key, body = encode_batch("site-c", "0.1.0", rows)

    assert post(rep.url, None, key, body).status_code == 401
    assert post(rep.url, "pe_nobody", key, body).status_code == 401
    assert post(rep.url, token, key, body, **{"Content-Encoding": "identity"}).status_code == 415
    assert post(rep.url, token, key, body, **{"Content-Type": "text/plain"}).status_code == 415
    assert post(rep.url, token, key, b"not gzip").status_code == 400
    assert post(rep.url, token, key, compress(b"{}")).status_code == 400
    assert post(rep.url, token, key, body[:-8]).status_code == 400  # truncated
    r = post(rep.url, token, "site-c:1-2", body)
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]
    bad = [dict(rows[0], number="seven")]
    assert post(rep.url, token, *encode_batch("site-c", "t", bad)).status_code == 400
    nul = [dict(rows[0], changes={"label": "a\x00b"})]
    r = post(rep.url, token, *encode_batch("site-c", "t", nul))
    assert r.status_code == 400, r.text
    assert stored(cloud_db, "site-c") == 0

    first = post(rep.url, token, key, body)
    assert first.status_code == 204 and first.content == b""  # the smallest answer
    assert stored(cloud_db, "site-c") == len(rows)
    assert "server" not in first.headers  # every byte crosses the metered link
    assert "content-type" not in first.headers
    assert post(rep.url, token, key, body).status_code == 409
    # the same events under other keys (halves of a split batch): stored once
    half = len(rows) // 2
    r = post(rep.url, token, *encode_batch("site-c", "0.1.0", rows[:half]))
    assert r.status_code == 204 and stored(cloud_db, "site-c") == len(rows)
    # a key taken before with other bytes (an upgraded agent re-sending): 409, missing events kept
    more = store_shaped(evening(2, seed=3), first=len(rows) + 1)
    key2, body2 = encode_batch("site-c", "0.1.0", more, version=1)
    enc = BatchEncoder("site-c", "0.2.0", version=1)
    for ev in more:
        enc.add(ev)
    assert enc.key() == key2 and enc.body() != body2
    assert post(rep.url, token, key2, enc.body()).status_code == 204
    r = post(rep.url, token, key2, body2)
    assert r.status_code == 409
    assert stored(cloud_db, "site-c") == len(rows) + len(more)
    # a batch without events (a heartbeat, should a later format send one): nothing to store
    empty = {"format": "pager-edge-sync/1", "site": "site-c", "agent": "t", "first": 99,
             "last": 98, "t0": None, "fields": ["seq", "session", "kind", "at", "observed",
             "changes", "source"], "kinds": [], "sources": [], "sessions": [], "events": []}  # fmt: skip
    r = post(rep.url, token, "site-c:heartbeat", compress(json.dumps(empty).encode()))
    assert r.status_code == 204 and stored(cloud_db, "site-c") == len(rows) + len(more)
    # a heartbeat (format 2, no events, no key): when the site was last heard from, and what runs
    seen = "SELECT * FROM site_last_seen WHERE site = 'site-c'"
    before = run(query(cloud_db, seen))[0]
    assert before["last_heartbeat"] is None and before["last_seen"] == before["last_batch"]
    beat = heartbeat_body("site-c", "0.2.0", int(time.time()) - 30, 7)
    r = httpx.post(rep.url, content=beat, headers={"Authorization": f"Bearer {token}",
                   "Content-Type": "application/json", "Content-Encoding": "gzip"})  # fmt: skip
    assert r.status_code == 204 and r.content == b""
    after = run(query(cloud_db, seen))[0]
    assert (after["agent"], after["pending"]) == ("0.2.0", 7)
    assert after["last_seen"] == after["last_heartbeat"] > before["last_seen"]
    assert -40 <= after["agent_clock_skew_seconds"] <= -25
    assert stored(cloud_db, "site-c") == len(rows) + len(more)  # nothing stored
    other = heartbeat_body("site-other", "0.2.0", int(time.time()), 0)
    assert post(rep.url, token, "", other).status_code == 403  # only its own site
    # a new kind flows through as text
    lost = [dict(more[0], seq=len(rows) + len(more) + 1, kind="lost", changes={})]
    assert post(rep.url, token, *encode_batch("site-c", "t", lost)).status_code == 204
    got = run(query(cloud_db, "SELECT kind FROM events WHERE site = 'site-c' ORDER BY seq DESC"))
    assert got[0]["kind"] == "lost"

    assert httpx.get(f"{rep.base}/healthz").json() == {"status": "ok"}
    assert httpx.get(rep.url).status_code == 405
    log = rep.log.read_text(errors="replace")  # all of it: output() keeps the tail
    assert token not in log and token[3:12] not in log
    lines = [json.loads(x.split("cloud.access: ", 1)[1]) for x in log.splitlines()
             if "cloud.access: " in x]  # fmt: skip
    assert any(x["status"] == 409 and x["site"] == "site-c" for x in lines)
    assert {x["status"] for x in lines} >= {204, 400, 401, 403, 409, 415}
    assert any(x["status"] == 204 and x.get("duplicates") == half for x in lines)
    assert any(x.get("heartbeat") for x in lines)


def test_healthz_follows_the_database_and_ingest_waits_for_it(postgres, tmp_path, notify_socket):
    """Also what systemd sees: READY=1 once listening (the database may come later), watchdog
    pings, STOPPING=1 on SIGTERM and a clean exit."""
    name = "late_db"
    dsn = postgres.dsn(name).replace("postgres@", "postgres:pw-never-logged@")
    rep = Replica(cloud_config(tmp_path, "late.toml"), dsn, free_port(), tmp_path / "late.log")
    rep.start(wait=False, **notify_socket.env(watchdog_usec=400_000))
    try:
        ready = notify_socket.wait_for("READY", timeout=20)
        assert ready.pid == rep.proc.pid and "listening on" in ready["STATUS"]
        notify_socket.wait_for("WATCHDOG", timeout=5)
        for _ in range(100):
            try:
                r = httpx.get(f"{rep.base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                run(asyncio.sleep(0.05))
        assert r.status_code == 503
        r = post(rep.url, "pe_x", "k", b"x")
        assert r.status_code == 503 and r.headers["retry-after"]

        async def admin(sql: str) -> None:
            conn = await asyncpg.connect(postgres.dsn())
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        run(admin(f"CREATE DATABASE {name}"))
        rep.wait_healthy(30)  # connected and migrated by itself
        run(admin(f"DROP DATABASE {name} WITH (FORCE)"))
        assert httpx.get(f"{rep.base}/healthz", timeout=5).status_code == 503
        rep.proc.send_signal(signal.SIGTERM)
        assert rep.proc.wait(20) == 0
        notify_socket.wait_for("STOPPING", timeout=1)
    finally:
        rep.stop()
    log = rep.output()
    assert "pw-never-logged" not in log and "database not ready" in log and "stopped in" in log
