"""The cloud sync wire format, pure: store events → batch body bytes, and back.

One batch is one ``POST`` of a gzip-compressed JSON document. Two versions exist; the agent sends
the newest, :func:`decode_body` (the reference decoder, which both receivers use) reads every one:

* ``pager-edge-sync/2`` (``{"v":2,…}``, sent since 0.2): the format itself names the row columns,
  the event kinds and the sources (fixed tables, :data:`V2_KINDS` and :data:`V2_SOURCES`), so a
  batch carries no static head: ``site``, ``first``, ``t0`` (epoch seconds), ``sessions`` and
  ``events`` only (``last`` is where the rows end); the agent version travels in the heartbeat. A
  kind or source the table lacks is written as its name (a string cell), so a new kind needs no
  new version. A row may leave out trailing cells that hold their default (``changes`` null,
  source ``notify``). A session that is a canonical UUID travels as 22 base64url characters
  (:func:`compact_session`); the fields of ``changes`` the format knows (:data:`V2_CHANGES`) as
  their index (``{"0":"Kim","1":2,"2":900}`` for label, party size, goal). A body without ``events`` is a **heartbeat** (:func:`heartbeat_body`).
* ``pager-edge-sync/1``: the same rows, with ``fields``, ``kinds``, ``sources`` and ``agent`` in
  every batch. Still encoded for batches that were in flight in v1 when the agent was upgraded
  (the same key is re-sent as the same bytes, see ``state.BatchSpec``).

Rows, in both versions (``wire-schema.json`` beside this file and ``README.md`` say it for
receivers):

* ``seq`` — rowid minus the previous row's rowid (the first row: minus ``first - 1``): mostly ``1``;
* ``session`` — index into ``sessions``, the batch's ``[uuid, pager number]`` pairs in order of first
  use, so a session's uuid crosses the link once per batch instead of once per event;
* ``kind`` — index into the kind table;
* ``at`` — transmitter time as whole seconds since the previous numeric ``at`` of the batch (the
  first: since ``t0``); a string is a literal time that did not have the store's
  ``YYYY-MM-DDTHH:MM:SSZ`` form (it is carried verbatim and does not move the base);
* ``observed`` — seconds from this row's ``at`` to when the agent observed it, or a literal string;
* ``changes`` — the changed fields, as stored (``null`` when none);
* ``source`` — index into the source table.

Everything is deterministic: the same events give the same JSON, and ``gzip.compress(…, mtime=0)``
gives the same bytes, so a batch re-sent after a crash is byte-identical.
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid as uuidlib
from collections.abc import Iterable, Sequence
from typing import Any, TypeGuard

from agent.clock import epoch_of_iso, iso_of_epoch
from agent.session import LIFECYCLE_KINDS as SESSION_LIFECYCLE_KINDS

FORMAT_V1 = "pager-edge-sync/1"
FORMAT_V2 = "pager-edge-sync/2"
FORMATS: dict[int, str] = {1: FORMAT_V1, 2: FORMAT_V2}
VERSION = 2  # what the agent sends
FORMAT = FORMATS[VERSION]
# Version 2's tables, fixed forever: a later kind or source goes out as its name (a string cell),
# or into a table of a later version. Version 1 sent its tables in each batch (V1_KINDS first).
V2_KINDS: tuple[str, ...] = ("created", "updated", "paged", "cleared", "removed", "lost")
V2_SOURCES: tuple[str, ...] = ("notify", "resync", "history")
V2_CHANGES: tuple[str, ...] = ("label", "party_size", "goal_seconds", "page")
V1_KINDS: tuple[str, ...] = ("created", "updated", "paged", "cleared", "removed")
KINDS = V2_KINDS
# What still goes out in critical budget mode: the steps of a guest's visit.
LIFECYCLE_KINDS: tuple[str, ...] = SESSION_LIFECYCLE_KINDS
FIELDS: tuple[str, ...] = ("seq", "session", "kind", "at", "observed", "changes", "source")
MIN_ROW = 5  # v2 rows may end after `observed` (changes null, source notify)
CONTENT_TYPE = "application/json"
CONTENT_ENCODING = "gzip"


def idempotency_key(site: str, first: int, last: int) -> str:
    """``<site_id>:<first rowid>-<last rowid>`` of the events in the batch."""
    return f"{site}:{first}-{last}"


def event_id(site: str, seq: int) -> str:
    """The event's cloud id: ``<site_id>:<rowid>``."""
    return f"{site}:{seq}"


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


