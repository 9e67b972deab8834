"""The single entry point, `pager-edge`.

Sub-commands live next to the code they drive and are imported only when invoked, so
`pager-edge status` does not pay for Textual and `pager-edge board` does not pay for httpx.
"""

from __future__ import annotations

import importlib
import sys

import click

from agent import __version__

COMMANDS: dict[str, str] = {
    "demo": "agent.demo:demo_cmd",
    "run": "agent.daemon:run_cmd",
    "board": "tui.cli:board_cmd",
    "web": "tui.web.cli:web_cmd",
    "simulate": "agent.simulator.cli:simulate_cmd",
    "export": "agent.export:export_cmd",
    "status": "agent.status:status_cmd",
    "sync": "agent.sync.cli:sync_cmd",
    "backhaul": "agent.backhaul.cli:backhaul_cmd",
    "config": "agent.configcmd:config_group",
    "bench": "agent.bench:bench_group",
    "cloud": "cloud.cli:cloud_group",
}

HELP = {
    "demo": "Simulator + agent + wait-board in one command, no hardware or config.",
    "run": "Run the agent daemon from config.toml.",
    "board": "The wait-board (staff) or, with --kiosk, the guest-facing screen.",
    "web": "The staff board for tablets in a browser (PIN), and the kiosk at /kiosk.",
    "simulate": "Run the built-in T7470 simulator alone.",
    "export": "Export sessions or lifecycle events as JSONL or CSV.",
    "status": "Transmitter health and store figures.",
    "sync": "Upload pending history to the cloud.",
    "backhaul": "Read the backhaul SIM's usage from the operator API.",
    "config": "Check the configuration file.",
    "bench": "Benchmarks (ingest, board, sync, cloud).",
    "cloud": "The chain's ingest service on PostgreSQL (pager-edge[cloud]).",
}


class LazyGroup(click.Group):
    """A click group whose commands are `module:attribute` strings resolved on first use."""

    def __init__(self, *args, lazy: dict[str, str], short_help: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self._lazy = lazy
        self._short = short_help

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy:
            module, attr = self._lazy[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, self._short.get(n, "")) for n in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=COMMANDS, short_help=HELP)
@click.version_option(__version__, prog_name="pager-edge")
def cli() -> None:
    """pager-edge — LRS T7470 host-stand agent."""


def main(argv: list[str] | None = None) -> None:
    """Console entry: configuration mistakes become one readable line and exit status 2."""
    from agent.config import ConfigError
    from agent.store import StoreError

    try:
        cli.main(args=argv, prog_name="pager-edge", standalone_mode=False)
    except ConfigError as exc:
        click.echo(f"pager-edge: configuration error: {exc}", err=True)
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


if __name__ == "__main__":
    main()
