"""One module per `pager-edge` command: parse the options, call the library, report.

What several commands share is here: the ``--config`` / ``--db`` / ``--raw`` options (one help
text each) and opening the agent's store read-only with a one-line error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from agent.store import Store, StoreError

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_HELP = "config.toml to use"


def config_option(note: str = "") -> Callable[[F], F]:
    """``--config PATH``: the same option and help text for every command (`note` adds to it)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        help=f"{CONFIG_HELP} {note}".rstrip(),
    )


def raw_option() -> Callable[[F], F]:
    """``--raw``: CSV text cells as they are (`export`, `report`; see agent.export)."""
    return click.option(
        "--raw",
        is_flag=True,
        help="CSV: write text cells unchanged (by default a cell starting with = + - @ tab or CR "
        "gets a leading ' so a spreadsheet does not run it as a formula)",
    )


def db_option(text: str = "override [store] path") -> Callable[[F], F]:
    """``--db PATH``: the agent's database instead of the configured one."""
    return click.option("--db", "db_path", type=click.Path(dir_okay=False), help=text)


def open_readonly(path: str) -> Store:
    """The store for reading; a missing or unreadable file is one line and exit status 1."""
    try:
        return Store(path, readonly=True)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
