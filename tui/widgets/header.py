"""Header lines, the stale-data banner and the kiosk's big numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

from tui.render import glyphs
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
    """Pager numbers in block glyphs, all of them at the largest scale the widget's region holds
    (its height comes from the screen's CSS: the numbers grow with the screen). When even the
    smallest glyphs do not hold them all: as many as fit and "+N more", or, with `text_fallback`,
    every number as plain text (a waiting list is better complete than big)."""

    DEFAULT_CSS = "BigNumbers { height: 1fr; }"

    def __init__(
        self,
        *,
        style: str = "",
        ascii: bool = False,
        text_fallback: bool = False,
        max_scale: int = 12,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.number_style = style
        self.ascii = ascii
        self.text_fallback = text_fallback
        self.max_scale = max_scale
        self._numbers: tuple[int, ...] = ()
        # The last layout worked out, by (numbers, width, height): a repaint (a clock tick) or
        # `glyph_rows` does not search the scales again.
        self._layout: tuple[tuple[tuple[int, ...], int, int], glyphs.Fit | None] | None = None

    def show(self, numbers: Sequence[int]) -> None:
        numbers = tuple(numbers)
        if numbers != self._numbers:
            self._numbers = numbers
            self.refresh()

    @property
    def numbers(self) -> tuple[int, ...]:
        return self._numbers

    def layout_for(self, width: int, height: int) -> glyphs.Fit | None:
        """How the numbers are drawn in width×height cells (None: as plain text)."""
        key = (self._numbers, width, height)
        if self._layout is not None and self._layout[0] == key:
            return self._layout[1]
        found = glyphs.fit(self._numbers, width, height, ascii=self.ascii, max_scale=self.max_scale)
        if found is None and not self.text_fallback:
            found = glyphs.fit_some(self._numbers, width, height, ascii=self.ascii)
        self._layout = (key, found)
        return found

    @property
    def glyph_rows(self) -> int:
        """Rows one line of digits takes as drawn now (0: none drawn, or drawn as text)."""
        layout = self.layout_for(self.size.width, self.size.height)
        if layout is None or not layout.lines:
            return 0
        return glyphs.glyph_rows(layout.scale, ascii=self.ascii)

    def render(self) -> Text:
        width, height = self.size
        layout = self.layout_for(width, height)
        if layout is None:
            text = "   ".join(f"{n:>3}" for n in self._numbers)
            return Text(text, style=self.number_style)
        lines = glyphs.draw(layout, ascii=self.ascii)
        return Text("\n".join(lines), style=self.number_style, no_wrap=True)
