"""The wait-board delivered to browsers: `pager-edge web` (see :mod:`tui.web.server`).

Embedding (the demo does this), in a running event loop::

    from tui.web import WebBoard, make_pin

    pin = make_pin()
    async with WebBoard(cfg, pin) as web:       # cfg may be built in memory
        print(f"{web.url}/  PIN {pin}")
        await stopped.wait()
"""

from tui.web.gate import make_pin
from tui.web.server import WebBoard

__all__ = ["WebBoard", "make_pin"]
