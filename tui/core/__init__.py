"""The board's core, free of Textual: what it reads, what it knows, what staff can do.

* :mod:`tui.core.source` — the read-only window on the agent's store: consistent snapshots.
* :mod:`tui.core.parties` — a party's times against its goal, filters, free pager numbers.
* :mod:`tui.core.waits` — when a party's table came up, actual waits, the history summary.
* :mod:`tui.core.quotes` — what to quote a new party: the queue, else history, else the default.
* :mod:`tui.core.overlay` — the transmitter's direct replies, shown until the store agrees.
* :mod:`tui.core.actions` — a staff action → the controller client call → overlay views.
* :mod:`tui.core.model` — the board's state, put together from the pieces above.

The Textual app (:mod:`tui.app`) only wires these to widgets.
"""
