"""The writer: pipelined group commit in a thread of its own.

The ingest folds into :attr:`GroupCommit.pending`; :meth:`GroupCommit.commit` hands everything
folded since the last commit to the writer thread as one transaction (one fsync). The previous
batch may still be committing: it is waited for first (one transaction at a time, in order), and
the loop goes on folding the next batch while this one syncs, so batches grow with load and the
CPU and the disk overlap. The event loop itself never waits on an fsync. A failed write (disk
full, I/O error, locked) keeps everything in memory, merged in front of what came since, and is
retried; items SQLite refuses for their content are set aside one by one and counted.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from agent.ingest.messages import Counters
from agent.store import Store, WriteBatch

log = logging.getLogger(__name__)


class GroupCommit:
    def __init__(self, store: Store, counters: Counters):
        self.store = store
        self.counters = counters
        self.pending = WriteBatch()
        self.uncommitted = 0  # notifications folded since the last batch was handed over
        self.failing = False  # the last write failed: retry soon
        self.committed = 0  # notifications committed; the log says when: (monotonic, committed)
        self.commit_log: collections.deque[tuple[float, int]] = collections.deque(maxlen=100_000)
        self._inflight: asyncio.Future[int] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")

    async def commit(self) -> None:
        """Wait for the batch in flight, then start writing the pending one."""
        if self._inflight is not None:
            await asyncio.wait({self._inflight})
        batch = self.pending
        if not batch:
            return
        count, self.uncommitted = self.uncommitted, 0
        self.pending = WriteBatch()
        fut = asyncio.get_running_loop().run_in_executor(
            self._thread, self.store.write_or_set_aside, batch
        )
        self._inflight = fut
        fut.add_done_callback(lambda f: self._written(f, batch, count))

    async def wait_in_flight(self) -> None:
        if self._inflight is not None:
            await asyncio.wait({self._inflight})

    def _written(self, fut: asyncio.Future[int], batch: WriteBatch, count: int) -> None:
        self._inflight = None
        exc = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if exc is not None:  # disk full, I/O error, locked: keep everything, retry
            self.counters.write_errors += 1
            self.failing = True
            log.error(
                "cannot write to the store (%s); keeping %d event(s) in memory and retrying "
                "(%d write failures so far)",
                exc,
                len(batch.events) + len(self.pending.events),
                self.counters.write_errors,
            )
            self.pending = batch.merge(self.pending)
            self.uncommitted += count
            return
        if self.failing:
            log.warning("store writable again; %d pending event(s) written", len(batch.events))
            self.failing = False
        if set_aside := fut.result():
            self.counters.malformed += set_aside
        self.counters.events += len(batch.events)
        self.committed += count
        self.commit_log.append((time.monotonic(), self.committed))

    def close(self) -> None:
        self._thread.shutdown(wait=True)
