"""The live table of active parties: a DataTable updated by diffing, never by clear()."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from tui.data import COLUMNS, Cell, tone_style

LABEL_WIDE = 28  # label column width when the terminal is wide (≥ 110 columns)


def cell_text(cell: Cell, *, ansi: bool) -> Text:
    text, tone = cell
    return Text(text, style=tone_style(tone, ansi=ansi), no_wrap=True, overflow="ellipsis")


class DiffTable(DataTable):
    """A DataTable that takes whole rows of ``(text, tone)`` cells and applies only the difference.

    Rows leave with ``remove_row``, changed cells get ``update_cell``, new rows ``add_row(key=...)``;
    the order is restored with ``sort`` only when it is wrong, and the cursor stays on the row it
    was on (by key). Everything happens inside ``app.batch_update()``: one repaint per apply.
    """

    def __init__(
        self, columns: Sequence[tuple[str, str, int | None]], *, ansi: bool = False, **kwargs
    ):
        super().__init__(cursor_type="row", **kwargs)
        self.ansi = ansi
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._order: list[str] = []
        self.last_changes = 0  # cells touched by the last apply (0: nothing repainted)
        self._keys = [key for key, _title, _width in columns]
        for key, title, width in columns:
            self.add_column(title, key=key, width=width)

    @property
    def row_keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._order)

    def cells_of(self, key: str) -> tuple[Cell, ...] | None:
        return self._cells.get(key)

    @property
    def selected_key(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        try:
            row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return row_key.value

    def apply(self, rows: Sequence[tuple[str, tuple[Cell, ...]]]) -> int:
        """Show exactly `rows` (key, cells) in this order; returns how many cells changed."""
        wanted = dict(rows)
        changed = 0
        selected = self.selected_key
        with self.app.batch_update():
            for key in [k for k in self._cells if k not in wanted]:
                self.remove_row(key)
                del self._cells[key]
                changed += 1
            appended = False
            for key, cells in rows:
                old = self._cells.get(key)
                if old is None:
                    self.add_row(*(cell_text(c, ansi=self.ansi) for c in cells), key=key)
                    appended = True
                    changed += len(cells)
                elif old != cells:
                    for col, (before, after) in enumerate(zip(old, cells, strict=True)):
                        if before != after:
                            self.update_cell(key, self._keys[col], cell_text(after, ansi=self.ansi))
                            changed += 1
                else:
                    continue
                self._cells[key] = cells
            order = [key for key, _cells in rows]
            if appended and self._current_order() != order:
                position = {key: i for i, key in enumerate(order)}
                self._sort_by(position)
                if selected is not None and selected in position:
                    self.move_cursor(row=self.get_row_index(selected), animate=False)
            self._order = order
        self.last_changes = changed
        return changed

    def _current_order(self) -> list[str]:
        return [row.key.value for row in self.ordered_rows]

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
    """The staff board's table: :data:`tui.data.COLUMNS`; the label column widens on wide screens."""

    def __init__(self, *, ansi: bool = False, wide: bool = False, **kwargs):
        columns = [
            (key, title, (LABEL_WIDE if wide and key == "label" else width))
            for key, title, width in COLUMNS
        ]
        super().__init__(columns, ansi=ansi, **kwargs)
