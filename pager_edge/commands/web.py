"""`pager-edge web [--config PATH]`: the staff board for tablets on the LAN, the kiosk at /kiosk."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path

import click

from agent.config import load_config
from agent.logs import setup_logging
from pager_edge.commands import config_option
from tui.web.gate import PinError
from tui.web.run import serve, site_pin

log = logging.getLogger(__name__)


@click.command("web")
@config_option("([web] section); the board processes get the same file")
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