# Bound of the JSON around the rows (format, site, agent, t0, field/kind/source names).
HEAD_WEIGHT = 600


def event_weight(ev: dict[str, Any]) -> int:
    """An upper bound of the JSON bytes one event adds to a batch (its row and table entries),
    in either version.

    Cheap and deterministic, so batches are cut at ``max_batch_bytes`` before encoding and a
    batch re-formed after a crash ends at the same event.
    """
    n = 120 + len(ev["uuid"].encode()) + len(ev["kind"]) + len((ev.get("source") or "").encode())
    changes = ev.get("changes")
    if changes:
        n += len(_dumps(changes).encode())
    for key in ("at", "observed_at"):
        if epoch_of_iso(ev[key]) is None:
            n += len(_dumps(ev[key]).encode())
    return n


_UUID_MARK = "="  # not in the base64url alphabet


def compact_session(sid: str) -> str:
    """A session id for a v2 ``sessions`` entry: a canonical (lower-case) UUID as ``=`` and the
    base64url of its 16 bytes (23 characters instead of 36); any other id as it is, with an ``=``
    put in front of one that starts with ``=``."""
    try:
        u = uuidlib.UUID(sid)
    except ValueError:
        u = None
    if u is not None and str(u) == sid:
        return _UUID_MARK + base64.urlsafe_b64encode(u.bytes)[:22].decode()
    return _UUID_MARK + sid if sid.startswith(_UUID_MARK) else sid


def expand_session(cell: str) -> str:
    """The inverse of :func:`compact_session`."""
    if not cell.startswith(_UUID_MARK):
        return cell
    if cell.startswith(_UUID_MARK * 2):
        return cell[1:]
    if len(cell) != 23:
        raise ValueError(f"session {cell!r:.40}: not a compact UUID")
    return str(uuidlib.UUID(bytes=base64.urlsafe_b64decode(cell[1:] + "==")))


_CHANGE_INDEX = {name: str(i) for i, name in enumerate(V2_CHANGES)}


def _change_key(name: str) -> str:
    """A v2 ``changes`` key: a field of :data:`V2_CHANGES` as its index (``"0"`` for label …);
    any other name as it is, with ``=`` put in front of one that is all digits or starts with
    ``=``."""
    index = _CHANGE_INDEX.get(name)
    if index is not None:
        return index
    return _UUID_MARK + name if name.isdigit() or name.startswith(_UUID_MARK) else name


def _changes(cell: Any, *, v1: bool) -> dict[str, Any]:
    if not cell:
        return {}
    if not isinstance(cell, dict):
        raise TypeError(f"changes must be an object, got {cell!r:.40}")
    if v1:
        return cell
    out = {}
    for key, value in cell.items():
        if key.isdigit():
            key = V2_CHANGES[int(key)]
        elif key.startswith(_UUID_MARK):
            key = key[1:]
        out[key] = value
    return out


class _Table:
    """Names → cells: a fixed table's index, or (v1) an index appended to the batch's own list,
    or (v2) the name itself for a name the fixed table lacks."""

    def __init__(self, fixed: tuple[str, ...], *, grow: bool):
        self.names = list(fixed)
        self._index = {k: i for i, k in enumerate(fixed)}
        self._grow = grow

    def cell(self, name: str) -> str:
        i = self._index.get(name)
        if i is None:
            if not self._grow:
                return _dumps(name)
            i = self._index[name] = len(self.names)
            self.names.append(name)
        return str(i)


