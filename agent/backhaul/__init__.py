"""The backhaul SIM monitor: operator API clients, the reading they produce, and the data budget.

The operator APIs are reached over the very link they describe, their figures lag, and they are
rate-limited per account, so everything here is built to ask rarely, to stop at once on errors a
retry cannot fix, and to combine the last operator figure with what the agent itself sent since.

Layout (pure parts have no I/O):

- ``reading`` what everything shares (pure): the call records, :class:`OperatorError` /
  ``NetworkFailure``, the budget (allowance + reading + own bytes → sync mode), and the
  :class:`Reading` record with its ``--json`` and store-row forms
- ``http``    what both clients share on the wire: one call in flight, spacing, timeouts, https;
  the lenient value parsers and error-body helpers (pure)
- ``control_center`` / ``thingspace``  one per operator: its async client, its payloads and its
  error codes → typed records / :class:`OperatorError`
- ``monitor`` the poller and its schedule; building it (and the daemon task) from configuration;
  the stored reading re-budgeted for now (status section, sync mode provider); text for people
  (CLI summary, board header); one reading now for ``pager-edge backhaul --once``

Dependencies point one way: ``monitor`` → operators → ``http`` → ``reading``.
"""
