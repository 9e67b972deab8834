"""The touch layout, driven with Pilot against the real simulator over loopback.

At the terminal sizes a tablet's browser gives the board at the touch font (landscape 1280×800
and portrait 800×1280: ``TOUCH_CELLS``, which the browser test checks against the real page): rows of two or three lines, a
permanent action bar of three-line buttons acting on the selected row, labels whole in portrait,
and the add form's size buttons. The browser test (tests/test_web_browser.py) measures the same
regions in CSS pixels; here they are checked in cells, and every action is checked at the
transmitter (``sim.model``).
"""

from __future__ import annotations

import pytest
from textual.widgets import Button, Footer

from tests.board_fixtures import TOUCH_CELLS, pin_extras, wait_for
from tests.test_board_actions import (
    board,
    graced_rig,
    last_result,
    numbers_on_board,
    other_board_sees,
    running_rig,
    seed,
)
from tui.core.actions import bar_actions, more_actions
from tui.render.cells import COLUMNS, LABEL_MIN, table_columns
from tui.screens.dialogs import PartyForm
from tui.screens.party import MoreActions, PartyActions
from tui.widgets.table import PartyTable

SIZES = list(TOUCH_CELLS.items())
PARTIES = (
    (31, "Birthday — table by the window", 6),
    (32, "Okafor", 2),
    (33, "", 4),  # no label
    (34, "Schmidt-Larsson family", 8),
    (35, "Ito", 1),
    (36, "Nguyen", 3),
)


@pytest.fixture
async def rig(tmp_path, monkeypatch):
    pin_extras(monkeypatch, {})
    async with running_rig(tmp_path) as r:
        yield r


def bar_buttons(app) -> list[Button]:
    return list(app.main_screen.query("#action-bar Button").results(Button))


async def tap(pilot, widget) -> None:
    await pilot.click(widget)
    await pilot.pause()


