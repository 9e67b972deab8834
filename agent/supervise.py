"""Supervised background tasks: a crash is logged and the task restarted with capped backoff.

asyncio drops an exception raised in a fire-and-forget task on the floor (at best a warning at
garbage collection). Every long-lived task of the agent runs under :func:`supervise` instead.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterator

log = logging.getLogger(__name__)


def backoff_delays(initial: float = 0.5, cap: float = 60.0, factor: float = 2.0) -> Iterator[float]:
    """Exponential backoff with full jitter: 0..initial, 0..2*initial, ... capped at `cap`."""
    delay = initial
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(cap, delay * factor)


async def supervise(
    name: str,
    factory: Callable[[], Awaitable[None]],
    *,
    initial: float = 0.5,
    cap: float = 60.0,
    healthy_after: float = 30.0,
    on_crash: Callable[[str, BaseException], None] | None = None,
) -> None:
    """Run `factory()` forever; restart it after a crash or an unexpected return.

    Backoff resets once a run lasted `healthy_after` seconds, so a task that crashes once a day
    restarts quickly while one that crashes at once does not spin.
    """
    loop = asyncio.get_running_loop()
    delays = backoff_delays(initial, cap)
    while True:
        started = loop.time()
        try:
            await factory()
            log.warning("task %s returned; restarting it", name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("task %s crashed; restarting it", name)
            if on_crash is not None:
                on_crash(name, exc)
        if loop.time() - started >= healthy_after:
            delays = backoff_delays(initial, cap)
        await asyncio.sleep(next(delays))
