"""`pager-edge bench sync`: the metered link, counted as the operator bills it.

The real :class:`SyncEngine` sends an evening of guests to an HTTPS receiver (hypercorn, HTTP/2 and
HTTP/1.1 by ALPN, a generated root → intermediate → leaf chain that the engine trusts through
``[sync] ca_file``) through a proxy that stands for the cellular path (:mod:`.link`): every TCP
segment and byte of payload below TLS is counted from the kernel's ``TCP_INFO`` at the proxy's
client-facing socket, and each segment is billed 40 bytes of IPv4 + TCP headers.

Time is virtual and compressed, the bytes are real: the engine runs its own loop (``step``) on a
:class:`~agent.clock.VirtualClock`; each pause it asks for jumps the clock at once, and the events a
host stand would have produced meanwhile are written to the store (arrivals every ~36 s: ~100 guests
an hour, ~20 min waits, three events each, lifecycles interleaved). The path's idle rules — a
receiver closing connections idle 300 s, a NAT forgetting them after 60 s — run on the same clock.
An evening of four hours takes seconds.

Cases: a busy evening at the default settings, over HTTP/2 and over HTTP/1.1; the same behind a
NAT that drops idle connections after 60 s; a quiet night (heartbeats only); the evening as a backlog
after an outage. The comparison: each event as one plain JSON POST with httpx's defaults, sent when
it happens, over the same link, counted the same way.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx

from agent.clock import VirtualClock, epoch_of_iso, iso_of_epoch
from agent.config import Config, with_overrides
from agent.session import Event
from agent.store import Store, WriteBatch
from agent.sync.counted_transport import ssl_context
from agent.sync.engine import SyncEngine
from agent.sync.receiver import IngestLog
from agent.sync.wire import event_id
from bench import machine_description

SURNAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Müller Øberg"
).split()
TOKEN = "bench-token-0123456789abcdef0123456789abcdef"  # the length of a real bearer token
SITE = "site-0042"


def evening(
    sessions: int,
    *,
    seed: int = 7,
    realistic: bool = False,
    start: int = 1_795_000_000,
    gap: float = 45.0,
) -> list[tuple[Event, str, str]]:
    """Events of `sessions` guests as the store would hold them (event, observed_at, source).

    Arrivals every ~`gap` s (exponential), waits of ~20 min, seated 0.5–5 min after the page, so lifecycles
    interleave as at a real host stand. `realistic` adds what also happens: party-size updates
    (10 %), re-pages (5 %), walk-outs removed instead of seated (5 %), resync-sourced rows (3 %).
    """
    rnd = random.Random(seed)
    rows: list[tuple[int, int, Event]] = []
    t = start
    for _ in range(sessions):
        t += max(1, int(rnd.expovariate(1 / gap)))
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


START = 1_795_000_000  # 2026-11-18T07:46:40Z: the evening's first arrival is just after
GUEST_GAP = 36.0  # seconds between arrivals: ~100 guests an hour
# Real time let pass after a request: longer than Linux's delayed-ACK timer (40 ms), so the agent
# acknowledges the answer in a segment of its own, as it does when the next request is a minute
# away (on the compressed clock it would otherwise ride on the next request, for free).
ACK_DELAY = 0.06


@dataclass
class Case:
    label: str
    ip_bytes: int
    payload_out: int  # agent → receiver (TCP payload: TLS records, handshakes)
    payload_in: int
    segments: int
    connections: int
    requests: int
    resumed: int = 0  # TLS handshakes that resumed a session
    resets: int = 0  # connections a NAT forgot and reset
    engine_bytes: int | None = None  # what the engine counted itself (payload, both ways)
    stale_max: float | None = None  # seconds from observed to stored, worst
    stale_median: float | None = None
    guests: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_guest(self) -> float:
        return self.ip_bytes / max(1, self.guests)


class _Bed:
    """Receiver, chain and path for one case, on one virtual clock."""

    def __init__(self, tmp: Path, chain: Any, *, nat_idle: float | None, server_idle: float | None):
        from bench.link import IngestApp, LinkProxy

        self.tmp = tmp
        self.chain = chain
        self.clock = VirtualClock(datetime.fromtimestamp(START - 600, UTC))
        self.log = IngestLog()
        self.stale: list[float] = []
        self.app = IngestApp(TOKEN, self.log, self._stored, lambda: self.clock.now().timestamp())
        self._proxy_args = {"nat_idle": nat_idle, "server_idle": server_idle}
        self.proxy: LinkProxy | None = None
        self._stop: Any = None

    def _stored(self, ids: list[str]) -> None:
        now = self.clock.now().timestamp()
        for eid in ids:
            observed = epoch_of_iso(self.log.events[eid]["observed_at"])
            if observed is not None:
                self.stale.append(now - observed)

    async def __aenter__(self) -> _Bed:
        from bench.link import LinkProxy, serve_https

        port, self._stop = await serve_https(
            self.app, str(self.chain.cert_file), str(self.chain.key_file)
        )
        self.proxy = await LinkProxy(("127.0.0.1", port), self.clock, **self._proxy_args).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proxy is not None
        await self.proxy.stop()
        await self._stop()

    @property
    def url(self) -> str:
        assert self.proxy is not None
        return f"https://localhost:{self.proxy.port}/v1/batches"

    def case(self, label: str, guests: int, requests: int, **kw: Any) -> Case:
        assert self.proxy is not None
        t = self.proxy.totals
        stale = self.stale
        return Case(
            label,
            t.ip_bytes,
            t.payload_in,
            t.payload_out,
            t.segments,
            t.connections,
            requests,
            resets=t.resets,
            stale_max=max(stale) if stale else None,
            stale_median=statistics.median(stale) if stale else None,
            guests=guests,
            **kw,
        )


def _config(db: Path, url: str, ca_file: Path, **sync: Any) -> Config:
    return with_overrides(
        Config(),
        site={"id": SITE},
        store={"path": str(db), "synchronous": "NORMAL"},
        sync={"endpoint": url, "ca_file": str(ca_file), **sync},
    )


async def _evening_case(
    tmp: Path,
    chain: Any,
    events: list[tuple[Event, str, str]],
    guests: int,
    label: str,
    *,
    http2: bool = True,
    nat_idle: float | None = None,
    quiet_hours: float = 0.0,
    server_idle: float = 300.0,
    **sync: Any,
) -> Case:
    """The engine's own loop over the evening on the virtual clock; events appear as they happen."""
    db = tmp / f"{label.replace(' ', '_').replace('/', '_')}.db"
    Store(db).close()
    async with _Bed(tmp, chain, nat_idle=nat_idle, server_idle=server_idle) as bed:
        clock = bed.clock
        engine = SyncEngine(
            _config(db, bed.url, chain.ca_file, **sync),
            token=TOKEN,
            clock=lambda: clock.now().timestamp(),
            monotonic=clock.monotonic,
            sleep=clock.sleep,
            http2=http2,
        )
        writer = Store(db, synchronous="NORMAL")
        todo = sorted(events, key=lambda e: epoch_of_iso(e[1]) or 0)
        end = (epoch_of_iso(todo[-1][1]) or START) + 600 if todo else START + quiet_hours * 3600
        i = 0
        try:
            # The agent had announced this version before the evening: only the evening is counted.
            writer.conn.execute(
                "UPDATE sync_state SET last_heartbeat = ?, heartbeat_agent = ? WHERE id = 1",
                (iso_of_epoch(START - 600), __import__("agent").__version__),
            )
            writer.conn.commit()
            while clock.now().timestamp() < end:
                moved = engine.link.sent
                delay = await engine.step()
                if engine.link.sent != moved:
                    await asyncio.sleep(ACK_DELAY)  # see ACK_DELAY
                target = clock.now().timestamp() + max(delay, 0.001)
                while i < len(todo) and (epoch_of_iso(todo[i][1]) or 0) <= target:
                    j = i
                    while j < len(todo) and (epoch_of_iso(todo[j][1]) or 0) <= target:
                        j += 1
                    writer.write_batch(WriteBatch(events=todo[i:j]))
                    i = j
                clock.advance(target - clock.now().timestamp())
                bed.proxy.tick() if bed.proxy else None
            await engine.sync_once()  # what is left at closing time
        finally:
            await engine.aclose()
            writer.close()
        if bed.log.count() != len(events):
            raise click.ClickException(f"{label}: {bed.log.count()} of {len(events)} events stored")
    return bed.case(
        label,
        guests,
        engine_requests(db),
        resumed=engine.link.resumed,
        engine_bytes=engine.link.sent + engine.link.received,
        extra={"heartbeats": len(bed.log.heartbeats)},
    )


