"""`pager-edge bench …`: benchmarks that print figures (never asserted in the test suite).

They live here, outside the libraries they measure, and are a command a site can run on its own
Pi: ``ingest`` (simulator → agent → SQLite), ``board`` (the wait-board in a pty), ``sync`` (bytes
on the wire), ``cloud`` (the chain's ingest service on PostgreSQL) and ``quotes`` (how far each
kind of quote lands from the wait that followed). Every report names the machine it ran on with
:func:`machine_description`.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import click

from pager_edge.lazy import LazyGroup

BENCHES = {
    "ingest": "pager_edge.bench.ingest:ingest_bench_cmd",
    "board": "pager_edge.bench.board:board_bench_cmd",
    "sync": "pager_edge.bench.sync:sync_bench_cmd",
    "cloud": "pager_edge.bench.cloud:cloud_bench_cmd",
    "quotes": "pager_edge.bench.quotes:quotes_bench_cmd",
}
HELP = {
    "ingest": "Notifications/s persisted, latency p50/p99, memory, bytes per event.",
    "board": "Wait-board CPU share, update time and change-to-screen latency.",
    "sync": "Bytes on the wire per session lifecycle vs naive JSON.",
    "cloud": "A chain's day of batches to ingest replicas on PostgreSQL: events/s, p99.",
    "quotes": "Quote error on synthetic evenings: live vs default goal vs history median.",
}


@click.group("bench", cls=LazyGroup, lazy=BENCHES, short_help=HELP)
def bench_group() -> None:
    """Benchmarks; each prints its figures and the machine it ran on."""


def machine_description(*extras: str) -> str:
    """The machine a figure was measured on: CPU model and count, OS, Python (+ library versions)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [
        f"{cpu}, {os.cpu_count()} CPUs",
        f"{platform.system()} {platform.release()} {platform.machine()}",
        f"Python {platform.python_version()}",
        *extras,
    ]
    return ", ".join(parts)
