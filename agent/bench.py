"""`pager-edge bench …`: benchmarks that print figures (never asserted in the test suite)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import click

from agent.cli import LazyGroup

BENCHES = {
    "ingest": "agent.bench_ingest:ingest_bench_cmd",
    "board": "tui.bench:board_bench_cmd",
    "sync": "agent.sync.bench:sync_bench_cmd",
    "cloud": "cloud.bench:cloud_bench_cmd",
}
HELP = {
    "ingest": "Notifications/s persisted, latency p50/p99, memory, bytes per event.",
    "board": "Wait-board CPU share, update time and change-to-screen latency.",
    "sync": "Bytes on the wire per session lifecycle vs naive JSON.",
    "cloud": "A chain's day of batches to ingest replicas on PostgreSQL: events/s, p99.",
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
