"""The T7470 JSON documents as typed records — pure parsing and serialising, no I/O.

The vendor documentation is loose (a notification example lacks the metadata "every response"
has, `uuid` is typed "number", partySize/state are missing from history items), so the parser is
strict about what the agent relies on (uuid, number, timestamps, state) and lenient about the rest.
A document that cannot be trusted at all raises :class:`ProtocolError`; a single bad item inside an
otherwise good document is reported in ``Document.rejected`` so the caller can count it and resync
instead of losing the whole document.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, NamedTuple, cast

import orjson

KNOWN_TYPES = frozenset({"sessions", "statistics", "settings", "session_history", "ping"})
SESSION_STATES = frozenset({"started", "paged", "cleared"})
CLEAR_TYPES = frozenset({"STOP", "REMOVED"})
SEQUENCE_MODULUS = 1 << 16
MAX_SEQUENCE = (1 << 32) - 1  # the docs leave the width open: 16-bit wraps, a wider one may not
MAX_PAGER_NUMBER = 65535
MAX_SQL_INT = (1 << 63) - 1
# Timestamps outside this range are firmware "unset" values or garbage; they would also overflow
# the conversion to UTC (0001-01-01 minus an offset does not exist).
MIN_YEAR, MAX_YEAR = 1970, 2200

SessionState = Literal["started", "paged", "cleared"]
ClearType = Literal["STOP", "REMOVED"]


class ProtocolError(ValueError):
    """A document the agent cannot use at all (bad JSON, wrong shape, oversized)."""


# The records are NamedTuples, not frozen dataclasses: ingest builds three for every notification,
# and a NamedTuple is one tuple allocation where a frozen dataclass sets each field through
# object.__setattr__ (a 13-field SessionRecord: 1.0 µs instead of 2.6 µs). Immutable either way.


class Metadata(NamedTuple):
    response_types: tuple[str, ...]
    sequence: int | None
    timestamp: datetime | None  # transmitter's local wall clock, naive
    device_name: str | None
    firmware: str | None


class SessionRecord(NamedTuple):
    """One session as the transmitter reports it (active session or history item)."""

    uuid: str
    number: int
    id: int | None = None
    party_size: int | None = None
    goal_seconds: int | None = None
    label: str | None = None
    created: datetime | None = None  # naive transmitter-local, like every T7470 timestamp
    notified: datetime | None = None
    cleared: datetime | None = None
    state: SessionState | None = None
    clear_type: ClearType | None = None  # only in history
    session_sequence: int | None = None
    has_label: bool = True  # False when the item had no `label` key at all (not "no label")

    @property
    def ended(self) -> bool:
        return self.clear_type is not None or self.state == "cleared"


class Document(NamedTuple):
    meta: Metadata
    sessions: tuple[SessionRecord, ...] | None = None
    history: tuple[SessionRecord, ...] | None = None
    statistics: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None
    unknown_types: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()  # one reason per item that was skipped

    @property
    def is_ping(self) -> bool:
        return "ping" in self.meta.response_types


# --- scalar helpers -------------------------------------------------------------------------


def parse_timestamp(value: Any, *, key: str) -> datetime | None:
    """`2018-03-15T08:44:39` (naive, transmitter-local). Fractions and offsets are tolerated."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a timestamp string, got {type(value).__name__}")
    moment = _iso(value)
    if moment is None:
        raise ValueError(f"{key}: not an ISO 8601 timestamp: {value[:40]!r}")
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ValueError(f"{key}: implausible timestamp {value[:40]!r}")
    return moment


