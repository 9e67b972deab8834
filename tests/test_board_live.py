"""The staff board against a real store that another connection writes: diffing, filters,
freshness banner, history — Pilot, pinned clock, no transmitter needed."""

from __future__ import annotations

import time

import pytest

from agent.config import with_overrides
from agent.store import Store, WriteBatch
from tests.board_fixtures import (
    NOW,
    MovableClock,
    active_views,
    ago,
    board_config,
    fixed_clock,
    healthy,
    make_store,
    pin_extras,
    queue_views,
    view,
    wait_for,
)
from tui.app import BoardApp
from tui.messages import SnapshotReady
from tui.widgets.header import BannerLine
from tui.widgets.table import PartyTable


@pytest.fixture
def db(tmp_path, monkeypatch):
    pin_extras(monkeypatch, {})
    return make_store(tmp_path / "board.db")


def staff(db, clock=None, **kw) -> BoardApp:
    return BoardApp(
        db, clock=clock or fixed_clock(), config=board_config(db), poll_interval=0.05, **kw
    )


def write(db, *views, health=None) -> float:
    """Commit from another connection (as the agent does); returns the commit time."""
    store = Store(db, synchronous="NORMAL")
    try:
        store.write_batch(WriteBatch(views={v.uuid: v for v in views}, health=health))
        return time.perf_counter()
    finally:
        store.close()


def numbers(app: BoardApp) -> list[int]:
    screen = app.main_screen
    return [screen.parties[k].number for k in screen.query_one(PartyTable).row_keys]


async def started(pilot) -> None:
    await wait_for(lambda: pilot.app.snapshots_seen > 0)
    await pilot.pause()


