"""`pager-edge bench ingest`: how fast and how lean the agent persists what the transmitter says.

The simulator runs in a child process (so it does not share the agent's core) and, on command,
plays bursts of session lifecycles (create → page → seat) as fast as it can notify. Three phases:

1. ceiling — a bare aiocoap client observes and discards: the delivery rate of simulator + CoAP;
2. ingest — the real agent pipeline (parse, sequence check, fold, group commit with
   ``synchronous=FULL``) on the same burst: persisted notifications/s and the latency from a
   notification's arrival to its commit (p50/p99);
3. footprint — `pager-edge run` as its own process ingests 10,000 session lifecycles: resident
   memory afterwards, database bytes per lifecycle event and bytes written to disk per event.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from multiprocessing.connection import Connection
from pathlib import Path

import click

from agent.config import Config, with_overrides
from pager_edge.bench import machine_description

HISTORY_LIMIT = 300  # what the simulated device keeps in /v1/sessions/history
PACED_RATE = 200.0  # notifications/s: a hundred times a busy evening, still below saturation
FOOTPRINT_BURST = 100  # parties seated between two looks at the store


# --- the simulator process -------------------------------------------------------------------


def _simulator_main(conn: Connection, history_limit: int) -> None:
    asyncio.run(_simulator_loop(conn, history_limit))


async def _simulator_loop(conn: Connection, history_limit: int) -> None:
    import logging

    from agent.simulator.server import Simulator

    logging.disable(logging.CRITICAL)
    sim = await Simulator.start(ping_interval=30.0, seed=1, history_limit=history_limit)
    conn.send(sim.port)
    loop = asyncio.get_running_loop()
    next_number = 0
    try:
        while True:
            cmd, n = await loop.run_in_executor(None, conn.recv)
            if cmd == "stop":
                break
            if cmd == "close":  # seat everything still open (untimed)
                for number in list(sim.model.active):
                    sim.clear(number)
                    await asyncio.sleep(0)
                conn.send(("queued", sim.model.sequence))
                continue
            # n parties, a few at a time as a busy stand would produce them: "open" leaves them
            # waiting (create → page → edit), "lifecycle" seats them too (create → page → clear)
            lanes = 8
            for start in range(0, n, lanes):
                numbers = [(next_number + i) % 4000 + 1 for i in range(min(lanes, n - start))]
                next_number += len(numbers)
                for number in numbers:
                    sim.create(number, label=f"Party {number} Zoë", party_size=2 + number % 5)
                for number in numbers:
                    sim.page(number)
                for number in numbers:
                    if cmd == "open":
                        sim.update(number, party_size=1 + number % 7)
                    else:
                        sim.clear(number)
                await asyncio.sleep(0)
            conn.send(("queued", sim.model.sequence))
    finally:
        await sim.stop()


class SimProcess:
    def __init__(self, history_limit: int = HISTORY_LIMIT):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_simulator_main, args=(child, history_limit), daemon=True)
        self.proc.start()
        self.port: int = self.conn.recv()

    def burst(self, parties: int, kind: str = "open") -> None:
        self.conn.send((kind, parties))

    def close_all(self) -> int:
        self.conn.send(("close", 0))
        return self.wait_queued()

    def wait_queued(self) -> int:
        queued: int = self.conn.recv()[1]
        return queued

    def stop(self) -> None:
        self.conn.send(("stop", 0))
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# --- phases ----------------------------------------------------------------------------------


async def measure_ceiling(port: int, sim: SimProcess, lifecycles: int) -> dict[str, float]:
    import aiocoap

    ctx = await aiocoap.Context.create_client_context()
    expected = lifecycles * 3
    times: list[float] = []
    done = asyncio.Event()

    def on_payload(msg: aiocoap.Message) -> None:
        if b'"sessions"' in msg.payload[:60]:
            times.append(time.perf_counter())
            if len(times) >= expected:
                done.set()

    req = ctx.request(
        aiocoap.Message(code=aiocoap.GET, uri=f"coap://127.0.0.1:{port}/v1/notify", observe=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        req.observation.register_callback(on_payload)
    await asyncio.wait_for(req.response, 5)
    sim.burst(lifecycles)
    try:
        await asyncio.wait_for(done.wait(), 120)
    finally:
        req.observation.cancel()
        await ctx.shutdown()
    span = times[-1] - times[0]
    return {"notifications": len(times), "seconds": span, "rate": (len(times) - 1) / span}


async def measure_ingest(
    port: int, sim: SimProcess, lifecycles: int, db: Path, *, pace: float | None = None
) -> dict[str, float]:
    """Saturating burst (pace None) or `pace` notifications/s offered in small bursts."""
    from agent.daemon import Agent

    cfg = with_overrides(
        Config(),
        store={"path": str(db)},
        controller={"host": "127.0.0.1", "port": port, "ping_interval": 30.0},
    )
    agent = Agent(cfg)
    await agent.start()
    ingest = agent.ingest
    assert ingest is not None
    try:
        while agent.link is None or agent.link.state != "connected":
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        base_n = ingest.counters.notifications
        base_lat = len(ingest.latencies)
        expected = lifecycles * 3
        first: float | None = None
        if pace is None:
            sim.burst(lifecycles)
        else:
            asyncio.get_running_loop().create_task(_paced(sim, lifecycles, pace))
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            got = ingest.counters.notifications - base_n
            if got and first is None:
                first = time.perf_counter() - 0.001  # upper bound on the first arrival
            if got >= expected and ingest.queue.empty() and not ingest.pending.events:
                break
            await asyncio.sleep(0.001)
        end = time.perf_counter()
        lat = sorted(list(ingest.latencies)[base_lat:])
        got = ingest.counters.notifications - base_n
    finally:
        await agent.stop()
    assert first is not None
    return {
        "notifications": got,
        "seconds": end - first,
        "rate": got / (end - first),
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[int(len(lat) * 0.99) - 1],
        "max_ms": 1000 * lat[-1],
        "resyncs": ingest.counters.resyncs,
    }


async def _paced(sim: SimProcess, lifecycles: int, pace: float) -> None:
    step = 4  # lifecycles per burst: 12 notifications
    for _ in range(0, lifecycles, step):
        sim.burst(step)
        await asyncio.sleep(step * 3 / pace)


def _proc_value(pid: int, file: str, key: str) -> int:
    for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise KeyError(key)


async def measure_footprint(
    port: int, sim: SimProcess, lifecycles: int, tmp: Path
) -> dict[str, float | None]:
    from agent.store import Store

    db = tmp / "footprint.db"
    cfg = tmp / "footprint.toml"
    cfg.write_text(
        f'[store]\npath = "{db}"\n[controller]\nhost = "127.0.0.1"\nport = {port}\n'
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
        target = None
        ended = events = 0
        deadline = time.monotonic() + 600
        for chunk in range(0, lifecycles, FOOTPRINT_BURST):
            sim.burst(min(FOOTPRINT_BURST, lifecycles - chunk), "lifecycle")
            target = sim.wait_queued()
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
        "sequence": target,
        "rss_start_mb": rss_start / 1024,
        "rss_end_mb": rss_end / 1024,
        "rss_peak_mb": hwm / 1024,
        "db_bytes_per_event": size / events,
        "disk_written_per_event": (io_end - io_start) / events,
    }


@click.command("ingest")
@click.option("--lifecycles", type=int, default=2000, show_default=True, help="per rate phase")
@click.option("--footprint-sessions", type=int, default=10_000, show_default=True)
@click.option("--rounds", type=int, default=3, show_default=True)
def ingest_bench_cmd(lifecycles: int, footprint_sessions: int, rounds: int) -> None:
    """Persisted notifications/s vs the bare CoAP ceiling, latency, memory, bytes per event."""
    import aiocoap.meta

    click.echo(f"machine: {machine_description(f'aiocoap {aiocoap.meta.version}')}")
    sim = SimProcess()
    try:
        with tempfile.TemporaryDirectory(prefix="pager-edge-bench-") as tmp:
            ceilings, ingests = [], []
            for i in range(rounds):  # alternate, so both see the same machine
                ceilings.append(asyncio.run(measure_ceiling(sim.port, sim, lifecycles)))
                sim.wait_queued()
                sim.close_all()
                db = Path(tmp) / f"i{i}.db"
                ingests.append(asyncio.run(measure_ingest(sim.port, sim, lifecycles, db)))
                sim.wait_queued()
                sim.close_all()
            ceiling = statistics.median(c["rate"] for c in ceilings)
            ingest = statistics.median(r["rate"] for r in ingests)
            click.echo(
                f"ceiling (observe + discard): {ceiling:8.0f} notifications/s "
                f"(median of {rounds} bursts of {lifecycles * 3})"
            )
            shares = ", ".join(
                f"{r['rate'] / c['rate']:.0%}" for r, c in zip(ingests, ceilings, strict=True)
            )
            click.echo(
                f"ingest (durable, FULL sync): {ingest:8.0f} notifications/s "
                f"= {100 * ingest / ceiling:.0f} % of the ceiling (rounds: {shares})"
            )
            lat = max(ingests, key=lambda r: r["p99_ms"])
            click.echo(
                f"  latency at saturation (worst round): p50 {lat['p50_ms']:.2f} ms, "
                f"p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.1f} ms"
            )
            paced = asyncio.run(
                measure_ingest(sim.port, sim, 400, Path(tmp) / "p.db", pace=PACED_RATE)
            )
            for _ in range(0, 400, 4):
                sim.wait_queued()
            sim.close_all()
            click.echo(
                f"  latency at {PACED_RATE:.0f} notifications/s offered: p50 "
                f"{paced['p50_ms']:.2f} ms, p99 {paced['p99_ms']:.2f} ms, max {paced['max_ms']:.1f} ms"
            )
            if footprint_sessions:
                fp = asyncio.run(measure_footprint(sim.port, sim, footprint_sessions, Path(tmp)))
                click.echo(
                    f"footprint after {fp['sessions']} sessions ({fp['events']} events): "
                    f"RSS {fp['rss_end_mb']:.1f} MB (start {fp['rss_start_mb']:.1f}, "
                    f"peak {fp['rss_peak_mb']:.1f}); database {fp['db_bytes_per_event']:.0f} "
                    f"bytes/event; written to disk {fp['disk_written_per_event']:.0f} bytes/event"
                )
    finally:
        sim.stop()
