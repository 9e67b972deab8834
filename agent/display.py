"""Text people read: one sanitizer for what others supplied, and the human formats of numbers.

The transmitter's CoAP API has no authentication: anyone on the restaurant's LAN can create a
session with any label, and operator APIs and error bodies are just as foreign. Such text is shown
on the staff terminal (also through a browser terminal), in `status`, in log lines and in
spreadsheets. :func:`printable` is the one gate on the way to a person:

* C0/C1 control characters never reach a terminal. A whole escape sequence (CSI ``ESC [ … m``,
  OSC ``ESC ] … BEL`` such as a window title, OSC 52 clipboard or OSC 8 hyperlink, DCS/APC/PM/SOS
  strings, and their 8-bit C1 forms) becomes one visible :data:`PLACEHOLDER`; any other control
  character too. Tabs and line breaks (including U+2028/U+2029) become a space, so a label can
  neither forge a log line nor break a table row.
* Bidi embeddings, overrides, isolates and marks are dropped (they reorder what follows them).
* Characters whose display width terminals disagree on are dropped: zero-width joiners and
  spaces, variation selectors, tag characters, soft hyphens. An emoji family becomes its members,
  each two cells wide, the same on every terminal.

The store keeps exactly what the transmitter said; only what is displayed is changed. Rich markup
(``[bold]``) is not this module's business: widgets render labels as ``Text``, never as markup.

:func:`spreadsheet_safe` neutralises CSV cells that a spreadsheet would run as a formula.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

PLACEHOLDER = "\N{REPLACEMENT CHARACTER}"  # one cell wide, visibly "something was here"

_ESC = "\x1b"
# Escape sequences, 7-bit (ESC …) and 8-bit (C1) forms. String sequences (OSC, DCS, SOS, PM, APC)
# run to their terminator (BEL or ST) or, unterminated, to the end of the text.
_SEQUENCE = re.compile(
    r"""
    (?: \x1b\[ | \x9b ) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?        # CSI
  | (?: \x1b[\]PX^_] | [\x90\x98\x9d\x9e\x9f] ) .*? (?: \x07 | \x1b\\ | \x9c | \Z )  # strings
  | \x1b [\x20-\x2f]* [\x30-\x7e]?                                      # other ESC sequences
    """,
    re.VERBOSE | re.DOTALL,
)
_BREAKS = frozenset("\t\n\r\v\f\x85\u2028\u2029")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ZERO_WIDTH = frozenset("\u00ad\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff")


def _unstable_width(ch: str) -> bool:
    """Variation selectors and tag characters: terminals disagree on the width they produce."""
    code = ord(ch)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF or 0xE0000 <= code <= 0xE007F


def _clean_char(ch: str) -> str:
    if ch in _BREAKS:
        return " "
    if ch in _BIDI or ch in _ZERO_WIDTH or _unstable_width(ch):
        return ""
    category = unicodedata.category(ch)
    if category in ("Cc", "Cs", "Cn", "Cf"):
        # controls, lone surrogates (from undecodable bytes), unassigned code points (width
        # unknown), and the remaining format characters (invisible, some of them steering)
        return PLACEHOLDER
    return ch


@lru_cache(maxsize=4096)
def printable(text: str | None) -> str:
    """`text` made safe to show to a person on any terminal, in a log line or in a table cell."""
    if not text:
        return ""
    if text.isascii() and text.isprintable():
        return text  # the common case, unchanged
    text = _SEQUENCE.sub(PLACEHOLDER, text) if (_ESC in text or _has_c1(text)) else text
    return "".join(_clean_char(ch) if not ch.isprintable() or ord(ch) > 0x7E else ch for ch in text)


def _has_c1(text: str) -> bool:
    return any("\x80" <= ch <= "\x9f" for ch in text)


def printable_lines(text: str) -> str:
    """Like :func:`printable` but keeps line breaks (a traceback is several lines by nature)."""
    return "\n".join(printable(line) for line in text.split("\n"))


# --- spreadsheets -----------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell a spreadsheet will not run as a formula (OWASP: prefix such cells with ``'``).

    Only text is changed; numbers stay numbers (a negative number is data, not a formula).
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


# --- numbers for people -----------------------------------------------------------------------


def format_bytes(n: float | None) -> str:
    """``512 B``, ``4.2 kB``, ``1.5 MB``, ``2.0 GB`` (decimal units, as operators bill); ``?``."""
    if n is None or isinstance(n, bool) or not isinstance(n, int | float):
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def minutes(seconds: float | None) -> str:
    """Coarse durations for the table: ``<1m``, ``12m``, ``1h05``."""
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 60:
        return "<1m"
    m = s // 60
    if m < 60:
        return f"{m}m"
    return f"{m // 60}h{m % 60:02d}"