@lru_cache(maxsize=4096)
def _iso(value: str) -> datetime | None:
    """Cached: a session's times and a document's timestamp repeat from one notification to the
    next, and ingest parses every one."""
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _int(
    value: Any, *, key: str, optional: bool = True, lo: int = -MAX_SQL_INT, hi: int = MAX_SQL_INT
) -> int | None:
    """A whole number within [lo, hi] (never beyond what SQLite stores: 1e20 would wedge it)."""
    if type(value) is int and lo <= value <= hi:  # the plain case, first
        return value
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: expected a number, got {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{key}: expected a whole number, got {value!r}")
        number = int(value)
    else:
        number = value
    if not lo <= number <= hi:
        raise ValueError(f"{key}: out of range: {number}")
    return number


def _str(value: Any, *, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string or null, got {type(value).__name__}")
    return value


# --- records ----------------------------------------------------------------------------------


def parse_session(raw: Any, *, history: bool = False) -> SessionRecord:
    """One session object; raises ValueError naming the offending key (the first that fails)."""
    if not isinstance(raw, dict):
        raise ValueError(f"session: expected an object, got {type(raw).__name__}")
    uuid = raw.get("uuid")
    if not isinstance(uuid, str) or not uuid.strip() or len(uuid) > 64:
        raise ValueError("uuid: expected a non-empty string")
    number = _int(raw.get("number"), key="number", optional=False, lo=0, hi=MAX_PAGER_NUMBER)
    assert number is not None
    state = raw.get("state")
    if state is not None and (type(state) is not str or state not in SESSION_STATES):
        raise ValueError(f"state: unknown value {str(state)[:20]!r}")
    clear_type = raw.get("clearType")
    if clear_type is not None and (type(clear_type) is not str or clear_type not in CLEAR_TYPES):
        raise ValueError(f"clearType: unknown value {str(clear_type)[:20]!r}")
    if history and clear_type is None:
        raise ValueError("clearType: missing in a history item")
    return SessionRecord(
        uuid=uuid,
        number=number,
        id=_int(raw.get("id"), key="id", lo=0),
        party_size=_int(raw.get("partySize"), key="partySize", lo=0, hi=10_000),
        goal_seconds=_int(raw.get("goalInSeconds"), key="goalInSeconds", lo=0, hi=1 << 31),
        label=_str(raw.get("label"), key="label"),
        has_label="label" in raw,
        created=parse_timestamp(raw.get("created") or raw.get("started"), key="created"),
        notified=parse_timestamp(raw.get("notified"), key="notified"),
        cleared=parse_timestamp(raw.get("cleared"), key="cleared"),
        state=cast("SessionState | None", state),  # checked against SESSION_STATES above
        clear_type=cast("ClearType | None", clear_type),
        session_sequence=_int(
            raw.get("sessionSequence"), key="sessionSequence", lo=0, hi=MAX_SEQUENCE
        ),
    )


def _records(items: Any, *, key: str, history: bool) -> tuple[tuple[SessionRecord, ...], list[str]]:
    if not isinstance(items, list):
        raise ProtocolError(f"{key}: expected an array, got {type(items).__name__}")
    good: list[SessionRecord] = []
    bad: list[str] = []
    for i, item in enumerate(items):
        try:
            good.append(parse_session(item, history=history))
        except ValueError as exc:
            bad.append(f"{key}[{i}]: {exc}")
    return tuple(good), bad


def _object(doc: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError(f"{key}: expected an object, got {type(value).__name__}")
    return value


def _loads(payload: bytes | str) -> Any:
    """JSON text → Python values: orjson (compiled; about 3× the standard library on the ingest's
    documents), and where it refuses what the standard library reads — NaN or Infinity, integers
    beyond 64 bits, lone surrogate escapes — the standard library, so such a document meets the
    same checks as ever (an item with a bad value is rejected by name, not its whole document)."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return json.loads(payload)


def parse_document(payload: bytes | str, *, max_bytes: int = 256 * 1024) -> Document:
    """Parse any T7470 response or notification body."""
    if len(payload) > max_bytes:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds the {max_bytes}-byte limit")
    try:
        doc = _loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ProtocolError(f"expected a JSON object, got {type(doc).__name__}")
    types_ = doc.get("responseTypes")
    if not isinstance(types_, list):
        raise ProtocolError("responseTypes: expected an array of strings")
    for t in types_:
        if not isinstance(t, str):
            raise ProtocolError("responseTypes: expected an array of strings")
    try:
        seq = _int(
            doc.get("globalSessionSequence"), key="globalSessionSequence", lo=0, hi=MAX_SEQUENCE
        )
        meta = Metadata(
            response_types=tuple(types_),
            sequence=seq,
            timestamp=parse_timestamp(doc.get("timestamp"), key="timestamp"),
            device_name=_str(doc.get("deviceName"), key="deviceName"),
            firmware=_str(doc.get("firmwareVersion"), key="firmwareVersion"),
        )
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None

    rejected: list[str] = []
    sessions = history = None
    if "sessions" in types_ or "sessions" in doc:
        if "sessions" not in doc:
            raise ProtocolError("sessions: announced in responseTypes but missing")
        sessions, bad = _records(doc["sessions"], key="sessions", history=False)
        rejected += bad
    if "session_history" in types_ or "session_history" in doc:
        if "session_history" not in doc:
            raise ProtocolError("session_history: announced in responseTypes but missing")
        history, bad = _records(doc["session_history"], key="session_history", history=True)
        rejected += bad
    return Document(
        meta=meta,
        sessions=sessions,
        history=history,
        statistics=_object(doc, "statistics"),
        settings=_object(doc, "settings"),
        unknown_types=()
        if KNOWN_TYPES.issuperset(types_)
        else tuple(t for t in types_ if t not in KNOWN_TYPES),
        rejected=tuple(rejected),
    )


# --- sequence arithmetic ------------------------------------------------------------------------


def sequence_delta(previous: int, current: int) -> int:
    """Signed distance from `previous` to `current`.

    On the 16-bit circle (-32768..32767) while both fit 16 bits, as the one example (65535 as an
    "unset" sessionSequence) suggests; a counter that grows past 65535 is compared plainly.
    """
    if previous >= SEQUENCE_MODULUS or current >= SEQUENCE_MODULUS:
        return current - previous
    d = (current - previous) % SEQUENCE_MODULUS
    return d - SEQUENCE_MODULUS if d >= SEQUENCE_MODULUS // 2 else d


# --- requests ---------------------------------------------------------------------------------


def compact(obj: Any) -> bytes:
    """The firmware wants compact JSON: no spaces, tabs or newlines between tokens."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def session_body(
    *,
    number: int | None = None,
    goal: int | None = None,
    label: str | None = None,
    party_size: int | None = None,
    action: str | None = None,
    page_mode: str | None = None,
) -> bytes:
    """Body for POST/PUT /v1/sessions; requests say `goal`, responses say `goalInSeconds`."""
    body: dict[str, Any] = {}
    if number is not None:
        body["number"] = number
    if goal is not None:
        body["goal"] = goal
    if label is not None:
        body["label"] = label
    if party_size is not None:
        body["partySize"] = party_size
    if action is not None:
        body["action"] = action
    if page_mode is not None:
        body["pageMode"] = page_mode
    return compact(body)
