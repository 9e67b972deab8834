"""Staff requests: actions held in the store until the agent carries them out.

A seat or remove waits out its undo grace here — not in one browser tab's process, so a tablet
that sleeps or closes its tab mid-grace still has it done, and every other board shows it pending.
Close-out and what staff decide about lost parties (re-add, dismiss) travel the same way. Boards
insert and cancel (undo); the agent claims what is due, carries it out and records the result.
Every statement on the ``requests`` table is in this module.

States: ``pending`` → ``running`` → ``done`` | ``failed``; or ``cancelled`` (undone in the grace).
A claim is one conditional UPDATE, so two agents (or an agent restarted mid-claim) never carry
out the same request twice, and an undo that lands after the claim changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from agent.clock import iso_utc

RequestKind = Literal["seat", "remove", "close_out", "readd", "dismiss"]
OPEN_STATES = ("pending", "running")


@dataclass(frozen=True, slots=True)
class StaffRequest:
    id: int
    kind: RequestKind
    uuid: str | None
    number: int | None
    payload: dict[str, Any]
    board: str | None
    created_at: str
    due_at: str
    state: str
    result: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> StaffRequest:
        return cls(
            id=row["id"],
            kind=row["kind"],
            uuid=row["uuid"],
            number=row["number"],
            payload=json.loads(row["payload"]) if row["payload"] else {},
            board=row["board"],
            created_at=row["created_at"],
            due_at=row["due_at"],
            state=row["state"],
            result=row["result"],
        )


_COLUMNS = "id, kind, uuid, number, payload, board, created_at, due_at, state, result"


class RequestQueue:
    """The ``requests`` table over one connection (a board's, or the agent's own)."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def _rows(self, where: str, args: tuple[Any, ...] = ()) -> list[StaffRequest]:
        try:
            cur = self.conn.execute(f"SELECT {_COLUMNS} FROM requests WHERE {where}", args)
        except sqlite3.OperationalError:  # a database from before the table (not migrated yet)
            return []
        names = [d[0] for d in cur.description]
        return [StaffRequest.from_row(dict(zip(names, r, strict=True))) for r in cur]

    # boards ----------------------------------------------------------------------------------

    def submit(
        self,
        kind: RequestKind,
        *,
        now: datetime,
        grace: float = 0.0,
        uuid: str | None = None,
        number: int | None = None,
        payload: dict[str, Any] | None = None,
        board: str | None = None,
    ) -> int:
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO requests (kind, uuid, number, payload, board, created_at, due_at, "
                "state) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
                (
                    kind,
                    uuid,
                    number,
                    json.dumps(payload or {}, ensure_ascii=False),
                    board,
                    iso_utc(now),
                    iso_utc(now + timedelta(seconds=grace)),
                ),
            )
        return int(cur.lastrowid or 0)

    def cancel(self, request_id: int, *, now: datetime) -> bool:
        """Undo: True if it was still pending (then nothing is ever sent for it)."""
        with self.conn:
            cur = self.conn.execute(
                "UPDATE requests SET state = 'cancelled', done_at = ? "
                "WHERE id = ? AND state = 'pending'",
                (iso_utc(now), request_id),
            )
        return cur.rowcount == 1

    def open(self) -> list[StaffRequest]:
        """Pending and running requests, oldest first — what every board shows."""
        return self._rows("state IN ('pending', 'running') ORDER BY id")

    def get(self, request_id: int) -> StaffRequest | None:
        rows = self._rows("id = ?", (request_id,))
        return rows[0] if rows else None

    # the agent -------------------------------------------------------------------------------

    def due(self, now: datetime) -> list[StaffRequest]:
        return self._rows("state = 'pending' AND due_at <= ? ORDER BY id", (iso_utc(now),))

    def next_due_at(self) -> str | None:
        rows = self._rows("state = 'pending' ORDER BY due_at LIMIT 1")
        return rows[0].due_at if rows else None

    def claim(self, request_id: int) -> bool:
        with self.conn:
            cur = self.conn.execute(
                "UPDATE requests SET state = 'running' WHERE id = ? AND state = 'pending'",
                (request_id,),
            )
        return cur.rowcount == 1

    def finish(self, request_id: int, *, ok: bool, result: str, now: datetime) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE requests SET state = ?, result = ?, done_at = ? WHERE id = ?",
                ("done" if ok else "failed", result, iso_utc(now), request_id),
            )

    def release_running(self) -> int:
        """At start: requests a killed agent had claimed go back to pending (a seat sent twice
        is refused by the transmitter as "no active session"; one never sent would be lost)."""
        with self.conn:
            cur = self.conn.execute("UPDATE requests SET state = 'pending' WHERE state = 'running'")
        return cur.rowcount


def open_queue(path: str | Path) -> RequestQueue | None:
    """A board's writable handle on the queue, or None when this user cannot write the store (the
    kiosk's user, a board run by another account) or the agent has not created the table yet."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, check_same_thread=False, timeout=5)
        conn.execute("SELECT 1 FROM requests LIMIT 1").fetchall()
        conn.execute("BEGIN IMMEDIATE")  # can this user write here at all?
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        return None
    return RequestQueue(conn)