def engine_requests(db: Path) -> int:
    store = Store(db, readonly=True)
    try:
        return int(store.conn.execute("SELECT requests FROM sync_state").fetchone()[0])
    finally:
        store.close()


async def _backlog_case(
    tmp: Path, chain: Any, events: list[tuple[Event, str, str]], guests: int
) -> Case:
    db = tmp / "backlog.db"
    store = Store(db, synchronous="NORMAL")
    store.write_batch(WriteBatch(events=events))
    store.close()
    async with _Bed(tmp, chain, nat_idle=None, server_idle=300.0) as bed:
        clock = bed.clock
        engine = SyncEngine(
            _config(db, bed.url, chain.ca_file),
            token=TOKEN,
            clock=lambda: clock.now().timestamp(),
            monotonic=clock.monotonic,
            sleep=clock.sleep,
        )
        try:
            res = await engine.sync_once()
        finally:
            await engine.aclose()
        if not res.done or bed.log.count() != len(events):
            raise click.ClickException(f"backlog drain failed: {res.error}")
        bed.stale.clear()  # a backlog is stale by definition
    return bed.case(
        "backlog drain, 500/batch",
        guests,
        res.requests,
        resumed=engine.link.resumed,
        engine_bytes=engine.link.sent + engine.link.received,
    )


