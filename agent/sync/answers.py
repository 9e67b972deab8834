"""What the ingest endpoint's answers mean to the sync (the table in ``README.md``), pure."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field

import httpx

from agent.logs import redact
from agent.sync.state import Delta

TOKEN_ENV = "PAGER_EDGE_SYNC_TOKEN"


@dataclass
class Outcome:
    kind: str  # accepted | rejected | retry | refused
    status: int | None
    reason: str
    retry_after: float | None = None
    delta: Delta = field(default_factory=Delta)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def excerpt(data: bytes, limit: int = 200) -> str:
    text = data[:limit].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return redact(text)


def classify(resp: httpx.Response, data: bytes, now: float) -> Outcome:
    """The outcome of an answer: accepted, retry (later), rejected (split, quarantine) or
    refused (endpoint or token wrong: pause)."""
    s = resp.status_code
    said = f"HTTP {s}" + (f": {excerpt(data)}" if data and s >= 300 else "")
    if 200 <= s < 300 or s == 409:
        return Outcome("accepted", s, f"HTTP {s}")
    if s in (408, 425, 429) or s >= 500:
        after = parse_retry_after(resp.headers.get("retry-after"), now)
        return Outcome("retry", s, said, after)
    if s in (401, 403, 407):
        return Outcome("refused", s, f"{said} — the endpoint refused the token ({TOKEN_ENV})")
    if 300 <= s < 400:
        where = resp.headers.get("location", "?")
        return Outcome(
            "refused",
            s,
            f"HTTP {s} redirect to {where}: set [sync] endpoint to the final URL",
        )
    if s in (404, 405, 410, 411, 415, 426) or s < 200:
        return Outcome("refused", s, f"{said} — check [sync] endpoint")
    return Outcome("rejected", s, said)


__all__ = ["TOKEN_ENV", "Outcome", "classify", "excerpt", "parse_retry_after"]
