"""Header lines, the stale-data banner and the kiosk's big numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Static

from tui.render.glyphs import big_number
from tui.render.header import Banner
from tui.render.theme import Cell, tone_style

#: The text each Static was last given through :func:`set_text`.
_shown_text: WeakKeyDictionary[Static, str] = WeakKeyDictionary()


def set_text(widget: Static, text: str, *, layout: bool = False) -> None:
    """Update a Static only when its text changed; no layout pass unless asked (a layout of the
    whole screen costs far more than repainting one line)."""
    if _shown_text.get(widget) == text:
        return
    _shown_text[widget] = text
    widget.update(Text(text), layout=layout)  # plain text: nothing here is markup


def segments_text(segments: Sequence[Cell], *, ansi: bool = False) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for part, tone in segments:
        text.append(part, style=tone_style(tone, ansi=ansi) or None)
    return text


class Line(Static):
    """One line of ``(text, tone)`` segments; hides itself when empty."""

    def __init__(self, *, ansi: bool = False, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self.ansi = ansi
        self._segments: tuple[Cell, ...] = ()
        self.display = False

    def show(self, segments: Sequence[Cell]) -> None:
        segments = tuple(segments)
        if segments == self._segments:
            return  # repaint only when a visible value changes
        self._segments = segments
        relayout = self.display != bool(segments)
        self.display = bool(segments)
        self.update(segments_text(segments, ansi=self.ansi), layout=relayout)


class BannerLine(Static):
    """A full-width warning: the agent stopped writing, or there is no database yet."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self._current: Banner | None = None
        self.display = False

    def show(self, banner: Banner | None) -> None:
        if banner == self._current:
            return
        self._current = banner
        self.display = banner is not None
        self.set_class(banner is not None and banner.kind == "offline", "-offline")
        self.set_class(banner is not None and banner.kind in ("missing", "hint"), "-missing")
        if banner is not None:
            self.update(Text(banner.text, no_wrap=False))

    @property
    def text(self) -> str:
        return self._current.text if self._current else ""


class BigNumbers(Widget):
    """Pager numbers in block glyphs, wrapped to the width; "+N more" when they do not fit."""

    DEFAULT_CSS = "BigNumbers { height: auto; }"

    def __init__(self, *, mode: str = "half", style: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode
        self.number_style = style
        self.max_lines: int | None = None
        self._numbers: tuple[int, ...] = ()

    def show(self, numbers: Sequence[int]) -> None:
        numbers = tuple(numbers)
        if numbers != self._numbers:
            self._numbers = numbers
            self.refresh(layout=True)

    @property
    def numbers(self) -> tuple[int, ...]:
        return self._numbers

    def _lines(self, width: int) -> list[str]:
        gap = " " * (6 if self.mode == "full" else 4)
        glyph_rows = 5 if self.mode in ("full", "ascii") else 3
        out: list[str] = []
        row: list[list[str]] = []
        used = 0
        shown = 0
        for n in self._numbers:
            glyph = big_number(str(n), self.mode)
            w = len(glyph[0])
            if row and used + len(gap) + w > width:
                if self.max_lines is not None and len(out) + 2 * glyph_rows + 1 > self.max_lines:
                    break
                out += [gap.join(parts) for parts in zip(*row, strict=True)] + [""]
                row, used = [], 0
            row.append(glyph)
            used += w + (len(gap) if used else 0)
            shown += 1
        if row:
            out += [gap.join(parts) for parts in zip(*row, strict=True)]
        if shown < len(self._numbers):
            out.append(f"+{len(self._numbers) - shown} more")
        return out

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self._lines(width)))

    def render(self) -> Text:
        lines = self._lines(self.size.width or 80)
        return Text("\n".join(lines) if lines else "", style=self.number_style, no_wrap=True)
