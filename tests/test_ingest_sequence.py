"""``globalSessionSequence`` bookkeeping in the ingestor, one document at a time.

A false gap costs a resync (two requests, one of them a blockwise history that grows all day); a
missed gap loses a lifecycle step until the next resync. These pin down which is which, including
the two races the CoAP tests showed on loopback: a ping that overtakes the notifications it
counts, and notifications overtaken by a resync's snapshot.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from agent.ingest import Heartbeat, Incoming, Ingestor
from agent.sequence import REORDER_WINDOW
from agent.store import Store

GRACE = 2.0


@pytest.fixture
def ingest(tmp_path):
    store = Store(tmp_path / "agent.db")
    ing = Ingestor(store, None, zone=None, reorder_grace=GRACE)
    yield ing
    ing.close()
    store.close()


def _doc(seq: int, kind: str = "sessions", number: int = 5) -> bytes:
    doc: dict = {"responseTypes": [kind], "globalSessionSequence": seq}
    if kind == "sessions":
        doc["sessions"] = [
            {
                "uuid": f"s-{number}",
                "number": number,
                "created": "2026-03-07T18:00:00",
                "state": "started",
                "partySize": 2,
            }
        ]
    elif kind == "statistics":
        doc["statistics"] = {"served": 0}
    return json.dumps(doc).encode()


def _feed(ing: Ingestor, payload: bytes, at: float) -> None:
    ing._on_payload(Incoming(payload, at, "2026-03-07T18:00:00Z"))


def _resync_done(ing: Ingestor, seq: int, at: float) -> None:
    """What a successful resync leaves behind (the CoAP part is covered by the agent tests)."""
    ing.sequence.snapshot_at = at
    ing.sequence.snapshot(seq)
    ing.resync_wanted = None


def test_consecutive_changes_of_any_kind_are_not_gaps(ingest):
    t = time.monotonic()
    for seq, kind in [(10, "sessions"), (11, "statistics"), (12, "sessions"), (13, "settings")]:
        _feed(ingest, _doc(seq, kind), t)
    assert ingest.counters.gaps == 0 and ingest.resync_wanted is None
    assert ingest.sequence.last == 13


def test_a_skipped_number_is_a_gap_at_once(ingest):
    t = time.monotonic()
    _feed(ingest, _doc(10), t)
    _feed(ingest, _doc(12), t)
    assert ingest.counters.gaps == 1 and "missed 1" in ingest.resync_wanted


def test_a_ping_ahead_of_its_notification_waits_for_it(ingest):
    t = time.monotonic()
    _feed(ingest, _doc(10), t)
    _feed(ingest, _doc(12, "ping"), t)  # rendered after changes 11 and 12 were queued behind it
    _feed(ingest, _doc(11), t + 0.01)
    _feed(ingest, _doc(12), t + 0.02)
    ingest._check_ahead(t + GRACE + 1)
    assert ingest.counters.gaps == 0 and ingest.resync_wanted is None
    assert ingest.sequence.ahead is None


def test_a_ping_ahead_whose_notification_never_comes_is_a_gap_after_the_grace(ingest):
    t = time.monotonic()
    _feed(ingest, _doc(10), t)
    _feed(ingest, _doc(11, "ping"), t)
    ingest._check_ahead(t + GRACE / 2)
    assert ingest.counters.gaps == 0 and ingest.resync_wanted is None
    ingest._check_ahead(t + GRACE)
    assert ingest.counters.gaps == 1 and "up to 11" in ingest.resync_wanted


def test_the_next_change_after_a_lost_one_is_a_gap_without_waiting(ingest):
    t = time.monotonic()
    _feed(ingest, _doc(10), t)
    _feed(ingest, _doc(11, "ping"), t)
    _feed(ingest, _doc(12), t + 0.1)  # 11 was lost
    assert ingest.counters.gaps == 1 and ingest.resync_wanted


def test_notifications_the_snapshot_already_holds_are_duplicates(ingest):
    t = time.monotonic()
    _feed(ingest, _doc(10), t)
    _resync_done(ingest, 20, t + 0.1)
    _feed(ingest, _doc(21), t + 0.2)
    # 15..20 were sent before the snapshot but overtaken by the response
    for seq in range(15, 21):
        _feed(ingest, _doc(seq), t + 0.3)
    assert ingest.counters.gaps == 0 and ingest.resync_wanted is None
    assert ingest.counters.duplicates == 6
    assert ingest.sequence.last == 21


def test_an_old_number_long_after_the_snapshot_is_a_gap(ingest):
    t = time.monotonic()
    _resync_done(ingest, 20, t)
    _feed(ingest, _doc(19), t + GRACE + 0.5)
    assert ingest.counters.gaps == 1 and "went back" in ingest.resync_wanted


def test_a_restart_right_after_a_resync_is_still_a_restart(ingest):
    t = time.monotonic()
    _resync_done(ingest, REORDER_WINDOW + 500, t)
    _feed(ingest, _doc(1), t + 0.1)  # the transmitter rebooted: its sequence starts again
    assert ingest.counters.gaps == 1 and "went back" in ingest.resync_wanted


def test_the_snapshot_window_wraps_with_the_sequence(ingest):
    t = time.monotonic()
    _resync_done(ingest, 3, t)
    _feed(ingest, _doc(65534), t + 0.1)  # sent before the wrap, overtaken by the snapshot
    _feed(ingest, _doc(4), t + 0.2)
    assert ingest.counters.gaps == 0 and ingest.counters.duplicates == 1


async def test_notifications_commit_while_a_slow_history_fetch_is_out(tmp_path):
    """The history fetch after a burst of ends runs beside the folding: a transmitter slow to
    answer it (blockwise, busy) does not hold back the notifications queued meanwhile."""
    import asyncio

    import aiocoap
    import aiocoap.resource

    from agent.controller.client import ControllerClient

    release = asyncio.Event()

    class SlowHistory(aiocoap.resource.Resource):
        async def render_get(self, request):
            await release.wait()
            body = {"responseTypes": ["history"], "history": []}
            return aiocoap.Message(payload=json.dumps(body).encode())

    site = aiocoap.resource.Site()
    site.add_resource(["v1", "sessions", "history"], SlowHistory())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = await aiocoap.Context.create_server_context(site, bind=("127.0.0.1", port))
    client_ctx = await aiocoap.Context.create_client_context()
    store = Store(tmp_path / "agent.db")
    ingest = Ingestor(store, ControllerClient(client_ctx, "127.0.0.1", port, timeout=10), zone=None)
    task = asyncio.create_task(ingest.run())
    try:
        ingest.history.want(time.monotonic(), 0)
        ingest.control(Heartbeat())  # wakes the loop: the fetch starts
        await asyncio.sleep(0.3)
        assert ingest.fetcher.task is not None and not ingest.fetcher.task.done()
        for seq in range(1, 6):
            ingest.feed(_doc(seq, number=seq))
        for _ in range(100):
            if ingest.committed >= 5:
                break
            await asyncio.sleep(0.02)
        assert ingest.committed >= 5, "notifications waited for the history fetch"
        assert ingest.fetcher.task is not None  # still out
        release.set()
        for _ in range(100):
            if ingest.fetcher.task is None:
                break
            await asyncio.sleep(0.02)
        assert ingest.fetcher.task is None  # its answer came back through the queue
    finally:
        release.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client_ctx.shutdown()
        await server.shutdown()
        ingest.close()
        store.close()


def test_a_rush_of_ends_fetches_the_history_at_most_once_a_second(ingest):
    from agent.ingest.history import HISTORY_INTERVAL

    ingest.history.want(time.monotonic(), 0)  # nothing fetched lately: at once
    assert ingest.history.due_at is not None and ingest.history.due_at <= time.monotonic()
    ingest.history.due_at = None
    ingest.history.fetched_at = fetched = time.monotonic()  # a fetch just started
    ingest.history.want(time.monotonic(), 0)  # another end right behind it
    assert ingest.history.due_at >= fetched + HISTORY_INTERVAL
