"""The header lines and the banner: statistics, transmitter health, sync and backhaul, and what
is wrong with the data on screen — as ``(text, tone)`` segments, from a snapshot and the clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from rich.cells import cell_len

from agent.clock import local, parse_iso
from agent.display import format_bytes, minutes, printable
from agent.health import Health, liveness
from agent.skew import SKEW_WARN_SECONDS, format_skew, skew_warning
from tui.core.source import Snapshot
from tui.render.cells import age_text, clock_text
from tui.render.theme import UNICODE, Cell, Markers, Segments


def stats_segments(snap: Snapshot, m: Markers = UNICODE, *, late: int = 0) -> Segments:
    """What is on the board now, then the service day's figures — the report's own definitions
    (:mod:`agent.report`), so the header and the report never disagree. The transmitter's own
    statistics are on its screen, labelled as its own."""
    waiting = sum(1 for r in snap.sessions if r.state == "waiting")
    paged = sum(1 for r in snap.sessions if r.paged)
    segs: Segments = [
        ("Now ", "muted"),
        (f"{waiting} waiting", ""),
        (f" {m.sep} ", "muted"),
        (f"{paged} paged", "paged" if paged else ""),
    ]
    if late:
        segs += [(f" {m.sep} ", "muted"), (f"{m.late} {late} late", "late")]
    day = snap.today
    if day is None:
        return segs
    wait = minutes(day.mean_wait) if day.mean_wait is not None else m.dash
    on_time = f"{100 * day.on_time:.0f}%" if day.on_time is not None else m.dash
    segs += [
        ("   Today ", "muted"),
        (f"{day.parties}", "number"),
        (f" {m.sep} seated ", "muted"),
        (f"{day.seated}", "number"),
        (f" {m.sep} walked ", "muted"),
        (f"{day.walk_aways}", "number"),
    ]
    if day.lost:
        segs += [(f" {m.sep} lost ", "muted"), (f"{day.lost}", "removed")]
    segs += [
        (f" {m.sep} on time ", "muted"),
        (on_time, "number"),
        (f" {m.sep} wait ", "muted"),
        (wait, "number"),
    ]
    return segs


def health_segments(
    health: Health,
    now: datetime,
    stale_after: float,
    m: Markers = UNICODE,
    *,
    width: int | None = None,
) -> Segments:
    """Transmitter health: connected, last ping, clock skew, firmware.

    The firmware is the least urgent: when the line would not fit `width`, it is left out whole
    rather than cut to a stub.
    """
    agent = liveness(health, now, stale_after)
    state = health.state or "unknown"
    if agent.stale:
        link: Cell = (f"{m.bad} unknown (agent not writing)", "late")
    elif state == "connected":
        link = (f"{m.ok} connected", "ok")
    else:
        link = (f"{m.bad} {state.upper()}", "late")
    ping = parse_iso(health.last_ping_at)
    skew = health.clock_skew_seconds
    segs: Segments = [("Transmitter ", "muted"), link]
    segs += [
        (f" {m.sep} ping ", "muted"),
        (age_text((now - ping).total_seconds()) + " ago" if ping else "never", ""),
        (f" {m.sep} skew ", "muted"),
    ]
    if skew is not None:
        if abs(skew) >= SKEW_WARN_SECONDS:  # a wrong transmitter clock makes waits wrong
            segs.append((f"{m.warn} {format_skew(skew)}", "soon"))
        else:
            segs.append((format_skew(skew), ""))
    else:
        segs.append(("?", "muted"))
    if health.firmware:
        firmware = [(f" {m.sep} fw ", "muted"), (printable(health.firmware), "muted")]
        if width is None or cell_len("".join(t for t, _ in segs + firmware)) <= width:
            segs += firmware
    return segs


def sync_segments(sync: dict[str, Any] | None, now: datetime, m: Markers = UNICODE) -> Segments:
    """Cloud-sync backlog, when the sync feature reports; empty otherwise."""
    if not sync:
        return []
    backlog = sync.get("backlog")
    segs: Segments = [
        ("Sync ", "muted"),
        (f"{backlog if backlog is not None else '?'} pending", "soon" if backlog else ""),
    ]
    last = sync.get("last_success")
    last_at = parse_iso(last) if isinstance(last, str) else None
    if last_at is not None:
        segs.append((f" {m.sep} ok {age_text((now - last_at).total_seconds())} ago", "muted"))
    else:
        segs.append((f" {m.sep} never synced", "muted"))
    if sync.get("bytes_sent") is not None:
        segs.append((f" {m.sep} {format_bytes(sync['bytes_sent'])} sent", "muted"))
    if sync.get("quarantined"):
        segs.append((f" {m.sep} {m.warn} {sync['quarantined']} quarantined", "soon"))
    return segs


def backhaul_segments(bh: dict[str, Any] | None, m: Markers = UNICODE) -> Segments:
    """Backhaul SIM usage against its cap, when the backhaul feature reports; empty otherwise."""
    if not bh:
        return []
    segs: Segments = [("Backhaul ", "muted")]
    if "reading" in bh and bh["reading"] is None:
        return [*segs, ("no reading yet", "muted")]
    online = bh.get("online")
    if online is None:
        segs.append(("? link unknown", "muted"))
    else:
        segs.append(
            (f"{m.ok} online" if online else f"{m.bad} OFFLINE", "ok" if online else "late")
        )
    used = bh.get("used_bytes", bh.get("cycle_bytes"))
    cap = bh.get("cap_bytes")
    if isinstance(used, int | float):
        text = f" {m.sep} {format_bytes(used)}"
        tone = ""
        if isinstance(cap, int | float) and cap > 0:
            pct = 100.0 * used / cap
            text += f" of {format_bytes(cap)} ({pct:.0f}%)"
            tone = "late" if pct >= 95 else "soon" if pct >= 75 else ""
        segs.append((text, tone))
    if bh.get("projected_bytes") is not None:
        segs.append((f" {m.sep} proj. {format_bytes(bh['projected_bytes'])}", "muted"))
    if bh.get("mode") and bh.get("mode") != "normal":
        segs.append((f" {m.sep} {m.warn} {bh['mode']}", "soon"))
    return segs


def visible_extras(
    extras: dict[str, dict[str, Any]], *, sync_enabled: bool, backhaul_enabled: bool
) -> dict[str, dict[str, Any]]:
    """Hide sections of features this site does not use (a disabled sync always has a backlog)."""
    out = dict(extras)
    sync = out.get("sync")
    if sync is not None and not sync_enabled and not sync.get("last_success"):
        del out["sync"]
    bh = out.get("backhaul")
    if bh is not None and not backhaul_enabled and bh.get("reading", bh) is None:
        del out["backhaul"]
    return out


@dataclass(frozen=True, slots=True)
class Banner:
    text: str
    kind: str  # "offline" (agent stale/stopped), "missing" (no database yet), "hint" (fix this)


def banner(
    snap: Snapshot | None,
    now: datetime,
    stale_after: float,
    zone: tzinfo | None,
    m: Markers = UNICODE,
    *,
    kiosk: bool = False,
    twelve_hour: bool = False,
) -> Banner | None:
    """What is wrong with the data on screen, in words, or None when it is live."""
    if snap is None or not snap.ready:
        why = snap.problem if snap and snap.problem else "waiting for the agent's database"
        if kiosk:
            return Banner(
                f"{m.warn} Paging screen starting {m.dash} waiting for the pager system", "missing"
            )
        return Banner(f"{m.warn} {why}", "missing")
    agent = liveness(snap.health, now, stale_after)
    if not agent.stale:
        if kiosk:
            return None
        hint = skew_warning(
            snap.health.clock_skew_seconds, host_synchronised=snap.health.host_clock_synced
        )
        return Banner(f"{m.warn} {hint}", "hint") if hint else None

    def when(moment: datetime) -> str:
        here, today = local(moment, zone), local(now, zone)
        time = clock_text(
            moment, zone, twelve_hour=twelve_hour, seconds=here.date() == today.date()
        )
        when = time if here.date() == today.date() else f"{here:%a %d %b} {time}"
        return f"{when} ({age_text((now - moment).total_seconds())} ago)"

    if kiosk:
        since = (
            f" since {clock_text(agent.since, zone, twelve_hour=twelve_hour)}"
            if agent.since
            else ""
        )
        return Banner(
            f"{m.warn} OFFLINE{since} {m.dash} numbers may be out of date, please ask the host",
            "offline",
        )
    if agent.stopped and agent.since:
        return Banner(
            f"{m.warn} AGENT STOPPED at {when(agent.since)} {m.dash} the board is not updating",
            "offline",
        )
    if agent.since:
        return Banner(
            f"{m.warn} AGENT NOT WRITING since {when(agent.since)} {m.dash} the board may be out of date",
            "offline",
        )
    return Banner(f"{m.warn} the agent has not written a heartbeat yet", "offline")
