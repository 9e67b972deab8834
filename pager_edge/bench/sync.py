"""`pager-edge bench sync`: bytes on the wire per guest lifecycle, batched vs naive.

An evening of sessions (created → paged → seated, interleaved as a host stand sees them) is written
to a scratch store and uploaded by the real :class:`SyncEngine` to the reference receiver on
loopback, once per batch size. The receiver counts every byte that crosses its sockets — request
line, headers and body out, status line, headers and body back — and the engine's own count is
printed beside it. The comparison is the same events sent the naive way: one plain JSON POST per
event with httpx's default headers, to the same receiver.

TLS adds per-connection handshakes (4–6 KB, certificate chain) and ~30 bytes per record on a real
link; loopback http has neither, so they are left out of both columns (the engine keeps one
connection open, the naive client one too).
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx

from agent.clock import epoch_of_iso, iso_of_epoch
from agent.config import Config, with_overrides
from agent.session import Event
from agent.store import Store, WriteBatch
from agent.sync.engine import SyncEngine
from agent.sync.receiver import IngestServer
from agent.sync.wire import event_id
from pager_edge.bench import machine_description

SURNAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Müller Øberg"
).split()
TOKEN = "bench-token-0123456789abcdef0123456789abcdef"  # the length of a real bearer token
SITE = "site-0042"


def evening(
    sessions: int, *, seed: int = 7, realistic: bool = False, start: int = 1_795_000_000
) -> list[tuple[Event, str, str]]:
    """Events of `sessions` guests as the store would hold them (event, observed_at, source).

    Arrivals every ~45 s, waits of ~20 min, seated 0.5–5 min after the page, so lifecycles
    interleave as at a real host stand. `realistic` adds what also happens: party-size updates
    (10 %), re-pages (5 %), walk-outs removed instead of seated (5 %), resync-sourced rows (3 %).
    """
    rnd = random.Random(seed)
    rows: list[tuple[int, int, Event]] = []
    t = start
    for _ in range(sessions):
        t += max(1, int(rnd.expovariate(1 / 45)))
        sid = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        number = rnd.randint(1, 40)
        party = rnd.choice((1, 2, 2, 2, 3, 4, 4, 5, 6, 8))
        label = None if rnd.random() < 0.1 else rnd.choice(SURNAMES)
        goal = 900 if party <= 4 else 1800

        def add(
            at: int, kind: Any, changes: dict[str, Any], sid: str = sid, number: int = number
        ) -> None:
            rows.append((at, len(rows), Event(kind, sid, number, iso_of_epoch(at), changes)))

        add(t, "created", {"label": label, "party_size": party, "goal_seconds": goal})
        paged = t + max(60, int(rnd.gauss(1200, 400)))
        if realistic and rnd.random() < 0.10:
            add(t + rnd.randint(10, 300), "updated", {"party_size": party + 1})
        add(paged, "paged", {"page": 1})
        if realistic and rnd.random() < 0.05:
            paged += rnd.randint(60, 180)
            add(paged, "paged", {"page": 2})
        end = "removed" if realistic and rnd.random() < 0.05 else "cleared"
        add(paged + rnd.randint(30, 300), end, {})
    rows.sort(key=lambda r: (r[0], r[1]))
    out = []
    for at, _, ev in rows:
        observed = iso_of_epoch(at + rnd.choice((0, 0, 1)))
        source = "resync" if realistic and rnd.random() < 0.03 else "notify"
        out.append((ev, observed, source))
    return out


@dataclass
class Figures:
    label: str
    requests: int
    bytes_out: int
    bytes_in: int
    engine_out: int | None = None
    engine_in: int | None = None

    def per(self, sessions: int) -> float:
        return (self.bytes_out + self.bytes_in) / sessions


async def _engine(
    db: Path, label: str, batch: int, windows: list[list[tuple[Event, str, str]]] | None = None
) -> Figures:
    """Upload what `db` holds (a backlog), or replay `windows` of events with a run after each."""
    srv = IngestServer(token=TOKEN).start()
    try:
        cfg = with_overrides(
            Config(),
            site={"id": SITE},
            store={"path": str(db), "synchronous": "NORMAL"},
            sync={"endpoint": srv.url, "max_batch_events": batch, "max_batch_bytes": 1 << 24},
        )
        engine = SyncEngine(cfg, token=TOKEN)
        writer = Store(db, synchronous="NORMAL") if windows else None
        sent = received = 0
        try:
            for window in windows or [[]]:
                if writer is not None and window:
                    writer.write_batch(WriteBatch(events=window))
                res = await engine.sync_once()
                if not res.done:
                    raise click.ClickException(f"bench upload failed: {res.error}")
                sent += res.bytes_sent
                received += res.bytes_received
        finally:
            await engine.aclose()
            if writer is not None:
                writer.close()
        log = srv.log
        return Figures(label, log.requests, log.bytes_in, log.bytes_out, sent, received)
    finally:
        srv.stop()


def naive_event_json(site: str, ev: dict[str, Any]) -> bytes:
    """One event as a plain JSON document: the one-POST-per-event comparison."""
    return json.dumps({"id": event_id(site, ev["seq"]), **ev}, ensure_ascii=False).encode()


def windows_of(
    events: list[tuple[Event, str, str]], interval: int
) -> list[list[tuple[Event, str, str]]]:
    """The events as they would have been pending at each sync run `interval` seconds apart."""
    out: dict[int, list[tuple[Event, str, str]]] = {}
    for item in events:
        out.setdefault((epoch_of_iso(item[1]) or 0) // interval, []).append(item)
    return [out[k] for k in sorted(out)]


async def _naive(db: Path) -> Figures:
    srv = IngestServer(token=TOKEN).start()
    store = Store(db, readonly=True)
    try:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            url = srv.url.replace("/ingest", "/naive")
            for ev in store.iter_events():
                r = await client.post(
                    url,
                    content=naive_event_json(SITE, ev),
                    headers={"Content-Type": "application/json"},
                )
                r.raise_for_status()
        log = srv.log
        return Figures("naive, 1 POST/event", log.requests, log.bytes_in, log.bytes_out)
    finally:
        store.close()
        srv.stop()


def run_bench(
    sessions: int, batches: list[int], intervals: list[int], *, realistic: bool
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="pe-bench-sync-"))
    try:
        template = tmp / "template.db"
        Store(template).close()  # schema only
        events = evening(sessions, realistic=realistic)
        backlog = tmp / "backlog.db"
        shutil.copy(template, backlog)
        store = Store(backlog, synchronous="NORMAL")
        store.write_batch(WriteBatch(events=events))
        store.close()
        rows: list[Figures] = []
        for b in batches:
            db = tmp / f"b{b}.db"
            shutil.copy(backlog, db)
            rows.append(asyncio.run(_engine(db, f"backlog, {b}/batch", b)))
        for i in intervals:
            db = tmp / f"i{i}.db"
            shutil.copy(template, db)
            windows = windows_of(events, i)
            label = f"every {i} s, ~{len(events) / len(windows):.0f}/batch"
            rows.append(asyncio.run(_engine(db, label, 500, windows)))
        naive = asyncio.run(_naive(backlog))
        return {
            "sessions": sessions,
            "events": len(events),
            "mix": "realistic" if realistic else "created → paged → seated",
            "rows": rows,
            "naive": naive,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@click.command("sync")
@click.option("--sessions", type=int, default=600, show_default=True, help="guests in the evening")
@click.option("--batch", "batches", default="50,200,500", show_default=True, help="batch sizes")
@click.option(
    "--interval",
    "intervals",
    default="30,300,900",
    show_default=True,
    help="sync intervals (s) to replay the evening with",
)
@click.option("--json", "as_json", is_flag=True)
def sync_bench_cmd(sessions: int, batches: str, intervals: str, as_json: bool) -> None:
    """Bytes on the wire per session lifecycle (created → paged → seated) vs naive JSON."""
    sizes = [int(b) for b in batches.split(",") if b.strip()]
    every = [int(i) for i in intervals.split(",") if i.strip()]
    t0 = time.perf_counter()
    results = [run_bench(sessions, sizes, every, realistic=r) for r in (False, True)]
    elapsed = time.perf_counter() - t0
    machine = machine_description(f"httpx {httpx.__version__}")
    if as_json:
        doc = [
            {
                **{k: v for k, v in r.items() if k not in ("rows", "naive")},
                "rows": [
                    {**f.__dict__, "per_session": round(f.per(r["sessions"]), 1)}
                    for f in (*r["rows"], r["naive"])
                ],
            }
            for r in results
        ]
        click.echo(json.dumps({"machine": machine, "results": doc}, indent=2))
        return
    click.echo(f"machine: {machine}")
    for r in results:
        n = r["sessions"]
        naive = r["naive"].per(n)
        click.echo(
            f"\n{n} sessions, {r['events']} events ({r['events'] / n:.2f}/session), mix: {r['mix']}"
        )
        click.echo(
            f"{'':26} {'requests':>8} {'B out':>9} {'B in':>8} {'B/session':>10} {'vs naive':>9}"
        )
        for f in (*r["rows"], r["naive"]):
            check = ""
            if f.engine_out is not None and (f.engine_out, f.engine_in) != (
                f.bytes_out,
                f.bytes_in,
            ):
                check = f"  (engine counted {f.engine_out}/{f.engine_in})"
            click.echo(
                f"{f.label:26} {f.requests:8d} {f.bytes_out:9d} {f.bytes_in:8d} "
                f"{f.per(n):10.1f} {naive / f.per(n):8.1f}×{check}"
            )
    click.echo(f"\n(bytes counted at the receiver's sockets, both directions; {elapsed:.1f} s)")
