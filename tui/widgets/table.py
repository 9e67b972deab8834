"""The live table of active parties: a DataTable updated by diffing, never by clear()."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from tui.render.cells import COLUMNS, table_columns
from tui.render.theme import Cell, tone_style

#: A rendered cell or row line as DataTable returns it (Textual's private ``SegmentLines``).
Lines = list[list[Segment]]


def cell_text(cell: Cell, *, ansi: bool, wrap: bool = False) -> Text:
    """A cell as DataTable draws it: one line, cut with an ellipsis — or, in a row taller than a
    line (`wrap`), wrapped onto the row's further lines."""
    text, tone = cell
    return Text(text, style=tone_style(tone, ansi=ansi), no_wrap=not wrap, overflow="ellipsis")


class DiffTable(DataTable[Text]):
    """A DataTable that takes whole rows of ``(text, tone)`` cells and applies only the difference.

    Rows leave with ``remove_row``, changed cells go through :meth:`update_row_cells` (which
    repaints only that row's lines), new rows ``add_row(key=...)``; the order is restored with
    ``sort`` only when it is wrong, and the cursor stays on the row it was on (by key). Everything
    happens inside ``app.batch_update()``: one frame per apply.
    """

    class Tapped(Message):
        """A tap (or click) on a row: touch needs no keyboard. `again`: the row was the selected
        one before the tap."""

        def __init__(self, table: DiffTable, key: str, *, again: bool = False) -> None:
            super().__init__()
            self.table = table
            self.key = key
            self.again = again

    def on_click(self, event: events.Click) -> None:
        # Runs before DataTable moves its cursor to the tapped row: `cursor_row` is still the
        # row selected before the tap.
        row = event.style.meta.get("row") if event.style else None
        if isinstance(row, int) and 0 <= row < self.row_count:
            key = self.ordered_rows[row].key.value
            if key is not None:
                self.post_message(self.Tapped(self, key, again=row == self.cursor_row))

    def __init__(
        self,
        columns: Sequence[tuple[str, str, int | None]],
        *,
        ansi: bool = False,
        row_height: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self.ansi = ansi
        self.row_height = row_height  # lines a row (touch: 2, a finger's height)
        self._wrap: frozenset[str] = frozenset()  # columns whose text wraps (rows of 2+ lines)
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._order: list[str] = []
        self.last_changes = 0  # cells touched by the last apply (0: nothing repainted)
        self._pending: dict[str, tuple[Cell, ...]] = {}
        self.defer = True  # hold back changes of off-screen rows
        self._cell_cache: dict[tuple[object, ...], tuple[object, Lines]] = {}
        self._row_cache: dict[
            tuple[object, ...], tuple[tuple[object, ...], tuple[Lines, Lines]]
        ] = {}
        self._keys: list[str] = []
        self._add_columns(columns)

    def _add_columns(self, columns: Sequence[tuple[str, str, int | None]]) -> None:
        self._keys = [key for key, _title, _width in columns]
        for key, title, width in columns:
            self.add_column(title, key=key, width=width)

    def _text(self, column: str, cell: Cell) -> Text:
        return cell_text(cell, ansi=self.ansi, wrap=column in self._wrap)

    def wrap_columns(self, keys: Sequence[str]) -> None:
        """Let these columns' text wrap onto a row's second line (set before rows are added)."""
        self._wrap = frozenset(keys) if self.row_height > 1 else frozenset()

    @property
    def row_keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._order)

    def cells_of(self, key: str) -> tuple[Cell, ...] | None:
        """The cells as shown (or, for an off-screen row, as they will be shown)."""
        return self._pending.get(key) or self._cells.get(key)

    @property
    def selected_key(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        try:
            row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return row_key.value

    def visible_rows(self) -> range:
        """Row indices on screen now (plus a small margin)."""
        top = int(self.scroll_y)
        height = max(1, self.scrollable_content_region.height - self.header_height)
        return range(max(0, top - 2), top + height + 2)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._pending:
            self.call_later(self._flush_visible)

    def _flush_visible(self) -> None:
        if not self._pending:
            return
        visible = self.visible_rows()
        position = {key: i for i, key in enumerate(self._order)}
        ready = [k for k in self._pending if position.get(k, -1) in visible]
        if ready:
            changes = {key: self._changed_cells(key, self._pending.pop(key)) for key in ready}
            self.update_rows({key: values for key, values in changes.items() if values})

    def _changed_cells(self, key: str, cells: tuple[Cell, ...]) -> dict[str, Text]:
        """The cells of row `key` that differ from what it shows, as new cell objects (and the
        row now counts as showing `cells`)."""
        old = self._cells[key]
        self._cells[key] = cells
        return {
            self._keys[col]: self._text(self._keys[col], after)
            for col, (before, after) in enumerate(zip(old, cells, strict=True))
            if before != after
        }

    def update_row_cells(self, key: str, values: Mapping[str, Text]) -> None:
        """``update_cell`` for some cells of one row, repainting only that row's lines."""
        self.update_rows({key: values})

    def update_rows(self, changes: Mapping[str, Mapping[str, Text]]) -> None:
        """``update_cell`` for some cells of some rows, repainting only those rows' lines.

        DataTable's ``update_cell`` refreshes the whole widget: every visible line is rendered,
        styled, composited and written to the terminal again (≈ 9 ms for a 120×40 board, most of
        a busy board's CPU). The cells here keep their column widths (``update_width`` is never
        used), so nothing else on screen moves: this does to the table's data and to its render
        caches (keyed on ``_update_count``) what ``update_cell`` does, then marks only the rows'
        regions dirty, as DataTable itself does when the cursor moves (``refresh_row``).
        """
        if not changes:
            return
        for key, values in changes.items():
            data = self._data[RowKey(key)]
            for column, value in values.items():
                data[ColumnKey(column)] = value
        self._update_count += 1
        for key in changes:
            index = self._row_locations.get(RowKey(key))
            if index is not None:
                self.refresh_row(index)

    def apply(self, rows: Sequence[tuple[str, tuple[Cell, ...]]]) -> int:
        """Show exactly `rows` (key, cells) in this order; returns how many cells changed.

        A changed row on screen repaints its own lines only; one that is off screen is not
        updated now: it waits (``pending``) until it scrolls into view. Rows that arrive or leave
        are applied at once (they move the others: the whole table repaints).
        """
        wanted = dict(rows)
        changed = 0
        selected = self.selected_key
        with self.app.batch_update():
            for key in [k for k in self._cells if k not in wanted]:
                self.remove_row(key)
                del self._cells[key]
                self._pending.pop(key, None)
                changed += 1
            appended = False
            for key, cells in rows:
                if key not in self._cells:
                    texts = (self._text(k, c) for k, c in zip(self._keys, cells, strict=True))
                    self.add_row(*texts, key=key, height=self.row_height)
                    self._cells[key] = cells
                    appended = True
                    changed += len(cells)
            order = [key for key, _cells in rows]
            if appended and self._current_order() != order:
                position = {key: i for i, key in enumerate(order)}
                self._sort_by(position)
                if selected is not None and selected in position:
                    self.move_cursor(row=self.get_row_index(selected), animate=False)
            self._order = order
            visible = self.visible_rows()
            updates: dict[str, dict[str, Text]] = {}
            for index, (key, cells) in enumerate(rows):
                if self._cells[key] == cells:
                    self._pending.pop(key, None)
                elif index in visible or self.defer is False:
                    self._pending.pop(key, None)
                    if values := self._changed_cells(key, cells):
                        updates[key] = values
                        changed += len(values)
                else:
                    self._pending[key] = cells
            self.update_rows(updates)
        self.last_changes = changed
        return changed

    # Rendering: DataTable keys every render cache on one global update counter, so changing one
    # cell re-renders every visible cell (~250 at 120×40, tens of ms on a small machine). Cells
    # are immutable Text objects here (a change replaces the object), so a cell's rendering is
    # reused while the same object sits in the same place with the same width and style.
    _CELL_CACHE_MAX = 20_000

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> Lines:
        try:
            if row_index < 0 or column_index < 0:
                raise LookupError
            row_key = self._row_locations.get_key(row_index)
            column_key = self._column_locations.get_key(column_index)
            if row_key is None or column_key is None:
                raise LookupError
            value = self._data[row_key][column_key]
        except (LookupError, AttributeError, TypeError):
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (
            row_key,
            column_key,
            id(value),
            width,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        hit = self._cell_cache.get(key)
        if hit is not None and hit[0] is value:
            return hit[1]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        if len(self._cell_cache) >= self._CELL_CACHE_MAX:
            self._cell_cache.clear()
        self._cell_cache[key] = (value, lines)
        return lines

    def _render_line_in_row(
        self,
        row_key: RowKey,
        line_no: int,
        base_style: Style,
        cursor_location: Coordinate,
        hover_location: Coordinate,
    ) -> tuple[Lines, Lines]:
        # Same idea one level up: a body row is re-assembled only when one of its cells, its
        # position, its cursor/hover state or the column widths changed.
        try:
            if self.cursor_type != "row" or row_key is self._header_row_key:
                raise LookupError
            row_index = self._row_locations.get(row_key)
            values = tuple(self._data[row_key].values())
            widths = tuple(c.get_render_width(self) for c in self.ordered_columns)
        except (LookupError, AttributeError, TypeError):
            return super()._render_line_in_row(
                row_key, line_no, base_style, cursor_location, hover_location
            )
        key = (
            row_key,
            row_index,
            line_no,
            base_style,
            cursor_location.row == row_index,
            hover_location.row == row_index,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
            widths,
            self.size.width,
        )
        hit = self._row_cache.get(key)
        if hit is not None and len(hit[0]) == len(values):
            if all(a is b for a, b in zip(hit[0], values, strict=True)):
                return hit[1]
        pair = super()._render_line_in_row(
            row_key, line_no, base_style, cursor_location, hover_location
        )
        if len(self._row_cache) >= self._CELL_CACHE_MAX:
            self._row_cache.clear()
        self._row_cache[key] = (values, pair)
        return pair

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._cell_cache.clear()
        self._row_cache.clear()

    def notify_style_update(self) -> None:
        self._cell_cache.clear()
        self._row_cache.clear()
        super().notify_style_update()

    def flash(self, key: str, seconds: float = 1.2) -> None:
        """Show a row in reverse video for a moment (a party just turned late), then as it is."""
        cells = self._cells.get(key)
        if cells is None:
            return
        reversed_cells = {
            self._keys[col]: Text(
                text, style=f"reverse {tone_style(tone, ansi=self.ansi)}".strip(), no_wrap=True
            )
            for col, (text, tone) in enumerate(cells)
        }
        self.update_row_cells(key, reversed_cells)
        self.set_timer(seconds, lambda: self._restore(key))

    def _restore(self, key: str) -> None:
        cells = self._cells.get(key)
        if cells is not None:
            self.update_row_cells(
                key, {k: self._text(k, c) for k, c in zip(self._keys, cells, strict=True)}
            )

    @property
    def pending(self) -> int:
        """Changed rows waiting off screen."""
        return len(self._pending)

    def _current_order(self) -> list[str]:
        # Every row is added with a key (never None).
        return [row.key.value for row in self.ordered_rows if row.key.value is not None]

    def _sort_by(self, position: dict[str, int]) -> None:
        # DataTable.sort hands the key function cell values only; the first column (pager number,
        # unique among active sessions) identifies the row.
        number_to_key = {self._cells[k][0][0]: k for k in position}

        def key(number_cell: Text) -> int:
            return position.get(number_to_key.get(number_cell.plain, ""), len(position))

        self.sort(self._keys[0], key=key)

    def select_key(self, key: str) -> bool:
        try:
            index = self.get_row_index(RowKey(key))
        except Exception:
            return False
        self.move_cursor(row=index, animate=False)
        return True


class PartyTable(DiffTable):
    """The staff board's table: :data:`tui.render.cells.COLUMNS` as :func:`table_columns` fits them
    to the width (rows take cells in ``COLUMNS`` order; a column left out is not shown); in the
    touch layout two lines a row, the label wrapping onto the second."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("home", "first_row", "First", show=False),
        Binding("end", "last_row", "Last", show=False),
    ]

    def action_first_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=0, animate=False)

    def action_last_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def __init__(
        self, *, ansi: bool = False, width: int = 80, touch: bool = False, **kwargs: Any
    ) -> None:
        self.touch = touch
        self._full: dict[str, tuple[Cell, ...]] = {}  # the rows as given, every column
        columns = table_columns(width, touch=touch)
        super().__init__(columns, ansi=ansi, row_height=ROW_LINES[0] if touch else 1, **kwargs)
        self.wrap_columns(["label", "state"])
        self._columns = columns
        self._pick = _picks(columns)

    def fit(self, width: int) -> bool:
        """Columns for a new width (a tablet turned); rows are re-added, the cursor stays on its
        party. True when the columns changed."""
        columns = table_columns(width, touch=self.touch)
        if columns == self._columns:
            return False
        rows = [(k, self._full[k]) for k in self._order if k in self._full]
        selected = self.selected_key
        self.clear(columns=True)
        self._cells.clear()
        self._pending.clear()
        self._order = []
        self._columns = columns
        self._pick = _picks(columns)
        self._add_columns(columns)
        self.apply(rows)
        if selected is not None:
            self.select_key(selected)
        return True

    def apply(self, rows: Sequence[tuple[str, tuple[Cell, ...]]]) -> int:
        """Rows of cells in :data:`COLUMNS` order; shows the columns this width keeps."""
        self._full = dict(rows)
        pick = self._pick
        changed = super().apply([(key, tuple(cells[i] for i in pick)) for key, cells in rows])
        if self.touch:
            self.fit_rows()
        return changed

    def on_resize(self) -> None:
        if self.touch:
            self.fit_rows()

    def fit_rows(self) -> None:
        """Touch: rows as tall as the table's height allows for the parties on it (2 or 3 lines)."""
        lines = row_lines(len(self._order), self.size.height - self.header_height)
        if lines == self.row_height:
            return
        self.row_height = lines
        for row in self.rows.values():
            row.height = lines
        # What DataTable does when rows come or go: its line offsets, caches and size follow.
        self._update_count += 1
        self._require_update_dimensions = True
        self._clear_caches()
        self.refresh(layout=True)


ROW_LINES = (2, 3)  # a touch row's lines: at least a finger's height, at most what reads as one row


def row_lines(rows: int, lines: int) -> int:
    """Lines a touch row gets: the table's `lines` shared among its `rows`, within ROW_LINES."""
    low, high = ROW_LINES
    return max(low, min(high, lines // max(1, rows)))


def _picks(columns: Sequence[tuple[str, str, int]]) -> tuple[int, ...]:
    """Where each shown column's cell sits in a :data:`COLUMNS` row."""
    order = [key for key, _t, _w in COLUMNS]
    return tuple(order.index(key) for key, _t, _w in columns)
