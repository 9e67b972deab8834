"""The durable store: one SQLite file (WAL), written by the agent alone.

* ``events`` — append-only lifecycle log. Its ``INTEGER PRIMARY KEY`` is monotonic, the sync cursor,
  and (as ``<site>:<id>``) the event's cloud id.
* ``sessions`` — the current view, one row per session uuid (:data:`agent.session.COLUMNS`),
  written in the same transaction as the event that changed it.
* ``health`` — one row: controller link state and counters, agent heartbeat.
* ``snapshots`` — statistics and settings documents, stored when they change (the last of each
  kind in a group commit: readers want the latest).
* ``backhaul_readings`` — operator API readings of the backhaul SIM.
* ``sync_state``, ``sync_quarantine`` — the cloud sync's, read and written by
  :mod:`agent.sync.state` only.

Where the SQL is: :mod:`~agent.store.schema` (tables on sqlite-utils, migrations,
``user_version``), :mod:`~agent.store.writes` (the group commit: prepared statements, one fsync per
batch — throughput comes from the caller handing over everything that arrived meanwhile),
:mod:`~agent.store.reads` (the read API), :mod:`~agent.store.connection` (opening the file as the
writer, a reader, or an immutable reader).
"""

from agent.store.connection import Store, backup
from agent.store.schema import MIGRATIONS, SCHEMA_VERSION, StoreError, migrate
from agent.store.writes import WriteBatch

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Store", "StoreError", "WriteBatch", "backup", "migrate"]
