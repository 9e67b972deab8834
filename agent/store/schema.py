"""The store's tables and their migrations; ``PRAGMA user_version`` is the schema version.

sqlite-utils creates the tables and indexes (and, for later migrations, ``add_column`` and
``transform``). Migrations are history: what one that has shipped does never changes — databases in the field
were built by it — the next change is a new function at the end of :data:`MIGRATIONS`.

Why not sqlite-utils' own ``Migrations`` (sqlite-utils ≥ 4.0; ``sqlite-migrate`` 0.2 is only a
shim re-exporting it): it records applied migrations by name in a ``_sqlite_migrations`` table,
one transaction each. Every existing store is versioned by ``user_version`` alone, so adopting
it would add a table and a second version record to files in the field; a read-only reader
(the kiosk, possibly ``immutable``) could no longer tell with one pragma that a file is *newer*
than its code; and the all-or-nothing upgrade below (``BEGIN IMMEDIATE``, backup first) would
have to be wrapped around it anyway. The loop it would replace is a dozen lines.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils

log = logging.getLogger(__name__)


class StoreError(Exception):
    """The store cannot be opened or migrated; the message says what to do."""


def _m1_initial(db: sqlite_utils.Database) -> None:
    """The first schema. The ``sessions`` columns are :data:`agent.session.COLUMNS` as they were
    then, plus ``updated_at`` (tests hold the two together); a new session field is a new
    migration, not an edit here."""
    db.table("events").create(
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
    db.table("sessions").create(
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
    db.table("sessions").create_index(["state"])
    db.table("sessions").create_index(["created"])
    db.table("health").create(
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
    db.table("snapshots").create(
        {"id": int, "kind": str, "taken_at": str, "doc": str},
        pk="id",
    )
    db.table("snapshots").create_index(["kind", "id"])
    db.table("backhaul_readings").create(
        {"id": int, "taken_at": str, "provider": str, "doc": str},
        pk="id",
    )


def _m2_sync(db: sqlite_utils.Database) -> None:
    """Cloud sync state (one row: cursors, in-flight batch, lease, counters) and its quarantine.

    ``sync_state`` stays in SQL: its single row is guarded by ``CHECK (id = 1)``, and
    sqlite-utils 4.2's ``create()`` cannot declare a CHECK constraint (``transform()`` keeps
    one, nothing adds one). ``sync_quarantine`` is plain sqlite-utils; its ``UNIQUE (first,
    last)``, a table constraint in files from before, is a unique index here — the same for
    ``INSERT OR IGNORE`` and for every query. The columns are read and written by
    :mod:`agent.sync.state`.
    """
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
    db.table("sync_state").insert({"id": 1})
    quarantine = db.table("sync_quarantine")
    quarantine.create(
        {
            "id": int,
            "kind": str,
            "lo": int,
            "hi": int,
            "first": int,
            "last": int,
            "events": int,
            "status": int,
            "reason": str,
            "at": str,
        },
        pk="id",
        not_null={"kind", "lo", "hi", "first", "last", "events", "at"},
    )
    quarantine.create_index(["first", "last"], unique=True)


def _m3_staff_requests(db: sqlite_utils.Database) -> None:
    """What staff ask of the agent, and what the store must say about sessions since.

    * ``requests`` — staff actions held where every board sees them and nothing loses them: a
      seat or remove waiting out its undo grace, close-out, re-adding or dismissing a lost party.
      Boards insert (and cancel within the grace); the agent carries them out when due.
      Read and written by :mod:`agent.store.requests` only.
    * ``sessions.reopened_from`` — a session re-added for one the transmitter forgot (or seated by
      mistake) names the old one; ``sessions.dismissed_at`` — staff dismissed a lost party.
    * ``health.host_clock_synced`` — whether the host's own clock was synchronised (NTP), so a
      skew warning can say whose clock is wrong.
    """
    sessions = db.table("sessions")
    sessions.add_column("reopened_from", str)
    sessions.add_column("dismissed_at", str)
    db.table("health").add_column("host_clock_synced", int)
    requests = db.table("requests")
    requests.create(
        {
            "id": int,
            "kind": str,  # seat | remove | close_out | readd | dismiss
            "uuid": str,
            "number": int,
            "payload": str,  # JSON: what the kind needs (a re-added party's fields…)
            "board": str,  # who asked (host and pid of the board, for the log)
            "created_at": str,
            "due_at": str,  # UTC ISO: carried out once this has passed
            "state": str,  # pending → running → done | failed; or cancelled (undo)
            "result": str,
            "done_at": str,
        },
        pk="id",
        not_null={"kind", "created_at", "due_at", "state"},
        defaults={"state": "pending"},
    )
    requests.create_index(["state", "due_at"])


def _m4_sync_heartbeat(db: sqlite_utils.Database) -> None:
    """Heartbeats of the sync (wire format 2): when the receiver last took one, and the agent
    version it announced — so an idle site says it is alive every ``[sync] heartbeat_minutes``,
    and an upgraded agent says its new version once. Read and written by :mod:`agent.sync.state`.
    """
    state = db.table("sync_state")
    state.add_column("last_heartbeat", str)
    state.add_column("heartbeat_agent", str)


# Append only. All pending migrations run in one transaction with the version bump.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _m1_initial,
    _m2_sync,
    _m3_staff_requests,
    _m4_sync_heartbeat,
]
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def refuse_newer(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: database schema v{version} is newer than this pager-edge "
            f"(v{SCHEMA_VERSION}); upgrade pager-edge or restore an older database"
        )


def migrate(path: str | Path, *, backup: bool = True) -> int:
    """Bring the file at `path` to the current schema; returns the version it had.

    An existing database at an older version is copied to ``<path>.v<old>.bak`` first; the
    migrations run in one ``BEGIN IMMEDIATE`` transaction (sqlite-utils ≥ 4 nests its own
    transactions as savepoints inside it), so a failure leaves the file exactly as it was.
    """
    path = Path(path)
    existed = path.exists() and path.stat().st_size > 0
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        old = user_version(conn)
        refuse_newer(path, old)
        if old == SCHEMA_VERSION:
            return old
        if existed and backup and old > 0:
            target = path.with_name(f"{path.name}.v{old}.bak")
            with sqlite3.connect(target) as dst:
                conn.backup(dst)
            log.info("backed up %s (schema v%d) to %s before migrating", path, old, target)
        import sqlite_utils  # only when a file needs its tables made: readers never load it

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
