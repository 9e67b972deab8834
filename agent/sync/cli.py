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
import time
from pathlib import Path

import click

from agent.config import load_config, with_overrides
from agent.display import printable
from agent.logs import setup_logging
from agent.sync.engine import MODES, SyncEngine, SyncResult, SyncSetupError


def _fail(message: str, code: int) -> None:
    click.echo(f"pager-edge sync: {message}", err=True)
    sys.exit(code)


async def run_once(
    engine: SyncEngine, *, retries: int, max_wait: float, wait: float
) -> tuple[SyncResult, dict[str, int]]:
    """sync_once, retried after retryable failures within `max_wait` seconds of backoff."""
    totals = {"events": 0, "batches": 0, "quarantined": 0, "requests": 0, "sent": 0, "received": 0}
    waited = 0.0
    lease_deadline = time.monotonic() + wait
    attempts = 0
    try:
        while True:
            res = await engine.sync_once()
            for k, v in (
                ("events", res.events),
                ("batches", res.batches),
                ("quarantined", res.quarantined),
                ("requests", res.requests),
                ("sent", res.bytes_sent),
                ("received", res.bytes_received),
            ):
                totals[k] += v
            if res.busy_pid is not None:
                if time.monotonic() < lease_deadline:
                    await asyncio.sleep(0.25)
                    continue
                return res, totals
            if res.done or not res.retryable or attempts >= retries:
                return res, totals
            if waited + res.delay > max_wait:
                res.error = f"{res.error} (next retry in {res.delay:.0f} s, beyond --max-wait)"
                return res, totals
            attempts += 1
            waited += res.delay
            await engine.sleep(res.delay)
    finally:
        await engine.aclose()


@click.command("sync")
@click.option("--once", is_flag=True, help="one run: send what is pending, then exit")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="config.toml")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="override [store] path")
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
        raise click.UsageError(
            "use --once (the agent runs the sync continuously when [sync] enabled = true)"
        )
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
            doc = {"done": res.done, "error": res.error, "run": t, "status": sync_status(store)}
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
