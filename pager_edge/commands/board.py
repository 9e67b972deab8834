"""`pager-edge board [--config PATH] [--db PATH] [--kiosk] [--layout L]`: the wait-board in this
terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from agent.config import load_config, with_overrides
from pager_edge.commands import config_option, db_option
from tui.run import run_board_async


@click.command("board")
@config_option()
@db_option()
@click.option("--kiosk", is_flag=True, help="read-only guest screen: pager numbers, never names")
@click.option(
    "--ascii/--no-ascii",
    "ascii_",
    default=None,
    help="ASCII markers and 16 colours (default: on for the Linux console, TERM=linux)",
)
@click.option(
    "--layout",
    type=click.Choice(["auto", "touch", "compact"]),
    default=None,
    help="touch: finger-sized rows and an action bar; compact: one line a party "
    "(default: [board] layout)",
)
def board_cmd(
    config_path: str | None,
    db_path: str | None,
    kiosk: bool,
    ascii_: bool | None,
    layout: str | None,
) -> None:
    """The wait-board (staff) or, with --kiosk, the guest-facing screen."""
    cfg = with_overrides(
        load_config(config_path), store={"path": db_path}, board={"layout": layout}
    )
    db = Path(cfg.store.path)
    if not kiosk and not db.exists():
        raise click.ClickException(
            f"{db}: no database yet. Start the agent first (pager-edge run), "
            "or point to its database with --db PATH or [store] path in --config."
        )
    asyncio.run(run_board_async(cfg, db, kiosk=kiosk, ascii=ascii_))
