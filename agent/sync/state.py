"""All SQL of the sync: its own rows (``sync_state``, ``sync_quarantine``), its reads of
``events`` and their retention — for the agent's sync engine and for ``pager-edge status``.
The tables are created by :mod:`agent.store.schema` (migration 2).

Cursors (both only ever move forward; every update is ``max(old, new)``):

* ``cursor`` — every event with ``id <= cursor`` was accepted by the receiver, quarantined, or (in
  critical budget mode) deferred;
* ``backfill`` — the non-lifecycle events (``updated``) deferred in critical mode with
  ``id <= backfill`` have gone out too. Outside critical mode ``backfill == cursor``.

A batch is a :class:`BatchSpec`: a rowid range ``(lo, hi]`` and which kinds of event in it. The spec
is written to ``inflight`` before the POST and cleared with the cursor update after it, so after a
crash the same batch — same events, same key, same bytes — is sent again, whatever the budget mode
or batch size has become meanwhile.

Concurrent runs (the agent's task and ``pager-edge sync --once``) take a lease row with
``BEGIN IMMEDIATE``; a lease whose holder died (SIGKILL, power cut) is taken over at once when its
pid is gone, else when it expires.

Rows are read and the quarantine written through sqlite-utils; the one-row updates stay SQL
(``max(cursor, ?)``, counters added in place) and every write that reads first runs under
``BEGIN IMMEDIATE`` or as a single statement, so it never races the ingest writer's commits.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from agent.clock import iso_of_epoch
from agent.store import Store
from agent.store.reads import event_dict
from agent.sync.wire import HEAD_WEIGHT, LIFECYCLE_KINDS, VERSION, event_weight

if TYPE_CHECKING:
    from sqlite_utils.db import Table

BatchKind = Literal["all", "lifecycle", "deferred"]
_LIFECYCLE_SQL = "(" + ", ".join(f"'{k}'" for k in LIFECYCLE_KINDS) + ")"
_KIND_FILTER = {
    "all": "",
    "lifecycle": f" AND kind IN {_LIFECYCLE_SQL}",
    "deferred": f" AND kind NOT IN {_LIFECYCLE_SQL}",
}
_NOT_QUARANTINED = (
    "NOT EXISTS (SELECT 1 FROM sync_quarantine q WHERE events.id BETWEEN q.first AND q.last)"
)


@dataclass(frozen=True)
class BatchSpec:
    """Which events a batch holds: rowids in ``(lo, hi]`` of `kind`, encoded in wire format
    `version`.

    The version is part of the definition so that a batch in flight when the agent was upgraded is
    re-sent in the format it was first sent in: the same key, the same events, the same body (a
    version 1 body names the agent's version, which an upgrade changes; receivers answer 409 and
    keep the events they lack). In-flight rows written before the version was recorded are v1.
    """

    kind: BatchKind
    lo: int
    hi: int
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> BatchSpec:
        d = json.loads(text)
        return cls(d["kind"], int(d["lo"]), int(d["hi"]), int(d.get("version", 1)))


@dataclass
class Delta:
    """Counters of one request, added to the totals in the same transaction as its outcome."""

    sent: int = 0
    received: int = 0
    requests: int = 0
    connections: int = 0

    def add(self, other: Delta) -> None:
        self.sent += other.sent
        self.received += other.received
        self.requests += other.requests
        self.connections += other.connections


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SyncState:
    """All reads and writes of the sync on one store connection (its own, not ingest's).

    Works on a read-only store too (status); on a store whose schema predates sync (v1, which
    only a read-only reader can see) :meth:`row` is empty and every event is pending.
    """

    def __init__(self, store: Store):
        self.store = store
        self.conn = store.conn

    # The sync's own writes and batch reads go through sqlite-utils; what `status` and the board's
    # header read (row, backlog, quarantine figures) is plain SQL, so a reader — a board process
    # per tablet — never loads sqlite-utils.
    @cached_property
    def _quarantine(self) -> Table:
        return self.store.db.table("sync_quarantine")

    @cached_property
    def _events(self) -> Table:
        return self.store.db.table("events")

    def _dicts(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def _count(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        return int(self.conn.execute(sql, args).fetchone()[0])

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock up front (read-then-write safe)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    def row(self, select: str = "*") -> dict[str, Any]:
        """The state row ({} before schema v2)."""
        try:
            rows = self._dicts(f"SELECT {select} FROM sync_state WHERE id = 1")
        except sqlite3.OperationalError:  # no such table: a v1 store, seen read-only
            return {}
        return rows[0] if rows else {}

    def _cursors(self) -> tuple[int, int]:
        row = self.row("cursor, backfill")
        return (row["cursor"], row["backfill"]) if row else (0, 0)

    # lease -----------------------------------------------------------------------------------

    def acquire(self, owner: str, ttl: float, now: float) -> int | None:
        """Take or renew the lease; None on success, else the live holder's pid."""
        with self._immediate() as c:
            lease = self.row("lease_owner, lease_pid, lease_until")
            holder, until = lease["lease_owner"], lease["lease_until"]
            pid: int | None = lease["lease_pid"]
            if holder and holder != owner and (until or 0) > now and pid_alive(pid):
                return pid
            c.execute(
                "UPDATE sync_state SET lease_owner = ?, lease_pid = ?, lease_until = ? WHERE id = 1",
                (owner, os.getpid(), now + ttl),
            )
        return None

    def release(self, owner: str) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE sync_state SET lease_owner = NULL, lease_pid = NULL, lease_until = NULL "
                "WHERE id = 1 AND lease_owner = ?",
                (owner,),
            )

    # batches ---------------------------------------------------------------------------------

    def select(
        self, kind: BatchKind, lo: int, hi: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        where = "id > ?"
        args: list[Any] = [lo]
        if hi is not None:
            where += " AND id <= ?"
            args.append(hi)
        rows = self._events.rows_where(where + _KIND_FILTER[kind], args, order_by="id", limit=limit)
        return [event_dict(r) for r in rows]

    def next_batch(
        self, kinds: BatchKind | None, max_events: int, max_weight: int
    ) -> tuple[BatchSpec, list[dict[str, Any]]] | None:
        """The batch to send now: the in-flight one if any, else deferred events (outside
        critical mode), else the next events after the cursor. None when nothing is due.

        `kinds` is what the budget mode lets out: ``"all"``, ``"lifecycle"`` or None (blocked).
        """
        if kinds is None:
            return None
        st = self.row("cursor, backfill, inflight")
        cursor, backfill, inflight = st["cursor"], st["backfill"], st["inflight"]
        if inflight:
            spec = BatchSpec.from_json(inflight)
            done = backfill if spec.kind == "deferred" else cursor
            if spec.lo >= done:  # not overtaken (by a concurrent run or a bisection)
                events = self.select(spec.kind, spec.lo, spec.hi)
                if events:
                    return spec, events
            self.set_inflight(None)
        if kinds == "all" and backfill < cursor:
            events = self.select("deferred", backfill, cursor, max_events)
            if events:
                events = _cut(events, max_weight)
                return BatchSpec("deferred", backfill, events[-1]["seq"]), events
            with self.conn:
                self.conn.execute(
                    "UPDATE sync_state SET backfill = max(backfill, ?) WHERE id = 1", (cursor,)
                )
        events = self.select(kinds, cursor, None, max_events)
        if not events:
            return None
        events = _cut(events, max_weight)
        return BatchSpec(kinds, cursor, events[-1]["seq"]), events

    def set_inflight(self, spec: BatchSpec | None, *, lease_until: float | None = None) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE sync_state SET inflight = ?, lease_until = coalesce(?, lease_until) "
                "WHERE id = 1",
                (spec.to_json() if spec else None, lease_until),
            )

    def _advance(self, c: sqlite3.Connection, spec: BatchSpec) -> None:
        if spec.kind == "deferred":
            c.execute(
                "UPDATE sync_state SET backfill = max(backfill, ?), inflight = NULL WHERE id = 1",
                (spec.hi,),
            )
        elif spec.kind == "lifecycle":
            c.execute(
                "UPDATE sync_state SET cursor = max(cursor, ?), inflight = NULL WHERE id = 1",
                (spec.hi,),
            )
        else:  # the whole range went: deferred events up to lo had, so backfill follows
            c.execute(
                "UPDATE sync_state SET backfill = CASE WHEN backfill >= ? THEN max(backfill, ?) "
                "ELSE backfill END, cursor = max(cursor, ?), inflight = NULL WHERE id = 1",
                (spec.lo, spec.hi, spec.hi),
            )

    def _add(self, c: sqlite3.Connection, d: Delta) -> None:
        c.execute(
            "UPDATE sync_state SET bytes_sent = bytes_sent + ?, bytes_received = bytes_received "
            "+ ?, requests = requests + ?, connections = connections + ? WHERE id = 1",
            (d.sent, d.received, d.requests, d.connections),
        )

    def accepted(self, spec: BatchSpec, d: Delta, now: float) -> None:
        """The receiver took the batch (2xx or 409): move the cursor past it."""
        with self.conn as c:
            self._advance(c, spec)
            self._add(c, d)
            c.execute(
                "UPDATE sync_state SET last_success = ?, last_error = NULL WHERE id = 1",
                (iso_of_epoch(now),),
            )

    def quarantine(
        self,
        spec: BatchSpec,
        events: list[dict[str, Any]],
        status: int | None,  # the Outcome's: always set for a rejection (the column allows NULL)
        reason: str,
        d: Delta,
        now: float,
    ) -> None:
        """The receiver rejected this (smallest) batch: keep it on record and move past it."""
        with self._immediate() as c:  # the insert reads the schema first: take the lock
            self._quarantine.insert(
                {
                    "kind": spec.kind,
                    "lo": spec.lo,
                    "hi": spec.hi,
                    "first": events[0]["seq"],
                    "last": events[-1]["seq"],
                    "events": len(events),
                    "status": status,
                    "reason": reason,
                    "at": iso_of_epoch(now),
                },
                ignore=True,  # the same range again (a re-sent batch): recorded once
            )
            self._advance(c, spec)
            self._add(c, d)

    def failed(self, error: str, d: Delta) -> None:
        with self.conn as c:
            self._add(c, d)
            c.execute("UPDATE sync_state SET last_error = ? WHERE id = 1", (error,))

    def set_mode(self, mode: str) -> None:
        """The mode the engine is in now (it changed between runs), for ``status``."""
        with self.conn:
            self.conn.execute("UPDATE sync_state SET mode = ? WHERE id = 1", (mode,))

    def end_cycle(self, *, mode: str, started: float, cycle: dict[str, Any]) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE sync_state SET mode = ?, last_attempt = ?, last_cycle = ? WHERE id = 1",
                (mode, iso_of_epoch(started), json.dumps(cycle, separators=(",", ":"))),
            )

    # figures ---------------------------------------------------------------------------------

    def rejections_since_success(self) -> int:
        """Quarantined batches since the receiver last accepted one (all runs, all processes)."""
        return self._count(
            "SELECT count(*) FROM sync_quarantine "
            "WHERE at >= coalesce((SELECT last_success FROM sync_state WHERE id = 1), '')"
        )

    def backlog(self) -> int:
        """Events not yet delivered (nor quarantined), deferred ones included."""
        cursor, backfill = self._cursors()
        after = self._count("SELECT count(*) FROM events WHERE id > ?", (cursor,))
        deferred = 0
        if backfill < cursor:
            deferred = self._count(
                "SELECT count(*) FROM events WHERE id > ? AND id <= ?" + _KIND_FILTER["deferred"],
                (backfill, cursor),
            )
        return after + deferred

    def due_now(
        self, kinds: BatchKind | None, full: int
    ) -> tuple[int, int | None, str | None, bool]:
        """What the next batch would hold, for deciding when to send it: (events up to `full`,
        rowid and ``observed_at`` of the oldest, urgent). Urgent: a batch in flight or deferred
        events waiting (outside critical mode) — they were due before, they go at once."""
        if kinds is None:
            return 0, None, None, False
        st = self.row("cursor, backfill, inflight")
        cursor, backfill = st["cursor"], st["backfill"]
        urgent = bool(st["inflight"]) or (
            kinds == "all"
            and backfill < cursor
            and self._events.count_where(
                "id > ? AND id <= ?" + _KIND_FILTER["deferred"], [backfill, cursor]
            )
            > 0
        )
        rows = list(
            self._events.rows_where(
                "id > ?" + _KIND_FILTER[kinds],
                [cursor],
                order_by="id",
                select="id, observed_at",
                limit=full,
            )
        )
        first = rows[0] if rows else {"id": None, "observed_at": None}
        return len(rows), first["id"], first["observed_at"], urgent

    def heartbeat_row(self) -> tuple[str | None, str | None, str | None]:
        """(last_success, last_heartbeat, heartbeat_agent): when the receiver last took something."""
        row = self.row("last_success, last_heartbeat, heartbeat_agent")
        if not row:
            return None, None, None
        return row["last_success"], row["last_heartbeat"], row["heartbeat_agent"]

    def heartbeat(self, d: Delta, now: float, agent: str) -> None:
        """The receiver took a heartbeat."""
        with self.conn as c:
            self._add(c, d)
            c.execute(
                "UPDATE sync_state SET last_heartbeat = ?, heartbeat_agent = ?, last_error = NULL "
                "WHERE id = 1",
                (iso_of_epoch(now), agent),
            )

    def oldest_pending_observed_at(self) -> str | None:
        """When the oldest event after the cursor was observed (None when there is none)."""
        cursor, _ = self._cursors()
        row = self.conn.execute(
            "SELECT observed_at FROM events WHERE id > ? ORDER BY id LIMIT 1", (cursor,)
        ).fetchone()
        return row[0] if row else None

    def quarantine_totals(self) -> tuple[int, int]:
        """Quarantined batches and the events in them."""
        batches, events = self.conn.execute(
            "SELECT count(*), coalesce(sum(events), 0) FROM sync_quarantine"
        ).fetchone()
        return batches, events

    def recent_quarantine(self, limit: int) -> list[dict[str, Any]]:
        """The newest quarantined batches, newest first."""
        return self._dicts(
            "SELECT first, last, events, status, reason, at FROM sync_quarantine "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )

    # retention -------------------------------------------------------------------------------

    def prune(
        self, *, older_than: str | None, chunk: int = 5000, max_rows: int | None = None
    ) -> int:
        """Delete delivered events observed before `older_than` (all delivered ones when None).

        Never touches undelivered, deferred or quarantined events, nor the newest event of the log
        (SQLite would reuse its rowid, and rowids are cloud ids). Deletes in chunks so the
        ingest writer never waits long for the write lock.
        """
        cursor, backfill = self._cursors()
        newest = self.store.event_count()
        if not newest:
            return 0
        limit = min(cursor, newest - 1)
        where = f"id <= ? AND (id <= ? OR kind IN {_LIFECYCLE_SQL}) AND {_NOT_QUARANTINED}" + (
            " AND observed_at < ?" if older_than is not None else ""
        )
        args: list[Any] = [limit, backfill] + ([older_than] if older_than is not None else [])
        total = 0
        while max_rows is None or total < max_rows:
            n = chunk if max_rows is None else min(chunk, max_rows - total)
            with self.conn as c:
                deleted = c.execute(
                    f"DELETE FROM events WHERE id IN "
                    f"(SELECT id FROM events WHERE {where} ORDER BY id LIMIT ?)",
                    (*args, n),
                ).rowcount
                c.execute("UPDATE sync_state SET pruned = pruned + ? WHERE id = 1", (deleted,))
            total += deleted
            if deleted < n:
                break
        return total

    def set_prune_time(self, now: float) -> None:
        with self.conn:
            self.conn.execute("UPDATE sync_state SET last_prune = ? WHERE id = 1", (now,))

    def set_alert(self, alert: str | None) -> None:
        with self.conn:
            self.conn.execute("UPDATE sync_state SET alert = ? WHERE id = 1", (alert,))


def _cut(events: list[dict[str, Any]], max_weight: int) -> list[dict[str, Any]]:
    """The longest prefix (at least one event) whose size bound stays within `max_weight`."""
    total = HEAD_WEIGHT
    for i, ev in enumerate(events):
        total += event_weight(ev)
        if total > max_weight and i > 0:
            return events[:i]
    return events
