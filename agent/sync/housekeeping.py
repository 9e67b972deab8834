"""The sync's care of the store: retention and the database size cap (on the sync's thread)."""

from __future__ import annotations

import logging

from agent.clock import iso_of_epoch
from agent.config import Config
from agent.sync.state import SyncState

log = logging.getLogger("agent.sync")

PRUNE_EVERY = 3600.0
ALERT_LOG_EVERY = 600.0


def housekeep(st: SyncState, cfg: Config, now: float, last_alert_log: float) -> float:
    """Retention (hourly) and the size cap (every run); the new time of the last alert log line.

    Delivered events older than ``[sync] retention_days`` are pruned; over ``[store]
    max_db_bytes`` delivered events go early, oldest first, and when that is not enough an ERROR
    (every ``ALERT_LOG_EVERY`` s) and ``sync.alert`` say so. Unsynced events are never dropped.
    """
    days = cfg.sync.retention_days
    row = st.row()
    if days > 0 and (row["last_prune"] is None or now - row["last_prune"] >= PRUNE_EVERY):
        n = st.prune(older_than=iso_of_epoch(now - days * 86400))
        st.set_prune_time(now)
        if n:
            log.info("sync: pruned %d delivered events older than %d days", n, days)
    cap = cfg.store.max_db_bytes
    used = st.store.used_bytes()
    if used > cap:
        pruned = 0
        while used > cap:
            n = st.prune(older_than=None, max_rows=5000)
            if not n:
                break
            pruned += n
            used = st.store.used_bytes()
        if pruned:
            log.warning(
                "sync: database over its size cap; pruned %d delivered events early", pruned
            )
    alert = None
    if used > cap:
        backlog = st.backlog()
        alert = (
            f"database holds {used / 1e6:.1f} MB, over the {cap / 1e6:.1f} MB cap "
            f"([store] max_db_bytes) with {backlog} events not yet synced; they are kept, "
            "nothing unsynced is dropped: restore the sync link or raise the cap"
        )
        if now - last_alert_log >= ALERT_LOG_EVERY:
            log.error("sync: %s", alert)
            last_alert_log = now
    if alert != row["alert"]:
        st.set_alert(alert)
    return last_alert_log
