"""A click group whose sub-commands are imported only when invoked.

`pager-edge status` must not pay for Textual, nor `pager-edge board` for httpx: each command
module imports what it drives, and the group knows it only by a ``module:attribute`` string.
"""

from __future__ import annotations

import importlib
from typing import Any

import click


class LazyGroup(click.Group):
    """A click group whose commands are `module:attribute` strings resolved on first use."""

    def __init__(
        self, *args: Any, lazy: dict[str, str], short_help: dict[str, str], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy
        self._short = short_help

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy:
            module, attr = self._lazy[name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The short help comes from the table, so listing the commands imports none of them.
        rows = [(n, self._short.get(n, "")) for n in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
