"""The board's core and rendering: row cells, quotes, overlay, store polling — no Textual involved."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from agent.controller.protocol import parse_document
from agent.display import minutes
from agent.session import SessionView
from agent.store import Store, WriteBatch
from tests.board_fixtures import (
    NOW,
    SECRET_LABEL,
    ZONE,
    MovableClock,
    active_views,
    ago,
    finished_views,
    fixed_clock,
    healthy,
    iso,
    make_store,
    view,
)
from tui.core.overlay import Overlay, reply_view
from tui.core.parties import lowest_free_number, matches
from tui.core.quotes import suggest_quote, wait_samples
from tui.core.source import BoardSource, Snapshot
from tui.core.waits import summarize_history
from tui.render.cells import history_cells, party_cells
from tui.render.glyphs import big_number, draw, fit, fit_some, glyph_rows, number_width
from tui.render.header import (
    backhaul_segments,
    banner,
    health_segments,
    sync_segments,
    visible_extras,
)
from tui.render.theme import ASCII

PARIS = ZoneInfo(ZONE)


def party(**kw) -> SessionView:
    return SessionView(**{"uuid": "u", "number": 5, "created": ago(10), "goal_seconds": 900, **kw})


def finished(i: int, **kw) -> SessionView:
    return SessionView(uuid=f"f{i}", number=i, **kw)


def texts(cells) -> list[str]:
    return [text for text, _tone in cells]


# --- row model ------------------------------------------------------------------------------


def test_waiting_party_on_time_shows_time_left():
    cells = party_cells(party(label="Ana", party_size=2), NOW)
    assert texts(cells) == ["5", "Ana", "2", "10m", "15m", "5m left", "○ waiting"]
    assert cells[5][1] == "ok"


def test_party_close_to_goal_is_flagged_soon():
    cells = party_cells(party(created=ago(14)), NOW)
    assert cells[5] == ("1m left", "soon")


def test_late_party_says_late_in_words_and_marker_not_only_colour():
    cells = party_cells(party(created=ago(22)), NOW)
    assert cells[5] == ("▲ LATE 7m", "late")
    assert cells[0][1] == "late"
    ascii_cells = party_cells(party(created=ago(22)), NOW, ASCII)
    assert ascii_cells[5][0] == "! LATE 7m"
    assert all(ord(ch) < 128 for text, _ in ascii_cells for ch in text)


def test_paged_party_shows_time_since_paged_and_page_count():
    p = party(state="paged", first_notified=ago(4), notified=ago(0, 75), page_count=3)
    cells = party_cells(p, NOW)
    assert cells[6] == ("◆ PAGED 1m ×3", "paged")
    assert cells[5] == ("on time", "ok")  # paged 6 min after arriving, goal 15 min
    assert party_cells(p, NOW, ASCII)[6][0] == "* PAGED 1m x3"


def test_paged_late_is_judged_at_the_first_page():
    p = party(created=ago(40), state="paged", first_notified=ago(20), notified=ago(1))
    assert party_cells(p, NOW)[5] == ("▲ LATE 5m", "late")


def test_party_without_goal_or_size():
    cells = party_cells(party(goal_seconds=None, party_size=None), NOW)
    assert texts(cells)[2] == "" and texts(cells)[4] == "" and cells[5][1] == "muted"


def test_waited_is_live_with_the_injected_clock():
    clock = MovableClock()
    p = party(created=iso(NOW))
    assert party_cells(p, clock.now())[3][0] == "<1m"
    clock.advance(3600 + 300)
    assert party_cells(p, clock.now())[3][0] == "1h05"


def test_minutes_format():
    assert [minutes(s) for s in (None, 0, 59, 60, 3599, 3600, 7325)] == [
        "",
        "<1m",
        "<1m",
        "1m",
        "59m",
        "1h00",
        "2h02",
    ]


def test_filter_by_size_bucket_and_search_by_label_or_number():
    a = party(number=12, label="Martin", party_size=4)
    b = party(number=3, label="Ito", party_size=1)
    assert matches(a, bucket=1) and not matches(b, bucket=1)
    assert matches(a, search="mart") and not matches(b, search="mart")
    assert matches(a, search="1") and not matches(b, search="1")
    assert matches(b, search="  ") and not matches(party(party_size=None), bucket=0)


def test_lowest_free_number():
    assert lowest_free_number([1, 2, 4]) == 3
    assert lowest_free_number(range(1, 1000)) is None


# --- quote suggestion ---------------------------------------------------------------------


def test_wait_samples_keep_same_weekday_and_hour_within_four_weeks():
    rows = [
        # same Friday evening a week ago: kept (paged after 20 min)
        finished(1, **{"created": iso(NOW - timedelta(weeks=1)), "first_notified": iso(NOW - timedelta(weeks=1) + timedelta(minutes=20)), "party_size": 4, "state": "cleared"}),
        # Thursday: other weekday
        finished(2, **{"created": iso(NOW - timedelta(days=1)), "first_notified": iso(NOW - timedelta(days=1, minutes=-5)), "party_size": 4, "state": "cleared"}),
        # Friday lunch: other hour
        finished(3, **{"created": iso(NOW - timedelta(weeks=1, hours=6)), "first_notified": iso(NOW - timedelta(weeks=1, hours=6, minutes=-5)), "party_size": 4, "state": "cleared"}),
        # five weeks ago: too old
        finished(4, **{"created": iso(NOW - timedelta(weeks=5)), "first_notified": iso(NOW - timedelta(weeks=5, minutes=-5)), "party_size": 4, "state": "cleared"}),
        # removed without a page: no wait to learn from
        finished(5, **{"created": iso(NOW - timedelta(weeks=2)), "cleared": iso(NOW - timedelta(weeks=2, minutes=-9)), "party_size": 4, "state": "removed"}),
        # seated without a page: waited until seated
        finished(6, **{"created": iso(NOW - timedelta(weeks=2)), "cleared": iso(NOW - timedelta(weeks=2, minutes=-9)), "party_size": 3, "state": "cleared"}),
    ]  # fmt: skip
    assert sorted(wait_samples(rows, NOW, PARIS)) == [(3, 540.0), (4, 1200.0)]


def test_suggest_quote_uses_median_of_the_size_bucket_rounded_up_to_a_minute():
    samples = [(4, 1190.0), (3, 1500.0), (4, 1800.0), (2, 300.0), (4, 2000.0)]
    q = suggest_quote(samples, 4, default_goal=900, now=NOW, zone=PARIS)
    assert q.seconds == 28 * 60 and q.samples == 4  # median of 1190/1500/1800/2000 s: 27.5 min
    assert "3–4 guests on Fri around 19h" in q.basis


def test_suggest_quote_falls_back_to_the_transmitter_default():
    samples = [(4, 1200.0), (4, 1300.0)]  # only two: not enough
    q = suggest_quote(samples, 4, default_goal=900)
    assert (q.seconds, q.samples) == (900, 0) and "default" in q.basis
    assert suggest_quote([], None, default_goal=None).seconds is None


def test_quote_from_pinned_history():
    rows = finished_views()
    samples = wait_samples(rows, NOW, PARIS)
    q4 = suggest_quote(samples, 4, default_goal=900)
    q2 = suggest_quote(samples, 2, default_goal=900)
    q8 = suggest_quote(samples, 8, default_goal=900)
    assert q4.seconds == 27 * 60  # median of 20–34 min waits, rounded up
    assert q2.seconds == 12 * 60
    assert q8.seconds == 900 and q8.samples == 0


# --- history ------------------------------------------------------------------------------


def test_history_rows_and_summary():
    rows = finished_views()[:4]
    cells = [texts(history_cells(r, PARIS)) for r in rows]
    assert cells[0][:7] == ["5", "Dubois", "2", "✓ seated", "15m", "12m", "on time"]
    assert cells[1][3:7] == ["✓ seated", "20m", "28m", "▲ LATE 8m"]
    assert cells[2][3] == "✗ removed" and cells[2][5] == "—"
    assert cells[0][7] == "18:15"  # cleared 75 min before 19:30 Paris
    s = summarize_history(rows)
    assert (s.seated, s.removed) == (3, 1)
    assert s.on_time_percent == pytest.approx(100 * 2 / 3)


# --- banner and header --------------------------------------------------------------------


def snap(**kw) -> Snapshot:
    return Snapshot(ready=True, **kw)


def test_banner_says_since_when_the_agent_stopped_writing():
    health = healthy()
    assert banner(snap(health=health), NOW, 90, PARIS) is None
    later = NOW + timedelta(minutes=5)
    b = banner(snap(health=health), later, 90, PARIS)
    assert b is not None and b.kind == "offline"
    assert "AGENT NOT WRITING since 19:29:57 (5 min ago)" in b.text
    stopped = banner(snap(health=health.but(stopped_at=ago(2))), NOW, 90, PARIS)
    assert stopped is not None and "AGENT STOPPED at 19:28:00" in stopped.text
    kiosk = banner(snap(health=health), later, 90, PARIS, kiosk=True)
    assert kiosk is not None and "OFFLINE since 19:29" in kiosk.text


def test_banner_when_there_is_no_database_yet():
    b = banner(
        Snapshot(ready=False, problem="waiting for the agent's database at x.db"), NOW, 90, None
    )
    assert b is not None and b.kind == "missing" and "x.db" in b.text
    assert banner(None, NOW, 90, None) is not None


def test_health_line_and_stale_agent():
    line = "".join(t for t, _ in health_segments(healthy(), NOW, 90))
    assert line == "Transmitter ● connected · ping 12 s ago · skew +2 s · fw 8.4.100.43"
    stale = "".join(t for t, _ in health_segments(healthy(), NOW + timedelta(minutes=3), 90))
    assert "unknown (agent not writing)" in stale
    skewed = health_segments(healthy().but(clock_skew_seconds=-95.0), NOW, 90)
    assert ("⚠ -1 m 35 s", "soon") in skewed  # minutes and seconds, not -95 s


def test_extras_absent_means_no_line_present_means_shown():
    assert sync_segments(None, NOW) == [] and backhaul_segments(None) == []
    sync = {"backlog": 12, "last_success": ago(3), "bytes_sent": 2_500_000, "quarantined": 1}
    text = "".join(t for t, _ in sync_segments(sync, NOW))
    assert text == "Sync 12 pending · ok 3 min ago · 2.5 MB sent · ⚠ 1 quarantined"
    bh = {
        "online": True,
        "cycle_bytes": 4_000_000_000,
        "cap_bytes": 5_000_000_000,
        "mode": "conserve",
    }
    text = "".join(t for t, _ in backhaul_segments(bh))
    assert text == "Backhaul ● online · 4.0 GB of 5.0 GB (80%) · ⚠ conserve"
    offline = backhaul_segments({"online": False}, ASCII)
    assert offline[1] == ("X OFFLINE", "late")


def test_backhaul_without_reading_and_hidden_disabled_features():
    assert "".join(t for t, _ in backhaul_segments({"reading": None})) == "Backhaul no reading yet"
    extras = {"sync": {"backlog": 5, "last_success": None}, "backhaul": {"reading": None}}
    assert visible_extras(extras, sync_enabled=False, backhaul_enabled=False) == {}
    assert visible_extras(extras, sync_enabled=True, backhaul_enabled=True) == extras


# --- big numbers --------------------------------------------------------------------------


def test_big_numbers_scale_as_near_square_pixels():
    """A font pixel is `scale` columns by `scale` half-rows (block glyphs) or `scale` rows by 2×
    `scale` columns of # (consoles without block glyphs); a digit is 3×5 pixels."""
    for scale in (1, 2, 5, 6):
        lines = big_number("12", scale)
        assert len(lines) == glyph_rows(scale) == -(-5 * scale // 2)
        assert {len(line) for line in lines} == {number_width("12", scale)} == {7 * scale}
        assert set("".join(lines)) <= set(" ▀▄█")
        ascii_ = big_number("12", scale, ascii=True)
        assert len(ascii_) == 5 * scale and {len(r) for r in ascii_} == {14 * scale}
        assert set("".join(ascii_)) <= {" ", "#"}
    assert big_number("8") == ["█▀█", "█▀█", "▀▀▀"]
    assert big_number("8", 2) == ["██████", "██  ██", "██████", "██  ██", "██████"]
    assert big_number("7", ascii=True) == ["######", "    ##", "    ##", "    ##", "    ##"]


def test_fit_takes_the_largest_scale_that_holds_every_number():
    layout = fit([3, 7], 138, 17)
    assert layout is not None and layout.lines == ((3, 7),) and layout.rows() <= 17
    assert fit([3, 7], 138, 17, max_scale=layout.scale) == layout
    bigger = fit([3, 7], 138, layout.rows() + 3)
    assert bigger is not None and bigger.scale > layout.scale
    # More numbers: smaller glyphs, on several lines, each line within the width.
    many = fit(list(range(100, 112)), 138, 17)
    assert many is not None and many.scale < layout.scale and len(many.lines) > 1
    assert [n for line in many.lines for n in line] == list(range(100, 112))
    assert all(len(line) <= 138 for line in draw(many)) and len(draw(many)) == many.rows()
    # Nothing holds 60 numbers in 5 rows: fit says so, fit_some keeps the first and counts the rest.
    assert fit(list(range(60)), 80, 5) is None
    some = fit_some(list(range(60)), 80, 5)
    kept = [n for line in some.lines for n in line]
    assert kept == list(range(len(kept))) and some.left_out == 60 - len(kept) > 0
    assert draw(some)[-1] == f"+{some.left_out} more" and len(draw(some)) <= 5


# --- overlay (the transmitter's direct replies) --------------------------------------------


def test_overlay_shows_a_reply_until_the_store_agrees():
    t = [0.0]
    ov = Overlay(monotonic=lambda: t[0], ttl=15)
    stored = [SessionView(uuid="a", number=1, created="1")]
    ov.put("a", SessionView(uuid="a", number=1, created="1", state="paged", page_count=1))
    ov.put("b", SessionView(uuid="b", number=2, created="0"))
    merged = ov.merge(stored)
    assert [(v.uuid, v.state) for v in merged] == [("b", "waiting"), ("a", "paged")]
    ov.settle(stored)  # the store has not caught up
    assert len(ov) == 2
    ov.settle([SessionView(uuid="a", number=1, created="1", state="paged", page_count=1)])
    assert len(ov) == 1
    t[0] = 16.0
    ov.settle([])
    assert len(ov) == 0


def test_overlay_hides_an_ended_session():
    ov = Overlay(monotonic=lambda: 0.0)
    rows = [SessionView(uuid="a", number=1), SessionView(uuid="b", number=2)]
    ov.put("a", None)
    assert [v.uuid for v in ov.merge(rows)] == ["b"]
    ov.settle(rows)
    assert len(ov) == 1
    ov.settle(rows[1:])
    assert len(ov) == 0


def test_reply_view_folds_a_transmitter_reply_like_the_agent():
    doc = parse_document(
        b'{"responseTypes":["sessions"],"sessions":[{"id":4,"uuid":"x","number":9,"partySize":2,'
        b'"goalInSeconds":600,"created":"2026-03-13T19:20:00","notified":"2026-03-13T19:29:00",'
        b'"label":"Ito","state":"paged"}]}'
    )
    base = SessionView(uuid="x", number=9, label="Ito", party_size=2,
                       created="2026-03-13T18:20:00Z", page_count=1, state="paged",
                       notified="2026-03-13T18:25:00Z", first_notified="2026-03-13T18:25:00Z")  # fmt: skip
    assert doc.sessions is not None
    view = reply_view(doc.sessions[0], PARIS, base, NOW.isoformat())
    assert view is not None
    assert view.state == "paged" and view.page_count == 2
    assert view.notified == "2026-03-13T18:29:00Z" and view.first_notified == base.notified
    assert view.created == "2026-03-13T18:20:00Z" and view.goal_seconds == 600
    fresh = reply_view(doc.sessions[0], PARIS, None, NOW.isoformat())
    assert fresh is not None and fresh.created == "2026-03-13T18:20:00Z" and fresh.page_count == 1


# --- BoardSource over a real store -----------------------------------------------------------


def test_source_waits_for_the_database_then_reads_it(tmp_path):
    db = tmp_path / "board.db"
    src = BoardSource(db, clock=fixed_clock(), zone=PARIS)
    first = src.poll()
    assert first is not None and not first.ready and str(db) in (first.problem or "")
    assert src.poll() is None  # reported once
    make_store(db)
    s = src.poll()
    assert s is not None and s.ready
    assert [r.number for r in s.sessions] == [7, 12, 3, 21, 15, 44, 9, 30]  # oldest first
    assert s.statistics["guestsServed"] == 41 and s.default_goal == 900
    assert src.poll() is None  # nothing changed: no re-query
    src.close()


def test_source_sees_another_connections_commit(tmp_path):
    db = make_store(tmp_path / "board.db")
    src = BoardSource(db, clock=fixed_clock())
    assert src.poll() is not None and src.poll() is None
    writer = Store(db)
    try:
        writer.write_batch(WriteBatch(views={"n": view("n", 77, created=ago(0), state="waiting")}))
    finally:
        writer.close()
    s = src.poll()
    assert s is not None and 77 in [r.number for r in s.sessions]
    src.close()


def test_source_connection_is_read_only(tmp_path):
    db = make_store(tmp_path / "board.db")
    src = BoardSource(db, clock=fixed_clock())
    src.poll()
    assert src._store is not None
    with pytest.raises(sqlite3.OperationalError):
        src._store.conn.execute("DELETE FROM sessions")
    src.close()


def test_kiosk_source_never_returns_labels(tmp_path):
    db = make_store(tmp_path / "board.db")
    src = BoardSource(db, clock=fixed_clock(), kiosk=True)
    s = src.poll()
    assert s is not None and s.sessions
    assert all(r.label is None for r in s.sessions)
    assert all(r.label is None for r in src.finished_today())
    assert SECRET_LABEL not in repr(s)


def test_source_survives_a_file_without_schema(tmp_path):
    db = tmp_path / "board.db"
    sqlite3.connect(db).close()  # the agent created the file but not the tables yet
    src = BoardSource(db, clock=fixed_clock())
    s = src.poll()
    assert s is not None and not s.ready and str(db) in (s.problem or "")
    make_store(db)
    s = src.poll()
    assert s is not None and s.ready


def test_finished_today_and_quote_samples(tmp_path):
    db = make_store(tmp_path / "board.db")
    src = BoardSource(db, clock=fixed_clock(), zone=PARIS)
    today = src.finished_today()
    assert [r.number for r in today] == [2, 8, 11, 5]  # newest end first
    samples = src.quote_samples()
    assert len(samples) == 21
    assert suggest_quote(samples, 4, default_goal=900).seconds == 27 * 60
    assert len(active_views()) == 8


def test_source_adds_status_sections_and_survives_a_broken_one(tmp_path, monkeypatch):
    db = make_store(tmp_path / "board.db")
    src = BoardSource(db, clock=fixed_clock())
    s = src.poll()
    assert s is not None and s.ready
    assert "sync" in s.extras  # the optional sections of `pager-edge status`
    assert "agent" not in s.extras and "transmitter" not in s.extras

    def broken(store, config):
        raise RuntimeError("operator API module exploded")

    monkeypatch.setattr("agent.sections.optional_sections", broken)
    s = BoardSource(db, clock=fixed_clock()).poll()
    assert s is not None and s.ready and s.extras == {}


def test_backhaul_reading_from_the_store_reaches_the_header(tmp_path):
    """The backhaul feature's own status section, fed by a reading stored like the agent does."""
    from datetime import UTC, datetime

    from agent.backhaul.reading import Reading
    from agent.config import BackhaulConfig
    from tests.board_fixtures import board_config
    from tui.render.header import backhaul_segments

    db = make_store(tmp_path / "board.db")
    now = datetime.now(UTC).replace(microsecond=0)
    store = Store(db)
    try:
        store.add_backhaul_reading(
            Reading(
                provider="control_center",
                taken_at=now,
                online=True,
                cycle_bytes=2_000_000_000,
                usage_taken_at=now,
            ).to_row()
        )
    finally:
        store.close()
    cfg = board_config(db)
    cfg = cfg.__class__(**{**cfg.__dict__, "backhaul": BackhaulConfig(
        enabled=True, base_url="https://cc.example", cap_bytes=5_000_000_000)})  # fmt: skip
    src = BoardSource(db, config=cfg)
    s = src.poll()
    assert s is not None
    line = "".join(t for t, _ in backhaul_segments(s.extras.get("backhaul")))
    assert line.startswith("Backhaul ● online · 2.0 GB of 5.0 GB (40%)")


def test_the_time_columns_add_up():
    """Waited + left = quote on every waiting row, also when the transmitter's clock is ahead."""
    for seconds in (0, 30, 59, 61, 119, 250, 599, 899):
        cells = texts(party_cells(party(created=ago(0, seconds), goal_seconds=900), NOW))
        waited_m = 0 if cells[3] == "<1m" else int(cells[3].rstrip("m"))
        left_text = cells[5].removesuffix(" left")
        left_m = 0 if left_text == "<1m" else int(left_text.rstrip("m"))
        assert waited_m + left_m == 15, (seconds, cells)
    ahead = texts(
        party_cells(party(created=iso(NOW + timedelta(seconds=40)), goal_seconds=180), NOW)
    )
    assert ahead[3:6] == ["<1m", "3m", "3m left"]  # not "4m left"


def test_a_long_health_line_leaves_the_firmware_out_whole():
    skewed = healthy().but(clock_skew_seconds=3601.0, last_ping_at=None)
    line = "".join(t for t, _ in health_segments(skewed, NOW, 90, width=60))
    assert "fw" not in line and line.endswith("+1 h 0 m")
    wide = "".join(t for t, _ in health_segments(skewed, NOW, 90, width=120))
    assert wide.endswith("fw 8.4.100.43")
