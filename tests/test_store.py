"""The SQLite store: migrations with a backup first, untouched on failure, read-only readers."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils

from agent.health import Health
from agent.session import COLUMNS, Event, SessionView
from agent.store import SCHEMA_VERSION, Store, StoreError, WriteBatch, migrate
from agent.store import schema as store_schema


def _v1_database(path: Path) -> None:
    """A database as the first release wrote it: migration 1 only, with one session."""
    conn = sqlite3.connect(path, isolation_level=None)
    store_schema.MIGRATIONS[0](sqlite_utils.Database(conn))
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO sessions (uuid, number, state, page_count) VALUES ('u-1', 7, 'waiting', 0)"
    )
    conn.close()


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [*conn.iterdump(), f"user_version={conn.execute('PRAGMA user_version').fetchone()}"]
    finally:
        conn.close()


def test_migration_backs_up_the_old_file_first(tmp_path):
    assert SCHEMA_VERSION >= 2, "this test needs at least one migration after the first"
    db = tmp_path / "pager-edge.db"
    _v1_database(db)
    before = _dump(db)
    assert migrate(db) == 1
    backup = tmp_path / "pager-edge.db.v1.bak"
    assert backup.exists() and _dump(backup) == before
    s = Store(db)
    try:
        assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert s.load_views()["u-1"].number == 7  # data carried over
    finally:
        s.close()


def test_failed_migration_leaves_the_database_untouched_and_says_so(tmp_path, monkeypatch):
    db = tmp_path / "pager-edge.db"
    _v1_database(db)
    before = _dump(db)

    def broken(d: sqlite_utils.Database) -> None:
        d["sync_like"].create({"id": int}, pk="id")
        raise RuntimeError("disk went away")

    monkeypatch.setattr(store_schema, "MIGRATIONS", [store_schema.MIGRATIONS[0], broken])
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", 2)
    with pytest.raises(StoreError, match="left untouched") as exc:
        migrate(db)
    assert "v1 to v2" in str(exc.value) and "disk went away" in str(exc.value)
    assert _dump(db) == before


def test_newer_schema_is_refused_with_advice(tmp_path):
    db = tmp_path / "x.db"
    Store(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this pager-edge"):
        Store(db)
    with pytest.raises(StoreError, match="newer than this pager-edge"):
        Store(db, readonly=True)


def test_readers_wait_for_a_database_that_does_not_exist_or_is_not_initialised(tmp_path):
    with pytest.raises(StoreError, match="no database yet"):
        Store(tmp_path / "missing.db", readonly=True)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(StoreError, match="not initialised"):
        Store(empty, readonly=True)


def _populated(db: Path) -> None:
    s = Store(db)
    view = SessionView(
        uuid="u-9", number=9, label="Zoë", state="waiting", created="2026-01-01T18:00:00Z"
    )
    s.write_batch(
        WriteBatch(
            events=[
                (
                    Event("created", "u-9", 9, "2026-01-01T18:00:00Z"),
                    "2026-01-01T18:00:01Z",
                    "notify",
                )
            ],
            views={"u-9": view},
        )
    )
    s.close()  # clean close: SQLite checkpoints and removes -wal/-shm


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root + setpriv")
def test_a_reader_without_write_access_reads_a_stopped_agents_database(tmp_path):
    """The kiosk user may read the file but not create -shm next to it once the agent stopped."""
    import tempfile

    data = Path(tempfile.mkdtemp(prefix="pe-store-", dir="/var/tmp"))  # pytest's tmp is 0700
    request_cleanup = data
    db = data / "pager-edge.db"
    _populated(db)
    assert not Path(f"{db}-wal").exists()
    data.chmod(0o755)
    db.chmod(0o644)
    code = (
        "import sys; from agent.store import Store; s = Store(sys.argv[1], readonly=True); "
        "print(s.immutable, [r.label for r in s.active_views()])"
    )
    r = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            code,
            str(db),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    shutil.rmtree(request_cleanup, ignore_errors=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True ['Zoë']"


def test_an_immutable_reader_knows_when_to_reopen(tmp_path):
    db = tmp_path / "pager-edge.db"
    _populated(db)
    reader = Store(db, readonly=True)
    assert not reader.immutable and not reader.stale  # root can create -shm: normal read-only
    reader.immutable = True  # as the kiosk user would have it
    writer = Store(db)  # the agent starts again: a WAL file appears
    writer.set_health(Health(state="connected"))
    assert reader.stale
    writer.close()
    reader.close()


def test_the_sessions_table_holds_the_session_fields_and_nothing_else_unplanned(tmp_path):
    """Migration 1 declared the columns as they were; a new field needs a new migration."""
    store = Store(tmp_path / "x.db")
    try:
        columns = set(store.db.table("sessions").columns_dict)
    finally:
        store.close()
    assert columns == {*COLUMNS, "updated_at"}


def test_views_read_every_field_in_place_and_nothing_from_a_store_without_sessions(tmp_path):
    from agent.store.reads import Reads

    db = tmp_path / "v.db"
    full = SessionView(uuid="u-1", number=4, transmitter_id=77, label="Ana", party_size=3,
                       goal_seconds=600, created="2026-01-01T18:00:00Z",
                       first_notified="2026-01-01T18:05:00Z", notified="2026-01-01T18:07:00Z",
                       state="paged", page_count=2, reopened_from="u-0")  # fmt: skip
    s = Store(db)
    s.write_batch(WriteBatch(views={"u-1": full}))
    assert s.active_views() == [full] and s.load_views() == {"u-1": full}
    s.close()

    class Bare(Reads):
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

    bare = Bare(sqlite3.connect(tmp_path / "bare.db"))
    assert bare.active_views() == [] and list(bare.iter_views()) == []
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        Bare(sqlite3.connect(db))._views("nonsense = 1")


def test_a_batch_keeps_the_last_snapshot_of_each_kind_also_when_a_failed_one_is_merged(tmp_path):
    older = WriteBatch()
    older.snapshot("statistics", "2026-12-07T18:00:00Z", {"guestsServed": 1})
    older.snapshot("settings", "2026-12-07T18:00:00Z", {"pageMode": "vibe"})
    older.snapshot("statistics", "2026-12-07T18:00:01Z", {"guestsServed": 2})
    assert [s[0] for s in older.snapshots] == ["settings", "statistics"]
    newer = WriteBatch()
    newer.snapshot("statistics", "2026-12-07T18:00:02Z", {"guestsServed": 3})
    merged = older.merge(newer)  # the older batch failed to write; the retry carries both
    assert merged.snapshots == [
        ("settings", "2026-12-07T18:00:00Z", {"pageMode": "vibe"}),
        ("statistics", "2026-12-07T18:00:02Z", {"guestsServed": 3}),
    ]
    store = Store(tmp_path / "s.db")
    try:
        store.write_batch(merged)
        assert store.latest_snapshot("statistics")["guestsServed"] == 3
        rows = store.conn.execute("SELECT count(*) FROM snapshots").fetchone()[0]
        assert rows == 2
    finally:
        store.close()