async def test_store_changes_are_diffed_in_and_the_cursor_stays_put(db, monkeypatch):
    def no_clear(self, *a, **kw):
        raise AssertionError("the staff board must never clear() its table")

    monkeypatch.setattr(PartyTable, "clear", no_clear)
    app = staff(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert numbers(app) == [7, 12, 3, 21, 15, 44, 9, 30]
        await pilot.press("down", "down", "down")  # on pager 21
        assert app.main_screen.selected.number == 21

        seated = next(v for v in active_views() if v.number == 12)
        late_arrival = view("u-99", 99, label="Late", party_size=2, goal_seconds=900,
                            created=ago(0, 5), state="waiting")  # fmt: skip
        # An older party recorded late (resync) must land in its place, not at the end.
        older = view("u-01", 1, label="Resynced", party_size=2, goal_seconds=900,
                     created=ago(20), state="waiting")  # fmt: skip
        committed = write(
            db,
            seated.__class__(**{**_fields(seated), "state": "cleared", "cleared": ago(0)}),
            late_arrival,
            older,
        )
        await wait_for(lambda: 99 in numbers(app))
        visible_after = time.perf_counter() - committed
        assert numbers(app) == [7, 3, 1, 21, 15, 44, 9, 30, 99]
        assert app.main_screen.selected.number == 21  # still under the host's finger
        assert visible_after < 2.0  # polled every 50 ms here; the bench measures the real figure


def _fields(v) -> dict:
    return v._asdict()


async def test_unchanged_data_repaints_nothing_and_the_minute_moves_only_timers(db, monkeypatch):
    updates: list[tuple] = []
    original = PartyTable.update_rows

    def counting_update_rows(self, changes):
        updates.extend((row, column) for row, values in changes.items() for column in values)
        return original(self, changes)

    monkeypatch.setattr(PartyTable, "update_rows", counting_update_rows)
    clock = MovableClock()
    app = staff(db, clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        table = app.main_screen.query_one(PartyTable)
        updates.clear()
        clock.advance(59)  # same minute: the table's timers do not move
        app._tick()
        assert updates == []
        assert app.main_screen.query_one("#clock").render().plain == "Fri 19:30:59"
        before = {k: table.cells_of(k) for k in table.row_keys}
        clock.advance(2)  # 19:31:01
        app._tick()
        after = {k: table.cells_of(k) for k in table.row_keys}
        changed_columns = {
            col
            for k in before
            for col, (a, b) in enumerate(zip(before[k], after[k], strict=True))
            if a != b
        }
        # waited, left/late, time since paged — and the number's tone when a party turns late
        assert changed_columns <= {0, 3, 5, 6}
        assert 0 < len(updates) <= 4 * len(before)
        # Pager 21 (goal 15 min, arrived 19:16) turns late with a word and a marker.
        assert app.main_screen.cells_by_number(21)[5] == ("<1m left", "soon")
        clock.advance(60)
        app._tick()
        assert app.main_screen.cells_by_number(21)[5] == ("▲ LATE 1m", "late")


async def test_filter_by_party_size_and_search(db):
    app = staff(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("f")  # 1–2
        await pilot.pause()
        assert numbers(app) == [7, 21, 9]
        await pilot.press("f")  # 3–4
        await pilot.pause()
        assert numbers(app) == [12, 15, 30]
        assert "party size 3–4" in str(app.screen.query_one("#filter-state").render())
        await pilot.press("escape")
        await pilot.pause()
        assert len(numbers(app)) == 8
        await pilot.press("slash", *"okaf")
        await pilot.pause()
        assert numbers(app) == [3]
        await pilot.press("enter")  # back to the table, filter kept
        await pilot.pause()
        assert app.focused is app.main_screen.query_one(PartyTable)
        assert app.main_screen.selected.number == 3
        await pilot.press("escape", "slash", "4")  # by pager number
        await pilot.pause()
        assert numbers(app) == [44]
        await pilot.press("ctrl+a", "ctrl+k", *"nobody")
        await pilot.pause()
        assert numbers(app) == []
        assert "No party matches" in str(app.screen.query_one("#empty").render())
        assert app.screen.check_action("page", ()) is None  # nothing selected: dimmed


async def test_banner_when_the_agent_stops_writing_without_any_store_change(db):
    clock = MovableClock()
    app = BoardApp(
        db,
        clock=clock,
        config=with_overrides(board_config(db), agent={"stale_after": 90}),
        poll_interval=0.05,
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        banner = app.main_screen.query_one(BannerLine)
        assert not banner.display
        clock.advance(60)
        app._tick()
        assert not banner.display  # 63 s since the heartbeat: within stale_after (90 s)
        clock.advance(40)
        app._tick()
        await pilot.pause()
        assert banner.display
        assert banner.text.startswith("⚠ AGENT NOT WRITING since 19:29:57 (103 s ago)")
        write(db, health=healthy(now=clock.now()))  # the agent is back
        await wait_for(lambda: not banner.display)


async def test_banner_when_the_agent_stopped_cleanly(db):
    app = staff(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        write(db, health=healthy().but(state="stopped", stopped_at=ago(0, 30)))
        banner = app.main_screen.query_one(BannerLine)
        await wait_for(lambda: banner.display)
        assert "AGENT STOPPED at 19:29:30" in banner.text


async def test_history_view_updates_while_open(db):
    app = staff(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("h")
        await wait_for(lambda: app.screen.id == "history" and app.screen.rows)
        summary = app.screen.query_one("#history-summary")
        assert str(summary.render()).startswith("3 seated · 1 removed")
        ito = next(v for v in active_views() if v.number == 9)
        write(db, ito.__class__(**{**_fields(ito), "state": "removed", "cleared": ago(0)}))
        await wait_for(lambda: str(summary.render()).startswith("3 seated · 2 removed"))
        assert app.screen.rows[0].number == 9  # newest first
        await pilot.press("escape")
        await wait_for(lambda: app.screen.id == "staff")
        assert 9 not in numbers(app)


async def test_empty_board_invites_to_add_and_disables_row_actions(tmp_path, monkeypatch):
    pin_extras(monkeypatch, {})
    db = make_store(tmp_path / "empty.db", [], finished=False)
    app = staff(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert "Press a to add one" in str(app.screen.query_one("#empty").render())
        for action in ("page", "repage", "seat", "remove", "edit"):
            assert app.screen.check_action(action, ()) is None
        assert app.screen.check_action("add", ()) is True


async def test_repage_on_a_waiting_party_says_why_it_does_nothing(db):
    app = staff(db)
    notes: list[str] = []
    notify = app.notify
    app.notify = lambda message, **kw: (notes.append(message), notify(message, **kw))[1]  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        screen = app.main_screen
        assert screen.selected.number == 7 and screen.check_action("repage", ()) is True
        await pilot.press("down")
        assert screen.selected.number == 12
        await pilot.press("r")
        await pilot.pause()
        assert app.action_results == []  # nothing sent to the transmitter ...
        assert notes == ["Pager 12 has not been paged yet: press p"]  # ... and it says why


async def test_timers_move_with_the_clock_once_a_minute(db):
    clock = MovableClock(NOW)
    app = staff(db, clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        assert app.main_screen.cells_by_number(3)[6][0] == "◆ PAGED <1m"  # paged 45 s ago
        assert app.main_screen.cells_by_number(30)[3][0] == "<1m"  # arrived 40 s ago
        clock.advance(30)
        app._tick()
        assert app.main_screen.cells_by_number(3)[6][0] == "◆ PAGED <1m"
        clock.advance(60)  # 19:31:30
        app._tick()
        assert app.main_screen.cells_by_number(3)[6][0] == "◆ PAGED 1m"
        assert app.main_screen.cells_by_number(30)[3][0] == "1m"


async def test_off_screen_changes_wait_until_scrolled_into_view(tmp_path, monkeypatch):
    pin_extras(monkeypatch, {})
    many = [
        view(f"m-{n}", n, label=f"Guest {n}", party_size=2, goal_seconds=3600,
             created=ago(90 - n), state="waiting")
        for n in range(1, 61)
    ]  # fmt: skip
    db = make_store(tmp_path / "many.db", many, finished=False)
    app = staff(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        table = app.main_screen.query_one(PartyTable)
        assert table.row_count == 60 and 55 not in table.visible_rows()
        far, near = many[54], many[1]  # pager 55 is off screen, pager 2 on screen
        write(
            db,
            far.__class__(**{**_fields(far), "label": "Renamed far"}),
            near.__class__(**{**_fields(near), "label": "Renamed near"}),
        )
        await wait_for(lambda: table.pending == 1)
        assert str(table.get_cell("m-2", "label")) == "Renamed near"
        assert str(table.get_cell("m-55", "label")) == "Guest 55"  # not repainted yet…
        assert app.main_screen.parties_by_number(55).label == "Renamed far"  # …but known
        await pilot.press("pagedown", "ctrl+end")  # the host scrolls down
        await wait_for(lambda: table.pending == 0)
        assert str(table.get_cell("m-55", "label")) == "Renamed far"


async def test_add_form_validates_before_anything_is_sent(db):
    from tui.screens.dialogs import PartyForm

    app = staff(db)  # no client: anything that got through would be reported as read-only
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, PartyForm))
        form = app.screen
        assert form.query_one("#number").value == "1"  # 3, 7, 9, 12… are taken; 1 is free
        error = form.query_one("#form-error")
        # Enter moves to the next field as a host types; from the goal it submits.
        await pilot.press(*"Kim", "enter", "enter", "enter")  # no party size
        await pilot.pause()
        assert "Party size: how many guests? (a blank is not 1)" in str(error.render())
        assert form.query_one("#label").value == "Kim"  # what the host typed stays
        await pilot.press("shift+tab", "shift+tab", "shift+tab", "ctrl+a", "ctrl+k", "1", "2")
        await pilot.press("enter", "enter", "3", "enter", "enter")  # pager 12: on the board
        await pilot.pause()
        assert "Pager 12 is already in use" in str(error.render())
        await pilot.press("shift+tab", "shift+tab", "shift+tab", "ctrl+a", "ctrl+k", *"1000")
        await pilot.press("enter", "enter", "enter", "enter")  # beyond the transmitter's pagers
        await pilot.pause()
        assert "Pager number: 1 to 999 on this transmitter" in str(error.render())
        assert form.query_one("#label").value == "Kim"
        await pilot.press("shift+tab", "shift+tab", "shift+tab", "ctrl+a", "ctrl+k", "5")
        await pilot.press("enter", "enter", "ctrl+a", "ctrl+k", "0", "enter", "enter")  # party of 0
        await pilot.pause()
        assert "Party size: 1 to 99" in str(error.render())
        assert app.screen is form and app.action_results == []
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.id == "staff" and app.action_results == []


async def test_add_form_quotes_from_the_queue_and_pre_fills_the_goal(tmp_path, monkeypatch):
    """The quote follows the party size as the host types it; a goal the host typed stays."""
    from tui.core.actions import PartyFields
    from tui.screens.dialogs import PartyForm

    pin_extras(monkeypatch, {})
    app = staff(make_store(tmp_path / "queue.db", queue_views()))
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, PartyForm))
        form = app.screen
        basis, goal = form.query_one("#quote-basis"), form.query_one("#goal")
        assert str(basis.render()) == "15 min: the transmitter's default goal"  # no size yet
        assert goal.value == "15"
        await pilot.press(*"Kim", "tab", "4")  # focus starts on the label
        await pilot.pause()
        assert str(basis.render()) == (
            "About 40 min for 4: 3 parties ahead, seating ~1 every 10 min"
        )
        assert goal.value == "40"
        await pilot.press("backspace", "2")  # one couple seated this hour: no rate yet
        await pilot.pause()
        assert str(basis.render()) == (
            "About 12 min for 2: typical for 1–2 guests on Fri around 19h, last 4 weeks (4 parties)"
        )
        assert goal.value == "12"
        await pilot.press("tab", "ctrl+a", "ctrl+k", "3", "0", "shift+tab", "backspace", "3")
        await pilot.pause()
        assert "3 parties ahead" in str(basis.render())  # the basis still follows the size…
        assert goal.value == "30"  # …the host's own goal stays
        assert form.validate() == PartyFields(1, "Kim", 3, 1800)


async def test_a_snapshot_arriving_while_the_board_closes_is_harmless(db):
    """Two full suites run side by side caught the poll thread delivering a snapshot as the app
    tore its screen down (a test ended right after a page). The widgets are gone: nothing to show."""
    app = staff(db)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        snap = app.snapshot
        await app.main_screen.query("*").remove()  # as shutdown prunes the screen's children
        app.post_message(SnapshotReady(snap))
        await pilot.pause()
        assert app.snapshots_seen >= 2
    assert app.worker_errors == []


async def test_late_and_nudge_alerts_come_once_at_the_right_moment(db):
    """Injected clock: Nguyen (15 min quote, 14 min in) turns late when the board's minute passes
    15; Okafor, paged 45 s ago, gets a nudge at 5 minutes. Parties late at start are marked, not
    announced. Alerts follow the table's minute, so the row says LATE when the alert comes."""
    clock = MovableClock()
    app = staff(db, clock)
    notes: list[str] = []
    notify = app.notify

    def recording(message, **kw):
        notes.append(message)
        notify(message, **kw)

    app.notify = recording  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        app._tick()
        assert not [n for n in notes if "late" in n or "paged" in n]  # Zebulon was late already
        clock.advance(110)
        app._tick()
        assert not [n for n in notes if "Nguyen" in n]  # the board's minute is 15m: not yet late
        clock.advance(15)
        app._tick()
        await pilot.pause()
        assert [n for n in notes if "Nguyen" in n] == ["Pager 21 (Nguyen) is now late (quoted 15m)"]
        table = app.main_screen.query_one(PartyTable)
        flashed = table.get_cell("u-21", "num")
        assert "reverse" in str(flashed.style)  # the row flashes once ...
        clock.advance(3)
        app._tick()
        await pilot.pause(1.5)
        assert "reverse" not in str(table.get_cell("u-21", "num").style)  # ... and stays marked
        assert "LATE" in table.get_cell("u-21", "left").plain
        assert "2 late" in str(app.main_screen.query_one("#stats").render())
        clock.advance(300 - 128)  # the board's minute is 5 min after Okafor's page
        app._tick()
        nudges = [n for n in notes if "not back" in n]
        assert "Pager 3 (Okafor) paged 5m ago, not back: re-page or remove" in nudges
        clock.advance(60)
        app._tick()
        assert [n for n in notes if "not back" in n] == nudges  # once per page


async def test_home_and_end_jump_to_the_first_and_last_row(db):
    app = staff(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        screen = app.main_screen
        await pilot.press("end")
        assert screen.selected.number == 30  # the newest party, last row
        await pilot.press("home")
        assert screen.selected.number == 7


async def test_history_shows_whole_labels_on_a_wide_screen_and_12_hour_times(db):
    cfg = board_config(db, clock_format="12h")
    app = BoardApp(db, clock=fixed_clock(), config=cfg, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await started(pilot)
        assert "7:30:00 PM" in str(app.main_screen.query_one("#clock").render())
        await pilot.press("h")
        await wait_for(lambda: app.screen.id == "history" and bool(app.screen.rows))
        table = app.screen.query_one("#history-table")
        assert table.columns[table.ordered_columns[1].key].width >= 28
        ended = table.get_cell("h-1", "ended").plain
        assert ended == "6:15 PM"  # cleared 75 min before 19:30 Paris


async def test_ascii_everywhere_the_footer_included(db):
    import html
    import re

    app = BoardApp(db, clock=fixed_clock(), config=board_config(db), ascii=True, ansi=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await started(pilot)
        svg = app.export_screenshot()
    texts = [html.unescape(t) for t in re.findall(r"<text[^>]*>(.*?)</text>", svg)]
    shown = "".join(texts).replace("\xa0", " ")
    assert "Seat" in shown and "palette" in shown  # the footer is there ...
    odd = sorted({ch for ch in shown if ord(ch) > 126})
    assert odd == [], odd  # ... and nothing but ASCII anywhere (labels are fixture names)


async def test_the_demo_kiosk_quits_with_ctrl_q_the_installed_one_does_not(db):
    installed = BoardApp(db, clock=fixed_clock(), config=board_config(db), kiosk=True)
    async with installed.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert installed.is_running
    demo = BoardApp(db, clock=fixed_clock(), config=board_config(db), kiosk=True, quit_proof=False)
    async with demo.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not demo.is_running