class BatchEncoder:
    """Builds one batch body row by row, in format `version` (the agent's own by default).

    Used incrementally so that a batch can be cut at ``max_batch_bytes`` deterministically.
    `agent` (the sender's version) is written by version 1 only.
    """

    def __init__(self, site: str, agent: str | None = None, *, version: int = VERSION):
        if version not in FORMATS:
            raise ValueError(f"unknown sync format version {version}")
        self.site = site
        self.agent = agent or ""
        self.version = version
        self.rows: list[str] = []
        self.sessions: list[str] = []
        self._session_index: dict[tuple[str, int], int] = {}
        v1 = version == 1
        self._kinds = _Table(V1_KINDS if v1 else V2_KINDS, grow=v1)
        self._sources = _Table(() if v1 else V2_SOURCES, grow=v1)
        self.first: int | None = None
        self.last: int | None = None
        self.t0: int | None = None
        self._prev_at: int | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def _row(self, ev: dict[str, Any]) -> str:
        seq = ev["seq"]
        dseq = seq - (self.last if self.last is not None else seq - 1)
        uuid, number = ev["uuid"], ev["number"]
        sidx = self._session_index.get((uuid, number))
        if sidx is None:
            sidx = self._session_index[(uuid, number)] = len(self.sessions)
            sid = uuid if self.version == 1 else compact_session(uuid)
            self.sessions.append(_dumps([sid, number]))
        kind = self._kinds.cell(ev["kind"])
        source = self._sources.cell(ev.get("source") or "")
        at_s, obs_s = ev["at"], ev["observed_at"]
        at_n = epoch_of_iso(at_s)
        if at_n is None:
            at_cell = _dumps(at_s)
            obs_cell = _dumps(obs_s)
        else:
            if self._prev_at is None:  # set together with t0, by the first parsable time
                self.t0 = self._prev_at = at_n
            at_cell = str(at_n - self._prev_at)
            self._prev_at = at_n
            obs_n = epoch_of_iso(obs_s)
            obs_cell = _dumps(obs_s) if obs_n is None else str(obs_n - at_n)
        changes = ev.get("changes")
        if self.first is None:
            self.first = seq
        self.last = seq
        # By hand: this runs for every event; only `changes` needs a JSON encoder.
        cells = [str(dseq), str(sidx), kind, at_cell, obs_cell]
        if changes and self.version >= 2:
            changes = {_change_key(k): v for k, v in changes.items()}
        tail = [_dumps(changes) if changes else "null", source]
        if self.version >= 2:  # trailing defaults left out
            while tail and tail[-1] == ("0" if len(tail) == 2 else "null"):
                tail.pop()
        return "[" + ",".join(cells + tail) + "]"

    def add(self, ev: dict[str, Any]) -> None:
        """Append one store event (a dict from ``Store.iter_events``), in rowid order."""
        if self.last is not None and ev["seq"] <= self.last:
            raise ValueError(f"events must be in rowid order ({ev['seq']} after {self.last})")
        self.rows.append(self._row(ev))

    def document(self) -> dict[str, Any]:
        """The body as a Python object (for tests and the docs; `json_bytes` is what is sent)."""
        doc: dict[str, Any] = json.loads(self.json_bytes())
        return doc

    def _head(self) -> str:
        if self.version == 1:
            fmt = _dumps(FORMAT_V1)
            t0 = _dumps(iso_of_epoch(self.t0) if self.t0 is not None else None)
            return (
                f'{{"format":{fmt},"site":{_dumps(self.site)},"agent":{_dumps(self.agent)},'
                f'"first":{self.first},"last":{self.last},"t0":{t0},'
                f'"fields":{_dumps(list(FIELDS))},"kinds":{_dumps(self._kinds.names)},'
                f'"sources":{_dumps(self._sources.names)},'
            )
        t0 = "null" if self.t0 is None else str(self.t0)
        return f'{{"v":2,"site":{_dumps(self.site)},"first":{self.first},"t0":{t0},'

    def json_bytes(self) -> bytes:
        if not self.rows:
            raise ValueError("empty batch")
        # Hand-assembled so that rows are encoded once; key order is part of the determinism.
        text = (
            self._head()
            + '"sessions":['
            + ",".join(self.sessions)
            + '],"events":['
            + ",".join(self.rows)
            + "]}"
        )
        return text.encode("utf-8")

    def key(self) -> str:
        if self.first is None or self.last is None:
            raise ValueError("empty batch")
        return idempotency_key(self.site, self.first, self.last)

    def body(self) -> bytes:
        return compress(self.json_bytes())


