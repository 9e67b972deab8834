"""What the simulated T7470 accepts: limits, value checks and the refusals it answers with.

Kept apart from the state (:mod:`agent.simulator.model`): a request is checked here before it
changes anything, and a refusal is a :class:`SimError` carrying the CoAP code the device answers.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, tzinfo
from typing import Any, Literal

from agent.clock import wall_time

SEQUENCE_MODULUS = 1 << 16
UNSET_SEQUENCE = 0xFFFF
MIN_NUMBER, MAX_NUMBER = 0, 4095
MAX_LABEL_CHARS = 64
MAX_PARTY_SIZE = 99
MAX_GOAL_SECONDS = 24 * 3600
MAX_PAGE_MODE_CHARS = 32
MAX_MESSAGE_CHARS = 64
DEFAULT_PAGE_MODE = "Flash30Sec"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"

ClearType = Literal["STOP", "REMOVED"]
Doc = dict[str, Any]


class SimError(Exception):
    """A request the device refuses; `code` is the CoAP response code as ``"4.04"`` etc."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Marks an argument that was not given (``label=None`` means "set the label to null")."""


def fmt(moment: datetime | None, zone: tzinfo | None) -> str | None:
    """The device's timestamp text for an instant: the wall time in `zone` (None: the host's),
    second precision, no zone."""
    return None if moment is None else wall_time(moment, zone).strftime(TIMESTAMP_FORMAT)


def parse_device_time(value: Any) -> datetime:
    """Parse ``YYYY-MM-DDTHH:MM:SS`` (what ``POST /v1/settings {"datetime": ...}`` carries)."""
    if not isinstance(value, str):
        raise SimError("4.00", "datetime: expected a string YYYY-MM-DDTHH:MM:SS")
    try:
        return datetime.strptime(value, TIMESTAMP_FORMAT)
    except ValueError:
        raise SimError("4.00", "datetime: expected YYYY-MM-DDTHH:MM:SS") from None


def _int(value: Any, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SimError("4.00", f"{key}: expected an integer")
    if not lo <= value <= hi:
        raise SimError("4.00", f"{key}: out of range {lo}–{hi}: {value}")
    return value


def check_number(number: Any) -> int:
    return _int(number, "number", MIN_NUMBER, MAX_NUMBER)


def check_label(label: Any) -> str | None:
    if label is None:
        return None
    if not isinstance(label, str):
        raise SimError("4.00", "label: expected a string or null")
    if len(label) > MAX_LABEL_CHARS:
        raise SimError("4.00", f"label: longer than {MAX_LABEL_CHARS} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in label):
        raise SimError("4.00", "label: control characters are not allowed")
    return label


def _short_str(value: Any, key: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise SimError("4.00", f"{key}: expected a non-empty string of at most {limit} characters")
    return value


def check_page_mode(page_mode: Any) -> str | None:
    """Page modes are opaque strings to the device (``Flash30Sec``, ``Vibe1``, ...)."""
    return None if page_mode is None else _short_str(page_mode, "pageMode", MAX_PAGE_MODE_CHARS)
