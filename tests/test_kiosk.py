"""The guest-facing kiosk: snapshots, never a label, no way for a guest to drive or close it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.widgets import DataTable, Footer, Input

from tests.board_fixtures import (
    KIOSK_CELLS,
    NOW,
    SECRET_LABEL,
    active_views,
    board_config,
    finished_views,
    fixed_clock,
    iso,
    make_store,
    pin_extras,
    queue_views,
    view,
    wait_for,
)
from tui.app import BoardApp
from tui.render.glyphs import glyph_rows
from tui.widgets.header import BigNumbers


@pytest.fixture
def pinned_db(tmp_path, monkeypatch):
    pin_extras(monkeypatch, {})
    return make_store(tmp_path / "board.db")


def kiosk(db, *, clock=None, **kw) -> BoardApp:
    return BoardApp(db, clock=clock or fixed_clock(), config=board_config(db), kiosk=True, **kw)


async def shown(pilot) -> None:
    await wait_for(lambda: pilot.app.snapshots_seen > 0)
    await pilot.pause()


async def estimates_shown(pilot) -> None:
    await shown(pilot)
    await wait_for(lambda: bool(pilot.app.estimates))
    await pilot.pause()


# --- snapshots ------------------------------------------------------------------------------


def test_kiosk_80x24(snap_compare, pinned_db):
    assert snap_compare(kiosk(pinned_db), terminal_size=(80, 24), run_before=estimates_shown)


def test_kiosk_120x40(snap_compare, pinned_db):
    assert snap_compare(kiosk(pinned_db), terminal_size=(120, 40), run_before=estimates_shown)


def test_kiosk_linux_console_80x24(snap_compare, pinned_db):
    """ASCII glyphs (no block characters), 16-colour mapping."""
    app = kiosk(pinned_db, ascii=True, ansi=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=estimates_shown)


def test_kiosk_offline_banner_80x24(snap_compare, pinned_db):
    app = kiosk(pinned_db, clock=fixed_clock(NOW + timedelta(minutes=4)))
    assert snap_compare(app, terminal_size=(80, 24), run_before=estimates_shown)


def test_kiosk_before_the_database_exists_80x24(snap_compare, tmp_path):
    async def waiting(pilot):
        await shown(pilot)

    app = kiosk(tmp_path / "not-yet.db")
    assert snap_compare(app, terminal_size=(80, 24), run_before=waiting)


# --- never a label --------------------------------------------------------------------------


def all_text(app: BoardApp) -> str:
    """Everything the kiosk could show: the rendered screen, every widget's render, the app's data."""
    parts = [app.export_screenshot()]
    for widget in app.screen.walk_children(with_self=True):
        try:
            parts.append(str(widget.render()))
        except Exception:  # containers without a render of their own
            pass
        parts.append(repr(getattr(widget, "renderable", "")))
        parts.append(repr(vars(widget)))
    parts.append(repr(app.snapshot))
    parts.append(repr(app.board_rows()))
    return "\n".join(parts)


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
async def test_kiosk_never_renders_a_label(tmp_path, monkeypatch, size):
    pin_extras(monkeypatch, {})
    labelled = [
        view("k-1", 61, label=f"{SECRET_LABEL}-waiting", party_size=2, goal_seconds=600,
             created=(NOW - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")),
        view("k-2", 62, label=f"{SECRET_LABEL}-paged", party_size=2, goal_seconds=600,
             created=(NOW - timedelta(minutes=9)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             first_notified=(NOW - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             notified=(NOW - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             state="paged", page_count=1),
    ]  # fmt: skip
    db = make_store(tmp_path / "board.db", [*active_views(), *labelled])
    labels = {v.label for v in [*active_views(), *labelled, *finished_views()] if v.label}
    app = kiosk(db)
    async with app.run_test(size=size) as pilot:
        await estimates_shown(pilot)
        numbers = app.main_screen.query_one("#paging", BigNumbers).numbers
        assert 62 in numbers and 7 in numbers  # the labelled parties are on screen, by number
        text = all_text(app)
        assert "NOW PAGING" in text
        leaked = sorted(label for label in labels if label in text)
        assert leaked == []
        assert SECRET_LABEL not in text


# --- a guest cannot drive or close it -------------------------------------------------------


async def test_kiosk_has_no_cursor_footer_palette_or_quit(pinned_db):
    app = kiosk(pinned_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot)
        screen = app.screen
        assert not screen.query(DataTable) and not screen.query(Footer) and not screen.query(Input)
        assert app.focused is None
        assert not any(w.can_focus for w in screen.walk_children())
        await pilot.press("ctrl+p")
        await pilot.press("ctrl+q")
        await pilot.press("ctrl+c")
        await pilot.press("a", "p", "h", "escape")
        await pilot.pause()
        assert app.is_running and app.screen is screen  # still there, nothing opened
        assert app.check_action("quit", ()) is False
        assert not app.use_command_palette


async def test_kiosk_starts_before_the_database_and_picks_it_up(tmp_path, monkeypatch):
    pin_extras(monkeypatch, {})
    db = tmp_path / "late.db"
    app = kiosk(db, poll_interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot)
        banner = app.screen.query_one("#kiosk-banner")
        assert banner.display and "waiting for the pager system" in banner.text
        make_store(db)
        await wait_for(lambda: app.snapshot is not None and app.snapshot.ready)
        await pilot.pause()
        assert not banner.display
        assert 7 in app.screen.query_one("#paging", BigNumbers).numbers
        stamp = str(app.screen.query_one("#stamp").render())
        assert stamp == "last updated 19:29:57"  # the agent's last heartbeat


def busy_views() -> list:
    out = []
    for n in range(1, 53):
        paged = n % 4 == 0
        created = NOW - timedelta(minutes=60 - n)
        stamp = (NOW - timedelta(minutes=n % 7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(
            view(f"b-{n}", 100 + n, label=f"{SECRET_LABEL}-{n}", party_size=1 + n % 6,
                 goal_seconds=1200, created=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 first_notified=stamp if paged else None, notified=stamp if paged else None,
                 state="paged" if paged else "waiting", page_count=1 if paged else 0)
        )  # fmt: skip
    return out


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_kiosk_busy_evening(snap_compare, tmp_path, monkeypatch, size):
    """13 pagers paging and 39 waiting: what does not fit says so ("+N more")."""
    pin_extras(monkeypatch, {})
    db = make_store(tmp_path / "busy.db", busy_views())
    assert snap_compare(kiosk(db), terminal_size=size, run_before=estimates_shown)


async def test_the_kiosk_is_dark_outside_opening_hours(tmp_path):
    from datetime import time

    from tests.board_fixtures import MovableClock, board_config, make_store

    db = make_store(tmp_path / "agent.db")
    cfg = board_config(db, opening_hours="17:00-01:00")  # past midnight
    assert cfg.board.is_open(time(23, 30)) and cfg.board.is_open(time(0, 30))
    assert not cfg.board.is_open(time(1, 0)) and not cfg.board.is_open(time(12, 0))
    clock = MovableClock()  # 19:30 in Paris: open
    app = BoardApp(db, clock=clock, config=cfg, kiosk=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.snapshots_seen > 0)
        await pilot.pause()
        screen = app.main_screen
        assert not screen.has_class("-closed") and screen.query_one("#paging").display
        clock.advance(6 * 3600)  # 01:30
        app._tick()
        await pilot.pause()
        assert screen.has_class("-closed")
        assert all(not w.display for w in screen.children)


async def test_kiosk_shows_the_next_partys_wait_by_size_live_and_no_label(tmp_path, monkeypatch):
    """The line is the live quote for a party joining now, by size (history where the queue says
    too little, never the default goal), and follows the queue as it changes."""
    from agent.store import Store, WriteBatch

    pin_extras(monkeypatch, {})
    db = make_store(tmp_path / "queue.db", queue_views())
    app = kiosk(db, poll_interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await estimates_shown(pilot)
        line = app.main_screen.query_one("#estimates")
        assert str(line.render()) == "Wait if you join now  1–2 guests ~12 min · 3–4 guests ~40 min"
        text = all_text(app)
        labels = {v.label for v in [*queue_views(), *finished_views()] if v.label}
        assert sorted(label for label in labels if label in text) == []
        assert SECRET_LABEL not in text and "ahead" not in text  # sizes and minutes only
        store = Store(db, synchronous="NORMAL")  # another party of four joins the queue
        try:
            late = view("q-w5", 54, label=f"{SECRET_LABEL}-54", party_size=4, created=iso(NOW),
                        goal_seconds=1500, state="waiting")  # fmt: skip
            store.write_batch(WriteBatch(views={late.uuid: late}))
        finally:
            store.close()
        await wait_for(lambda: "~50 min" in str(line.render()))
        assert SECRET_LABEL not in all_text(app)


async def test_kiosk_estimates_can_be_turned_off(tmp_path, monkeypatch):
    pin_extras(monkeypatch, {})
    db = make_store(tmp_path / "queue.db", queue_views())
    app = BoardApp(db, clock=fixed_clock(), config=board_config(db, kiosk_show_estimates=False),
                   kiosk=True)  # fmt: skip
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(pilot)
        assert str(app.main_screen.query_one("#estimates").render()) == ""


# --- the numbers fill the screen ------------------------------------------------------------


def _drawn(app: BoardApp, selector: str) -> tuple[BigNumbers, str]:
    widget = app.main_screen.query_one(selector, BigNumbers)
    return widget, str(widget.render())


@pytest.mark.parametrize("cells", sorted(KIOSK_CELLS.values()))
async def test_the_paged_numbers_take_a_third_of_the_screen_and_waiting_ones_the_rest(
    pinned_db, cells
):
    """At a browser's kiosk size (1280×800, 800×1280, 1920×1080 at the kiosk's font): the paged
    digits at least a third of the screen's height, every waiting number in glyphs too, smaller
    than the paged ones; nothing left out."""
    app = kiosk(pinned_db)
    async with app.run_test(size=cells) as pilot:
        await estimates_shown(pilot)
        paging, paged_text = _drawn(app, "#paging")
        waiting, waiting_text = _drawn(app, "#waiting")
        assert paging.numbers == (3, 7) and len(waiting.numbers) == 6
        assert paging.glyph_rows * 3 >= cells[1]
        assert 0 < waiting.glyph_rows < paging.glyph_rows
        assert "more" not in paged_text + waiting_text
        assert paging.region.bottom <= waiting.region.y  # one above the other, no overlap
        assert "Wait if you join now" in str(app.main_screen.query_one("#estimates").render())


@pytest.mark.parametrize("cells", [(240, 67), (80, 24)])
async def test_the_pi_console_gets_big_ascii_digits(pinned_db, cells):
    """The Linux console (no block glyphs): digits of #, a third of the screen at 1920×1080 with
    the console's 8×16 font (240×67), and still the biggest thing on an 80×24 console."""
    app = kiosk(pinned_db, ascii=True, ansi=True)
    async with app.run_test(size=cells) as pilot:
        await estimates_shown(pilot)
        paging, text = _drawn(app, "#paging")
        assert set(text) <= {"#", " ", "\n"} and paging.glyph_rows >= 5
        if cells[1] > 60:
            assert paging.glyph_rows * 3 >= cells[1]


