"""`pager-edge sync --once`: upload what is pending now — for timers and diagnostics.

Exit status: 0 when nothing is pending afterwards (quarantined events do not count as pending),
1 when something is (the reason on one line), 2 for a configuration problem (no endpoint, no
token, plain http:// to a remote host, no database). Safe while the agent runs: runs take a lease
in the store, so this waits for the agent's own run to finish (``--wait``) instead of racing it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import NoReturn

import click

from agent.config import load_config, with_overrides
from agent.display import printable
from agent.logs import setup_logging
from agent.sync.engine import SyncEngine, SyncSetupError
from agent.sync.modes import MODES
from agent.sync.once import run_once
from pager_edge.commands import config_option, db_option


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"pager-edge sync: {message}", err=True)
    sys.exit(code)


@click.command("sync")
@click.option("--once", is_flag=True, help="one run: send what is pending, then exit")
@config_option()
@db_option()
@click.option(
    "--mode",
    type=click.Choice(list(MODES)),
    help="budget mode for this run instead of [sync] mode (e.g. normal to flush now)",
)
@click.option("--retries", type=int, default=3, show_default=True, help="after network/5xx/429")
@click.option(
    "--max-wait", type=float, default=120.0, show_default=True, help="seconds of backoff at most"
)
@click.option(
    "--wait", type=float, default=60.0, show_default=True, help="seconds to wait for a running sync"
)
@click.option("--json", "as_json", is_flag=True, help="machine-readable result")
def sync_cmd(
    once: bool,
    config_path: str | None,
    db_path: str | None,
    mode: str | None,
    retries: int,
    max_wait: float,
    wait: float,
    as_json: bool,
) -> None:
    """Upload pending lifecycle history to the cloud ingest endpoint.

    The agent does this by itself when [sync] enabled = true; this command is for systemd timers
    and for diagnostics. Exit 0 when nothing is pending afterwards, 1 otherwise, 2 when the
    configuration is incomplete.
    """
    if not once:
        # Nothing to do without --once (the agent syncs by itself): say what the command is for.
        ctx = click.get_current_context()
        click.echo(ctx.get_help())
        click.echo(
            "\nThe agent syncs continuously when [sync] enabled = true; "
            "`pager-edge sync --once` sends what is pending now."
        )
        return
    cfg = load_config(config_path)
    cfg = with_overrides(cfg, store={"path": db_path})
    setup_logging(cfg.logging.level)
    if not Path(cfg.store.path).is_file():
        _fail(f"no database at {cfg.store.path} (check [store] path or --db)", 2)
    try:
        engine = SyncEngine.from_config(cfg, mode_provider=(lambda: mode) if mode else None)
    except SyncSetupError as exc:
        _fail(str(exc), 2)
    res, t = asyncio.run(run_once(engine, retries=retries, max_wait=max_wait, wait=wait))
    if as_json:
        from agent.store import Store
        from agent.sync.status import sync_status

        store = Store(cfg.store.path, readonly=True)
        try:
            doc = {
                "done": res.done,
                "error": res.error,
                "run": t,
                "status": sync_status(store, backhaul=cfg.backhaul),
            }
        finally:
            store.close()
        click.echo(json.dumps(doc, indent=2))
    else:
        line = (
            f"sync: {t['events']} events in {t['batches']} batches, {t['requests']} requests, "
            f"{t['sent']} B sent, {t['received']} B received"
        )
        if t["quarantined"]:
            line += f", {t['quarantined']} events QUARANTINED"
        click.echo(line + (", nothing pending" if res.done else f", {res.pending} pending"))
    if not res.done:
        # The error may quote the receiver's answer: foreign text, made printable.
        _fail(f"{res.pending} events pending: {printable(res.error) or 'not all sent'}", 1)
