"""`pager-edge bench cloud`: a chain's day of batches against replicas of the ingest service.

200 sites (``--sites``), each with a day of guests — lunch and dinner from the sync bench's
generator, realistic mix — cut into batches the way the agent cuts them when it syncs every
``--interval`` seconds, encoded by the agent's own ``BatchEncoder``. All sites post concurrently,
each its batches in order over one kept-alive connection (as an agent does), to ``--replicas``
``pager-edge cloud serve`` processes on loopback sharing one PostgreSQL; in-flight requests are
bounded by ``--concurrency``. A small share of batches is sent twice (an answer lost on the way:
the second copy must get 409). At the end every site's events are counted in the database: nothing
may be missing or doubled.

PostgreSQL is a throw-away cluster (:mod:`cloud.pgtemp`, fsync on) unless ``--dsn`` names one.
Replicas, PostgreSQL and this client share the machine's CPUs; the figures say so.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from agent.clock import epoch_of_iso
from agent.sync.wire import BatchEncoder
from bench import machine_description
from bench.sync import evening
from pager_edge.commands.cloud import need_extra

ZONE = "America/Chicago"
DAY = datetime(2026, 11, 20, tzinfo=ZoneInfo(ZONE))
HEADERS = {"Content-Type": "application/json", "Content-Encoding": "gzip"}


@dataclass
class Batch:
    key: str
    body: bytes
    events: int


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    batches: int = 0
    events: int = 0
    duplicates_answered: int = 0  # 409 for the deliberate second copies
    retries: int = 0


def site_day(index: int, guests: int) -> list[dict[str, Any]]:
    """One site's day (lunch 11:30, dinner 17:30 local) as store events, seq from 1."""
    lunch = int(DAY.replace(hour=11, minute=30).timestamp())
    dinner = int(DAY.replace(hour=17, minute=30).timestamp())
    rows = evening(guests * 2 // 5, seed=2 * index, realistic=True, start=lunch)
    rows += evening(guests - guests * 2 // 5, seed=2 * index + 1, realistic=True, start=dinner)
    return [ev.record(i, observed, source) for i, (ev, observed, source) in enumerate(rows, 1)]


def cut(site: str, events: list[dict[str, Any]], interval: int, most: int = 500) -> list[Batch]:
    """Batches as the agent sends them syncing every `interval` s: what was observed meanwhile."""
    batches: list[Batch] = []
    enc: BatchEncoder | None = None
    window = -1
    for ev in events:
        w = max(window, (epoch_of_iso(ev["observed_at"]) or 0) // interval)
        if enc is not None and (w != window or len(enc) >= most):
            batches.append(Batch(enc.key(), enc.body(), len(enc)))
            enc = None
        window = w
        if enc is None:
            enc = BatchEncoder(site, "bench")
        enc.add(ev)
    if enc is not None:
        batches.append(Batch(enc.key(), enc.body(), len(enc)))
    return batches


def spawn_replica(dsn: str, port: int, workdir: Path, name: str) -> subprocess.Popen[bytes]:
    cfg = workdir / f"{name}.toml"
    cfg.write_text(f'[cloud]\nhost = "127.0.0.1"\nport = {port}\n')
    log = (workdir / f"{name}.log").open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "pager_edge", "cloud", "serve", "--config", str(cfg)],
            env={**os.environ, "PAGER_EDGE_CLOUD_DSN": dsn},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()


async def _healthy(session: Any, base: str, proc: subprocess.Popen[bytes]) -> None:
    import aiohttp

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"replica on {base} exited with {proc.returncode}")
        try:
            async with session.get(f"{base}/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise click.ClickException(f"replica on {base} not healthy within 60 s")


async def _post_site(
    session: Any,
    url: str,
    token: str,
    batches: list[Batch],
    gate: asyncio.Semaphore,
    tally: Tally,
    resend: float,
    rnd: random.Random,
) -> None:
    import aiohttp

    auth = {**HEADERS, "Authorization": f"Bearer {token}"}
    for b in batches:
        copies = 2 if rnd.random() < resend else 1
        for copy in range(copies):
            while True:
                async with gate:
                    t0 = time.perf_counter()
                    try:
                        async with session.post(
                            url, data=b.body, headers={**auth, "Idempotency-Key": b.key}
                        ) as r:
                            await r.read()
                            status = r.status
                    except (aiohttp.ClientError, TimeoutError):
                        status = 0
                    took = time.perf_counter() - t0
                if status in (200, 409):
                    tally.latencies.append(took)
                    break
                if 400 <= status < 500:
                    raise click.ClickException(f"{b.key}: HTTP {status}")
                tally.retries += 1
                await asyncio.sleep(0.2)
            if copy == 0:
                tally.batches += 1
                tally.events += b.events
            elif status == 409:
                tally.duplicates_answered += 1


async def _run(
    dsn: str,
    workdir: Path,
    *,
    sites: int,
    guests: int,
    interval: int,
    replicas: int,
    concurrency: int,
    resend: float,
) -> dict[str, Any]:
    import aiohttp
    import asyncpg

    from cloud.pgtemp import free_port
    from cloud.report import report_rows
    from cloud.schema import migrate
    from cloud.sites import add_site

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        names = [f"bench-{i:03d}" for i in range(sites)]
        tokens = [await add_site(conn, name, ZONE) for name in names]
        pg_version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    t0 = time.perf_counter()
    plan = [cut(name, site_day(i, guests), interval) for i, name in enumerate(names)]
    prepared = time.perf_counter() - t0
    ports = [free_port() for _ in range(replicas)]
    procs = [spawn_replica(dsn, p, workdir, f"replica{i}") for i, p in enumerate(ports)]
    tallies = [Tally() for _ in ports]
    try:
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=60), auto_decompress=False
        ) as session:
            for port, proc in zip(ports, procs, strict=True):
                await _healthy(session, f"http://127.0.0.1:{port}", proc)
            gate = asyncio.Semaphore(concurrency)
            rnd = random.Random(1)
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    _post_site(
                        session,
                        f"http://127.0.0.1:{ports[i % replicas]}/v1/batches",
                        tokens[i],
                        plan[i],
                        gate,
                        tallies[i % replicas],
                        resend,
                        rnd,
                    )
                    for i in range(sites)
                )
            )
            wall = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
    conn = await asyncpg.connect(dsn)
    try:
        counts = {
            r["site"]: r["n"]
            for r in await conn.fetch("SELECT site, count(*) AS n FROM events GROUP BY site")
        }
        t0 = time.perf_counter()
        report = await report_rows(conn, by="day")
        report_s = time.perf_counter() - t0
    finally:
        await conn.close()
    expected = {name: sum(b.events for b in plan[i]) for i, name in enumerate(names)}
    wrong = {s: (counts.get(s, 0), n) for s, n in expected.items() if counts.get(s, 0) != n}
    lat = sorted(x for t in tallies for x in t.latencies)
    return {
        "sites": sites,
        "guests_per_site": guests,
        "interval": interval,
        "replicas": replicas,
        "concurrency": concurrency,
        "events": sum(t.events for t in tallies),
        "batches": sum(t.batches for t in tallies),
        "second_copies_409": sum(t.duplicates_answered for t in tallies),
        "retries": sum(t.retries for t in tallies),
        "wall_s": round(wall, 2),
        "prepare_s": round(prepared, 2),
        "events_per_s": round(sum(t.events for t in tallies) / wall),
        "batches_per_s": round(sum(t.batches for t in tallies) / wall),
        "per_replica": [
            {
                "events_per_s": round(t.events / wall),
                "batches_per_s": round(t.batches / wall),
                "requests": len(t.latencies),
            }
            for t in tallies
        ],
        "latency_ms": {
            "p50": round(1000 * lat[len(lat) // 2], 1),
            "p99": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
            "max": round(1000 * lat[-1], 1),
        },
        "stored_events": sum(counts.values()),
        "sites_wrong": wrong,
        "report_rows": len(report),
        "report_s": round(report_s, 2),
        "postgresql": pg_version,
    }


def run_bench(dsn: str | None = None, **kw: Any) -> dict[str, Any]:
    from cloud.pgtemp import TempCluster

    workdir = Path(tempfile.mkdtemp(prefix="pe-bench-cloud-"))
    try:
        if dsn:
            return asyncio.run(_run(dsn, workdir, **kw))
        with TempCluster(durable=True, max_connections=50 + 15 * kw["replicas"]) as pg:
            import asyncpg

            async def create() -> None:
                conn = await asyncpg.connect(pg.dsn())
                await conn.execute("CREATE DATABASE bench")
                await conn.close()

            asyncio.run(create())
            return asyncio.run(_run(pg.dsn("bench"), workdir, **kw))
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


@click.command("cloud")
@click.option("--sites", type=click.IntRange(min=1), default=200, show_default=True)
@click.option(
    "--guests", type=click.IntRange(min=1), default=320, show_default=True, help="per site and day"
)
@click.option(
    "--interval",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="the sites' sync (s)",
)
@click.option("--replicas", type=click.IntRange(min=1), default=2, show_default=True)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="requests in flight",
)
@click.option(
    "--resend",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="share sent twice",
)
@click.option("--dsn", help="an empty PostgreSQL database (default: a throw-away cluster)")
@click.option("--json", "as_json", is_flag=True)
def cloud_bench_cmd(
    sites: int,
    guests: int,
    interval: int,
    replicas: int,
    concurrency: int,
    resend: float,
    dsn: str | None,
    as_json: bool,
) -> None:
    """A chain's day of batches to replicas of `pager-edge cloud serve` (needs [cloud] extra)."""
    need_extra()
    r = run_bench(
        dsn,
        sites=sites,
        guests=guests,
        interval=interval,
        replicas=replicas,
        concurrency=concurrency,
        resend=resend,
    )
    import aiohttp
    import asyncpg

    r["machine"] = machine_description(
        f"PostgreSQL {r['postgresql']}",
        f"aiohttp {aiohttp.__version__}",
        f"asyncpg {asyncpg.__version__}",
    )
    if as_json:
        click.echo(json.dumps(r, indent=2))
    else:
        click.echo(f"machine: {r['machine']}")
        click.echo(
            f"{r['sites']} sites × a day ({r['guests_per_site']} guests, sync every "
            f"{r['interval']} s): {r['events']:,} events in {r['batches']:,} batches "
            f"({r['events'] / r['batches']:.1f}/batch), {r['replicas']} replicas, "
            f"{r['concurrency']} requests in flight"
        )
        click.echo(
            f"{r['wall_s']} s: {r['events_per_s']:,} events/s, {r['batches_per_s']:,} batches/s"
        )
        for i, p in enumerate(r["per_replica"]):
            click.echo(
                f"  replica {i}: {p['events_per_s']:,} events/s, {p['batches_per_s']:,} batches/s"
            )
        lat = r["latency_ms"]
        click.echo(f"batch latency: p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms")
        click.echo(
            f"second copies answered 409: {r['second_copies_409']}; retries: {r['retries']}; "
            f"report over all sites: {r['report_s']} s"
        )
    if r["sites_wrong"] or r["stored_events"] != r["events"]:
        raise click.ClickException(
            f"stored {r['stored_events']} events of {r['events']}; wrong: {r['sites_wrong']}"
        )
