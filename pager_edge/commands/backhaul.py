"""``pager-edge backhaul --once [--json]``: one reading of the backhaul SIM, for a person or a script.

The continuous poller runs inside ``pager-edge run``; this command is what an operator runs when the
board says something odd about the link. It asks the operator API directly (session and usage,
a handful of spaced calls) and exits non-zero when the reading carries an error.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime

import click

from agent.backhaul.monitor import printable_json, read_once, summary
from agent.config import load_config
from agent.logs import setup_logging
from pager_edge.commands import config_option


@click.command("backhaul")
@click.option("--once", is_flag=True, help="read the operator API now and print the reading")
@click.option("--json", "as_json", is_flag=True, help="one JSON object, for scripts")
@config_option()
@click.pass_context
def backhaul_cmd(ctx: click.Context, once: bool, as_json: bool, config_path: str | None) -> None:
    """Read the backhaul SIM's state and usage from the operator API (Control Center/ThingSpace)."""
    if not once:
        raise click.UsageError(
            "use --once to read the operator API now (add --json for scripts); the continuous "
            "poller runs inside `pager-edge run` when [backhaul] enabled = true"
        )
    cfg = load_config(config_path)
    if not logging.getLogger().handlers:
        setup_logging("WARNING")  # redacting handler; without it warnings would print raw
    reading = asyncio.run(read_once(cfg))
    if as_json:
        click.echo(json.dumps(printable_json(reading), ensure_ascii=False))
    else:
        click.echo(summary(reading, datetime.now(UTC)))
    if reading.error:
        ctx.exit(1)
