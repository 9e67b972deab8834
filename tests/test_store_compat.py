"""Databases written by earlier releases open with this code, data intact, and keep working.

The fixtures are SQL dumps of files the old code wrote (see their headers): a v1 store as the first
release made it, and a v2 store written through the store and sync API as it was before the store
moved onto sqlite-utils (its sync tables came from raw ``CREATE TABLE`` SQL). A v1 file is
migrated (backup first); a v2 file is opened as it is, not rewritten.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from agent.config import Config, with_overrides
from agent.session import Event
from agent.store import SCHEMA_VERSION, Store, StoreError, WriteBatch
from agent.sync.engine import SyncEngine
from agent.sync.state import BatchSpec, Delta, SyncState
from agent.sync.status import sync_status
from tests.sync_receiver import TOKEN, FaultyServer, assert_exactly_once
from tests.test_store import _dump as dump

FIXTURES = Path(__file__).parent / "fixtures" / "store"
SITE = "site-compat"


def load(name: str, path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / f"{name}.sql").read_text(encoding="utf-8"))
    conn.close()
    return path


def schema_facts(path: Path) -> dict[str, Any]:
    """What the code relies on, per table: columns (type, NOT NULL, default, primary key),
    unique column sets (constraint or index alike), CHECK constraints and plain indexes."""
    db = sqlite_utils.Database(sqlite3.connect(path))
    facts: dict[str, Any] = {}
    for table in db.tables:
        info = db.execute(f'PRAGMA table_info("{table.name}")').fetchall()
        facts[table.name] = {
            "columns": [(c[1], c[2].upper(), bool(c[3]), c[4], c[5]) for c in info],
            "unique": sorted(tuple(i.columns) for i in table.indexes if i.unique),
            "indexes": sorted(tuple(i.columns) for i in table.indexes if not i.unique),
            "checks": sorted(" ".join(c.check.split()) for c in table.checks),
        }
    db.close()
    return facts


def migrated_v2_facts(path: Path) -> dict[str, Any]:
    """The schema of a v2 file as the old code wrote it, brought to today's version."""
    Store(load("v2", path)).close()
    return schema_facts(path)


def test_a_new_database_has_the_schema_the_old_code_wrote(tmp_path):
    """Same columns, types, NOT NULLs, defaults, keys, uniqueness, checks and indexes as a file the
    old code wrote, once migrated (a new file is built by the same migrations, v1 first)."""
    Store(tmp_path / "new.db").close()
    old = migrated_v2_facts(tmp_path / "old.db")
    new = schema_facts(tmp_path / "new.db")
    assert new == old
    assert new["sync_state"]["checks"] == ["id = 1"]
    assert new["sync_quarantine"]["unique"] == [("first", "last")]


def test_a_v2_database_migrates_with_a_backup_and_reads_back(tmp_path):
    db = load("v2", tmp_path / "pe.db")
    before = dump(db)
    store = Store(db)
    try:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert dump(tmp_path / "pe.db.v2.bak") == before  # the file as it was, kept first
        reopened = dump(db)
        Store(db).close()
        assert dump(db) == reopened  # at today's version: opening rewrites nothing
        assert sorted(store.load_views()) == ["u-1", "u-2"]
        assert store.ended_uuids() == {"u-3", "u-4"}
        assert [v.uuid for v in store.finished_views_since("2026-11-21T18:35:00Z")] == ["u-4"]
        paged = store.load_views()["u-2"]
        assert (paged.state, paged.page_count, paged.notified) == (
            "paged",
            2,
            "2026-11-21T18:22:00Z",
        )
        events = list(store.iter_events())
        assert [e["seq"] for e in events] == list(range(1, 11))
        assert events[5] == {
            "seq": 6,
            "uuid": "u-2",
            "number": 2,
            "kind": "updated",
            "at": "2026-11-21T18:21:00Z",
            "observed_at": "2026-11-21T18:21:01Z",
            "changes": {"label": "Kim"},
            "source": "notify",
        }
        assert store.health().clock_skew_seconds == 0.25
        assert store.latest_snapshot("settings") == {
            "taken_at": "2026-11-21T18:00:00Z",
            "goal": 900,
        }
        assert store.latest_backhaul_reading() == {
            "taken_at": "2026-11-21T18:35:00Z",
            "provider": "things",
            "used_bytes": 1234,
        }
        assert store.session_counts() == {
            "waiting": 1, "paged": 1, "cleared": 1, "removed": 1, "lost": 0
        }  # fmt: skip
        st = sync_status(store, now=1_795_000_100.0)
        assert (st["cursor"], st["backlog"], st["quarantined"], st["quarantined_events"]) == (
            4,
            6,
            1,
            1,
        )
        assert st["quarantine"][0]["key_range"] == "4-4" and st["quarantine"][0]["status"] == 422
        assert st["bytes_sent"] == 1200 and st["alert"] == "database near its cap"
        assert st["running_pid"] is None  # the lease's holder is gone
    finally:
        store.close()
    reader = Store(db, readonly=True)
    try:
        assert [v.uuid for v in reader.active_views()] == ["u-1", "u-2"]
    finally:
        reader.close()


