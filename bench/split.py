"""The second-process design, as a measured prototype: aiocoap here, the ingest in a worker.

Issue 20 asks whether moving parsing, folding and writing off aiocoap's loop, into a process fed
raw payloads over a pipe, beats the one-process agent on two cores. This is the least that design
needs, measured on `bench ingest`'s producer and rounds: this process observes with the agent's
own context and hands every notification's payload, unparsed, to a pipe (all that arrived in one
turn of the loop as one length-prefixed frame); a worker process runs the real
:class:`~agent.ingest.Ingestor` (parse, sequence check, fold, group commit with
``synchronous=FULL``) on what comes out of it.

What the prototype leaves out, and a real split would need: the worker cannot ask for a resync or
the history (no CoAP client there; the bench's sequence has no gaps, and its ends stay
"awaiting history", which costs the worker nothing per notification), staff requests, the health
row's link state, and the supervision of a second process (restart, SIGTERM, the watchdog).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import resource
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from agent.controller.client import ControllerClient, create_context
from bench.ingest_figures import commit_times, latencies_ms, percentile
from bench.producer import ProducerProcess

ZONE = "Europe/London"
DEADLINE = 600.0  # seconds for a run to be committed, as measure_ingest allows


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def frame(payloads: list[bytes]) -> bytes:
    """Payloads as one frame: each a 4-byte little-endian length and its bytes."""
    return b"".join(len(p).to_bytes(4, "little") + p for p in payloads)


def unframe(data: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        n = int.from_bytes(data[at : at + 4], "little")
        out.append(data[at + 4 : at + 4 + n])
        at += 4 + n
    return out


# --- the worker ---------------------------------------------------------------------------------


def _worker_main(data: Connection, ctl: Connection, db: str) -> None:
    asyncio.run(_work(data, ctl, Path(db)))


async def _work(data: Connection, ctl: Connection, db: Path) -> None:
    import logging
    from zoneinfo import ZoneInfo

    from agent.ingest import Ingestor
    from agent.store import Store

    # No client here: the history schedule's "no transmitter to ask" is the prototype's, not news.
    logging.getLogger("agent.ingest.history").setLevel(logging.ERROR)
    store = Store(db)
    ingest = Ingestor(store, None, zone=ZoneInfo(ZONE))
    loop = asyncio.get_running_loop()

    def readable() -> None:
        while data.poll():
            for payload in unframe(data.recv_bytes()):
                ingest.feed(payload)

    loop.add_reader(data.fileno(), readable)
    task = asyncio.ensure_future(ingest.run())
    try:
        ctl.send("ready")
        while True:
            command = await loop.run_in_executor(None, ctl.recv)
            if command[0] == "stop":
                break
            count = command[1]  # ("expect", count): report once that many are committed
            base, cpu = ingest.committed, _cpu()
            deadline = time.monotonic() + DEADLINE
            while ingest.committed - base < count and time.monotonic() < deadline:
                await asyncio.sleep(0.02)  # short of `count` at the deadline: the parent says so
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            ctl.send(
                (
                    list(ingest.writer.commit_log),
                    base,
                    _cpu() - cpu,
                    ingest.counters.malformed,
                    rss_mb,
                )
            )
    finally:
        task.cancel()
        await ingest.flush()
        ingest.close()
        store.close()


# --- this side ----------------------------------------------------------------------------------


async def measure_split(
    producer: ProducerProcess,
    parties: int,
    db: Path,
    *,
    window: int,
    rate: float | None = None,
    nominal_rate: float = 3000.0,
) -> dict[str, Any]:
    """The prototype fed `parties` lifecycles, as fast as it takes them or paced at `rate`."""

    spawn = mp.get_context("spawn")
    data_r, data_w = spawn.Pipe(duplex=False)
    ctl, ctl_worker = spawn.Pipe()
    worker = spawn.Process(target=_worker_main, args=(data_r, ctl_worker, str(db)), daemon=True)
    worker.start()
    # The worker's ends are its own now: if it dies, reading `ctl` here ends (EOFError) instead
    # of waiting for ever.
    data_r.close()
    ctl_worker.close()
    loop = asyncio.get_running_loop()

    async def answer(seconds: float) -> Any:
        def read() -> Any:
            if not ctl.poll(seconds):
                raise RuntimeError(f"the ingest worker did not answer within {seconds:.0f} s")
            return ctl.recv()

        return await loop.run_in_executor(None, read)

    try:
        await answer(60)  # "ready"
    except BaseException:
        worker.kill()
        data_w.close()
        ctl.close()
        raise
    count = producer.prepare(parties, rate or nominal_rate)
    ctx = await create_context()
    pending: list[bytes] = []

    def flush() -> None:
        data_w.send_bytes(frame(pending))
        pending.clear()

    def on_payload(payload: bytes) -> None:
        if not pending:
            loop.call_soon(flush)
        pending.append(payload)

    req = ControllerClient(ctx, "127.0.0.1", producer.port).observe(on_payload, lambda _exc: None)
    try:
        await asyncio.wait_for(req.response, 5)
        await asyncio.sleep(0.2)
        ctl.send(("expect", count))
        cpu = _cpu()
        producer.start(rate, window)
        started = await loop.run_in_executor(None, producer.wait_started)
        played = await loop.run_in_executor(None, producer.wait_played)
        log, base, worker_cpu, malformed, worker_rss = await answer(DEADLINE + 30)
        cpu = _cpu() - cpu
    finally:
        req.observation.cancel()
        await ctx.shutdown()
        try:
            ctl.send(("stop",))
        except OSError:  # it is gone already
            pass
        worker.join(10)
        if worker.is_alive():
            worker.kill()
            worker.join(5)
        data_w.close()
        ctl.close()
    if malformed:
        raise RuntimeError(f"the worker refused {malformed} document(s)")
    committed = commit_times(count, log, base)
    e2e = latencies_ms(played.send_times, committed)
    if len(e2e) < count:
        raise RuntimeError(f"the ingest worker committed {len(e2e)} of {count} notifications")
    span = committed[-1] - started
    return {
        "notifications": count,
        "rate": count / span,
        "cpu_ms": (cpu + worker_cpu) / count * 1000,
        "main_cpu_ms": cpu / count * 1000,
        "worker_cpu_ms": worker_cpu / count * 1000,
        "worker_peak_rss_mb": worker_rss,
        "p50_ms": percentile(e2e, 50),
        "p99_ms": percentile(e2e, 99),
        "max_ms": max(e2e),
        "offered": rate,
    }