def compress(data: bytes) -> bytes:
    """Deterministic gzip: no timestamp, no file name, fixed level."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def encode_batch(
    site: str, agent: str | None, events: Iterable[dict[str, Any]], *, version: int = VERSION
) -> tuple[str, bytes]:
    """(Idempotency-Key, gzip body) for events in rowid order."""
    enc = BatchEncoder(site, agent, version=version)
    for ev in events:
        enc.add(ev)
    return enc.key(), enc.body()


def heartbeat_body(site: str, agent: str, at: int, pending: int) -> bytes:
    """A heartbeat (version 2, no ``events``): the site is alive, what it runs, what it holds.

    `at` is the agent's clock (epoch seconds: a receiver can see its skew), `pending` the events
    not yet delivered. Sent without an ``Idempotency-Key``: it stores nothing but the time.
    """
    doc = {"v": 2, "site": site, "agent": agent, "heartbeat": at, "pending": pending}
    return compress(_dumps(doc).encode("utf-8"))


class WireError(ValueError):
    """A body that does not follow the format (what a receiver answers 400 for)."""


def decode_body(body: bytes, *, gzipped: bool = True) -> dict[str, Any]:
    """The receiving side, any version: a body → ``{"format", "site", "agent", "first", "last",
    "events": [...], "heartbeat"}``.

    Each event comes back in the store's export shape plus its cloud ``id``:
    ``{"id", "seq", "uuid", "number", "kind", "at", "observed_at", "changes", "source"}``.
    ``heartbeat`` is None for a batch; for a heartbeat it is ``{"at", "pending"}`` (``at`` in the
    store's timestamp form), ``events`` is empty and ``first``/``last`` are None. ``agent`` is the
    sender's version where the body says it (version 1 batches, heartbeats), else None.
    """
    try:
        raw = gzip.decompress(body) if gzipped else body
        doc = json.loads(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise WireError(f"not a gzip JSON body: {exc}") from None
    fmt = None
    if isinstance(doc, dict):
        fmt = FORMAT_V2 if doc.get("v") == 2 and "format" not in doc else doc.get("format")
    if fmt != FORMAT_V1 and fmt != FORMAT_V2:
        raise WireError(f'expected "v": 2 ({FORMAT_V2}) or "format": "{FORMAT_V1}"')
    if fmt == FORMAT_V2 and "events" not in doc:
        return _decode_heartbeat(doc)
    kinds: Sequence[str]
    sources: Sequence[str]
    try:
        if fmt == FORMAT_V1:
            col = {name: doc["fields"].index(name) for name in FIELDS}
            kinds, sources = _names(doc["kinds"]), _names(doc["sources"])
            t0 = epoch_of_iso(doc["t0"]) if doc.get("t0") else None
            agent = doc.get("agent")
        else:
            col = {name: i for i, name in enumerate(FIELDS)}
            kinds, sources = V2_KINDS, V2_SOURCES
            t0 = doc["t0"]
            if t0 is not None and not _whole(t0):
                raise ValueError(f"t0 {t0!r} is not epoch seconds")
            agent = None
        events = _rows(doc, col, kinds, sources, t0, v1=fmt == FORMAT_V1)
    except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
        raise WireError(f"malformed batch: {type(exc).__name__}: {exc}") from None
    if fmt == FORMAT_V1:
        last = doc["last"]
        if events and events[-1]["seq"] != last:
            raise WireError(f"last is {last} but the rows end at {events[-1]['seq']}")
    else:  # v2 leaves it to the rows
        last = events[-1]["seq"] if events else None
    return {
        "format": fmt,
        "site": doc["site"],
        "agent": agent,
        "first": doc["first"],
        "last": last,
        "events": events,
        "heartbeat": None,
    }


def _names(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of names")
    return value


def _whole(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _lookup(table: Sequence[str], cell: Any, *, literal: bool) -> str:
    """A kind or source cell: an index into `table`, or (v2) the name itself."""
    if literal and isinstance(cell, str):
        return cell
    if not _whole(cell) or cell < 0:
        raise ValueError(f"expected a table index, got {cell!r}")
    name: str = table[cell]
    return name


def _rows(
    doc: dict[str, Any],
    col: dict[str, int],
    kinds: Sequence[str],
    sources: Sequence[str],
    prev_at: int | None,
    *,
    v1: bool,
) -> list[dict[str, Any]]:
    site, sessions = doc["site"], doc["sessions"]
    if not isinstance(site, str) or not site:
        raise ValueError("site must be non-empty text")
    seq = doc["first"] - 1
    width = len(FIELDS)
    events = []
    for row in doc["events"]:
        if not isinstance(row, list) or not (width if v1 else MIN_ROW) <= len(row) <= width:
            raise ValueError(f"a row of {width} cells expected, got {row!r:.80}")
        if not v1:
            row = row + [None, 0][len(row) - MIN_ROW :]
        seq += row[col["seq"]]
        uuid, number = sessions[row[col["session"]]]
        if not v1:
            uuid = expand_session(uuid)
        at_cell, obs_cell = row[col["at"]], row[col["observed"]]
        if isinstance(at_cell, str):
            at, at_n = at_cell, None
        else:
            at_n = prev_at + at_cell
            prev_at = at_n
            at = iso_of_epoch(at_n)
        observed = obs_cell if isinstance(obs_cell, str) else iso_of_epoch(at_n + obs_cell)
        events.append(
            {
                "id": event_id(site, seq),
                "seq": seq,
                "uuid": uuid,
                "number": number,
                "kind": _lookup(kinds, row[col["kind"]], literal=not v1),
                "at": at,
                "observed_at": observed,
                "changes": _changes(row[col["changes"]], v1=v1),
                "source": _lookup(sources, row[col["source"]], literal=not v1),
            }
        )
    return events


def _decode_heartbeat(doc: dict[str, Any]) -> dict[str, Any]:
    site, agent, at, pending = (doc.get(k) for k in ("site", "agent", "heartbeat", "pending"))
    if not isinstance(site, str) or not site:
        raise WireError("malformed heartbeat: site must be non-empty text")
    if not isinstance(agent, str) or not _whole(at) or not _whole(pending) or pending < 0:
        raise WireError(
            "malformed heartbeat: expected agent (text), heartbeat and pending (integers)"
        )
    try:
        when = iso_of_epoch(at)
    except (OverflowError, ValueError, OSError):
        raise WireError(f"malformed heartbeat: heartbeat {at} is not a time") from None
    return {
        "format": FORMAT_V2,
        "site": site,
        "agent": agent,
        "first": None,
        "last": None,
        "events": [],
        "heartbeat": {"at": when, "pending": pending},
    }


__all__ = [
    "CONTENT_ENCODING",
    "CONTENT_TYPE",
    "FIELDS",
    "FORMAT",
    "FORMATS",
    "FORMAT_V1",
    "FORMAT_V2",
    "KINDS",
    "LIFECYCLE_KINDS",
    "V2_CHANGES",
    "V2_KINDS",
    "V2_SOURCES",
    "VERSION",
    "BatchEncoder",
    "WireError",
    "compress",
    "decode_body",
    "encode_batch",
    "event_id",
    "heartbeat_body",
    "idempotency_key",
]
