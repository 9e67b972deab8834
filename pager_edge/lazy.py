"""A click group whose sub-commands are imported only when invoked.

`pager-edge status` must not pay for Textual, nor `pager-edge board` for httpx: each command
module imports what it drives, and the group knows it only by a ``module:attribute`` string.
"""

from __future__ import annotations

import importlib
from typing import Any

import click


class LazyGroup(click.Group):
    """A click group whose commands are `module:attribute` strings resolved on first use.

    `lazy` maps each name to ``(module:attribute, short help)``: one table, so listing the
    commands (``--help``) imports none of them and a command's help line stands beside it.
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy:
            module, attr = self._lazy[name][0].split(":")
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, self._lazy[n][1] if n in self._lazy else "") for n in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
