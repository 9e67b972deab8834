"""The agent's writes: the group commit (hot path) and the occasional side writes.

A group commit is one transaction and one fsync for everything that arrived meanwhile (events,
the session views they changed, health, snapshots). Its statements are fixed SQL text, so
sqlite3's statement cache keeps them prepared; sqlite-utils would read the schema on every call,
which ingest latency (milliseconds) cannot afford. Rare writes (a backhaul reading) go through
sqlite-utils.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import orjson

from agent.clock import Clock, iso_utc
from agent.health import Health
from agent.session import COLUMNS, Event, SessionView

if TYPE_CHECKING:
    import sqlite_utils

log = logging.getLogger(__name__)


@dataclass
class WriteBatch:
    """Everything one group commit writes: events, the views they changed, health, snapshots."""

    events: list[tuple[Event, str, str]] = field(default_factory=list)  # (event, observed, source)
    views: dict[str, SessionView] = field(default_factory=dict)
    health: Health | None = None  # the whole row, when it changed
    snapshots: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.views or self.health is not None or self.snapshots)

    def snapshot(self, kind: str, taken_at: str, doc: dict[str, Any]) -> None:
        """Keep `doc` as this batch's `kind` document, in place of one folded before it: the
        store's readers want the latest, and under load the transmitter's statistics change
        with nearly every notification — written once per commit, not once per notification."""
        self.snapshots = [s for s in self.snapshots if s[0] != kind]
        self.snapshots.append((kind, taken_at, doc))

    def split(self) -> list[WriteBatch]:
        """One batch per event (with its session's view), then the rest: a batch the store
        refused for its content is retried piece by piece, so one bad value blocks nothing."""
        parts = []
        views = dict(self.views)
        for ev in self.events:
            uuid = ev[0].uuid
            part = WriteBatch(events=[ev])
            if uuid in views:
                part.views[uuid] = views.pop(uuid)
            parts.append(part)
        parts += [WriteBatch(views={u: v}) for u, v in views.items()]
        parts.append(WriteBatch(health=self.health, snapshots=self.snapshots))
        return parts

    def merge(self, then: WriteBatch) -> WriteBatch:
        """This (failed, older) batch followed by `then` (folded since): one batch, in order."""
        views = dict(self.views)
        views.update(then.views)  # newer views win
        merged = WriteBatch(
            events=self.events + then.events,
            views=views,
            health=then.health if then.health is not None else self.health,
            snapshots=list(self.snapshots),
        )
        for kind, taken_at, doc in then.snapshots:  # the newer of each kind, as in one batch
            merged.snapshot(kind, taken_at, doc)
        return merged


_INSERT_EVENT = (
    "INSERT INTO events (uuid, number, kind, at, observed_at, changes, source) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_SESSION = (
    f"INSERT INTO sessions ({', '.join(COLUMNS)}, updated_at) "
    f"VALUES ({', '.join('?' * (len(COLUMNS) + 1))}) "
    "ON CONFLICT(uuid) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*COLUMNS[1:], "updated_at"))
)
_INSERT_SNAPSHOT = "INSERT INTO snapshots (kind, taken_at, doc) VALUES (?, ?, ?)"
# json.dumps(…, ensure_ascii=False, sort_keys=True) without building an encoder for every call:
# the writer holds the GIL while it encodes, and ingest waits for it.
_snapshot_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_json = json.JSONEncoder(ensure_ascii=False).encode


def _changes_json(changes: dict[str, Any]) -> str:
    """An event's changes as JSON text: orjson (compiled; every event has some), and the standard
    library for what orjson refuses (a label with a lone surrogate), which the store then
    refuses or keeps exactly as before."""
    try:
        return orjson.dumps(changes).decode()
    except TypeError:
        return _json(changes)


_view_row = attrgetter(*COLUMNS)


def _write_health(cur: sqlite3.Cursor, health: Health) -> None:
    """Upsert the one health row."""
    values = health.row()
    cols = list(values)
    cur.execute(
        f"INSERT INTO health (id, {', '.join(cols)}) VALUES (1, {', '.join('?' * len(cols))}) "
        f"ON CONFLICT(id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in cols)}",
        [values[c] for c in cols],
    )


class Writes:
    """The writer's half of :class:`agent.store.Store` (one connection, the agent's)."""

    conn: sqlite3.Connection
    clock: Clock

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils on this connection, for the writes and the sync's tables. Loaded when
        first used: a reader (a board process per tablet) reads with plain SQL and never pays
        for sqlite-utils and what it imports (≈ 10 MB resident)."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def write_batch(self, batch: WriteBatch) -> list[int]:
        """Write a batch in one transaction (one fsync); returns the new event ids.

        SQLite errors propagate unchanged: ingest tells a refused *value* (``IntegrityError``,
        ``OverflowError`` …: set aside) from a refused *write* (``OperationalError``: disk
        full, locked — keep everything and retry).
        """
        now = iso_utc(self.clock.now())
        ids: list[int] = []
        with self.conn:  # BEGIN … COMMIT, ROLLBACK on error
            cur = self.conn.cursor()
            if events := batch.events:
                cur.executemany(
                    _INSERT_EVENT,
                    [
                        (
                            ev.uuid,
                            ev.number,
                            ev.kind,
                            ev.at,
                            observed,
                            _changes_json(ev.changes) if ev.changes else None,
                            source,
                        )
                        for ev, observed, source in events
                    ],
                )
                # One statement for them all, so no lastrowid each: a new row's id is the
                # largest before it plus one (the log's newest row is never deleted, see
                # SyncState.prune), so this transaction's rows are the last len(events) ids.
                last = cur.execute("SELECT max(id) FROM events").fetchone()[0]
                ids = list(range(last - len(events) + 1, last + 1))
            if batch.views:
                cur.executemany(
                    _UPSERT_SESSION,
                    [(*_view_row(v), now) for v in batch.views.values()],
                )
            if batch.health is not None:
                _write_health(cur, batch.health)
            cur.executemany(
                _INSERT_SNAPSHOT,
                [(kind, taken_at, _snapshot_json(doc)) for kind, taken_at, doc in batch.snapshots],
            )
        return ids

    def write_or_set_aside(self, batch: WriteBatch) -> int:
        """Write a batch; returns how many items SQLite refused for their content and were set
        aside (logged in full) — one bad value must not block every later commit. The disk's
        own refusals (full, locked, I/O: ``OperationalError``) are raised: keep it all, retry."""
        try:
            self.write_batch(batch)
            return 0
        except sqlite3.OperationalError:
            raise
        except (sqlite3.Error, OverflowError, ValueError, TypeError) as exc:
            log.error("the store refused a batch (%s); writing it item by item", exc)
        set_aside = 0
        for single in batch.split():
            try:
                self.write_batch(single)
            except sqlite3.OperationalError:
                raise
            except (sqlite3.Error, OverflowError, ValueError, TypeError) as exc:
                set_aside += 1
                log.error("could not store %r (%s); set aside", single, exc)
        return set_aside

    def set_health(self, health: Health) -> None:
        with self.conn:
            _write_health(self.conn.cursor(), health)

    def add_backhaul_reading(self, row: dict[str, Any]) -> None:
        """Store an operator reading (``Reading.to_row()``) as a JSON document.

        sqlite-utils reads the schema before its transaction and then opens it with the INSERT,
        so this waits for the ingest writer's commit like any write; it never alters the table
        (a schema read inside a transaction that then writes could be refused outright while
        the ingest writer commits).
        """
        self.db.table("backhaul_readings").insert(
            {
                "taken_at": row.get("taken_at"),
                "provider": row.get("provider"),
                "doc": json.dumps(row, default=str, ensure_ascii=False),
            }
        )
