"""Compact JSON in and out, as strict as a small firmware parser might be.

The vendor warns that request bodies must be compact JSON (no whitespace outside strings). A client
that pretty-prints would work against a lenient simulator and fail at the first real host stand, so
the simulator rejects it, along with everything else a cautious embedded parser would refuse:
invalid UTF-8, duplicate keys, NaN/Infinity, and anything but an object at the top level.
"""

from __future__ import annotations

import json
from typing import Any

from agent.simulator.limits import SimError

MAX_BODY_BYTES = 4096
_WHITESPACE = frozenset(" \t\n\r")


def dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON, labels as raw UTF-8 (not ``\\u`` escapes) — what the device sends."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def is_compact(text: str) -> bool:
    """True when no whitespace appears outside string literals."""
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in _WHITESPACE:
            return False
    return True


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise SimError("4.00", f"duplicate key: {key}")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise SimError("4.00", f"not JSON: {name}")


def loads_request(payload: bytes) -> dict[str, Any]:
    """Parse a request body into an object or raise :class:`SimError` 4.00 (4.13 if too large)."""
    if not payload:
        raise SimError("4.00", "a JSON body is required")
    if len(payload) > MAX_BODY_BYTES:
        raise SimError("4.13", f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise SimError("4.00", "body is not valid UTF-8") from None
    if not is_compact(text):
        raise SimError("4.00", "body must be compact JSON (no whitespace outside strings)")
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise SimError("4.00", f"malformed JSON: {exc.msg} at {exc.pos}") from None
    if not isinstance(doc, dict):
        raise SimError("4.00", "body must be a JSON object")
    return doc
