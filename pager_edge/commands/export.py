"""`pager-edge export`: the recorded history on stdout (record shapes in :mod:`agent.export`)."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from agent.config import load_config
from agent.export import (
    EVENT_FIELDS,
    SESSION_FIELDS,
    Selection,
    event_records,
    session_records,
    write_records,
)
from pager_edge.commands import config_option, db_option, open_readonly, raw_option


@click.command("export")
@config_option()
@db_option("database file to read")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option(
    "--events", is_flag=True, help="one record per lifecycle event instead of per session"
)
@raw_option()
@click.option(
    "--local", "local_times", is_flag=True,
    help="times in [controller] timezone with their UTC offset (default: UTC, …Z)",
)  # fmt: skip
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d"]), help="first local date (YYYY-MM-DD) of `created`"
)
@click.option(
    "--until", type=click.DateTime(["%Y-%m-%d"]), help="last local date (YYYY-MM-DD), inclusive"
)
def export_cmd(
    config_path: str | None,
    db_path: str | None,
    fmt: str,
    events: bool,
    raw: bool,
    local_times: bool,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Export the recorded history (read-only; safe while the agent runs)."""
    cfg = load_config(config_path)
    if since and until and until < since:
        raise click.BadParameter("--until is before --since", param_hint="--until")
    selection = Selection(
        since=since.date() if since else None,
        until=until.date() if until else None,
        zone=cfg.transmitter_zone(),
        local_times=local_times,
    )
    store = open_readonly(db_path or cfg.store.path)
    try:
        if events:
            records = event_records(store, selection)
            write_records(records, EVENT_FIELDS, fmt, sys.stdout, raw=raw)
        else:
            write_records(
                session_records(store, selection), SESSION_FIELDS, fmt, sys.stdout, raw=raw
            )
    finally:
        store.close()
