"""The web board as `pager-edge web` serves it: staff board for LAN tablets, the kiosk at /kiosk.

The sign-in PIN comes from ``PAGER_EDGE_WEB_PIN`` (environment or the secrets file) and is removed
from this process's environment before any board process starts, so no child inherits it. Under
systemd (``Type=notify``) READY=1 is sent once the server listens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from agent.config import Config
from agent.secrets import secret
from tui.web.gate import PIN_ENV, check_pin
from tui.web.server import WebBoard

log = logging.getLogger(__name__)


def site_pin(cfg: Config) -> str:
    """The configured PIN (registered for redaction), or :class:`PinError`; never echoes it."""
    pin = check_pin(secret(cfg, PIN_ENV))
    os.environ.pop(PIN_ENV, None)  # board processes inherit the environment: not this
    return pin


async def serve(
    cfg: Config,
    pin: str,
    *,
    config_path: str | Path | None = None,
    ready: Callable[[WebBoard], None] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; `ready(board)` is called once it listens."""
    from agent.sdnotify import Notifier

    notifier = Notifier(unset_environment=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with WebBoard(cfg, pin, config_path=config_path) as board:
            notifier.ready(f"serving {board.url}")
            if ready is not None:
                ready(board)
            await stop.wait()
            notifier.stopping()
            log.info(
                "stopping: ending %d board sessions",
                len(board.staff.sessions) + len(board.kiosk.sessions),
            )
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        notifier.close()