async def _naive_case(
    tmp: Path, chain: Any, events: list[tuple[Event, str, str]], guests: int, label: str,
    *, nat_idle: float | None = None,
) -> Case:  # fmt: skip
    """Each event as one plain JSON POST when it happens (httpx defaults: HTTP/1.1, keep-alive)."""
    async with _Bed(tmp, chain, nat_idle=nat_idle, server_idle=300.0) as bed:
        clock = bed.clock
        url = bed.url.replace("/v1/batches", "/naive")
        requests = 0
        async with httpx.AsyncClient(
            verify=ssl_context(str(chain.ca_file)), headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client:
            for seq, (ev, observed, source) in enumerate(events, 1):
                at = epoch_of_iso(observed) or START
                clock.advance(max(0.0, at - clock.now().timestamp()))
                if bed.proxy:
                    bed.proxy.tick()
                doc = {"seq": seq, "uuid": ev.uuid, "number": ev.number, "kind": ev.kind,
                       "at": ev.at, "observed_at": observed, "changes": dict(ev.changes),
                       "source": source}  # fmt: skip
                for _attempt in (1, 2):  # a connection the NAT forgot: once more, on a new one
                    requests += 1
                    try:
                        r = await client.post(
                            url,
                            content=naive_event_json(SITE, doc),
                            headers={"Content-Type": "application/json"},
                        )
                        r.raise_for_status()
                        await asyncio.sleep(ACK_DELAY)
                        break
                    except httpx.TransportError:
                        continue
    return bed.case(label, guests, requests)


def naive_event_json(site: str, ev: dict[str, Any]) -> bytes:
    """One event as a plain JSON document: the one-POST-per-event comparison."""
    return json.dumps({"id": event_id(site, ev["seq"]), **ev}, ensure_ascii=False).encode()


async def run_bench(
    guests: int, *, realistic: bool = False, quiet_hours: float = 6.0
) -> dict[str, Any]:
    from bench.tls import make_chain

    tmp = Path(tempfile.mkdtemp(prefix="pe-bench-sync-"))
    try:
        chain = make_chain(tmp / "tls")
        events = evening(guests, realistic=realistic, start=START, gap=GUEST_GAP)
        hours = ((epoch_of_iso(events[-1][1]) or START) - START) / 3600
        rows = [
            await _evening_case(tmp, chain, events, guests, "busy evening, HTTP/2"),
            await _evening_case(tmp, chain, events, guests, "busy evening, HTTP/1.1", http2=False),
            await _evening_case(tmp, chain, events, guests, "NAT drops idle ≥ 60 s", nat_idle=60.0),
            await _evening_case(tmp, chain, events, guests, "max_delay 300 s", max_delay=300.0),
            await _evening_case(
                tmp,
                chain,
                events,
                guests,
                "max_delay 300 s, idle 15 min",
                max_delay=300.0,
                server_idle=900.0,
            ),
            await _backlog_case(tmp, chain, events, guests),
        ]
        quiet = await _evening_case(tmp, chain, [], 0, "quiet night", quiet_hours=quiet_hours)
        naive = await _naive_case(tmp, chain, events, guests, "naive, 1 POST/event")
        naive_nat = await _naive_case(
            tmp, chain, events, guests, "naive, NAT drops idle ≥ 60 s", nat_idle=60.0
        )
        return {
            "guests": guests,
            "events": len(events),
            "hours": round(hours, 2),
            "mix": "realistic" if realistic else "created → paged → seated",
            "chain_bytes": chain.chain_bytes,
            "rows": rows,
            "quiet": quiet,
            "quiet_hours": quiet_hours,
            "naive": naive,
            "naive_nat": naive_nat,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@click.command("sync")
@click.option(
    "--guests",
    type=click.IntRange(min=1),
    default=400,
    show_default=True,
    help="guests in the evening",
)
@click.option("--realistic", is_flag=True, help="also updates, re-pages, walk-outs (3.14/guest)")
@click.option("--json", "as_json", is_flag=True)
def sync_bench_cmd(guests: int, realistic: bool, as_json: bool) -> None:
    """IP bytes per guest lifecycle over HTTPS, as the operator bills them, vs naive POSTs."""
    try:
        import cryptography  # noqa: F401
        import hypercorn  # noqa: F401
    except ImportError:
        raise click.ClickException("bench sync needs: pip install 'pager-edge[bench]'") from None
    t0 = time.perf_counter()
    r = asyncio.run(run_bench(guests, realistic=realistic))
    elapsed = time.perf_counter() - t0
    import h2

    machine = machine_description(f"httpx {httpx.__version__}", f"h2 {h2.__version__}")
    cases: list[Case] = [*r["rows"], r["naive"], r["naive_nat"]]
    if as_json:
        doc = {k: v for k, v in r.items() if k not in ("rows", "quiet", "naive", "naive_nat")}
        doc["cases"] = [{**c.__dict__, "per_guest": round(c.per_guest, 1)} for c in cases]
        doc["quiet"] = r["quiet"].__dict__
        click.echo(json.dumps({"machine": machine, "seconds": round(elapsed, 1), **doc}, indent=2))
        return
    click.echo(f"machine: {machine}")
    click.echo(
        f"{r['guests']} guests over {r['hours']} h, {r['events']} events "
        f"({r['events'] / r['guests']:.2f}/guest), mix: {r['mix']}; certificate chain sent: "
        f"{r['chain_bytes']} B (DER, leaf + intermediate); MSS 1400; 40 B per segment"
    )
    naive = r["naive"].per_guest
    click.echo(
        f"{'':30} {'req':>5} {'conn':>4} {'resum':>5} {'lost':>4} {'segs':>6} {'payload out':>11} "
        f"{'in':>8} {'IP bytes':>9} {'IP B/guest':>10} {'vs naive':>8} {'stale max':>9}"
    )
    for c in cases:
        stale = f"{c.stale_max:8.0f}s" if c.stale_max is not None else f"{'—':>9}"
        click.echo(
            f"{c.label:30} {c.requests:5d} {c.connections:4d} {c.resumed:5d} {c.resets:4d} "
            f"{c.segments:6d} "
            f"{c.payload_out:11d} {c.payload_in:8d} {c.ip_bytes:9d} {c.per_guest:10.1f} "
            f"{naive / c.per_guest:7.1f}× {stale}"
        )
    q = r["quiet"]
    click.echo(
        f"\nquiet night, {r['quiet_hours']:g} h without guests: {q.requests} requests "
        f"({q.extra['heartbeats']} heartbeats), {q.connections} connections, {q.ip_bytes} IP bytes "
        f"({q.ip_bytes / max(1, q.requests):.0f} per heartbeat)"
    )
    for c in r["rows"]:
        if c.engine_bytes is not None:
            click.echo(f"  {c.label}: the engine counted {c.engine_bytes} B of payload itself")
    click.echo(f"\n({elapsed:.1f} s)")
