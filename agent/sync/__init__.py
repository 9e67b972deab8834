"""Cloud sync: the event log, after a durable cursor, to an ingest endpoint over a metered link.

* :mod:`agent.sync.wire` — the wire format (pure): events → gzip JSON batch, key; and back.
* :mod:`agent.sync.state` — the sync's own rows in the store: cursors, in-flight batch, lease,
  counters, quarantine, retention.
* :mod:`agent.sync.engine` — :class:`~agent.sync.engine.SyncEngine`, the task inside the agent.
* :mod:`agent.sync.modes` — the budget modes and the first-reading rule.
* :mod:`agent.sync.counted_transport` — below HTTP: bytes counted, TLS sessions resumed.
* :mod:`agent.sync.status` — the ``sync`` section of ``pager-edge status`` (and the board).
* :mod:`agent.sync.once` — one run with bounded retries, for ``pager-edge sync --once``.

See README.md in this directory for the wire format, the behaviour and the measured figures.
"""
