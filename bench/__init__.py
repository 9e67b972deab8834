"""`pager-edge bench …`: benchmarks that print figures (never asserted in the test suite).

They live here, outside the libraries they measure and outside the wheel a Pi installs (a
development checkout runs them: ``pip install -e '.[test]'``): ``ingest`` (transmitter → agent →
SQLite over CoAP), ``pipeline`` (the agent's own CPU per notification, no CoAP), ``spy`` (py-spy
profiles by stage), ``board`` (the wait-board in a pty), ``web`` (memory and latency per tablet),
``sync`` (bytes on the wire), ``cloud`` (the chain's ingest service on PostgreSQL) and ``quotes``
(how far each kind of quote lands from the wait that followed). Every report names the machine it ran on with
:func:`machine_description`.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import click

from pager_edge.lazy import LazyGroup

BENCHES: dict[str, tuple[str, str]] = {
    "ingest": (
        "bench.ingest:ingest_bench_cmd",
        "Notifications/s persisted, latency p50/p99, memory, bytes per event.",
    ),
    "pipeline": (
        "bench.pipeline:pipeline_bench_cmd",
        "The agent's own CPU per notification: parse, fold, write (no CoAP).",
    ),
    "spy": (
        "bench.spy:spy_cmd",
        "Shares of each ingest stage in py-spy raw profiles (before/after).",
    ),
    "board": (
        "bench.board:board_bench_cmd",
        "Wait-board CPU share, update time and change-to-screen latency.",
    ),
    "web": (
        "bench.web:web_bench_cmd",
        "Memory and CPU per signed-in tablet; tap → visible, notification → visible.",
    ),
    "sync": ("bench.sync:sync_bench_cmd", "Bytes on the wire per session lifecycle vs naive JSON."),
    "cloud": (
        "bench.cloud:cloud_bench_cmd",
        "A chain's day of batches to ingest replicas on PostgreSQL: events/s, p99.",
    ),
    "quotes": (
        "bench.quotes:quotes_bench_cmd",
        "Quote error on synthetic evenings: live vs default goal vs history median.",
    ),
}


@click.group("bench", cls=LazyGroup, lazy=BENCHES)
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
