"""`pager-edge bench pipeline`: the agent's own CPU per notification, without CoAP.

`bench ingest` measures the whole agent against bare aiocoap on a machine whose two cores it
shares with the producer, and its rounds spread wider than a saving of a few microseconds. This
bench takes what that one cannot separate: the same prepared documents (the simulator's
lifecycles, as :mod:`bench.producer` sends them, with the history answer the agent would fetch
once a transmitter second) handed straight to the real :class:`~agent.ingest.Ingestor` in one
thread — parse, sequence check, fold — and its group commits written by the real store
(``synchronous=FULL``) every `batch` notifications. It reports CPU time (``thread_time``: not
the disk's waits) per notification for each stage, best and median of the rounds, so a change to
the hot path can be measured here before it is looked for in `bench ingest`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from agent.clock import VirtualClock, iso_utc
from agent.controller.protocol import parse_document
from agent.ingest import HistoryAnswer, Incoming, Ingestor
from agent.simulator.jsonio import dumps
from agent.simulator.model import Transmitter
from agent.store import Store, WriteBatch
from bench import machine_description
from bench.producer import Shadow, lifecycle_docs, step_of

RATE = 3000.0  # notifications a transmitter second, as bench ingest's unpaced burst assumes
ZONE = "Europe/London"
# A history answer every this many notifications, listing the last HISTORY_LIMIT ends: every end
# is in one (a third of the notifications are ends), so every lifecycle is written whole.
HISTORY_EVERY = 512
HISTORY_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Prepared:
    """The run's input: notification payloads, and after which of them a history answer comes."""

    payloads: list[bytes]
    observed: list[str]  # the host's UTC second each notification is observed in
    history: dict[int, bytes]  # index of the notification it follows → the history document


def prepare(parties: int) -> Prepared:
    """The producer's documents, rendered: `parties` lifecycles of three notifications each."""
    clock = VirtualClock(datetime(2026, 12, 4, 18, 0, tzinfo=UTC))
    model = Transmitter(clock=clock, seed=1)
    shadow = Shadow(model, HISTORY_LIMIT)
    payloads: list[bytes] = []
    observed: list[str] = []
    history: dict[int, bytes] = {}
    for doc in lifecycle_docs(model, clock, parties, first=0, rate=RATE):
        shadow.apply(step_of(doc))
        payloads.append(dumps(doc))
        observed.append(iso_utc(clock.now()) or "")
        if len(payloads) % HISTORY_EVERY == 0:
            history[len(payloads) - 1] = dumps(shadow.history_document())
    history[len(payloads) - 1] = dumps(shadow.history_document())
    return Prepared(payloads, observed, history)


@dataclass(frozen=True, slots=True)
class Round:
    notifications: int
    parse_us: float  # parse_document alone, per notification
    handle_us: float  # the ingest task's work on notifications (parse + sequence + fold)
    history_us: float  # parsing and folding the history answers, per notification
    write_us: float  # the writer's CPU (SQL, JSON of changes), per notification
    events: int

    @property
    def fold_us(self) -> float:
        return self.handle_us - self.parse_us

    @property
    def total_us(self) -> float:
        return self.handle_us + self.history_us + self.write_us


def run_round(prepared: Prepared, db: Path, *, batch: int) -> Round:
    """One pass of every document through a fresh store and ingestor."""
    payloads = prepared.payloads
    start = time.thread_time()
    for p in payloads:
        parse_document(p)
    parse = time.thread_time() - start

    store = Store(db)
    ingest = Ingestor(store, None, zone=ZoneInfo(ZONE))
    handle = history = write = 0.0
    cuts = sorted({*range(batch, len(payloads), batch), *(i + 1 for i in prepared.history)})
    try:
        begin = 0
        for end in cuts:  # notifications [begin, end), then a history answer or a commit
            items = [
                Incoming(payloads[i], time.monotonic(), prepared.observed[i])
                for i in range(begin, end)
            ]
            t0 = time.thread_time()
            for item in items:
                ingest._handle(item)
            t1 = time.thread_time()
            handle += t1 - t0
            if (answer := prepared.history.get(end - 1)) is not None:
                ingest._handle(HistoryAnswer(parse_document(answer), prepared.observed[end - 1]))
                history += time.thread_time() - t1
            if end % batch == 0 or end == len(payloads):
                pending, ingest.writer.pending = ingest.writer.pending, WriteBatch()
                t2 = time.thread_time()
                store.write_or_set_aside(pending)
                write += time.thread_time() - t2
            begin = end
        events = store.conn.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        ingest.close()
        store.close()
    n = len(payloads)
    if ingest.counters.malformed:
        raise RuntimeError(f"{ingest.counters.malformed} document(s) refused: the bench is wrong")
    return Round(n, parse / n * 1e6, handle / n * 1e6, history / n * 1e6, write / n * 1e6, events)


def _figure(rounds: list[Round], attr: str) -> str:
    """Best and median of the rounds: on a shared machine the others' work only ever adds to a
    round's CPU time, so the best round is the closest reading of the code's own cost."""
    values = [getattr(r, attr) for r in rounds]
    return f"best {min(values):5.1f} µs, median {statistics.median(values):5.1f} (to {max(values):.1f})"


@click.command("pipeline")
@click.option(
    "--parties", type=click.IntRange(min=10), default=4000, show_default=True,
    help="Session lifecycles per round (three notifications each).",
)  # fmt: skip
@click.option("--rounds", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--batch", type=click.IntRange(min=1), default=64, show_default=True,
    help="Notifications per group commit.",
)  # fmt: skip
def pipeline_bench_cmd(parties: int, rounds: int, batch: int) -> None:
    """The agent's own CPU per notification: parse, fold, write (no CoAP, one thread)."""
    import sqlite3

    click.echo(f"machine: {machine_description(f'SQLite {sqlite3.sqlite_version}')}")
    prepared = prepare(parties)
    click.echo(
        f"input: {len(prepared.payloads)} notifications ({parties} lifecycles), "
        f"{len(prepared.history)} history answers, group commit every {batch}"
    )
    results: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="pager-edge-bench-") as tmp:
        for k in range(rounds):
            r = run_round(prepared, Path(tmp) / f"round-{k}.db", batch=batch)
            click.echo(
                f"  round {k + 1}: parse {r.parse_us:.1f}, fold {r.fold_us:.1f}, "
                f"history {r.history_us:.1f}, write {r.write_us:.1f}, "
                f"total {r.total_us:.1f} µs; {r.events} events"
            )
            results.append(r)
    click.echo(f"parse            {_figure(results, 'parse_us')}")
    click.echo(f"sequence + fold  {_figure(results, 'fold_us')}")
    click.echo(f"history answers  {_figure(results, 'history_us')}")
    click.echo(f"write            {_figure(results, 'write_us')}")
    click.echo(f"agent's own      {_figure(results, 'total_us')}   per notification")
