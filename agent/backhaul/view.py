"""Readings as text for people: the CLI summary, the board's header line, the status section."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.backhaul.reading import Reading
from agent.display import format_bytes

PROVIDER_NAMES = {"control_center": "Cisco Control Center", "thingspace": "Verizon ThingSpace"}


def fmt_age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    s = max(0, int((now - moment).total_seconds()))
    if s < 90:
        return f"{s} s ago"
    if s < 90 * 60:
        return f"{s // 60} min ago"
    if s < 48 * 3600:
        return f"{s // 3600} h ago"
    return f"{s // 86400} days ago"


def _link(r: Reading) -> str:
    state = {True: "online", False: "offline", None: "online?"}[r.online]
    addresses = " ".join(a for a in (r.ipv4, r.ipv6) if a)
    return f"{state} {addresses}".rstrip()


def _used(r: Reading) -> str:
    if r.used_bytes is None:
        return "usage unknown"
    if not r.cap_bytes:
        return f"{format_bytes(r.used_bytes)} used (no cap configured)"
    return f"{format_bytes(r.used_bytes)} of {format_bytes(r.cap_bytes)} ({r.percent_used:.0f} %)"


def summary(r: Reading, now: datetime | None = None) -> str:
    """A few lines for ``pager-edge backhaul --once``."""
    now = now or datetime.now(UTC)
    lines = [f"{PROVIDER_NAMES.get(r.provider, r.provider)}: {_link(r)}"]
    if r.error:
        lines.append(f"  ERROR: {r.error}")
    sim = " ".join(x for x in (r.sim_status, f"plan {r.rate_plan!r}" if r.rate_plan else "") if x)
    if sim:
        lines.append(f"  SIM:        {sim}")
    if r.used_bytes is not None:
        lines.append(f"  used:       {_used(r)}")
        end = r.cycle_end.strftime("%Y-%m-%d") if r.cycle_end else "?"
        lines.append(f"  projected:  {format_bytes(r.projected_bytes)} by {end}")
        alert = f", alert {r.alert}" if r.alert else ""
        lines.append(f"  sync mode:  {r.mode}{alert}")
    lines.append(f"  reading:    {fmt_age(r.usage_taken_at or r.session_taken_at, now)}")
    return "\n".join(lines)


def header(r: Reading | None, now: datetime | None = None) -> str:
    """One line for the board's header: link, used of cap, projection, mode, age."""
    if r is None:
        return "backhaul: no reading yet"
    now = now or datetime.now(UTC)
    parts = [f"backhaul {_link(r)}"]
    if r.used_bytes is not None:
        parts.append(_used(r))
        parts.append(f"→ {format_bytes(r.projected_bytes)}")
        parts.append(str(r.mode))
    parts.append(fmt_age(r.usage_taken_at or r.session_taken_at, now))
    if r.error:
        parts.append("error")
    return " · ".join(parts)
