"""What `pager-edge status` reports: is the transmitter connected, what has the agent seen."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.config import Config
from agent.display import printable
from agent.store import Store


def _age(iso: str | None, now: datetime) -> float | None:
    if not iso:
        return None
    return round((now - datetime.fromisoformat(iso.replace("Z", "+00:00"))).total_seconds(), 1)


def collect_status(
    store: Store, *, now: datetime | None = None, config: Config | None = None
) -> dict[str, Any]:
    """The status document; extended by the sync and backhaul tasks' own sections."""
    now = now or datetime.now(UTC)
    h = store.health()
    counts = store.session_counts()
    heartbeat_age = _age(h.get("heartbeat_at"), now)
    agent_running = (
        bool(h) and not h.get("stopped_at") and heartbeat_age is not None and heartbeat_age < 30
    )
    status: dict[str, Any] = {
        "agent": {
            "running": agent_running,
            "pid": h.get("agent_pid"),
            "version": h.get("agent_version"),
            "started_at": h.get("agent_started_at"),
            "heartbeat_age_seconds": heartbeat_age,
            "stopped_at": h.get("stopped_at"),
        },
        "transmitter": {
            "connected": agent_running and h.get("state") == "connected",
            "state": h.get("state") if agent_running else "unknown (agent not running)",
            "since": h.get("since"),
            "last_ping_age_seconds": _age(h.get("last_ping_at"), now),
            "last_data_age_seconds": _age(h.get("last_data_at"), now),
            "device_name": h.get("device_name"),
            "firmware": h.get("firmware"),
            "clock_skew_seconds": h.get("clock_skew_seconds"),
            "sequence": h.get("sequence"),
            "last_error": h.get("last_error"),
        },
        "counters": {
            "gaps": h.get("gaps") or 0,
            "resyncs": h.get("resyncs") or 0,
            "malformed": h.get("malformed") or 0,
            "reconnects": h.get("reconnects") or 0,
            "notifications": h.get("notifications") or 0,
            "events": store.event_count(),
        },
        "sessions": counts,
        "store": {"path": str(store.path), "bytes": store.file_bytes()},
    }
    from agent.sync.status import link_bytes, sync_status  # lazy: keeps status light

    sync = sync_status(store)
    # Unused, a sync "backlog" is noise; `sync --once` from a timer counts as used.
    if config is None or config.sync.enabled or config.sync.endpoint or sync.get("bytes_sent"):
        status["sync"] = sync
    if config is not None and config.backhaul.enabled:
        from agent.backhaul.monitor import status_section

        status.update(status_section(config.backhaul, link_bytes)(store))
    return status


def format_status(s: dict[str, Any]) -> str:
    t, c, n, a = s["transmitter"], s["counters"], s["sessions"], s["agent"]
    lines = []
    if not a["running"]:
        lines.append(
            "agent:        NOT RUNNING"
            + (f" (stopped {a['stopped_at']})" if a["stopped_at"] else " (no recent heartbeat)")
        )
    else:
        lines.append(f"agent:        running, pid {a['pid']}, version {a['version']}")
    conn = "connected" if t["connected"] else f"DISCONNECTED ({t['state']})"
    lines.append(f"transmitter:  {conn}" + (f" since {t['since']}" if t["since"] else ""))
    if t["last_error"] and not t["connected"]:
        lines.append(f"  last error: {printable(t['last_error'])}")
    ping = t["last_ping_age_seconds"]
    lines.append(f"  last ping:  {'never' if ping is None else f'{ping:.0f} s ago'}")
    lines.append(
        f"  device:     {printable(t['device_name']) or '?'} firmware {printable(t['firmware']) or '?'}"
    )
    skew = t["clock_skew_seconds"]
    lines.append(f"  clock skew: {'unknown' if skew is None else f'{skew:+.0f} s'}")
    lines.append(
        f"sessions:     {n['waiting']} waiting, {n['paged']} paged, "
        f"{n['cleared']} seated, {n['removed']} removed"
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
        )
    if "backhaul" in s:
        lines.append(f"backhaul:     {printable(s['backhaul'].get('summary'))}")
    lines.append(f"store:        {s['store']['path']} ({s['store']['bytes'] / 1e6:.1f} MB)")
    return "\n".join(lines)
