"""When to ask the transmitter's history, and the fetch that runs beside the folding.

Only ``/v1/sessions/history`` says how a session ended (seated or removed), and it is blockwise
and grows all day. So: a fetch a little after an end (`delay`) — ends come in bursts and one
fetch serves a burst — and at most one a second (:data:`HISTORY_INTERVAL`), however many ends
a rush or a close-out brings; after a failure, or while an ended session is not in it yet, again
later and less and less often. The fetch runs as its own task and queues its answer, so the
notifications queued behind it are not held up by a slow blockwise transfer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from agent.controller.client import ControllerClient, ControllerError
from agent.controller.protocol import Document
from agent.ingest.messages import HistoryAnswer

log = logging.getLogger(__name__)
# At most one history fetch this often (seconds).
HISTORY_INTERVAL = 1.0
MAX_RETRY = 30.0


class HistorySchedule:
    """Pure bookkeeping on the monotonic clock: when the next fetch is due."""

    def __init__(self, delay: float):
        self.delay = delay
        self.due_at: float | None = None  # the next fetch (monotonic), None: none wanted
        self.fetched_at = -HISTORY_INTERVAL  # the last fetch started
        self.retry = delay
        # "cleared" seen, history has not said how yet → the time bound when it was seen: the
        # history may come much later (transmitter away), and a wall time in a repeated hour
        # must be read as of the end, not as of the answer.
        self.awaiting_end: dict[str, str | None] = {}

    def want(self, now: float, delay: float | None = None) -> None:
        """A fetch in `delay` (default: the burst delay), no sooner than the interval allows."""
        due = max(
            now + (self.delay if delay is None else delay), self.fetched_at + HISTORY_INTERVAL
        )
        if self.due_at is None or due < self.due_at:
            self.due_at = due

    def is_due(self, now: float) -> bool:
        return self.due_at is not None and now >= self.due_at

    def started(self, now: float) -> None:
        self.due_at, self.fetched_at = None, now

    def again(self, now: float) -> None:
        """Ask again later, less and less often (a failure, or an end history lacks)."""
        self.want(now, self.retry)
        self.retry = min(self.retry * 2, MAX_RETRY)

    def answered(self, now: float) -> None:
        """An answer was folded: again while an ended session is missing from it, else rest."""
        if self.awaiting_end:
            log.info("%d ended session(s) not in history yet; asking again", len(self.awaiting_end))
            self.again(now)
        else:
            self.retry = self.delay


class HistoryFetcher:
    """The fetch itself: now (a resync's second half) or beside the loop (after ends)."""

    def __init__(
        self,
        client: ControllerClient | None,
        schedule: HistorySchedule,
        *,
        answer: Callable[[HistoryAnswer], None],
        observed_now: Callable[[], str],
        monotonic: Callable[[], float],
    ):
        self.client = client
        self.schedule = schedule
        self._answer = answer
        self._observed_now = observed_now
        self._monotonic = monotonic
        self.task: asyncio.Task[None] | None = None  # the fetch beside the loop, while it runs

    async def fetch(self) -> Document:
        self.schedule.started(self._monotonic())
        if self.client is None:
            raise ControllerError("no transmitter to ask")
        return await self.client.get_history()

    def start_beside(self) -> None:
        self.task = asyncio.create_task(self._beside())

    async def _beside(self) -> None:
        """Fetch and queue the answer (or the failure) for the loop to fold: what the fetch
        changes is changed by the loop alone, in the order things arrived."""
        try:
            doc = await self.fetch()
            answer = HistoryAnswer(doc, self._observed_now())
        except ControllerError as exc:
            answer = HistoryAnswer(None, error=str(exc))
        except Exception as exc:  # never lose the loop's wake-up: it waits for this answer
            log.exception("history fetch failed unexpectedly")
            answer = HistoryAnswer(None, error=repr(exc))
        self._answer(answer)

    def failed(self, reason: str) -> None:
        log.warning("history fetch failed (%s); will retry", reason)
        self.schedule.again(self._monotonic())

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
