"""`pager-edge board [--config PATH] [--db PATH] [--kiosk]`: the wait-board in this terminal.

Staff mode creates the process's single aiocoap context for its actions and shuts it down at exit;
the kiosk is read-only (no CoAP at all) and starts even before the agent's database exists.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from agent.config import Config, load_config, with_overrides


def resolve(config_path: str | None, db_path: str | None) -> tuple[Config, Path]:
    """The configuration (ConfigError names file and key) and the database path to read."""
    cfg = load_config(config_path)
    cfg = with_overrides(cfg, store={"path": db_path})
    return cfg, Path(cfg.store.path)


async def run_board_async(
    cfg: Config, db: Path, *, kiosk: bool = False, ascii: bool | None = None
) -> None:
    """Run the board until the host quits; owns the CoAP context in staff mode."""
    from tui.app import BoardApp

    context = None
    client = None
    if not kiosk:
        from agent.controller.client import ControllerClient, create_context

        c = cfg.controller
        context = await create_context(c.transport)
        client = ControllerClient(
            context,
            c.host,
            c.port,
            timeout=c.request_timeout,
            page_mode=c.page_mode,
        )
    try:
        app = BoardApp(db, client=client, kiosk=kiosk, config=cfg, ascii=ascii, ansi=ascii)
        await app.run_async()
    finally:
        if context is not None:
            await context.shutdown()


@click.command("board")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.toml to use")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="override [store] path")
@click.option("--kiosk", is_flag=True, help="read-only guest screen: pager numbers, never names")
@click.option(
    "--ascii/--no-ascii",
    "ascii_",
    default=None,
    help="ASCII markers and 16 colours (default: on for the Linux console, TERM=linux)",
)
def board_cmd(
    config_path: str | None, db_path: str | None, kiosk: bool, ascii_: bool | None
) -> None:
    """The wait-board (staff) or, with --kiosk, the guest-facing screen."""
    cfg, db = resolve(config_path, db_path)
    if not kiosk and not db.exists():
        raise click.ClickException(
            f"{db}: no database yet. Start the agent first (pager-edge run), "
            "or point to its database with --db PATH or [store] path in --config."
        )
    asyncio.run(run_board_async(cfg, db, kiosk=kiosk, ascii=ascii_))
