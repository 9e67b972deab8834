"""`pager-edge web [--config PATH]`: the staff board for tablets on the LAN, the kiosk at /kiosk.

The sign-in PIN comes from ``PAGER_EDGE_WEB_PIN`` (environment or the secrets file) and is removed
from this process's environment before any board process starts, so no child inherits it. Under
systemd (``Type=notify``) READY=1 is sent once the server listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import click

from agent.config import Config, load_config, secret
from agent.logs import setup_logging
from tui.web.gate import PIN_ENV, PinError, check_pin
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


@click.command("web")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="config.toml to use ([web] section); the board processes get the same file",
)
def web_cmd(config_path: str | None) -> None:
    """The staff board in a browser (PIN sign-in), and the guest kiosk at /kiosk."""
    cfg = load_config(config_path)
    setup_logging(cfg.logging.level)
    try:
        pin = site_pin(cfg)
    except PinError as exc:
        click.echo(f"pager-edge web: {exc}", err=True)
        sys.exit(2)
    if not Path(cfg.store.path).exists():
        log.warning(
            "%s does not exist yet: boards open once the agent has created it", cfg.store.path
        )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(cfg, pin, config_path=config_path))
