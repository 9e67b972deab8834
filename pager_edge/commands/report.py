"""`pager-edge report` and `pager-edge backup`: the night's figures, and a copy of the record."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import date, datetime

import click

from agent.config import load_config
from pager_edge.commands import config_option, db_option, open_readonly, raw_option


@click.command("report")
@click.option(
    "--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="local date (default: today)"
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "csv", "json"]), default="text",
    show_default=True,
)  # fmt: skip
@raw_option()
@config_option()
@db_option("database file to read")
def report_cmd(
    day: datetime | None, fmt: str, raw: bool, config_path: str | None, db_path: str | None
) -> None:
    """One day's figures (the board's report screen): parties, seated, walk-aways, lost, quoted
    vs actual wait, on-time share, wait by hour and by party size."""
    from agent.clock import SYSTEM_CLOCK
    from agent.export import report_csv
    from agent.report import report_of_day, service_day, summary_text

    cfg = load_config(config_path)
    zone = cfg.transmitter_zone()
    the_day: date = day.date() if day else service_day(SYSTEM_CLOCK.now(), zone)
    store = open_readonly(db_path or cfg.store.path)
    try:
        report = report_of_day(store, the_day, zone)
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(asdict(report), default=str, indent=2))
    elif fmt == "csv":
        report_csv(report, sys.stdout, raw=raw)  # the board's export writes the same
    else:
        click.echo(f"Report · {the_day:%A %d %B %Y}")
        click.echo(summary_text(report))
        for title, groups, unit in (
            ("by hour of arrival", report.by_hour, "h"),
            ("by party size", report.by_size, " guests"),
        ):
            if groups:
                click.echo(f"{title}:")
                for g in groups:
                    wait = "—" if g.mean_wait is None else f"{g.mean_wait / 60:.0f} min"
                    click.echo(f"  {g.key:>2}{unit:<7} {g.parties:>3} parties, avg wait {wait}")


@click.command("backup")
@click.argument("target", type=click.Path())
@config_option()
@db_option("database file to copy")
def backup_cmd(target: str, config_path: str | None, db_path: str | None) -> None:
    """A consistent copy of the agent's database, safe while the agent runs (SQLite's online
    backup). TARGET is a file, or a directory to put a time-stamped copy in."""
    from agent.store import backup

    source = db_path or load_config(config_path).store.path
    size = backup(source, target)
    click.echo(f"backed up {source} to {target} ({size / 1e6:.1f} MB)")
