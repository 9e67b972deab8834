"""The live quote for a new party (Textual-free): the queue ahead, the recent seating rate, then
history, then the default goal — and the words it says them in; the store read behind it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.clock import iso_utc
from agent.session import SessionView
from agent.store import Store
from tests.board_fixtures import (
    NOW,
    SECRET_LABEL,
    ZONE,
    ago,
    fixed_clock,
    make_store,
    queue_views,
    view,
)
from tui.core.model import BoardModel
from tui.core.quotes import (
    Queue,
    Quote,
    covered_seconds,
    live_quote,
    next_party_estimates,
)
from tui.core.source import BoardSource

PARIS = ZoneInfo(ZONE)
HISTORY_3_4 = [(4, 1200.0), (3, 1500.0), (4, 1700.0)]  # median 25 min for 3–4


def queue(views: list[SessionView] | None = None, **kw: Any) -> Queue:
    vs = queue_views() if views is None else views
    active = [v for v in vs if not v.ended]
    return Queue(NOW, active=active, recent=vs, zone=PARIS, **kw)


def test_covered_seconds_counts_overlaps_once():
    t = NOW
    m = timedelta(minutes=1)
    assert covered_seconds([]) == 0
    assert covered_seconds([(t, t + 10 * m), (t + 5 * m, t + 12 * m)]) == 12 * 60
    assert covered_seconds([(t + 20 * m, t + 25 * m), (t, t + 10 * m), (t + 2 * m, t + 3 * m)]) == (
        15 * 60
    )


def test_live_quote_from_the_queue_ahead_and_the_recent_seating_rate():
    """3–4: three waiting (the paged one is not ahead), seated at −36, −25 (without a page) and
    −10 min while somebody waited for 48 minutes: one table every 48 / (3 + 1) = 12 minutes, and
    a new party waits for the fourth."""
    q = live_quote(queue(history=HISTORY_3_4, default_goal=900), 4)
    assert (q.kind, q.seconds, q.samples) == ("live", 48 * 60, 3)
    assert q.text == "about 48 min for 4: 3 parties ahead, seating ~1 every 12 min"
    assert q.estimated
    # The same for a party of 3 (same bucket); other buckets' parties count for nothing.
    assert live_quote(queue(), 3).seconds == 48 * 60


def test_the_rate_counts_only_minutes_somebody_of_that_size_waited():
    """Three couples seated after a short queue in the last 20 minutes of an otherwise quiet
    hour: a table every 16 / 4 = 4 minutes, not every 60 / 4 = 15."""
    vs = [
        view("c1", 1, party_size=2, created=ago(20), first_notified=ago(15), state="paged"),
        view("c2", 2, party_size=1, created=ago(18), first_notified=ago(10), state="paged"),
        view("c3", 3, party_size=2, created=ago(12), first_notified=ago(4), state="paged"),
    ]
    q = live_quote(queue(vs), 2)
    assert (q.kind, q.seconds) == ("live", 4 * 60)
    assert q.text == "about 4 min for 2: nobody ahead, seating ~1 every 4 min"
    ahead = [*vs, view("c4", 4, party_size=2, created=ago(2), state="waiting")]
    q = live_quote(queue(ahead), 2)
    assert q.text == "about 9 min for 2: 1 party ahead, seating ~1 every 4 min"  # 18 min / 4


def test_too_few_recent_seatings_fall_back_to_history_then_the_default_goal():
    two = [v for v in queue_views() if v.uuid != "q-s1"]  # 3–4: only two seatings in the hour
    q = live_quote(queue(two, history=HISTORY_3_4, default_goal=900), 4)
    assert (q.kind, q.seconds, q.samples) == ("history", 25 * 60, 3)
    assert q.text == (
        "about 25 min for 4: typical for 3–4 guests on Fri around 19h, last 4 weeks (3 parties)"
    )
    q = live_quote(queue(two, default_goal=900), 4)
    assert (q.kind, q.seconds) == ("default", 900)
    assert q.text == "15 min for 4: the transmitter's default goal" and not q.estimated
    q = live_quote(queue(two), 4)
    assert (q.kind, q.seconds) == ("none", None) and "no history yet" in q.text


def test_seatings_older_than_the_hour_or_of_another_size_do_not_make_a_rate():
    only_old = [v for v in queue_views() if v.uuid in ("q-old", "q-s4", "q-w1")]
    assert live_quote(queue(only_old, default_goal=600), 4).kind == "default"
    # No party size: no bucket, no queue to count.
    q = live_quote(queue(history=HISTORY_3_4, default_goal=600), None)
    assert (q.kind, q.seconds) == ("default", 600) and q.text.startswith("10 min: ")


def test_next_party_estimates_per_size_bucket():
    est = dict(next_party_estimates(queue(history=HISTORY_3_4, default_goal=900)))
    assert list(est) == ["1–2", "3–4", "5–6", "7+"]
    assert est["3–4"].kind == "live" and est["3–4"].seconds == 48 * 60
    assert est["1–2"].kind == "default"  # one seating of a couple is not a rate
    assert [q.estimated for q in est.values()] == [False, True, False, False]


def test_a_quote_never_exceeds_four_hours():
    vs = [
        view(f"s{i}", i, party_size=8, created=ago(60), first_notified=ago(60 - 20 * i),
             state="paged")
        for i in range(3)
    ] + [view(f"w{i}", 100 + i, party_size=8, created=ago(50), state="waiting") for i in range(40)]  # fmt: skip
    q = live_quote(queue(vs), 8)
    assert (q.kind, q.seconds) == ("live", 4 * 3600)


# --- the store read and the board's model ---------------------------------------------------


def test_store_reads_the_tables_that_came_up_since_a_moment(tmp_path):
    db = make_store(tmp_path / "q.db", queue_views(), finished=False)
    store = Store(db, readonly=True)
    try:
        since = iso_utc(NOW - timedelta(minutes=60)) or ""
        got = store.called_views_since(since, created_from=iso_utc(NOW - timedelta(hours=12)) or "")
        assert [v.uuid for v in got] == ["q-s1", "q-s2", "q-s3", "q-s4"]  # by arrival
        # The created bound: a party that arrived before it is not read.
        later = store.called_views_since(since, created_from=ago(35))
        assert [v.uuid for v in later] == ["q-s3", "q-s4"]
    finally:
        store.close()


def test_the_board_model_quotes_from_the_snapshot_and_history(tmp_path):
    db = make_store(tmp_path / "q.db", queue_views())  # with today's and past Fridays' parties
    src = BoardSource(db, clock=fixed_clock(), zone=PARIS)
    snap = src.poll()
    assert snap is not None and snap.ready
    # Today's pinned history adds two 3–4 seatings (−52 min, −44 without a page) to the hour.
    assert {v.uuid for v in snap.recent} == {"h-2", "h-4", "q-s1", "q-s2", "q-s3", "q-s4"}
    model = BoardModel(fixed_clock(), PARIS)
    model.take_snapshot(snap)
    assert model.estimates() == []  # not until history is read
    model.take_quote_samples(src.quote_samples())
    q = live_quote(model.queue(), 4)
    # Somebody of 3–4 waited all hour; five tables came up: one every 60 / 6 = 10 minutes.
    assert q.text == "about 40 min for 4: 3 parties ahead, seating ~1 every 10 min"
    couples = live_quote(model.queue(), 2)
    assert couples.kind == "history" and couples.seconds == 12 * 60
    est = dict(model.estimates())
    assert est["3–4"].seconds == 40 * 60 and est["1–2"].seconds == 12 * 60
    assert est["5–6"].kind == "default" and est["5–6"].seconds == 900  # the stored settings


def test_the_kiosk_source_reads_recent_tables_without_labels(tmp_path):
    db = make_store(tmp_path / "q.db", queue_views())
    snap = BoardSource(db, clock=fixed_clock(), zone=PARIS, kiosk=True).poll()
    assert snap is not None and snap.recent
    assert all(v.label is None for v in (*snap.recent, *snap.sessions))
    assert SECRET_LABEL not in repr(snap)


def test_quote_text_without_a_size_or_a_figure():
    assert Quote(1500, "x", 3, "live").text == "about 25 min: x"
    assert Quote(None, "nothing known", 0, "none", 4).text == "nothing known"
