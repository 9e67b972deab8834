"""The single entry point, `pager-edge`.

Each sub-command is a small module under :mod:`pager_edge.commands` (the benchmarks under
:mod:`bench`, in a development checkout), imported only when invoked, so `pager-edge status` does not pay for
Textual and `pager-edge board` does not pay for httpx. Errors the libraries raise become one line
and an exit status here, once: a configuration mistake 2, an unreadable store 1, Ctrl-C 130.
"""

from __future__ import annotations

import sys

import click

from agent import __version__
from pager_edge.lazy import LazyGroup

# name → (the command, as module:attribute imported only when invoked; its line in --help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "pager_edge.commands.demo:demo_cmd",
        "Simulator + agent + wait-board in one command, no hardware or config.",
    ),
    "run": (
        "pager_edge.commands.run:run_cmd",
        "Run the agent daemon from config.toml.",
    ),
    "board": (
        "pager_edge.commands.board:board_cmd",
        "The wait-board (staff) or, with --kiosk, the guest-facing screen.",
    ),
    "web": (
        "pager_edge.commands.web:web_cmd",
        "The staff board for tablets in a browser (PIN), and the kiosk at /kiosk.",
    ),
    "controller": (
        "pager_edge.commands.controller:controller_group",
        "The transmitter itself: set its clock.",
    ),
    "page": (
        "pager_edge.commands.controller:page_cmd",
        "Page any pager number (staff pager, or find a guest pager).",
    ),
    "report": (
        "pager_edge.commands.report:report_cmd",
        "One day's figures: parties, seated, walk-aways, waits (text, CSV, JSON).",
    ),
    "backup": (
        "pager_edge.commands.report:backup_cmd",
        "A consistent copy of the database, safe while the agent runs.",
    ),
    "simulate": (
        "pager_edge.commands.simulate:simulate_cmd",
        "Run the built-in T7470 simulator alone.",
    ),
    "export": (
        "pager_edge.commands.export:export_cmd",
        "Export sessions or lifecycle events as JSONL or CSV.",
    ),
    "status": (
        "pager_edge.commands.status:status_cmd",
        "Transmitter health and store figures.",
    ),
    "sync": (
        "pager_edge.commands.sync:sync_cmd",
        "Upload pending history to the cloud.",
    ),
    "backhaul": (
        "pager_edge.commands.backhaul:backhaul_cmd",
        "Read the backhaul SIM's usage from the operator API.",
    ),
    "config": (
        "pager_edge.commands.config:config_group",
        "Check the configuration file.",
    ),
    "bench": (
        "pager_edge.commands.bench:bench_cmd",
        "Benchmarks (ingest, board, web, sync, cloud, quotes); in a development checkout.",
    ),
    "cloud": (
        "pager_edge.commands.cloud:cloud_group",
        "The chain's ingest service on PostgreSQL (pager-edge[cloud]).",
    ),
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(__version__, prog_name="pager-edge")
def cli() -> None:
    """pager-edge — LRS T7470 host-stand agent."""


def main(argv: list[str] | None = None) -> None:
    """Console entry: configuration mistakes become one readable line and exit status 2."""
    from agent.config import ConfigError
    from agent.store import StoreError

    try:
        code = cli.main(args=argv, prog_name="pager-edge", standalone_mode=False)
    except ConfigError as exc:
        for problem in exc.problems:  # a file with several mistakes: all of them, one per line
            click.echo(f"pager-edge: configuration error: {problem}", err=True)
        sys.exit(2)
    except StoreError as exc:
        click.echo(f"pager-edge: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:
        # Outside standalone mode click returns `ctx.exit(n)`'s status instead of exiting.
        sys.exit(code)


if __name__ == "__main__":
    main()
