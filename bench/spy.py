"""`pager-edge bench spy`: where the agent's time goes, from py-spy's raw profiles.

The README's profiles come from ``py-spy record --format raw -r 1000 -o FILE -- <command>`` (one
line per distinct stack, ``frame;frame;… count``). This turns one or two of them (before, after)
into shares of named stages, so the tables can be made again after the next change:

* ``--pipeline`` (profiles of `pager-edge bench pipeline`): the ingest task's and the writer's
  work per stage, the bench's own parse pass and set-up left out;
* ``--loop`` (profiles of the agent under `bench ingest`): what the event loop's thread spends
  on aiocoap, on the ingest and on the loop itself.

Stages are matched by function names in the stack, in order from the outermost frame, first
rule first.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from pathlib import Path

import click

# (stage, names the stack must contain in this order, outermost first)
Rules = tuple[tuple[str, tuple[str, ...]], ...]

PIPELINE: Rules = (
    ("write: JSON of changes", ("write_or_set_aside", "_changes_json")),
    ("write: JSON of changes", ("write_or_set_aside", "JSONEncoder")),
    ("write: SQLite (statements, commit)", ("write_or_set_aside",)),
    ("history answers (fold)", ("Ingestor._on_control",)),
    ("parse: JSON decode", ("parse_document", "_loads")),
    ("parse: building records", ("parse_document", "(<string>")),
    ("parse: checks", ("parse_document",)),
    ("fold: copying views (replace)", ("Ingestor.apply", "replace (")),
    ("fold: building views, events, results", ("Ingestor.apply", "(<string>")),
    ("fold: logic (times, edits, pages, ends)", ("Ingestor.apply",)),
    ("sequence, liveness, counters", ("Ingestor._handle",)),
)
LOOP: Rules = (
    ("parse (notifications)", ("Ingestor._handle", "parse_document")),
    ("fold", ("Ingestor._handle", "Ingestor.apply")),
    ("ingest: sequence, liveness, queue", ("Ingestor._handle",)),
    ("history fetch (blockwise CoAP, parse)", ("HistoryFetcher",)),
    ("ingest: loop, commit hand-off", ("Ingestor",)),
    ("ingest: loop, commit hand-off", ("GroupCommit",)),
    ("aiocoap (receive, ACK, observe)", ("aiocoap/",)),
    ("event loop (select, callbacks)", ("_run_once",)),
)
# Only stacks with one of these are counted: the stage the profile is about.
SCOPE = {"pipeline": ("Ingestor._handle", "write_or_set_aside"), "loop": ("_run_once",)}
# …and none of these: the bench driving the run.
NOT = {"pipeline": (), "loop": ("measure_ingest", "bench/ingest.py")}


def _contains(stack: str, names: tuple[str, ...]) -> bool:
    """Each of `names` in `stack`, each after the one before (a caller, then what it called)."""
    at = 0
    for name in names:
        at = stack.find(name, at)
        if at < 0:
            return False
        at += len(name)
    return True


def shares(
    lines: Iterable[str], rules: Rules, scope: tuple[str, ...], skip: tuple[str, ...]
) -> tuple[collections.Counter[str], int]:
    """Samples per stage (and the total counted) from py-spy's raw lines."""
    stages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        if not any(s in stack for s in scope) or any(s in stack for s in skip):
            continue
        n = int(count)
        total += n
        stage = next((name for name, need in rules if _contains(stack, need)), "other")
        stages[stage] += n
    return stages, total


@click.command("spy")
@click.argument("profiles", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--loop", "kind", flag_value="loop", help="profiles of the agent under bench ingest")
@click.option("--pipeline", "kind", flag_value="pipeline", default=True, help="bench pipeline")
def spy_cmd(profiles: tuple[str, ...], kind: str) -> None:
    """Shares of each stage in one or more py-spy raw profiles (e.g. before and after)."""
    rules = PIPELINE if kind == "pipeline" else LOOP
    results = []
    for p in profiles:
        with Path(p).open(encoding="utf-8", errors="replace") as f:
            results.append(shares(f, rules, SCOPE[kind], NOT[kind]))
    names = sorted({s for r, _ in results for s in r}, key=lambda s: -results[0][0][s])
    width = max(len(n) for n in names) if names else 10
    click.echo(" " * width + "".join(f"  {Path(p).stem[:14]:>14}" for p in profiles))
    for name in names:
        cells = "".join(
            f"  {100 * r[name] / t if t else 0:13.1f}%" for r, t in results
        )  # fmt: skip
        click.echo(f"{name:<{width}}{cells}")
    click.echo(f"{'samples':<{width}}" + "".join(f"  {t:>14}" for _, t in results))
