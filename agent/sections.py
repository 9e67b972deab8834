"""The optional features' sections of the status document: ``sync`` and ``backhaul``.

`pager-edge status` appends them to the agent's own sections, and the board's header shows them
as lines of their own. Each feature's module is imported only when this site uses it, so a board
or a status call on a site without a backhaul SIM never loads the operator clients (httpx).
"""

from __future__ import annotations

from typing import Any

from agent.config import Config
from agent.store import Store


def optional_sections(store: Store, config: Config | None) -> dict[str, dict[str, Any]]:
    """``{"sync": …, "backhaul": …}`` for what this site uses (`config` None: sync only, as
    `status` without a configuration file reports it)."""
    from agent.sync.status import link_bytes, sync_status

    out: dict[str, dict[str, Any]] = {}
    sync = sync_status(store, backhaul=config.backhaul if config is not None else None)
    # Unused, a sync "backlog" is noise; `sync --once` from a timer counts as used.
    if config is None or config.sync.enabled or config.sync.endpoint or sync.get("bytes_sent"):
        out["sync"] = sync
    if config is not None and config.backhaul.enabled:
        from agent.backhaul.monitor import status_section

        out.update(status_section(config.backhaul, link_bytes)(store))
    return out
