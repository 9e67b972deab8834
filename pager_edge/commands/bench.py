"""`pager-edge bench`: the benchmarks, which live in the top-level ``bench`` package of a
development checkout and not in the wheel a Pi installs.

An editable install (``pip install -e .``) maps only the shipped packages, so the checkout that
holds this file is looked for beside it; an installed wheel has none, and says so in one line.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

CHECKOUT = Path(__file__).resolve().parents[2]  # …/pager_edge/commands/bench.py → the checkout


class NoBenchmarks(click.ClickException):
    exit_code = 2


def _bench_group() -> click.Command:
    """The ``bench`` package's group, from the import path or else the checkout beside us."""
    try:
        module = importlib.import_module("bench")
    except ModuleNotFoundError:
        if not (CHECKOUT / "bench" / "__init__.py").is_file():
            raise NoBenchmarks(
                "the benchmarks run from a development checkout (git clone, then "
                "pip install -e '.[test]'); this installation has none"
            ) from None
        sys.path.insert(0, str(CHECKOUT))
        module = importlib.import_module("bench")
    group: click.Command = module.bench_group
    return group


# Resolved when `pager-edge bench` is invoked (the command line imports this module only then);
# without a checkout this raises NoBenchmarks, which the command line prints as one line.
bench_cmd = _bench_group()
