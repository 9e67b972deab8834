"""Markers and palette: the state is always said in words and markers, never by colour alone.

Cells and segments are ``(text, tone)`` pairs; :func:`tone_style` maps a tone to a colour —
Okabe–Ito in truecolour, an explicit ANSI mapping on a 16-colour console (where orange and
vermillion would both become the same yellow).
"""

from __future__ import annotations

from dataclasses import dataclass

Cell = tuple[str, str]  # (text, tone)
Segments = list[Cell]


@dataclass(frozen=True, slots=True)
class Markers:
    paged: str
    late: str
    waiting: str
    seated: str
    removed: str
    ok: str
    bad: str
    warn: str
    sep: str
    times: str
    dash: str
    pending: str


UNICODE = Markers(
    paged="◆",
    late="▲",
    waiting="○",
    seated="✓",
    removed="✗",
    ok="●",
    bad="✗",
    warn="⚠",
    sep="·",
    times="×",
    dash="—",
    pending="⧗",
)
ASCII = Markers(
    paged="*",
    late="!",
    waiting="-",
    seated="+",
    removed="x",
    ok="o",
    bad="X",
    warn="!!",
    sep="|",
    times="x",
    dash="-",
    pending="~",
)

# tone -> (truecolour style: Okabe–Ito, 16-colour console style).
PALETTE: dict[str, tuple[str, str]] = {
    "late": ("bold #D55E00", "bold bright_red"),  # vermillion
    "soon": ("#E69F00", "yellow"),  # orange
    "paged": ("bold #56B4E9", "bold bright_cyan"),  # sky blue
    "ok": ("#009E73", "green"),  # bluish green
    "removed": ("#CC79A7", "magenta"),  # reddish purple
    "number": ("bold", "bold"),
    "muted": ("dim", "bright_black"),
    "": ("", ""),
}


def tone_style(tone: str, *, ansi: bool = False) -> str:
    return PALETTE.get(tone, ("", ""))[1 if ansi else 0]
