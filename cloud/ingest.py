"""One batch into PostgreSQL, exactly once: the key claimed and the events stored in one statement.

The batch row (primary key ``(site, key)``) and the events (primary key ``(site, seq)``) are
written by a single ``INSERT … WITH`` statement, so they commit together or not at all, and the
answer is sent only after the commit returned. Concurrency is the database's business, never a
replica's memory:

* the same key at two replicas at once (a load balancer retrying after a dropped connection): the
  second claim waits on the first's uncommitted row, then finds it and stores nothing → 409;
* the same events under another key (halves of a rejected batch, a batch re-cut after a crash):
  ``ON CONFLICT (site, seq) DO NOTHING`` keeps the first copy → counted as duplicates;
* events are inserted in ``seq`` order, so two overlapping batches lock rows in the same order
  and cannot deadlock.

A key taken before with *different* bytes (an agent upgraded between a crash and its re-send: the
``agent`` field changed) still answers 409, after storing whatever events the database lacks.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.clock import epoch_of_iso
from cloud.schema import Conn

log = logging.getLogger("cloud.ingest")

MAX_TEXT = 200  # session uuid, kind, source, literal times: far more than any real value
MAX_SEQ = 2**63 - 1
MAX_NUMBER = 2**31 - 1

_COLUMNS = "seq, session, number, kind, at, at_text, observed_at, observed_text, changes, source"
_INSERT_EVENTS = (
    f"INSERT INTO events (site, {_COLUMNS}, batch_key)"
    " SELECT $1::text, u.seq, u.session, u.number, u.kind, u.at, u.at_text, u.observed_at,"
    " u.observed_text, u.changes::jsonb, u.source, $2::text"
    " FROM unnest($3::bigint[], $4::text[], $5::integer[], $6::text[], $7::timestamptz[],"
    " $8::text[], $9::timestamptz[], $10::text[], $11::text[], $12::text[])"
    f" AS u({_COLUMNS})"
)
_IN_ORDER = " ORDER BY u.seq ON CONFLICT (site, seq) DO NOTHING"

STORE_BATCH = (
    "WITH claim AS ("
    " INSERT INTO batches (site, key, body_sha256, first_seq, last_seq, events, agent)"
    " VALUES ($1, $2, $13, $14, $15, $16, $17)"
    " ON CONFLICT (site, key) DO NOTHING RETURNING 1"
    f"), stored AS ({_INSERT_EVENTS} WHERE EXISTS (SELECT 1 FROM claim){_IN_ORDER} RETURNING 1)"
    " SELECT (SELECT count(*) FROM claim) AS claimed, (SELECT count(*) FROM stored) AS stored"
)
# For a key already taken with other bytes: the events alone, deduplicated by id.
STORE_EVENTS = _INSERT_EVENTS + _IN_ORDER
KEY_DIGEST = "SELECT body_sha256 FROM batches WHERE site = $1 AND key = $2"


HEARTBEAT = (
    "INSERT INTO site_heartbeats (site, heard_at, agent, agent_clock, pending)"
    " VALUES ($1, now(), $2, $3, $4) ON CONFLICT (site) DO UPDATE SET heard_at = now(),"
    " agent = excluded.agent, agent_clock = excluded.agent_clock, pending = excluded.pending"
)


async def record_heartbeat(conn: Conn, site: str, beat: dict[str, Any], *, timeout: float) -> None:
    """A heartbeat (already decoded, its site the token's): when, what runs there, what it holds."""
    agent = str(beat["agent"])[:MAX_TEXT]
    clock = epoch_of_iso(beat["heartbeat"]["at"])
    pending = min(int(beat["heartbeat"]["pending"]), MAX_NUMBER)
    await conn.execute(
        HEARTBEAT,
        site,
        agent.replace("\x00", ""),
        None if clock is None else datetime.fromtimestamp(clock, UTC),
        pending,
        timeout=timeout,
    )


@dataclass(frozen=True)
class Stored:
    duplicate_key: bool  # the Idempotency-Key was already taken: answer 409
    new: int  # events stored by this request
    duplicates: int  # events the database already had
    key_mismatch: bool = False  # taken before with different bytes


def problem(batch: dict[str, Any]) -> str | None:
    """Why decoded events cannot be stored (a 400 for the agent to split and quarantine), or None.

    The decoder checks the structure; this checks what PostgreSQL would refuse: types, ranges,
    text holding NUL.
    """
    events = batch["events"]
    if not events:
        return "empty batch"
    if not _whole(batch.get("first")) or not _whole(batch.get("last")):
        return "first and last must be integers"
    prev = 0
    for ev in events:
        seq, number = ev["seq"], ev["number"]
        if not _whole(seq) or not prev < seq <= MAX_SEQ:
            return f"seq {seq!r} after {prev}: expected ascending positive integers"
        prev = seq
        if not _whole(number) or not 0 <= number <= MAX_NUMBER:
            return f"event {seq}: number {number!r} is not a pager number"
        for key in ("uuid", "kind", "source", "at", "observed_at"):
            value = ev[key]
            if not isinstance(value, str) or (not value and key in ("uuid", "kind")):
                return f"event {seq}: {key} must be text"
            if len(value) > MAX_TEXT or "\x00" in value:
                return f"event {seq}: {key} is too long or holds NUL"
        if not isinstance(ev["changes"], dict):
            return f"event {seq}: changes must be an object"
    return None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _moment(text: str) -> tuple[datetime | None, str | None]:
    """(time, None) for the store's timestamp form, (None, text) for anything else."""
    t = epoch_of_iso(text)
    return (None, text) if t is None else (datetime.fromtimestamp(t, UTC), None)


def columns(events: list[dict[str, Any]]) -> list[list[Any]]:
    """The events as the ten column arrays the ``unnest`` above takes."""
    cols: list[list[Any]] = [[] for _ in range(10)]
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    for ev in events:
        at, at_text = _moment(ev["at"])
        obs, obs_text = _moment(ev["observed_at"])
        row = (
            ev["seq"],
            ev["uuid"],
            ev["number"],
            ev["kind"],
            at,
            at_text,
            obs,
            obs_text,
            dumps(ev["changes"]),
            ev["source"],
        )
        for col, value in zip(cols, row, strict=True):
            col.append(value)
    return cols


async def store_batch(
    conn: Conn,
    site: str,
    key: str,
    digest: bytes,
    batch: dict[str, Any],
    *,
    timeout: float,
) -> Stored:
    """Store one decoded batch (already checked: its site is the token's, its key its range)."""
    events = batch["events"]
    cols = columns(events)
    agent = batch.get("agent")
    row = await conn.fetchrow(
        STORE_BATCH,
        site,
        key,
        *cols,
        digest,
        batch["first"],
        batch["last"],
        len(events),
        agent if isinstance(agent, str) else None,
        timeout=timeout,
    )
    assert row is not None
    if row["claimed"]:
        new = int(row["stored"])
        return Stored(False, new, len(events) - new)
    before = await conn.fetchval(KEY_DIGEST, site, key, timeout=timeout)
    if before == digest:
        return Stored(True, 0, len(events))
    status = await conn.execute(STORE_EVENTS, site, key, *cols, timeout=timeout)
    new = int(status.split()[-1])
    log.warning(
        "key %s taken before with different bytes: %d of its %d events were new",
        key,
        new,
        len(events),
    )
    return Stored(True, new, len(events) - new, key_mismatch=True)
