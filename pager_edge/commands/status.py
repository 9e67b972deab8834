"""`pager-edge status`: the agent's health for people and (``--json``) for scripts."""

from __future__ import annotations

import json

import click

from agent.config import load_config
from agent.status import collect_status, format_status
from pager_edge.commands import config_option, db_option, open_readonly


@click.command("status")
@config_option()
@db_option("database file to read")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status_cmd(config_path: str | None, db_path: str | None, as_json: bool) -> None:
    """Transmitter health, counters and session figures from the agent's store."""
    cfg = load_config(config_path)
    store = open_readonly(db_path or cfg.store.path)
    try:
        s = collect_status(store, config=cfg)
    finally:
        store.close()
    click.echo(json.dumps(s, indent=2) if as_json else format_status(s))
