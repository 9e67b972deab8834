"""`pager-edge bench …`: benchmarks that print figures (never asserted in the test suite)."""

from __future__ import annotations

import click

from agent.cli import LazyGroup

BENCHES = {
    "ingest": "agent.bench_ingest:ingest_bench_cmd",
    "board": "tui.bench:board_bench_cmd",
    "sync": "agent.sync.bench:sync_bench_cmd",
}
HELP = {
    "ingest": "Notifications/s persisted, latency p50/p99, memory, bytes per event.",
    "board": "Wait-board CPU share, update time and change-to-screen latency.",
    "sync": "Bytes on the wire per session lifecycle vs naive JSON.",
}


@click.group("bench", cls=LazyGroup, lazy=BENCHES, short_help=HELP)
def bench_group() -> None:
    """Benchmarks; each prints its figures and the machine it ran on."""
