"""Block-glyph digits for the kiosk, readable across a waiting area."""

from __future__ import annotations

# 3×5 pixel font.
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


def big_number(text: str, mode: str = "half") -> list[str]:
    """Render digits as blocks: ``half`` (3 rows, half blocks), ``full`` (5 rows, 2 columns a
    pixel) or ``ascii`` (5 rows of ``#``, for consoles without block glyphs)."""
    glyphs = [_FONT.get(ch, _FONT[" "]) for ch in text]
    rows = [" ".join(g[r] for g in glyphs) for r in range(5)]
    if mode == "ascii":
        return [r.replace(".", " ") for r in rows]
    if mode == "full":
        return ["".join("██" if c == "#" else "  " for c in r) for r in rows]
    pixels = [[c == "#" for c in r] for r in rows] + [[False] * len(rows[0])]
    return [
        "".join(_HALF[(top, bottom)] for top, bottom in zip(pixels[i], pixels[i + 1], strict=True))
        for i in (0, 2, 4)
    ]
