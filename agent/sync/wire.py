"""The cloud sync wire format, pure: store events → batch body bytes, and back.

One batch is one ``POST`` of a gzip-compressed JSON document (format ``pager-edge-sync/1``,
described by ``wire-schema.json`` beside this file and in ``README.md``). Events travel as rows of
a small table whose columns are named in the body (``fields``), with the values that repeat or grow
slowly made cheap to compress:

* ``seq`` — rowid minus the previous row's rowid (the first row: minus ``first - 1``): mostly ``1``;
* ``session`` — index into ``sessions``, the batch's ``[uuid, pager number]`` pairs in order of first
  use, so a session's uuid crosses the link once per batch instead of once per event;
* ``kind`` — index into ``kinds`` (the body lists them, so a new kind needs no new format);
* ``at`` — transmitter time as whole seconds since the previous numeric ``at`` of the batch (the
  first: since ``t0``); a string is a literal time that did not have the store's
  ``YYYY-MM-DDTHH:MM:SSZ`` form (it is carried verbatim and does not move the base);
* ``observed`` — seconds from this row's ``at`` to when the agent observed it, or a literal string;
* ``changes`` — the changed fields, as stored (``null`` when none);
* ``source`` — index into ``sources`` (``notify``, ``resync``, ``history`` …).

Everything is deterministic: the same events give the same JSON, and ``gzip.compress(…, mtime=0)``
gives the same bytes, so a batch re-sent after a crash is byte-identical.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from typing import Any

from agent.clock import epoch_of_iso, iso_of_epoch
from agent.session import EVENT_KINDS
from agent.session import LIFECYCLE_KINDS as SESSION_LIFECYCLE_KINDS

FORMAT = "pager-edge-sync/1"
KINDS: tuple[str, ...] = EVENT_KINDS
# What still goes out in critical budget mode: the steps of a guest's visit.
LIFECYCLE_KINDS: tuple[str, ...] = SESSION_LIFECYCLE_KINDS
FIELDS: tuple[str, ...] = ("seq", "session", "kind", "at", "observed", "changes", "source")
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
    """An upper bound of the JSON bytes one event adds to a batch (its row and table entries).

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


class BatchEncoder:
    """Builds one batch body row by row; `size` is the exact length of the JSON so far.

    Used incrementally so that a batch can be cut at ``max_batch_bytes`` deterministically.
    """

    def __init__(self, site: str, agent: str):
        self.site = site
        self.agent = agent
        self.rows: list[str] = []
        self.sessions: list[str] = []
        self._session_index: dict[tuple[str, int], int] = {}
        self.kinds: list[str] = list(KINDS)
        self._kind_index = {k: i for i, k in enumerate(self.kinds)}
        self.sources: list[str] = []
        self._source_index: dict[str, int] = {}
        self.first: int | None = None
        self.last: int | None = None
        self.t0: int | None = None
        self._prev_at: int | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def _row(self, ev: dict[str, Any]) -> str:
        seq = ev["seq"]
        dseq = seq - (self.last if self.last is not None else seq - 1)
        uuid, number, kind = ev["uuid"], ev["number"], ev["kind"]
        sidx = self._session_index.get((uuid, number))
        if sidx is None:
            sidx = self._session_index[(uuid, number)] = len(self.sessions)
            self.sessions.append(_dumps([uuid, number]))
        kidx = self._kind_index.get(kind)
        if kidx is None:
            kidx = self._kind_index[kind] = len(self.kinds)
            self.kinds.append(kind)
        src = ev.get("source") or ""
        srcidx = self._source_index.get(src)
        if srcidx is None:
            srcidx = self._source_index[src] = len(self.sources)
            self.sources.append(src)
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
        return (
            f"[{dseq},{sidx},{kidx},{at_cell},{obs_cell},"
            f"{_dumps(changes) if changes else 'null'},{srcidx}]"
        )

    def add(self, ev: dict[str, Any]) -> None:
        """Append one store event (a dict from ``Store.iter_events``), in rowid order."""
        if self.last is not None and ev["seq"] <= self.last:
            raise ValueError(f"events must be in rowid order ({ev['seq']} after {self.last})")
        self.rows.append(self._row(ev))

    def document(self) -> dict[str, Any]:
        """The body as a Python object (for tests and the docs; `json_bytes` is what is sent)."""
        doc: dict[str, Any] = json.loads(self.json_bytes())
        return doc

    def json_bytes(self) -> bytes:
        if not self.rows:
            raise ValueError("empty batch")
        t0 = iso_of_epoch(self.t0) if self.t0 is not None else None
        # Hand-assembled so that rows are encoded once; key order is part of the determinism.
        head = (
            f'{{"format":{_dumps(FORMAT)},"site":{_dumps(self.site)},"agent":{_dumps(self.agent)},'
            f'"first":{self.first},"last":{self.last},"t0":{_dumps(t0)},'
            f'"fields":{_dumps(list(FIELDS))},"kinds":{_dumps(self.kinds)},'
            f'"sources":{_dumps(self.sources)},'
        )
        text = (
            head
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


def encode_batch(site: str, agent: str, events: Iterable[dict[str, Any]]) -> tuple[str, bytes]:
    """(Idempotency-Key, gzip body) for events in rowid order."""
    enc = BatchEncoder(site, agent)
    for ev in events:
        enc.add(ev)
    return enc.key(), enc.body()


class WireError(ValueError):
    """A body that does not follow the format (what a receiver answers 400 for)."""


def decode_body(body: bytes, *, gzipped: bool = True) -> dict[str, Any]:
    """The receiving side: a body → ``{"site", "agent", "first", "last", "events": [...]}``.

    Each event comes back in the store's export shape plus its cloud ``id``:
    ``{"id", "seq", "uuid", "number", "kind", "at", "observed_at", "changes", "source"}``.
    """
    try:
        raw = gzip.decompress(body) if gzipped else body
        doc = json.loads(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise WireError(f"not a gzip JSON body: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise WireError(f"expected format {FORMAT!r}")
    try:
        fields = doc["fields"]
        col = {name: fields.index(name) for name in FIELDS}
        site, kinds, sources, sessions = doc["site"], doc["kinds"], doc["sources"], doc["sessions"]
        prev_at = epoch_of_iso(doc["t0"]) if doc.get("t0") else None
        seq = doc["first"] - 1
        events = []
        for row in doc["events"]:
            seq += row[col["seq"]]
            uuid, number = sessions[row[col["session"]]]
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
                    "kind": kinds[row[col["kind"]]],
                    "at": at,
                    "observed_at": observed,
                    "changes": row[col["changes"]] or {},
                    "source": sources[row[col["source"]]],
                }
            )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise WireError(f"malformed batch: {type(exc).__name__}: {exc}") from None
    if events and events[-1]["seq"] != doc["last"]:
        raise WireError(f"last is {doc['last']} but the rows end at {events[-1]['seq']}")
    return {
        "site": site,
        "agent": doc.get("agent"),
        "first": doc["first"],
        "last": doc["last"],
        "events": events,
    }


__all__ = [
    "CONTENT_ENCODING",
    "CONTENT_TYPE",
    "FIELDS",
    "FORMAT",
    "KINDS",
    "LIFECYCLE_KINDS",
    "BatchEncoder",
    "WireError",
    "compress",
    "decode_body",
    "encode_batch",
    "event_id",
    "idempotency_key",
]