async def tap_row(pilot, table: PartyTable, index: int) -> None:
    """A tap in the middle of row `index` (its lines, its width)."""
    region = table._get_row_region(index).translate(table.content_region.offset)
    middle = (region.x + region.width // 2, region.y + region.height // 2 + table.header_height)
    await pilot.click(offset=(middle[0], middle[1] - round(table.scroll_y)))
    await pilot.pause()


@pytest.mark.parametrize("tablet,size", SIZES, ids=[f"{w}x{h}" for w, h in TOUCH_CELLS])
async def test_rows_and_bar_buttons_are_finger_sized_and_labels_whole(rig, tablet, size):
    app = board(rig, layout="touch")
    async with app.run_test(size=size) as pilot:
        await seed(rig, app, *PARTIES)
        await pilot.pause()
        table = app.main_screen.query_one(PartyTable)
        heights = [row.height for row in table.ordered_rows]
        assert len(heights) == len(PARTIES) and min(heights) >= 2
        # Six parties and room to spare: the rows take three lines, and still fit on screen.
        assert min(heights) == 3 and sum(heights) + table.header_height <= table.size.height
        assert [b.label.plain for b in bar_buttons(app)] == [
            *(a.bar for a in bar_actions()),
            "More…",
        ]
        assert all(b.region.height == 3 for b in bar_buttons(app))
        assert [b.region.y for b in bar_buttons(app)] == [size[1] - 3] * len(bar_buttons(app))
        assert not app.main_screen.query(Footer)  # the bar replaces the footer's small keys
        # Nothing in its undo grace: Undo is greyed; a party is selected: the rest are not.
        assert {b.id: b.disabled for b in bar_buttons(app)}["bar-undo"] is True
        assert [b.id for b in bar_buttons(app) if b.disabled] == ["bar-undo"]
        # Every label whole (the widest column the width leaves, wrapped onto the row's lines).
        widths = {c.key.value: c.width for c in table.ordered_columns}
        for _n, label, _s in PARTIES:
            assert len(label) <= widths["label"] * 2
        assert sum(c.get_render_width(table) for c in table.ordered_columns) <= size[0]


@pytest.mark.parametrize("tablet,size", SIZES, ids=[f"{w}x{h}" for w, h in TOUCH_CELLS])
async def test_a_tap_selects_row_k_and_the_bar_acts_on_it(rig, tablet, size):
    app = board(rig, layout="touch")
    async with app.run_test(size=size) as pilot:
        await seed(rig, app, *PARTIES[:4])
        await pilot.pause()
        table = app.main_screen.query_one(PartyTable)
        order = numbers_on_board(app)
        for k in [*range(len(order))][::-1]:  # from the last up: the cursor moves every time
            await tap_row(pilot, table, k)
            assert app.main_screen.selected.number == order[k]
            assert app.screen is app.main_screen  # a tap selects; it opens nothing
        # A tap on the selected row opens its panel (edit, re-page: what the bar does not offer).
        await tap_row(pilot, table, 0)
        await wait_for(lambda: isinstance(app.screen, PartyActions))
        await tap(pilot, app.screen.query_one("#cancel", Button))
        await tap_row(pilot, table, 2)
        chosen = order[2]
        await tap(pilot, app.main_screen.query_one("#bar-seat", Button))
        result = await last_result(app, 1)
        assert result.ok and (result.kind, result.number) == ("seat", chosen)
        assert chosen not in rig.sim.model.active
        assert set(order) - {chosen} <= set(rig.sim.model.active)
        await tap_row(pilot, table, 0)
        await tap(pilot, app.main_screen.query_one("#bar-page", Button))
        result = await last_result(app, 2)
        assert result.ok and (result.kind, result.number) == ("page", order[0])


@pytest.mark.parametrize("tablet,size", SIZES, ids=[f"{w}x{h}" for w, h in TOUCH_CELLS])
async def test_add_party_by_taps_the_simulator_holds_it(rig, tablet, size):
    app = board(rig, layout="touch")
    async with app.run_test(size=size) as pilot:
        await seed(rig, app, (5, "Ann", 2))
        await tap(pilot, app.main_screen.query_one("#bar-add", Button))
        await wait_for(lambda: isinstance(app.screen, PartyForm))
        form = app.screen
        await wait_for(lambda: form.query_one("#goal").value != "")
        buttons = {b.id: b for b in form.query(Button)}
        sizes = [b for b in buttons.values() if b.has_class("size")]
        assert [b.label.plain for b in sizes] == [*map(str, range(1, 8)), "8+"]
        assert all(b.region.height == 3 for b in buttons.values())  # finger-sized, Add too
        # The form sits at the top: with an on-screen keyboard over the lower 40 % of a portrait
        # screen, the fields, the quote and Add stay above it.
        if tablet == (800, 1280):
            assert buttons["ok"].region.bottom <= 0.6 * size[1]
        await tap(pilot, buttons["size-4"])
        assert form.query_one("#size").value == "4"
        basis = str(form.query_one("#quote-basis").render())
        assert basis  # the live quote, in words, while the form is open
        await tap(pilot, buttons["ok"])
        result = await last_result(app, 1)
        assert result.ok and result.kind == "add"
        session = rig.sim.model.active[1]  # the lowest free pager, pre-filled
        assert session.party_size == 4
        # "8+": the size field is cleared and focused for a larger party.
        await tap(pilot, app.main_screen.query_one("#bar-add", Button))
        await wait_for(lambda: isinstance(app.screen, PartyForm))
        await tap(pilot, app.screen.query_one("#size-more", Button))
        assert app.focused is app.screen.query_one("#size")
        assert app.screen.query_one("#size").value == ""


async def test_undo_is_greyed_until_a_seat_waits_out_its_grace(tmp_path):
    async with graced_rig(tmp_path, grace=30.0) as graced:
        app = board(graced, layout="touch")
        size = TOUCH_CELLS[1280, 800]
        async with app.run_test(size=size) as pilot:
            await seed(graced, app, (41, "Ana", 2), (42, "Bo", 3))
            undo = app.main_screen.query_one("#bar-undo", Button)
            assert undo.disabled
            await tap(pilot, app.main_screen.query_one("#bar-seat", Button))
            await wait_for(lambda: [r.kind for r in other_board_sees(graced)] == ["seat"])
            await wait_for(lambda: not undo.disabled)
            await tap(pilot, undo)
            result = await last_result(app, 2)
            assert result.ok and result.kind == "undo"
            await wait_for(lambda: undo.disabled)
            assert {41, 42} <= set(graced.sim.model.active)  # undone: nothing was sent


async def test_more_offers_every_other_action(rig):
    app = board(rig, layout="touch")
    async with app.run_test(size=TOUCH_CELLS[800, 1280]) as pilot:
        await seed(rig, app, (5, "Ann", 2))
        await tap(pilot, app.main_screen.query_one("#bar-more", Button))
        await wait_for(lambda: isinstance(app.screen, MoreActions))
        buttons = {b.id: b for b in app.screen.query(Button)}
        assert [b for b in buttons if b != "cancel"] == [a.name for a in more_actions()]
        assert all(b.region.height == 3 for b in buttons.values())
        await tap(pilot, buttons["history"])
        await wait_for(lambda: app.screen.id == "history")


async def test_the_compact_layout_stays_as_it_was(rig):
    app = board(rig, layout="compact")
    async with app.run_test(size=(100, 30)) as pilot:
        await seed(rig, app, (5, "Ann", 2))
        await pilot.pause()
        table = app.main_screen.query_one(PartyTable)
        assert [row.height for row in table.ordered_rows] == [1]
        assert not app.main_screen.query("#action-bar")
        assert app.main_screen.query(Footer)
        assert [c.key.value for c in table.ordered_columns] == [k for k, _t, _w in COLUMNS]


def test_touch_columns_fit_the_width_and_keep_the_label_readable():
    for width in range(40, 240):
        columns = table_columns(width, touch=True)
        keys = [k for k, _t, _w in columns]
        assert keys[0] == "num" and "label" in keys and "state" in keys
        used = sum(w + 2 for _k, _t, w in columns) + 2  # padding each side, a scrollbar
        label = dict((k, w) for k, _t, w in columns)["label"]
        if width >= 66:  # a 10-inch tablet in portrait at the touch font, and anything wider
            assert used <= width and label >= LABEL_MIN
        # A narrower screen drops the quote (waited + left say it) before it cuts the label.
        if "quote" not in keys:
            assert table_columns(width, touch=True) != table_columns(width + 40, touch=True)
    assert table_columns(80, touch=False) == COLUMNS
    assert dict((k, w) for k, _t, w in table_columns(120, touch=False))["label"] == 28
