"""The ingest's parts on their own: the history's schedule (pure, on a given monotonic time) and
the typed control messages as the loop applies them."""

from __future__ import annotations

import pytest

from agent.health import Health
from agent.ingest import Heartbeat, Ingestor, KeepView, LinkChanged, Reopen, Resync, TagEnd
from agent.ingest.history import HISTORY_INTERVAL, MAX_RETRY, HistorySchedule
from agent.session import SessionView
from agent.store import Store


def test_a_burst_of_ends_waits_the_delay_and_then_once_a_second():
    h = HistorySchedule(delay=0.25)
    h.want(100.0)
    assert h.due_at == 100.25 and not h.is_due(100.2) and h.is_due(100.25)
    h.want(100.1)  # a later end does not push the fetch back
    assert h.due_at == 100.25
    h.started(100.25)
    assert h.due_at is None
    h.want(100.3, 0)  # right behind a fetch: no sooner than the interval allows
    assert h.due_at == 100.25 + HISTORY_INTERVAL


def test_failures_back_off_doubling_to_a_cap_and_an_answer_resets_it():
    h = HistorySchedule(delay=0.25)
    waits = []
    now = 0.0
    for _ in range(10):
        h.started(now)
        h.again(now + 5)  # five seconds later it failed
        assert h.due_at is not None
        waits.append(h.due_at - (now + 5))
        now = h.due_at
    assert waits[:4] == [0.25, 0.5, 1.0, 2.0] and max(waits) == MAX_RETRY
    h.answered(now)  # nothing awaited: back to the burst delay
    assert h.retry == 0.25


def test_an_answer_without_an_awaited_end_asks_again():
    h = HistorySchedule(delay=0.25)
    h.awaiting_end["u-1"] = None
    h.started(10.0)
    h.answered(10.0)
    assert h.due_at == 11.0  # the interval, not the burst delay
    assert h.retry == 0.5


@pytest.fixture
def ingest(tmp_path):
    store = Store(tmp_path / "i.db")
    ing = Ingestor(store, None, zone=None)
    yield ing
    ing.close()
    store.close()


def test_link_changes_reach_the_health_record_by_field(ingest):
    ingest._on_control(LinkChanged("disconnected", 2, since="t1", last_error="no answer"))
    assert (ingest.health.state, ingest.health.since, ingest.health.last_error) == (
        "disconnected", "t1", "no answer",
    )  # fmt: skip
    ingest._on_control(LinkChanged("disconnected", 3))  # a retry: since and error stay
    assert (ingest.health.since, ingest.health.last_error, ingest.health.reconnects) == (
        "t1", "no answer", 3,
    )  # fmt: skip
    ingest._on_control(LinkChanged("connected", 3, since="t2", clear_error=True))
    assert ingest.health == Health(state="connected", since="t2", reconnects=3)


def test_the_other_messages_land_where_they_belong(ingest):
    ingest._on_control(Resync("test"))
    assert ingest.resync_wanted == "test"
    ingest._on_control(Heartbeat())
    assert ingest.health.heartbeat_at is not None
    ingest._on_control(Reopen(12, "old-uuid"))
    ingest._on_control(TagEnd("u-9", "close_out"))
    assert ingest._reopen[12][0] == "old-uuid" and ingest._end_source == {"u-9": "close_out"}
    view = SessionView(uuid="u-9", number=9, state="lost", dismissed_at="2026-01-01T00:00:00Z")
    ingest._on_control(KeepView(view))
    assert ingest.pending.views == {"u-9": view}