def test_a_v2_database_keeps_working(tmp_path):
    """The in-flight batch goes again as it was, a dead holder's lease is taken over, the
    quarantine keeps its uniqueness, new events follow the old ids, retention prunes."""
    db = load("v2", tmp_path / "pe.db")
    store = Store(db)
    try:
        state = SyncState(store)
        assert state.acquire("agent:new", 60.0, 1_795_000_100.0) is None
        spec, events = state.next_batch("all", 100, 1_000_000)
        # written before the format version was recorded: it goes again in v1, as it first went
        assert spec == BatchSpec("all", 4, 6, version=1) and [e["seq"] for e in events] == [5, 6]
        state.accepted(spec, Delta(sent=10), 1_795_000_110.0)
        again = [{"seq": 4}]
        state.quarantine(BatchSpec("all", 3, 4), again, 422, "dup", Delta(), 1_795_000_120.0)
        assert sync_status(store)["quarantined"] == 1  # UNIQUE (first, last) still holds
        ids = store.write_batch(
            WriteBatch(
                events=[
                    (
                        Event("created", "u-5", 5, "2026-11-22T18:00:00Z"),
                        "2026-11-22T18:00:01Z",
                        "x",
                    )
                ]
            )
        )
        assert ids == [11]
        assert state.prune(older_than="2026-11-21T18:21:00Z") == 4  # delivered, observed before
        assert [e["seq"] for e in store.iter_events()] == [4, 6, 7, 8, 9, 10, 11]
        assert state.row()["pruned"] == 4 and state.row()["cursor"] == 6
    finally:
        store.close()


def test_a_v1_database_migrates_with_a_backup_and_syncs_everything(tmp_path):
    db = load("v1", tmp_path / "pe.db")
    before = dump(db)
    store = Store(db)
    try:
        assert dump(tmp_path / "pe.db.v1.bak") == before
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.load_views()["u-1"].label == "Zoë"
        assert store.ended_uuids() == {"u-2"}
        assert [e["kind"] for e in store.iter_events()] == [
            "created",
            "created",
            "paged",
            "cleared",
        ]
        assert store.health().sequence == 42
        assert store.latest_snapshot("statistics") == {
            "taken_at": "2026-11-20T18:00:00Z",
            "served": 1,
        }
        # the first release's unused kv table is left alone
        assert [tuple(r) for r in store.conn.execute("SELECT value FROM kv")] == [
            ("first release",)
        ]
        assert sync_status(store)["backlog"] == 4
        facts = schema_facts(db)
        assert {k: v for k, v in facts.items() if k != "kv"} == migrated_v2_facts(
            tmp_path / "v2.db"
        )
    finally:
        store.close()


@pytest.fixture
def receiver():
    srv = FaultyServer().start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_an_old_database_syncs_every_event_exactly_once(tmp_path, receiver, version):
    db = load(version, tmp_path / "pe.db")
    cfg = with_overrides(
        Config(),
        site={"id": SITE},
        store={"path": str(db)},
        sync={"endpoint": receiver.url, "timeout": 5.0, "max_batch_events": 3},
    )
    engine = SyncEngine(cfg, token=TOKEN)
    try:
        for _ in range(20):
            if (await engine.sync_once()).done:
                break
    finally:
        await engine.aclose()
    reader = Store(db, readonly=True)
    try:
        every = list(reader.iter_events())
        quarantined = {4} if version == "v2" else set()
        delivered = [e for e in every if e["seq"] not in quarantined]
        if version == "v2":  # events 1-3 went before the file was saved
            delivered = [e for e in delivered if e["seq"] > 4]
        assert_exactly_once(receiver.log, delivered, SITE)
        assert sync_status(reader)["backlog"] == 0
    finally:
        reader.close()


def _m3_example(db: sqlite_utils.Database) -> None:
    """What a next migration looks like: a column added, a table rebuilt."""
    db.table("sessions").add_column("phone", str)
    db.table("sync_quarantine").transform(types={"status": str})
    db.table("sync_state").transform(defaults={"mode": "normal"})


@pytest.mark.parametrize(("origin", "fails"), [("v2", False), ("v2", True), ("new", False)])
def test_a_later_migration_runs_in_one_transaction(tmp_path, monkeypatch, origin, fails):
    """add_column and transform work inside migrate's transaction, on a file from before and on
    a new one; the rebuilt tables keep their CHECK and UNIQUE; a failure undoes all of it."""
    from agent.store import schema

    def m3(db: sqlite_utils.Database) -> None:
        _m3_example(db)
        if fails:
            raise RuntimeError("power cut")

    db = tmp_path / "pe.db"
    if origin == "new":
        Store(db).close()
    else:
        load(origin, db)
    before = dump(db)
    current = schema.SCHEMA_VERSION
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, m3])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", current + 1)
    if fails:
        old = 2 if origin == "v2" else current
        with pytest.raises(StoreError, match=f"v{old} to v{current + 1} failed"):
            schema.migrate(db)
        assert dump(db) == before
        return
    assert schema.migrate(db) == (2 if origin == "v2" else current)
    facts = schema_facts(db)
    assert facts["sync_state"]["checks"] == ["id = 1"]
    assert facts["sync_quarantine"]["unique"] == [("first", "last")]
    assert ("phone", "TEXT", False, None, 0) in facts["sessions"]["columns"]
    assert ("mode", "TEXT", False, "'normal'", 0) in facts["sync_state"]["columns"]
    store = Store(db)
    try:
        if origin == "v2":
            assert sync_status(store)["cursor"] == 4 and len(list(store.iter_events())) == 10
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            store.conn.execute("INSERT INTO sync_state (id) VALUES (2)")
    finally:
        store.close()
