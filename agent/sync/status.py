"""The ``sync`` section of ``pager-edge status`` (and what the board shows), read from the store.

Works on a read-only store; a store whose schema predates sync reports everything as pending.
Keys scripts rely on: ``backlog``, ``last_success``, ``bytes_sent``, ``quarantined``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from agent.sync.state import SyncState, pid_alive

RECENT_QUARANTINE = 5


def sync_status(store: Any, *, now: float | None = None) -> dict[str, Any]:
    """`store` is an :class:`agent.store.Store` (read-only is fine)."""
    now = time.time() if now is None else now
    conn: sqlite3.Connection = store.conn
    state = SyncState(conn)
    try:
        row = state.row()
    except sqlite3.OperationalError:  # schema v1: sync never ran
        (n,) = conn.execute("SELECT count(*) FROM events").fetchone()
        return {"backlog": n, "last_success": None, "bytes_sent": 0, "quarantined": 0}
    (oldest,) = conn.execute(
        "SELECT observed_at FROM events WHERE id > ? ORDER BY id LIMIT 1", (row["cursor"],)
    ).fetchone() or (None,)
    q_batches, q_events = conn.execute(
        "SELECT count(*), coalesce(sum(events), 0) FROM sync_quarantine"
    ).fetchone()
    recent = [
        {
            "key_range": f"{r[0]}-{r[1]}",
            "events": r[2],
            "status": r[3],
            "reason": r[4],
            "at": r[5],
        }
        for r in conn.execute(
            "SELECT first, last, events, status, reason, at FROM sync_quarantine "
            "ORDER BY id DESC LIMIT ?",
            (RECENT_QUARANTINE,),
        )
    ]
    running = (
        row["lease_pid"]
        if row["lease_owner"] and (row["lease_until"] or 0) > now and pid_alive(row["lease_pid"])
        else None
    )
    return {
        "backlog": state.backlog(),
        "oldest_pending_observed_at": oldest,
        "cursor": row["cursor"],
        "mode": row["mode"],
        "last_attempt": row["last_attempt"],
        "last_success": row["last_success"],
        "last_error": row["last_error"],
        "bytes_sent": row["bytes_sent"],
        "bytes_received": row["bytes_received"],
        "requests": row["requests"],
        "connections": row["connections"],
        "last_cycle": json.loads(row["last_cycle"]) if row["last_cycle"] else None,
        "quarantined": q_batches,
        "quarantined_events": q_events,
        "quarantine": recent,
        "pruned": row["pruned"],
        "alert": row["alert"],
        "running_pid": running,
    }


def link_bytes(store: Any) -> int:
    """Bytes the agent itself moved over the backhaul, both directions (operators bill both)."""
    s = sync_status(store)
    return int(s.get("bytes_sent") or 0) + int(s.get("bytes_received") or 0)
