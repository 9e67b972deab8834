"""`pager-edge demo`: simulator + agent + wait-board in one command (see :mod:`pager_edge.demo`)."""

from __future__ import annotations

import asyncio
import random
import shutil
import sys
import tempfile
from pathlib import Path

import click

from agent.logs import setup_logging
from pager_edge.demo import run_demo


@click.command("demo")
@click.option("--headless", is_flag=True, help="no screen: print progress and a summary")
@click.option("--duration", type=float, help="stop after this many seconds")
@click.option("--flow", type=click.Choice(["steady", "rush"]), default="steady", show_default=True)
@click.option(
    "--speed", type=float, default=1.0, show_default=True,
    help="guest-flow time-lapse (1: parties arrive in real time, at a plausible rate)",
)  # fmt: skip
@click.option("--seed", type=int, help="random seed (default: random)")
@click.option("--drop-rate", type=float, default=0.0, help="fraction of notifications to drop")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="keep the database here")
@click.option(
    "--kiosk", is_flag=True, help="show the guest-facing kiosk instead of the staff board"
)
@click.option(
    "--web", is_flag=True,
    help="serve the demo board to a browser (prints the address and a made-up PIN)",
)  # fmt: skip
@click.option(
    "--ascii/--no-ascii", "ascii_", default=None,
    help="ASCII markers and 16 colours everywhere, the footer included",
)  # fmt: skip
def demo_cmd(
    headless: bool,
    duration: float | None,
    flow: str,
    speed: float,
    seed: int | None,
    drop_rate: float,
    db_path: str | None,
    kiosk: bool,
    web: bool,
    ascii_: bool | None,
) -> None:
    """Simulator + agent + wait-board in one command: no hardware, no configuration."""
    if headless and duration is None:
        duration = 60.0
    tmpdir = None
    if db_path:
        db = Path(db_path)
    else:
        tmpdir = Path(tempfile.mkdtemp(prefix="pager-edge-demo-"))
        db = tmpdir / "demo.db"
    if headless or web:
        setup_logging("WARNING")
    else:
        # The screen belongs to the board; logs go to a file next to the database.
        setup_logging("INFO", stream=open(db.with_suffix(".log"), "a", encoding="utf-8"))
    seed = seed if seed is not None else random.randrange(1 << 30)
    try:
        ok = asyncio.run(
            run_demo(
                headless=headless,
                duration=duration,
                flow=flow,
                speed=speed,
                seed=seed,
                drop_rate=drop_rate,
                db=db,
                kiosk=kiosk,
                web=web,
                ascii=ascii_,
            )
        )
    except KeyboardInterrupt:
        ok = True
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    if not ok:
        sys.exit(1)
