"""The durable store: one SQLite file (WAL), written by the agent alone.

* ``events`` — append-only lifecycle log. Its ``INTEGER PRIMARY KEY`` is monotonic, the sync cursor,
  and (as ``<site>:<id>``) the event's cloud id.
* ``sessions`` — the current view, one row per session uuid, written in the same transaction as the
  event that changed it.
* ``health`` — one row: controller link state and counters, agent heartbeat.
* ``snapshots`` — statistics and settings documents, stored when they change.
* ``backhaul_readings`` — operator API readings of the backhaul SIM.

sqlite-utils creates and migrates the schema and serves the ad-hoc reads; the hot write path uses
prepared statements on the same connection, because ingest latency is measured in milliseconds.
Durability: ``synchronous=FULL`` by default (restaurants unplug things); throughput comes from group
commit — the caller hands :meth:`Store.write_batch` everything that arrived meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from agent.clock import SYSTEM_CLOCK, iso_utc
from agent.session import COLUMNS as SESSION_COLUMNS
from agent.session import EXPORT_FIELDS, Event, SessionView

log = logging.getLogger(__name__)


class StoreError(Exception):
    """The store cannot be opened or migrated; the message says what to do."""


# --- schema -----------------------------------------------------------------------------------


def _m1_initial(db: sqlite_utils.Database) -> None:
    db["events"].create(
        {
            "id": int,
            "uuid": str,
            "number": int,
            "kind": str,
            "at": str,
            "observed_at": str,
            "changes": str,
            "source": str,
        },
        pk="id",
    )
    db["sessions"].create(
        {
            "uuid": str,
            "transmitter_id": int,
            "number": int,
            "label": str,
            "party_size": int,
            "goal_seconds": int,
            "created": str,
            "first_notified": str,
            "notified": str,
            "cleared": str,
            "state": str,
            "page_count": int,
            "updated_at": str,
        },
        pk="uuid",
        not_null={"number", "state", "page_count"},
        defaults={"page_count": 0, "state": "waiting"},
    )
    db["sessions"].create_index(["state"])
    db["sessions"].create_index(["created"])
    db["health"].create(
        {
            "id": int,
            "state": str,
            "since": str,
            "last_ping_at": str,
            "last_data_at": str,
            "device_name": str,
            "firmware": str,
            "clock_skew_seconds": float,
            "sequence": int,
            "gaps": int,
            "resyncs": int,
            "malformed": int,
            "reconnects": int,
            "notifications": int,
            "last_error": str,
            "agent_pid": int,
            "agent_version": str,
            "agent_started_at": str,
            "heartbeat_at": str,
            "stopped_at": str,
        },
        pk="id",
    )
    db["snapshots"].create(
        {"id": int, "kind": str, "taken_at": str, "doc": str},
        pk="id",
    )
    db["snapshots"].create_index(["kind", "id"])
    db["backhaul_readings"].create(
        {"id": int, "taken_at": str, "provider": str, "doc": str},
        pk="id",
    )


def _m2_sync(db: sqlite_utils.Database) -> None:
    """Cloud sync state (one row: cursors, in-flight batch, lease, counters) and its quarantine."""
    db.execute(
        "CREATE TABLE sync_state ("
        " id INTEGER PRIMARY KEY CHECK (id = 1),"
        " cursor INTEGER NOT NULL DEFAULT 0,"  # every event <= cursor is delivered/quarantined/deferred
        " backfill INTEGER NOT NULL DEFAULT 0,"  # deferred (critical-mode) events <= this are sent
        " inflight TEXT,"  # JSON batch definition being sent, re-sent as-is after a crash
        " lease_owner TEXT, lease_pid INTEGER, lease_until REAL,"
        " mode TEXT, last_attempt TEXT, last_success TEXT, last_error TEXT, last_cycle TEXT,"
        " bytes_sent INTEGER NOT NULL DEFAULT 0, bytes_received INTEGER NOT NULL DEFAULT 0,"
        " requests INTEGER NOT NULL DEFAULT 0, connections INTEGER NOT NULL DEFAULT 0,"
        " pruned INTEGER NOT NULL DEFAULT 0, last_prune REAL, alert TEXT)"
    )
    db.execute("INSERT INTO sync_state (id) VALUES (1)")
    db.execute(
        "CREATE TABLE sync_quarantine ("
        " id INTEGER PRIMARY KEY, kind TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,"
        " first INTEGER NOT NULL, last INTEGER NOT NULL, events INTEGER NOT NULL,"
        " status INTEGER, reason TEXT, at TEXT NOT NULL, UNIQUE (first, last))"
    )


# Append only. Each migration runs inside one transaction with the version bump.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_m1_initial, _m2_sync]
SCHEMA_VERSION = len(MIGRATIONS)


def _user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def _refuse_newer(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: database schema v{version} is newer than this pager-edge "
            f"(v{SCHEMA_VERSION}); upgrade pager-edge or restore an older database"
        )


def migrate(path: str | Path, *, backup: bool = True) -> int:
    """Bring the file at `path` to the current schema; returns the version it had.

    An existing database at an older version is copied to ``<path>.v<old>.bak`` first; the
    migrations run in one transaction, so a failure leaves the file exactly as it was.
    """
    path = Path(path)
    existed = path.exists() and path.stat().st_size > 0
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        old = _user_version(conn)
        _refuse_newer(path, old)
        if old == SCHEMA_VERSION:
            return old
        if existed and backup and old > 0:
            target = path.with_name(f"{path.name}.v{old}.bak")
            with sqlite3.connect(target) as dst:
                conn.backup(dst)
            log.info("backed up %s (schema v%d) to %s before migrating", path, old, target)
        db = sqlite_utils.Database(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            for version in range(old, SCHEMA_VERSION):
                MIGRATIONS[version](db)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise StoreError(
                f"{path}: migration from schema v{old} to v{SCHEMA_VERSION} failed ({exc}); "
                "the database was left untouched"
            ) from exc
        if old:
            log.info("migrated %s from schema v%d to v%d", path, old, SCHEMA_VERSION)
        return old
    finally:
        conn.close()


# --- writes -----------------------------------------------------------------------------------


@dataclass
class WriteBatch:
    """Everything one group commit writes: events, the views they changed, health, snapshots."""

    events: list[tuple[Event, str, str]] = field(default_factory=list)  # (event, observed, source)
    views: dict[str, SessionView] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=dict)
    snapshots: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.views or self.health or self.snapshots)


_INSERT_EVENT = (
    "INSERT INTO events (uuid, number, kind, at, observed_at, changes, source) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_SESSION = (
    f"INSERT INTO sessions ({', '.join(SESSION_COLUMNS)}, updated_at) "
    f"VALUES ({', '.join('?' * (len(SESSION_COLUMNS) + 1))}) "
    "ON CONFLICT(uuid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*SESSION_COLUMNS[1:], "updated_at"))
)


class Store:
    """One connection to the store. The agent holds one writer; readers open their own."""

    def __init__(self, path: str | Path, *, readonly: bool = False, synchronous: str = "FULL"):
        self.path = Path(path)
        self.readonly = readonly
        self.immutable = False
        if readonly:
            if not self.path.exists():
                raise StoreError(f"{self.path}: no database yet (is the agent running?)")
            conn = self._open_readonly()
            version = _user_version(conn)
            if version == 0:
                conn.close()
                raise StoreError(
                    f"{self.path}: database not initialised yet (is the agent starting?)"
                )
            try:
                _refuse_newer(self.path, version)
            except StoreError:
                conn.close()
                raise
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            migrate(self.path)
            conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self.db = sqlite_utils.Database(conn)

    def _open_readonly(self) -> sqlite3.Connection:
        """A read-only connection; `immutable` when WAL files cannot be created.

        A reader of a WAL database needs the ``-shm`` file. While the agent runs it exists; after
        a clean stop SQLite removes it, and a reader without write access to the directory (the
        kiosk user) cannot recreate it. With no ``-wal`` file nothing can be half-written, so the
        file is then read as immutable until :meth:`stale` says the agent writes again.
        """
        uri = f"file:{self.path}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=5)
        try:
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return conn
        except sqlite3.OperationalError:
            conn.close()
            if Path(f"{self.path}-wal").exists():
                raise
        self.immutable = True
        return sqlite3.connect(f"{uri}&immutable=1", uri=True, check_same_thread=False)

    @property
    def stale(self) -> bool:
        """An immutable reader must reopen once the agent writes (a WAL file appears) again."""
        return self.immutable and Path(f"{self.path}-wal").exists()

    def close(self) -> None:
        self.conn.close()

    # writer side ---------------------------------------------------------------------------

    def load_views(self, *, active_only: bool = True) -> dict[str, SessionView]:
        sql = f"SELECT {', '.join(SESSION_COLUMNS)} FROM sessions"
        if active_only:
            sql += " WHERE state NOT IN ('cleared', 'removed')"
        return {row["uuid"]: SessionView.from_row(row) for row in self.conn.execute(sql)}

    def ended_uuids(self) -> set[str]:
        return {
            r[0]
            for r in self.conn.execute(
                "SELECT uuid FROM sessions WHERE state IN ('cleared', 'removed')"
            )
        }

    def write_batch(self, batch: WriteBatch) -> list[int]:
        """Write a batch in one transaction (one fsync); returns the new event ids."""
        now = iso_utc(SYSTEM_CLOCK.now())
        ids: list[int] = []
        with self.conn:  # BEGIN … COMMIT, ROLLBACK on error
            cur = self.conn.cursor()
            for ev, observed, source in batch.events:
                cur.execute(
                    _INSERT_EVENT,
                    (
                        ev.uuid,
                        ev.number,
                        ev.kind,
                        ev.at,
                        observed,
                        json.dumps(ev.changes, ensure_ascii=False) if ev.changes else None,
                        source,
                    ),
                )
                ids.append(cur.lastrowid)
            if batch.views:
                cur.executemany(
                    _UPSERT_SESSION,
                    [
                        (*(getattr(v, c) for c in SESSION_COLUMNS), now)
                        for v in batch.views.values()
                    ],
                )
            if batch.health:
                self._write_health(cur, batch.health)
            cur.executemany(
                "INSERT INTO snapshots (kind, taken_at, doc) VALUES (?, ?, ?)",
                [
                    (kind, taken_at, json.dumps(doc, sort_keys=True, ensure_ascii=False))
                    for kind, taken_at, doc in batch.snapshots
                ],
            )
        return ids

    @staticmethod
    def _write_health(cur: sqlite3.Cursor, values: dict[str, Any]) -> None:
        cols = list(values)
        cur.execute(
            f"INSERT INTO health (id, {', '.join(cols)}) VALUES (1, {', '.join('?' * len(cols))}) "
            f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in cols)}",
            [values[c] for c in cols],
        )

    def set_health(self, **values: Any) -> None:
        with self.conn:
            self._write_health(self.conn.cursor(), values)

    def add_backhaul_reading(self, row: dict[str, Any]) -> None:
        """Store an operator reading (``Reading.to_row()``) as a JSON document.

        One plain INSERT: a schema read followed by a write in one transaction (what a
        self-altering insert does) can be refused outright while the ingest writer commits.
        """
        with self.conn:
            self.conn.execute(
                "INSERT INTO backhaul_readings (taken_at, provider, doc) VALUES (?, ?, ?)",
                (
                    row.get("taken_at"),
                    row.get("provider"),
                    json.dumps(row, default=str, ensure_ascii=False),
                ),
            )

    # read side -----------------------------------------------------------------------------

    def data_version(self) -> int:
        """Changes whenever another connection commits (not for this connection's own writes)."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def health(self) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM health WHERE id = 1").fetchone()
        return dict(row) if row else {}

    def session_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("waiting", "paged", "cleared", "removed"), 0)
        for state, n in self.conn.execute("SELECT state, count(*) FROM sessions GROUP BY state"):
            counts[state] = n
        return counts

    def event_count(self) -> int:
        row = self.conn.execute("SELECT max(id) FROM events").fetchone()
        return row[0] or 0

    @contextlib.contextmanager
    def read_transaction(self) -> Iterator[None]:
        """Reads inside agree with each other (one snapshot of a WAL database)."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def active_views(self) -> list[SessionView]:
        """Waiting and paged sessions, oldest first — the board's table."""
        return [
            SessionView.from_row(r)
            for r in self.conn.execute(
                "SELECT * FROM sessions WHERE state NOT IN ('cleared', 'removed') "
                "ORDER BY created, transmitter_id"
            )
        ]

    def finished_views_since(self, since_utc_iso: str) -> list[SessionView]:
        """Sessions that ended at or after a moment, newest first — the board's history view."""
        return [
            SessionView.from_row(r)
            for r in self.conn.execute(
                "SELECT * FROM sessions WHERE state IN ('cleared', 'removed') AND cleared >= ? "
                "ORDER BY cleared DESC",
                (since_utc_iso,),
            )
        ]

    def finished_views_between(self, start_iso: str, end_iso: str) -> list[SessionView]:
        """Finished sessions created in [start, end), oldest first — history for quotes."""
        return [
            SessionView.from_row(r)
            for r in self.conn.execute(
                "SELECT * FROM sessions WHERE state IN ('cleared', 'removed') "
                "AND created >= ? AND created < ? ORDER BY created",
                (start_iso, end_iso),
            )
        ]

    def latest_snapshot(self, kind: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT taken_at, doc FROM snapshots WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind,)
        ).fetchone()
        if not row:
            return None
        return {"taken_at": row["taken_at"], **json.loads(row["doc"])}

    def latest_backhaul_reading(self) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT doc FROM backhaul_readings ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return json.loads(row[0]) if row else None

    def iter_sessions(self) -> Iterator[dict[str, Any]]:
        """Every session in export shape, in creation order."""
        for r in self.conn.execute("SELECT * FROM sessions ORDER BY created, transmitter_id, uuid"):
            yield {k: r[k] for k in EXPORT_FIELDS}

    def iter_events(self, after: int = 0, limit: int | None = None) -> Iterator[dict[str, Any]]:
        sql = "SELECT * FROM events WHERE id > ? ORDER BY id"
        args: tuple[Any, ...] = (after,)
        if limit is not None:
            sql += " LIMIT ?"
            args = (after, limit)
        for r in self.conn.execute(sql, args):
            yield {
                "seq": r["id"],
                "uuid": r["uuid"],
                "number": r["number"],
                "kind": r["kind"],
                "at": r["at"],
                "observed_at": r["observed_at"],
                "changes": json.loads(r["changes"]) if r["changes"] else {},
                "source": r["source"],
            }

    def file_bytes(self) -> int:
        """Database + WAL size on disk."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(f"{self.path}{suffix}")
            if p.exists():
                total += p.stat().st_size
        return total
