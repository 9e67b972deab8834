"""What `pager-edge status` reports: is the transmitter connected, what has the agent seen.

The verdict follows the usual monitoring convention (Nagios, Icinga, Zabbix agents): 0 OK; 1
warning (transmitter disconnected, a large clock skew, lost parties, a sync alert); 2 critical
(the agent is not running, its store is not writable); 3 unknown (no database yet).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.clock import age_seconds
from agent.config import Config
from agent.display import printable
from agent.health import liveness
from agent.sections import optional_sections
from agent.skew import format_skew, skew_warning
from agent.store import Store

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
LEVELS = {OK: "ok", WARNING: "warning", CRITICAL: "critical", UNKNOWN: "unknown"}


def verdict(code: int, reasons: list[str]) -> dict[str, Any]:
    return {"code": code, "level": LEVELS[code], "reasons": reasons}


def unknown_status(path: str, why: str) -> dict[str, Any]:
    """The status document when there is no database to read (yet)."""
    return {"verdict": verdict(UNKNOWN, [why]), "store": {"path": path, "bytes": None}}


def judge(status: dict[str, Any], *, store_problem: str | None = None) -> dict[str, Any]:
    """The verdict of a status document: its worst finding, and every reason."""
    critical: list[str] = []
    warning: list[str] = []
    a, t = status["agent"], status["transmitter"]
    if not a["running"]:
        critical.append(
            "agent not running" + (f" (stopped {a['stopped_at']})" if a["stopped_at"] else "")
        )
    if store_problem:
        critical.append(f"store not writable: {store_problem}")
    if a["running"] and not t["connected"]:
        warning.append(f"transmitter {t['state']} since {t['since'] or '?'}")
    if t.get("skew_warning"):
        warning.append(t["skew_warning"])
    lost = status["sessions"].get("lost", 0)
    if lost:
        warning.append(f"{lost} lost part{'y' if lost == 1 else 'ies'} to re-add or dismiss")
    if (status.get("sync") or {}).get("alert"):
        warning.append(f"sync: {status['sync']['alert']}")
    code = CRITICAL if critical else WARNING if warning else OK
    return verdict(code, critical + warning)


def collect_status(
    store: Store, *, now: datetime | None = None, config: Config | None = None
) -> dict[str, Any]:
    """The status document; extended by the sync and backhaul tasks' own sections."""
    now = now or datetime.now(UTC)
    h = store.health()
    counts = store.session_counts()
    alive = liveness(h, now, (config or Config()).agent.stale_after)
    skew = h.clock_skew_seconds
    status: dict[str, Any] = {
        "agent": {
            "running": alive.running,
            "pid": h.agent_pid,
            "version": h.agent_version,
            "started_at": h.agent_started_at,
            "heartbeat_age_seconds": alive.heartbeat_age,
            "stopped_at": h.stopped_at,
        },
        "transmitter": {
            "connected": alive.connected,
            "state": h.state if alive.running else "unknown (agent not running)",
            "since": h.since,
            "last_ping_age_seconds": age_seconds(h.last_ping_at, now),
            "last_data_age_seconds": age_seconds(h.last_data_at, now),
            "device_name": h.device_name,
            "firmware": h.firmware,
            "clock_skew_seconds": skew,
            "clock_skew": None if skew is None else format_skew(skew),
            "skew_warning": skew_warning(skew, host_synchronised=h.host_clock_synced),
            "host_clock_synchronised": h.host_clock_synced,
            "sequence": h.sequence,
            "last_error": h.last_error,
        },
        "counters": {
            "gaps": h.gaps,
            "resyncs": h.resyncs,
            "malformed": h.malformed,
            "reconnects": h.reconnects,
            "notifications": h.notifications,
            "events": store.event_count(),
        },
        "sessions": counts,
        "store": {"path": str(store.path), "bytes": store.file_bytes()},
    }
    status.update(optional_sections(store, config))
    return status


def format_verdict(v: dict[str, Any]) -> str:
    head = f"status:       {v['level'].upper()}"
    return head + (": " + "; ".join(printable(r) for r in v["reasons"]) if v["reasons"] else "")


def format_status(s: dict[str, Any]) -> str:
    if "agent" not in s:  # no database to read
        return format_verdict(s["verdict"]) + f"\nstore:        {s['store']['path']}"
    t, c, n, a = s["transmitter"], s["counters"], s["sessions"], s["agent"]
    lines = [format_verdict(s["verdict"])] if "verdict" in s else []
    if not a["running"]:
        lines.append(
            "agent:        NOT RUNNING"
            + (f" (stopped {a['stopped_at']})" if a["stopped_at"] else " (no recent heartbeat)")
        )
    else:
        lines.append(f"agent:        running, pid {a['pid']}, version {a['version']}")
    conn = "connected" if t["connected"] else f"DISCONNECTED ({t['state']})"
    # `since`: when the link last changed — connected since, or down since (not the last retry).
    lines.append(f"transmitter:  {conn}" + (f" since {t['since']}" if t["since"] else ""))
    if t["last_error"] and not t["connected"]:
        lines.append(f"  last error: {printable(t['last_error'])}")
    ping = t["last_ping_age_seconds"]
    lines.append(f"  last ping:  {'never' if ping is None else f'{ping:.0f} s ago'}")
    lines.append(
        f"  device:     {printable(t['device_name']) or '?'} firmware {printable(t['firmware']) or '?'}"
    )
    lines.append(f"  clock skew: {t['clock_skew'] or 'unknown'}")
    if t["skew_warning"]:
        lines.append(f"  ⚠ {t['skew_warning']}")
    lines.append(
        f"sessions:     {n['waiting']} waiting, {n['paged']} paged, "
        f"{n['cleared']} seated, {n['removed']} removed"
        + (f", {n['lost']} LOST" if n.get("lost") else "")
    )
    lines.append(
        f"counters:     {c['events']} events, {c['gaps']} gaps, {c['resyncs']} resyncs, "
        f"{c['malformed']} malformed, {c['reconnects']} reconnects"
    )
    if "sync" in s:
        y = s["sync"]
        lines.append(
            f"sync:         backlog {y.get('backlog')}, last success {y.get('last_success') or 'never'}, "
            f"{y.get('bytes_sent') or 0} bytes sent, {y.get('quarantined') or 0} quarantined"
            + (f" — {printable(y['alert'])}" if y.get("alert") else "")
            + (f" — {y['mode_reason']}" if y.get("mode_reason") else "")
        )
    if "backhaul" in s:
        lines.append(f"backhaul:     {printable(s['backhaul'].get('summary'))}")
    lines.append(f"store:        {s['store']['path']} ({s['store']['bytes'] / 1e6:.1f} MB)")
    return "\n".join(lines)
