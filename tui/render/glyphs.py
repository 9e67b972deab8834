"""Block-glyph digits for the kiosk, scaled to the space they are given: readable across a lobby.

A digit is a 3×5 pixel font. A pixel is `scale` columns wide and `scale` half-rows tall (half
blocks: a terminal cell is about twice as tall as it is wide, so such a pixel is nearly square),
or, on consoles without block glyphs, `scale` rows tall and 2×`scale` columns of ``#``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FONT_WIDTH, FONT_HEIGHT = 3, 5
_FONT: dict[str, tuple[str, ...]] = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", ".##", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", "..#", "..#", "..#"),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
    " ": ("...", "...", "...", "...", "..."),
}
_HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def pixel_width(scale: int, *, ascii: bool = False) -> int:
    """Columns one font pixel takes."""
    return 2 * scale if ascii else scale


def glyph_rows(scale: int, *, ascii: bool = False) -> int:
    """Rows a line of digits takes at `scale`."""
    return FONT_HEIGHT * scale if ascii else -(-FONT_HEIGHT * scale // 2)


def number_width(text: str, scale: int, *, ascii: bool = False) -> int:
    """Columns `text` takes: its digits with one pixel between them."""
    return pixel_width(scale, ascii=ascii) * (len(text) * (FONT_WIDTH + 1) - 1) if text else 0


def big_number(text: str, scale: int = 1, *, ascii: bool = False) -> list[str]:
    """`text`'s digits as `glyph_rows(scale)` lines of equal width."""
    glyphs = [_FONT.get(ch, _FONT[" "]) for ch in text]
    pixels = [[c == "#" for c in ".".join(g[r] for g in glyphs)] for r in range(FONT_HEIGHT)]
    wide = pixel_width(scale, ascii=ascii)
    if ascii:
        lines = ["".join(("#" if on else " ") * wide for on in row) for row in pixels]
        return [line for line in lines for _ in range(scale)]
    # Each font row becomes `scale` half-rows; pairs of half-rows make one line of text.
    halves = [row for row in pixels for _ in range(scale)]
    if len(halves) % 2:
        halves.append([False] * len(pixels[0]))
    return [
        "".join(_HALF[(top, bottom)] * wide for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(halves[::2], halves[1::2], strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Fit:
    """Numbers laid out in a box: the scale, the lines of numbers, how many did not fit."""

    scale: int
    lines: tuple[tuple[int, ...], ...]
    left_out: int = 0

    def rows(self, *, ascii: bool = False) -> int:
        """Rows the layout takes: each line of glyphs, a blank row between lines."""
        n = len(self.lines)
        return n * glyph_rows(self.scale, ascii=ascii) + max(0, n - 1)


def gap(scale: int, *, ascii: bool = False) -> int:
    """Columns between two numbers on a line: two pixels, at least four columns."""
    return max(4, 2 * pixel_width(scale, ascii=ascii))


def wrap(numbers: Sequence[int], width: int, scale: int, *, ascii: bool = False) -> list[list[int]]:
    """`numbers` in lines no wider than `width` at `scale` (a number wider than `width` on its
    own: an empty list, since it cannot be drawn at this scale)."""
    lines: list[list[int]] = []
    used = 0
    space = gap(scale, ascii=ascii)
    for n in numbers:
        w = number_width(str(n), scale, ascii=ascii)
        if w > width:
            return []
        if lines and used + space + w <= width:
            lines[-1].append(n)
            used += space + w
        else:
            lines.append([n])
            used = w
    return lines


def fit(
    numbers: Sequence[int],
    width: int,
    height: int,
    *,
    ascii: bool = False,
    max_scale: int = 12,
) -> Fit | None:
    """The largest scale at which all `numbers` fit in `width`×`height` cells, or None when they
    do not fit even at scale 1 (the caller then shows fewer, or plain text)."""
    for scale in range(max_scale, 0, -1):
        lines = wrap(numbers, width, scale, ascii=ascii)
        if not lines and numbers:
            continue
        layout = Fit(scale, tuple(tuple(line) for line in lines))
        if layout.rows(ascii=ascii) <= height:
            return layout
    return None


def fit_some(numbers: Sequence[int], width: int, height: int, *, ascii: bool = False) -> Fit:
    """As many of `numbers` as fit at scale 1, in order, the rest counted in `left_out` (one row
    kept for the "+N more" line)."""
    for keep in range(len(numbers) - 1, -1, -1):
        layout = fit(numbers[:keep], width, max(0, height - 1), ascii=ascii, max_scale=1)
        if layout is not None:
            return Fit(1, layout.lines, len(numbers) - keep)
    return Fit(1, (), len(numbers))


def draw(layout: Fit, *, ascii: bool = False) -> list[str]:
    """The lines of text for a layout (blank rows between lines of numbers)."""
    out: list[str] = []
    space = " " * gap(layout.scale, ascii=ascii)
    for i, line in enumerate(layout.lines):
        if i:
            out.append("")
        glyphs = [big_number(str(n), layout.scale, ascii=ascii) for n in line]
        out += [space.join(parts) for parts in zip(*glyphs, strict=True)]
    if layout.left_out:
        out.append(f"+{layout.left_out} more")
    return out
