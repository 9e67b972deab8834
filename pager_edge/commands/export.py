"""`pager-edge export`: the recorded history on stdout (record shapes in :mod:`agent.export`)."""

from __future__ import annotations

import sys

import click

from agent.config import load_config
from agent.export import (
    EVENT_FIELDS,
    SESSION_FIELDS,
    event_records,
    session_records,
    write_records,
)
from pager_edge.commands import config_option, db_option, open_readonly


@click.command("export")
@config_option()
@db_option("database file to read")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option(
    "--events", is_flag=True, help="one record per lifecycle event instead of per session"
)
@click.option(
    "--raw",
    is_flag=True,
    help="CSV: write text cells unchanged (by default a cell starting with = + - @ tab or CR "
    "gets a leading ' so a spreadsheet does not run it as a formula)",
)
def export_cmd(
    config_path: str | None, db_path: str | None, fmt: str, events: bool, raw: bool
) -> None:
    """Export the recorded history (read-only; safe while the agent runs)."""
    store = open_readonly(db_path or load_config(config_path).store.path)
    try:
        if events:
            write_records(event_records(store), EVENT_FIELDS, fmt, sys.stdout, raw=raw)
        else:
            write_records(session_records(store), SESSION_FIELDS, fmt, sys.stdout, raw=raw)
    finally:
        store.close()
