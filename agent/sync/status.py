"""The ``sync`` section of ``pager-edge status`` (and what the board shows), read from the store.

Works on a read-only store; a store whose schema predates sync reports everything as pending.
Keys scripts rely on: ``backlog``, ``last_success``, ``bytes_sent``, ``quarantined``.

``mode`` is the mode the engine is in (``waiting`` while the first backhaul reading has not come);
``mode_reason`` says why when the first-reading rule (:mod:`agent.sync.modes`) decided it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from agent.config import BackhaulConfig
from agent.store import Store
from agent.sync.modes import FALLBACK, WAITING, undecided_reason
from agent.sync.state import SyncState, pid_alive

RECENT_QUARANTINE = 5


def sync_status(
    store: Store, *, now: float | None = None, backhaul: BackhaulConfig | None = None
) -> dict[str, Any]:
    """`store` may be a read-only one; `backhaul` (the configuration) explains the mode."""
    now = time.time() if now is None else now
    state = SyncState(store)
    row = state.row()
    if not row:  # schema v1: sync never ran
        return {"backlog": state.backlog(), "last_success": None, "bytes_sent": 0, "quarantined": 0}
    q_batches, q_events = state.quarantine_totals()
    recent = [
        {
            "key_range": f"{r['first']}-{r['last']}",
            "events": r["events"],
            "status": r["status"],
            "reason": r["reason"],
            "at": r["at"],
        }
        for r in state.recent_quarantine(RECENT_QUARANTINE)
    ]
    running = (
        row["lease_pid"]
        if row["lease_owner"] and (row["lease_until"] or 0) > now and pid_alive(row["lease_pid"])
        else None
    )
    return {
        "backlog": state.backlog(),
        "oldest_pending_observed_at": state.oldest_pending_observed_at(),
        "cursor": row["cursor"],
        "mode": row["mode"],
        "mode_reason": _mode_reason(store, row["mode"], backhaul, now),
        "last_attempt": row["last_attempt"],
        "last_success": row["last_success"],
        "last_heartbeat": row.get("last_heartbeat"),
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


def _mode_reason(
    store: Store, mode: str | None, backhaul: BackhaulConfig | None, now: float
) -> str | None:
    """Why the engine is in `mode`, when the first-reading rule chose it: ``waiting`` says so
    itself; ``conserve`` is the rule's (not the budget's) while no stored reading decides one."""
    if backhaul is None or not backhaul.enabled or mode not in (WAITING, FALLBACK):
        return None
    if mode == FALLBACK:
        from agent.backhaul.monitor import decided_mode  # lazy: keeps status light

        at = datetime.fromtimestamp(now, UTC)
        if decided_mode(store.latest_backhaul_reading(), backhaul, at) is not None:
            return None
    return undecided_reason(mode, backhaul.first_reading_timeout)


def link_bytes(store: Store) -> int:
    """Bytes the agent itself moved over the backhaul, both directions (operators bill both)."""
    s = sync_status(store)
    return int(s.get("bytes_sent") or 0) + int(s.get("bytes_received") or 0)
