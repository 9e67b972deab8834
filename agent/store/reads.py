"""What the agent, board, status, export and ingest read from the store.

Rows come through sqlite-utils (``rows_where``: dicts, and nothing at all from a table an older
schema lacks), except the session views, which the board reads often enough for plain positional
SQL to matter; aggregates and pragmas are one line of SQL each. Nothing here writes.

Every method raises :class:`~agent.store.StoreError` and nothing else for a file it cannot read
(locked past the timeout, not a database, a schema being created): callers — the board above all —
handle one error type and never need to know the store is SQLite.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from agent.health import Health
from agent.session import COLUMNS, ENDED, STATES, SessionView
from agent.store.schema import StoreError

_ENDED_LIST = ", ".join(f"'{s}'" for s in sorted(ENDED))
ENDED_SQL = f"state IN ({_ENDED_LIST})"
ACTIVE_SQL = f"state NOT IN ({_ENDED_LIST})"
_VIEW_COLUMNS = ", ".join(COLUMNS)


def _within(column: str, start: str | None, before: str | None) -> tuple[list[str], list[str]]:
    """WHERE terms (and their arguments) for `column` in [start, before); either end open."""
    where, args = [], []
    if start is not None:
        where.append(f"{column} >= ?")
        args.append(start)
    if before is not None:
        where.append(f"{column} < ?")
        args.append(before)
    return where, args


P = ParamSpec("P")
T = TypeVar("T")
Y = TypeVar("Y")
R = TypeVar("R", bound="Reads")


def _unreadable(path: object, exc: sqlite3.Error) -> StoreError:
    return StoreError(f"{path}: cannot read the database: {exc}")


def _iterating(store: Reads, rows: Iterator[Y]) -> Iterator[Y]:
    try:
        yield from rows
    except sqlite3.Error as exc:
        raise _unreadable(store.path, exc) from exc


def reading(fn: Callable[Concatenate[R, P], T]) -> Callable[Concatenate[R, P], T]:
    """A read method whose SQLite errors come out as :class:`StoreError` (for an iterator, also
    those raised while it is iterated)."""

    @functools.wraps(fn)
    def read(self: R, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            result = fn(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise _unreadable(self.path, exc) from exc
        if isinstance(result, Iterator):
            return _iterating(self, result)  # type: ignore[return-value]  # an Iterator too
        return result

    return read


def event_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    """An ``events`` row as the export, the sync wire and tests see it (``seq`` is the rowid)."""
    return {
        "seq": row["id"],
        "uuid": row["uuid"],
        "number": row["number"],
        "kind": row["kind"],
        "at": row["at"],
        "observed_at": row["observed_at"],
        "changes": json.loads(row["changes"]) if row["changes"] else {},
        "source": row["source"],
    }


class Reads:
    """The reading half of :class:`agent.store.Store` (writer and read-only connections alike)."""

    path: Path
    conn: sqlite3.Connection

    @reading
    def data_version(self) -> int:
        """Changes whenever another connection commits (not for this connection's own writes)."""
        version: int = self.conn.execute("PRAGMA data_version").fetchone()[0]
        return version

    @contextlib.contextmanager
    def read_transaction(self) -> Iterator[None]:
        """Reads inside agree with each other (one snapshot of a WAL database)."""
        try:
            self.conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise _unreadable(self.path, exc) from exc
        try:
            yield
        finally:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise _unreadable(self.path, exc) from exc

    # sessions ------------------------------------------------------------------------------

    def _views(
        self, where: str | None, args: list[Any] | None = None, order_by: str | None = None
    ) -> Iterator[SessionView]:
        # Plain SQL, positional: the board reads every active session whenever the agent commits
        # (500 rows at 4 commits a second in its stress run), and rows_where's existence check
        # and per-row dicts cost more than twice as much. Like rows_where, a store without the
        # table yields nothing.
        sql = f"SELECT {_VIEW_COLUMNS} FROM sessions"
        if where:
            sql += f" WHERE {where}"
        if order_by:
            sql += f" ORDER BY {order_by}"
        try:
            rows = self.conn.execute(sql, args or [])
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return iter(())
            raise
        return (SessionView(*row) for row in rows)

    @reading
    def load_views(self, *, active_only: bool = True) -> dict[str, SessionView]:
        """Ingest's starting point: the sessions it may still see change."""
        return {v.uuid: v for v in self._views(ACTIVE_SQL if active_only else None)}

    @reading
    def ended_uuids(self) -> set[str]:
        rows = self.conn.execute(f"SELECT uuid FROM sessions WHERE {ENDED_SQL}")
        return {r[0] for r in rows}

    @reading
    def active_views(self) -> list[SessionView]:
        """Waiting and paged sessions, oldest first — the board's table."""
        return list(self._views(ACTIVE_SQL, order_by="created, transmitter_id"))

    @reading
    def finished_views_since(self, since_utc_iso: str) -> list[SessionView]:
        """Sessions that ended at or after a moment, newest first — the board's history view."""
        where = f"{ENDED_SQL} AND cleared >= ?"
        return list(self._views(where, [since_utc_iso], order_by="cleared DESC"))

    @reading
    def finished_views_between(self, start_iso: str, end_iso: str) -> list[SessionView]:
        """Finished sessions created in [start, end), oldest first — history for quotes."""
        where = f"{ENDED_SQL} AND created >= ? AND created < ?"
        return list(self._views(where, [start_iso, end_iso], order_by="created"))

    @reading
    def called_views_since(self, since_iso: str, *, created_from: str) -> list[SessionView]:
        """Sessions whose table came up at or after a moment — first paged then, or seated without
        a page — oldest arrival first: the board's recent seating rate. `created_from` keeps the
        scan on the ``created`` index (a party that waited longer than that says nothing about
        the rate)."""
        where = (
            "created >= ? AND (coalesce(first_notified, notified) >= ? OR "
            "(coalesce(first_notified, notified) IS NULL AND state = 'cleared' AND cleared >= ?))"
        )
        args = [created_from, since_iso, since_iso]
        return list(self._views(where, args, order_by="created, transmitter_id"))

    @reading
    def session_counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        for state, n in self.conn.execute("SELECT state, count(*) FROM sessions GROUP BY state"):
            counts[state] = n
        return counts

    @reading
    def iter_views(
        self, *, created_from: str | None = None, created_before: str | None = None
    ) -> Iterator[SessionView]:
        """Every session (or those created in [from, before)), in creation order."""
        where, args = _within("created", created_from, created_before)
        return self._views(
            " AND ".join(where) or None, args, order_by="created, transmitter_id, uuid"
        )

    @reading
    def lost_views(self) -> list[SessionView]:
        """Lost parties staff have not handled yet (dismissed, or re-added: a session names it in
        ``reopened_from``), oldest first — the board's own group."""
        where = (
            "state = 'lost' AND dismissed_at IS NULL AND uuid NOT IN "
            "(SELECT reopened_from FROM sessions WHERE reopened_from IS NOT NULL)"
        )
        return list(self._views(where, order_by="created, transmitter_id"))

    # events --------------------------------------------------------------------------------

    @reading
    def event_count(self) -> int:
        """Events ever written (the newest rowid: pruned ones count too)."""
        newest: int | None = self.conn.execute("SELECT max(id) FROM events").fetchone()[0]
        return newest or 0

    @reading
    def iter_events(
        self,
        after: int = 0,
        limit: int | None = None,
        *,
        at_from: str | None = None,
        at_before: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        where, args = _within("at", at_from, at_before)
        sql = f"SELECT * FROM events WHERE {' AND '.join(['id > ?', *where])} ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return (event_dict(r) for r in self.conn.execute(sql, [after, *args]))

    # health, snapshots, backhaul -----------------------------------------------------------

    @reading
    def health(self) -> Health:
        """The agent's health row (all unknown before the agent first wrote it)."""
        row = self.conn.execute("SELECT * FROM health WHERE id = 1").fetchone()
        return Health.from_row(dict(row) if row is not None else {})

    @reading
    def latest_snapshot(self, kind: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT taken_at, doc FROM snapshots WHERE kind = ? ORDER BY id DESC LIMIT 1", [kind]
        ).fetchone()
        return {"taken_at": row[0], **json.loads(row[1])} if row else None

    @reading
    def latest_backhaul_reading(self) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT doc FROM backhaul_readings ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return json.loads(row[0]) if row else None

    # the file ------------------------------------------------------------------------------

    @reading
    def used_bytes(self) -> int:
        """Bytes of the database's pages in use (deleted rows' pages are reused, not counted)."""
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)
