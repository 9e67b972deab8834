"""The wait-board delivered to browsers: `pager-edge web` (see :mod:`tui.web.server`).

Embedding (the demo does this), in a running event loop::

    from tui.web import WebBoard, make_pin

    pin = make_pin()
    async with WebBoard(cfg, pin) as web:       # cfg may be built in memory
        print(f"{web.url}/  PIN {pin}")
        await stopped.wait()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.web.gate import make_pin
    from tui.web.server import WebBoard

__all__ = ["WebBoard", "make_pin"]


def __getattr__(name: str) -> Any:
    # Imported on first use: a board process (`python -m tui.web.tablet`, one per tablet) goes
    # through this package and must not load the server's aiohttp, jinja2 and textual-serve.
    if name == "WebBoard":
        from tui.web.server import WebBoard

        return WebBoard
    if name == "make_pin":
        from tui.web.gate import make_pin

        return make_pin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
