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