async def test_with_nobody_waiting_the_paged_numbers_take_the_whole_body(tmp_path, monkeypatch):
    pin_extras(monkeypatch, {})
    paged = [v for v in active_views() if v.state == "paged"]
    db = make_store(tmp_path / "paged.db", paged)
    both = make_store(tmp_path / "both.db")
    rows = {}
    for name, path in (("paged", db), ("both", both)):
        app = kiosk(path)
        async with app.run_test(size=KIOSK_CELLS[(1280, 800)]) as pilot:
            await shown(pilot)
            paging, _ = _drawn(app, "#paging")
            waiting = app.main_screen.query_one("#waiting", BigNumbers)
            assert waiting.display == (name == "both")
            rows[name] = (paging.region.height, paging.glyph_rows)
    assert rows["paged"][0] > rows["both"][0] and rows["paged"][1] >= rows["both"][1]


async def test_a_busy_evening_shrinks_the_glyphs_before_it_leaves_numbers_out(
    tmp_path, monkeypatch
):
    """13 paging and 39 waiting at 1280×800: every paged number is drawn (smaller glyphs, on
    several lines), and so is every waiting one (as text when glyphs cannot hold them all)."""
    pin_extras(monkeypatch, {})
    db = make_store(tmp_path / "busy.db", busy_views())
    app = kiosk(db)
    async with app.run_test(size=KIOSK_CELLS[(1280, 800)]) as pilot:
        await shown(pilot)
        paging, paged_text = _drawn(app, "#paging")
        waiting, waiting_text = _drawn(app, "#waiting")
        assert len(paging.numbers) == 13 and len(waiting.numbers) == 39
        assert "more" not in waiting_text
        assert all(str(n) in waiting_text for n in waiting.numbers)
        if "more" in paged_text:  # the screen cannot hold 13 in glyphs: the count says so
            assert paging.glyph_rows == glyph_rows(1)
