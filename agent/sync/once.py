"""One upload of what is pending now, with bounded retries (`pager-edge sync --once`).

Safe while the agent runs: runs take a lease in the store, so this waits up to `wait` seconds for
the agent's own run to finish instead of racing it.
"""

from __future__ import annotations

import asyncio
import time

from agent.sync.engine import SyncEngine, SyncResult


async def run_once(
    engine: SyncEngine, *, retries: int, max_wait: float, wait: float
) -> tuple[SyncResult, dict[str, int]]:
    """sync_once, retried after retryable failures within `max_wait` seconds of backoff."""
    totals = {"events": 0, "batches": 0, "quarantined": 0, "requests": 0, "sent": 0, "received": 0}
    waited = 0.0
    lease_deadline = time.monotonic() + wait
    attempts = 0
    try:
        while True:
            res = await engine.sync_once()
            for k, v in (
                ("events", res.events),
                ("batches", res.batches),
                ("quarantined", res.quarantined),
                ("requests", res.requests),
                ("sent", res.bytes_sent),
                ("received", res.bytes_received),
            ):
                totals[k] += v
            if res.busy_pid is not None:
                if time.monotonic() < lease_deadline:
                    await asyncio.sleep(0.25)
                    continue
                return res, totals
            if res.done or not res.retryable or attempts >= retries:
                return res, totals
            if waited + res.delay > max_wait:
                res.error = f"{res.error} (next retry in {res.delay:.0f} s, beyond --max-wait)"
                return res, totals
            attempts += 1
            waited += res.delay
            await engine.sleep(res.delay)
    finally:
        await engine.aclose()
