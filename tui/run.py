"""The wait-board in this process's terminal, as `pager-edge board` runs it.

Staff mode creates the process's single aiocoap context for its actions and shuts it down at exit;
the kiosk is read-only (no CoAP at all) and starts even before the agent's database exists.
"""

from __future__ import annotations

from pathlib import Path

from agent.config import Config


async def run_board_async(
    cfg: Config, db: Path, *, kiosk: bool = False, ascii: bool | None = None
) -> None:
    """Run the board until the host quits; owns the CoAP context in staff mode."""
    from tui.app import BoardApp

    if kiosk:
        await BoardApp(db, kiosk=True, config=cfg, ascii=ascii, ansi=ascii).run_async()
        return
    from agent.controller.client import connected

    async with connected(cfg) as client:
        await BoardApp(db, client=client, config=cfg, ascii=ascii, ansi=ascii).run_async()
