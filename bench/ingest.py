"""`pager-edge bench ingest`: how fast and how lean the agent persists what the transmitter says.

The transmitter is :mod:`bench.producer`: the simulator's documents, encoded before the
run and sent from a plain UDP socket in a child process, as CON with at most `window`
unacknowledged — so it costs a small fraction of what the consumer does per notification, and
what is measured is the consumer. Phases, the first two alternating for `rounds` rounds:

1. ceiling — a bare aiocoap client observes and discards: aiocoap's receive path on this machine;
2. ingest — the real :class:`~agent.daemon.Agent` (parse, sequence check, fold, group commit with
   ``synchronous=FULL``, its resync and history GETs) on the same burst: committed
   notifications/s, CPU per notification, latency send → committed;
3. paced — the agent offered 40 % of the median ceiling (:data:`PACED`, where the p99 target is
   set), paced: latency send → committed (p50/p99);
4. saturation — offered rates stepping up from a twentieth of the ceiling: the first at which
   the backlog (scheduled minus committed) grows;
5. footprint — `pager-edge run` as its own process ingests 10,000 session lifecycles: resident
   memory afterwards, database bytes per lifecycle event and bytes written to disk per event.

With ``--split``, the second-process prototype (:mod:`bench.split`) runs in the same alternating
rounds and paced phase, beside the agent.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from agent.config import Config, with_overrides
from agent.controller.client import ControllerClient, create_context
from bench import machine_description
from bench.ingest_figures import (
    P99_TARGET_MS,
    Spread,
    Step,
    backlog_grows,
    commit_times,
    latencies_ms,
    percentile,
    quick_up_to,
    saturation,
    spread,
)
from bench.producer import Played, ProducerProcess
from bench.split import measure_split

HISTORY_LIMIT = 300  # what the simulated device keeps in /v1/sessions/history
NOMINAL_RATE = 3000.0  # notifications/s the transmitter's clock assumes in an unpaced burst
WINDOW = 8  # unacknowledged CON notifications the producer allows
FOOTPRINT_BURST = 100  # parties seated between two looks at the store
# The saturation sweep, × the median ceiling: from well below the agent's rate, so the step where
# the backlog starts to grow is found (not merely bounded), with each step's p99 beside it.
# The paced phase offers this share of the median ceiling: issue 20 sets p99 ≤ 15 ms there
# (the bench offered half the ceiling before it).
PACED = 0.4
STEPS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25)


def _cpu() -> float:
    """CPU seconds of this process, every thread (the agent's loop and its store writer)."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


async def _in_thread(fn: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn)


# --- phases ----------------------------------------------------------------------------------


def _run_figures(
    count: int, span: float, cpu: float, loop_cpu: float, played: Played
) -> dict[str, Any]:
    """What every run reports: its rate and the CPU it took per notification, on both sides."""
    return {
        "notifications": count,
        "seconds": span,
        "rate": count / span,
        "cpu_ms": 1000 * cpu / count,
        "loop_cpu_ms": 1000 * loop_cpu / count,
        "producer_cpu_ms": 1000 * played.cpu / count,
        "retransmissions": played.retransmissions,
    }


async def measure_ceiling(producer: ProducerProcess, parties: int, window: int) -> dict[str, float]:
    """Observe and discard: the rate at which aiocoap alone takes the producer's notifications."""

    count = producer.prepare(parties, NOMINAL_RATE)
    ctx = await create_context()  # the agent's own transports and registration, so they compare
    times: list[float] = []
    client = ControllerClient(ctx, "127.0.0.1", producer.port)
    req = client.observe(lambda _payload: times.append(time.monotonic()), lambda _exc: None)
    try:
        await asyncio.wait_for(req.response, 5)
        await asyncio.sleep(0.2)
        base, cpu, loop_cpu = len(times), _cpu(), time.thread_time()
        producer.start(None, window)
        started = await _in_thread(producer.wait_started)
        played = await _in_thread(producer.wait_played)
        cpu, loop_cpu = _cpu() - cpu, time.thread_time() - loop_cpu
    finally:
        req.observation.cancel()
        await ctx.shutdown()
    got = times[base:]
    if len(got) < count:
        raise RuntimeError(f"the bare consumer saw {len(got)} of {count} notifications")
    return _run_figures(count, got[-1] - started, cpu, loop_cpu, played)


async def measure_ingest(
    producer: ProducerProcess,
    parties: int,
    db: Path,
    *,
    window: int,
    rate: float | None = None,
) -> dict[str, Any]:
    """The real agent fed `parties` lifecycles as fast as it takes them (`rate` None) or paced."""
    from agent.daemon import Agent

    count = producer.prepare(parties, rate or NOMINAL_RATE)
    cfg = with_overrides(
        Config(),
        store={"path": str(db)},
        controller={"host": "127.0.0.1", "port": producer.port, "ping_interval": 30.0},
    )
    agent = Agent(cfg)
    await agent.start()
    ingest = agent.ingest
    assert ingest is not None
    samples: list[tuple[float, float]] = []
    try:
        deadline = time.monotonic() + 30
        while agent.link is None or agent.link.state != "connected" or not ingest.counters.resyncs:
            if time.monotonic() > deadline:
                raise RuntimeError("the agent did not connect to the producer")
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        base, resyncs = ingest.committed, ingest.counters.resyncs
        cpu, loop_cpu = _cpu(), time.thread_time()
        producer.start(rate, window)
        started = await _in_thread(producer.wait_started)
        played_task = asyncio.ensure_future(_in_thread(producer.wait_played))
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            done = ingest.committed - base
            if rate is not None and (now := time.monotonic()) <= started + count / rate:
                # While the offer lasts: afterwards the backlog only drains, and a slope taken
                # over the drain would hide that it grew.
                samples.append((now, (now - started) * rate - done))
            if played_task.done() and done >= count:
                break
        cpu, loop_cpu = _cpu() - cpu, time.thread_time() - loop_cpu
        played = await played_task
        committed = commit_times(count, ingest.writer.commit_log, base)
        gaps, resyncs = ingest.counters.gaps, ingest.counters.resyncs - resyncs
    finally:
        await agent.stop()
    e2e = latencies_ms(played.send_times, committed)
    if len(e2e) < count:
        raise RuntimeError(f"the agent committed {len(e2e)} of {count} notifications")
    return {
        **_run_figures(count, committed[-1] - started, cpu, loop_cpu, played),
        "p50_ms": percentile(e2e, 50),
        "p99_ms": percentile(e2e, 99),
        "max_ms": max(e2e),
        "resyncs": resyncs,
        "gaps": gaps,
        "requests": played.requests,
        "samples": samples,
        "offered": rate,
    }


async def measure_saturation(
    producer: ProducerProcess, ceiling: float, tmp: Path, *, window: int, seconds: float
) -> list[Step]:
    """Offered rates stepping up from a twentieth of the ceiling until the backlog grows."""
    steps: list[Step] = []
    for i, share in enumerate(STEPS):
        offered = share * ceiling
        parties = max(8, int(offered * seconds / 3))
        r = await measure_ingest(producer, parties, tmp / f"sat{i}.db", window=window, rate=offered)
        grows = backlog_grows(r["samples"], offered)
        steps.append(Step(offered, r["rate"], grows, r["p99_ms"]))
        if grows:
            break
    return steps


def _proc_value(pid: int, file: str, key: str) -> int:
    for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise KeyError(key)


async def measure_footprint(
    producer: ProducerProcess, lifecycles: int, tmp: Path, *, window: int
) -> dict[str, float]:
    from agent.store import Store

    db = tmp / "footprint.db"
    cfg = tmp / "footprint.toml"
    cfg.write_text(
        f'[store]\npath = "{db}"\n[controller]\nhost = "127.0.0.1"\nport = {producer.port}\n'
        'ping_interval = 30\n[logging]\nlevel = "WARNING"\n'
    )
    proc = subprocess.Popen(  # noqa: ASYNC220 - the agent under test runs for the whole phase
        [sys.executable, "-m", "pager_edge", "run", "--config", str(cfg)]
    )
    try:
        for _ in range(200):
            await asyncio.sleep(0.05)
            if db.exists():
                break
        await asyncio.sleep(1.0)
        rss_start = _proc_value(proc.pid, "status", "VmRSS:")
        io_start = _proc_value(proc.pid, "io", "write_bytes:")
        ended = events = 0
        deadline = time.monotonic() + 900
        for chunk in range(0, lifecycles, FOOTPRINT_BURST):
            producer.prepare(min(FOOTPRINT_BURST, lifecycles - chunk), NOMINAL_RATE)
            producer.start(None, window)
            await _in_thread(producer.wait_started)
            await _in_thread(producer.wait_played)
            want = min(lifecycles, chunk + FOOTPRINT_BURST)
            while time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                store = Store(db, readonly=True)
                try:
                    counts = store.session_counts()
                    ended = counts["cleared"] + counts["removed"]
                    events = store.event_count()  # nothing is pruned here: every event ever
                finally:
                    store.close()
                if ended >= want:
                    break
        await asyncio.sleep(1.0)
        rss_end = _proc_value(proc.pid, "status", "VmRSS:")
        hwm = _proc_value(proc.pid, "status", "VmHWM:")
        io_end = _proc_value(proc.pid, "io", "write_bytes:")
    finally:
        proc.terminate()
        proc.wait(30)
    size = db.stat().st_size
    return {
        "sessions": ended,
        "events": events,
        "rss_start_mb": rss_start / 1024,
        "rss_end_mb": rss_end / 1024,
        "rss_peak_mb": hwm / 1024,
        "db_bytes_per_event": size / events,
        "disk_written_per_event": (io_end - io_start) / events,
    }


# --- the report ------------------------------------------------------------------------------


def _share(runs: list[dict[str, Any]], ceilings: list[dict[str, Any]]) -> str:
    """Runs' median rate with its spread, as a share of the ceiling's, and each round's share."""
    rate, ceiling = spread([r["rate"] for r in runs]), spread([c["rate"] for c in ceilings])
    shares = [r["rate"] / c["rate"] for r, c in zip(runs, ceilings, strict=True)]
    return (
        f"{rate.text()} notifications/s = {100 * rate.median / ceiling.median:.0f} % of the "
        f"ceiling (rounds: {', '.join(f'{s:.0%}' for s in shares)})"
    )


def _p50_p99(runs: list[dict[str, Any]]) -> str:
    return (
        f"p50 {spread([r['p50_ms'] for r in runs]).text('.1f')} ms, "
        f"p99 {spread([r['p99_ms'] for r in runs]).text('.1f')} ms"
    )


def rounds_report(
    ceilings: list[dict[str, Any]], ingests: list[dict[str, Any]], paced: list[dict[str, Any]]
) -> list[str]:
    """The lines the rate rounds print: medians with their spread, and each round's share."""
    ceiling = spread([c["rate"] for c in ceilings])
    bare_cpu = spread([c["cpu_ms"] for c in ceilings])
    agent_cpu = spread([r["cpu_ms"] for r in ingests])
    producer_cpu = statistics.median([c["producer_cpu_ms"] for c in ceilings])
    lines = [
        f"ceiling (bare aiocoap: observe + discard): {ceiling.text()} notifications/s "
        f"(median of {len(ceilings)} rounds, range); "
        f"producer CPU {producer_cpu:.3f} ms/notification",
        f"durable ingest (agent, synchronous=FULL): {_share(ingests, ceilings)}",
        f"  CPU per notification: agent {agent_cpu.text('.3f')} ms, bare aiocoap "
        f"{bare_cpu.text('.3f')} ms; the agent's own {agent_cpu.median - bare_cpu.median:.3f} ms",
        f"  latency send → committed at saturation: {_p50_p99(ingests)}",
    ]
    if paced:
        lines.append(
            f"  latency at {PACED:.0%} of the ceiling ({paced[0]['offered']:,.0f}/s offered): "
            f"{_p50_p99(paced)}, max {max(h['max_ms'] for h in paced):.1f} ms"
        )
    resyncs = sum(r["resyncs"] for r in ingests)
    gaps = sum(r["gaps"] for r in ingests)
    lines.append(f"  resyncs during the rounds: {resyncs}, sequence gaps: {gaps}")
    return lines


def saturation_report(steps: list[Step], ceiling: Spread) -> list[str]:
    kept, grows = saturation(steps)
    cells = ", ".join(
        f"{s.offered:,.0f}→{s.delivered:,.0f} (p99 {s.p99_ms:.0f} ms){' grows' if s.grows else ''}"
        for s in steps
    )
    head = "saturation: "
    if grows is not None:
        head += (
            f"the backlog grows from {grows:,.0f}/s offered "
            f"({grows / ceiling.median:.0%} of the ceiling)"
        )
    else:
        head += "the backlog never grew in the sweep"
    if kept is not None:
        head += f"; kept up at {kept:,.0f}/s"
    lines = [head, f"  steps (offered → committed/s): {cells}"]
    quick = quick_up_to(steps, P99_TARGET_MS)
    lines.append(
        f"  p99 ≤ {P99_TARGET_MS:g} ms up to {quick:,.0f}/s offered ({quick / ceiling.median:.0%} "
        "of the ceiling)"
        if quick is not None
        else f"  p99 above {P99_TARGET_MS:g} ms at every step"
    )
    return lines


async def _rounds(
    producer: ProducerProcess, tmp: Path, lifecycles: int, rounds: int, window: int, split: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    ceilings, ingests, splits = [], [], []
    for i in range(rounds):  # alternate, so all see the same machine
        ceilings.append(await measure_ceiling(producer, lifecycles, window))
        ingests.append(await measure_ingest(producer, lifecycles, tmp / f"i{i}.db", window=window))
        if split:
            splits.append(
                await measure_split(
                    producer, lifecycles, tmp / f"s{i}.db", window=window, nominal_rate=NOMINAL_RATE
                )
            )
    return ceilings, ingests, splits


def split_report(
    splits: list[dict[str, Any]], ceilings: list[dict[str, Any]], paced: list[dict[str, Any]]
) -> list[str]:
    """The second-process prototype's lines, beside the agent's (bench.split says what it is)."""
    lines = [
        "second-process prototype (aiocoap here, ingest in a worker fed raw payloads): "
        + _share(splits, ceilings),
        f"  CPU per notification: {spread([r['cpu_ms'] for r in splits]).text('.3f')} ms "
        f"(this process {spread([r['main_cpu_ms'] for r in splits]).text('.3f')}, worker "
        f"{spread([r['worker_cpu_ms'] for r in splits]).text('.3f')}); the worker's peak RSS "
        f"{max(r['worker_peak_rss_mb'] for r in splits):.1f} MB (a second process on the Pi)",
    ]
    if paced:
        lines.append(f"  latency at {PACED:.0%} of the ceiling: {_p50_p99(paced)}")
    return lines


@click.command("ingest")
@click.option(
    "--lifecycles",
    type=click.IntRange(min=10),
    default=2000,
    show_default=True,
    help="per rate phase",
)
@click.option(
    "--footprint-sessions",
    type=click.IntRange(min=0),
    default=10_000,
    show_default=True,
    help="0 skips the footprint phase",
)
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=WINDOW,
    show_default=True,
    help="unacknowledged CON notifications the producer allows (1 = NSTART=1)",
)
@click.option("--saturation/--no-saturation", default=True, show_default=True)
@click.option(
    "--split/--no-split",
    default=False,
    show_default=True,
    help="also the second-process prototype (bench/split.py), in the same alternating rounds",
)
@click.option("--step-seconds", type=click.FloatRange(min=0.5), default=4.0, show_default=True)
def ingest_bench_cmd(
    lifecycles: int,
    footprint_sessions: int,
    rounds: int,
    window: int,
    saturation: bool,
    split: bool,
    step_seconds: float,
) -> None:
    """Persisted notifications/s vs the bare CoAP ceiling, latency, saturation, memory, bytes."""
    import aiocoap.meta

    click.echo(f"machine: {machine_description(f'aiocoap {aiocoap.meta.version}')}")
    click.echo(f"producer: prepared CON notifications, window {window}, plain UDP, own process")
    producer = ProducerProcess(history_limit=HISTORY_LIMIT)
    try:
        with tempfile.TemporaryDirectory(prefix="pager-edge-bench-") as tmp_name:
            tmp = Path(tmp_name)
            ceilings, ingests, splits = asyncio.run(
                _rounds(producer, tmp, lifecycles, rounds, window, split)
            )
            ceiling = spread([c["rate"] for c in ceilings])
            offered = ceiling.median * PACED
            paced, split_paced = [], []
            for i in range(rounds):
                paced.append(
                    asyncio.run(
                        measure_ingest(
                            producer, lifecycles // 2, tmp / f"h{i}.db", window=window, rate=offered
                        )
                    )
                )
                if split:
                    split_paced.append(
                        asyncio.run(
                            measure_split(
                                producer, lifecycles // 2, tmp / f"hs{i}.db", window=window,
                                rate=offered,
                            )
                        )
                    )  # fmt: skip
            for line in rounds_report(ceilings, ingests, paced):
                click.echo(line)
            if split:
                for line in split_report(splits, ceilings, split_paced):
                    click.echo(line)
            if saturation:
                steps = asyncio.run(
                    measure_saturation(
                        producer, ceiling.median, tmp, window=window, seconds=step_seconds
                    )
                )
                for line in saturation_report(steps, ceiling):
                    click.echo(line)
            if footprint_sessions:
                fp = asyncio.run(
                    measure_footprint(producer, footprint_sessions, tmp, window=window)
                )
                click.echo(
                    f"footprint after {fp['sessions']} sessions ({fp['events']} events): "
                    f"RSS {fp['rss_end_mb']:.1f} MB (start {fp['rss_start_mb']:.1f}, "
                    f"peak {fp['rss_peak_mb']:.1f}); database {fp['db_bytes_per_event']:.0f} "
                    f"bytes/event; written to disk {fp['disk_written_per_event']:.0f} bytes/event"
                )
    finally:
        producer.stop()
