"""The staff table repaints only what changed: one changed row costs that row's lines, not the
table's. Observed from outside DataTable's machinery: the regions the table marks dirty
(``refresh``) and the lines the compositor then asks it to render (``render_line``)."""

from __future__ import annotations

import io

from rich.console import Console
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.strip import Strip

from tui.render.theme import Cell
from tui.widgets.table import PartyTable

SIZE = (80, 24)


def cells(n: int, label: str | None = None, *, waited: int = 5) -> tuple[Cell, ...]:
    return (
        (str(n), ""),
        (label or f"Guest {n}", ""),
        ("2", ""),
        (f"{waited}m", ""),
        ("15m", ""),
        (f"{15 - waited}m left", "ok"),
        ("○ waiting", "waiting"),
    )


class RecordingTable(PartyTable):
    """The staff table, noting what it is asked to repaint and to render."""

    def __init__(self) -> None:
        self.regions: list[Region] = []
        self.whole = 0  # refresh() of the whole widget
        self.lines: list[int] = []
        super().__init__(id="parties")

    def refresh(self, *regions: Region, **kwargs: bool) -> RecordingTable:
        if regions:
            self.regions.extend(regions)
        else:
            self.whole += 1
        super().refresh(*regions, **kwargs)
        return self

    def render_line(self, y: int) -> Strip:
        self.lines.append(y)
        return super().render_line(y)

    def forget(self) -> None:
        self.regions.clear()
        self.whole = 0
        self.lines.clear()


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RecordingTable()


ROWS = [(f"k{n}", cells(n)) for n in range(1, 41)]  # 40 parties: about half on screen


async def settled(pilot) -> None:
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def showing_rows(app: TableApp, pilot) -> RecordingTable:
    """The table with ROWS shown and settled, its recording cleared: what a test then changes is
    all it records."""
    table = app.query_one(RecordingTable)
    table.apply(ROWS)
    await settled(pilot)
    table.forget()
    return table


def screen_text(app: App[None]) -> list[str]:
    """The screen's lines as a full frame composes them now, from every widget's line cache (as
    ``export_screenshot`` does): a line left stale by a partial repaint would show here."""
    console = Console(width=SIZE[0], record=True, file=io.StringIO())
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text().splitlines()


async def test_one_changed_row_repaints_only_its_own_lines():
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await showing_rows(app, pilot)
        assert table.row_count == 40 and table.size.height == SIZE[1]

        changed = list(ROWS)
        changed[4] = ("k5", cells(5, "Renamed five"))  # row index 4: line 5 under the header
        assert table.apply(changed) == 1
        await settled(pilot)

        assert table.whole == 0
        assert table.regions == [Region(0, 5, SIZE[0], 1)]
        assert set(table.lines) == {5}  # the compositor asked for that line and no other
        assert "Renamed five" in str(table.get_cell("k5", "label"))
        text = screen_text(app)
        assert "Renamed five" in text[5] and "Guest 4" in text[4] and "Guest 6" in text[6]

        # Again, now that every line on screen sits in DataTable's caches: none may show stale.
        table.forget()
        changed[4] = ("k5", cells(5, "Again"))
        table.apply(changed)
        await settled(pilot)
        assert table.regions == [Region(0, 5, SIZE[0], 1)] and set(table.lines) == {5}
        assert "Again" in screen_text(app)[5]


async def test_rows_that_move_the_others_still_repaint_the_table():
    """The control: the recording sees a whole repaint when one is due (a row arrives in the
    middle and every row under it moves)."""
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await showing_rows(app, pilot)

        arrived = [*ROWS[:3], ("k99", cells(99, "Arrived")), *ROWS[3:]]
        table.apply(arrived)
        await settled(pilot)

        assert table.whole >= 1
        assert len(set(table.lines)) >= SIZE[1] - 1  # every line of the table was rendered
        assert table.row_keys[3] == "k99"
        assert "Arrived" in screen_text(app)[4]


async def test_the_minute_turn_repaints_the_rows_on_screen_and_defers_the_rest():
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await showing_rows(app, pilot)

        table.apply([(key, cells(n + 1, waited=6)) for n, (key, _c) in enumerate(ROWS)])
        await settled(pilot)

        # Rows in view (23 under the header) repaint, one region each; the two of the margin
        # just under the screen take their new cells without a repaint; the rest wait.
        assert table.whole == 0
        assert table.regions == [Region(0, y, SIZE[0], 1) for y in range(1, SIZE[1])]
        assert table.pending == len(ROWS) - len(table.visible_rows())
        assert "6m" in screen_text(app)[1]


async def test_a_flash_repaints_its_row_twice_and_nothing_else():
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await showing_rows(app, pilot)

        table.flash("k2", seconds=0.5)
        await pilot.pause()
        assert "reverse" in str(table.get_cell("k2", "label").style)
        assert table.regions == [Region(0, 2, SIZE[0], 1)]
        await pilot.pause(0.7)
        await settled(pilot)

        assert table.whole == 0
        assert table.regions == [Region(0, 2, SIZE[0], 1)] * 2
        assert set(table.lines) == {2}
        assert "reverse" not in str(table.get_cell("k2", "label").style)
