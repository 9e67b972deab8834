"""The sync on the metered link: when it sends (max_delay, heartbeats), over what (HTTP/2 on TLS,
resumed sessions), and what an upgrade leaves in flight. Real receivers on loopback, clocks injected.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agent import __version__
from agent.clock import VirtualClock, iso_of_epoch
from agent.config import Config, with_overrides
from agent.session import Event
from agent.store import Store
from agent.sync.engine import SyncEngine
from agent.sync.schedule import Pending, flush_wait, heartbeat_wait
from agent.sync.status import sync_status
from bench.sync import evening
from tests.sync_receiver import TOKEN, FaultyServer, assert_exactly_once, write_events

SITE = "site-link"


# --- when: pure ---------------------------------------------------------------------------------


def test_flush_waits_for_the_oldest_event_to_be_max_delay_old():
    now = 1_795_000_000.0
    p = Pending(3, 10, iso_of_epoch(now - 45), False)
    assert flush_wait(p, now=now, seen_for=0.0, max_delay=60.0, full_at=500) == 15.0
    assert flush_wait(p, now=now + 15, seen_for=0.0, max_delay=60.0, full_at=500) == 0.0
    assert flush_wait(p, now=now, seen_for=0.0, max_delay=60.0, full_at=3) == 0.0  # full
    urgent = Pending(1, 10, iso_of_epoch(now), True)  # in flight, or deferred events
    assert flush_wait(urgent, now=now, seen_for=0.0, max_delay=60.0, full_at=500) == 0.0
    none = Pending(0, None, None)
    assert flush_wait(none, now=now, seen_for=0.0, max_delay=60.0, full_at=500) == math.inf
    # the wall clock set back: observed "in the future", the monotonic age still counts
    ahead = Pending(1, 10, iso_of_epoch(now + 3600))
    assert flush_wait(ahead, now=now, seen_for=50.0, max_delay=60.0, full_at=500) == 10.0
    odd = Pending(1, 10, "yesterday-ish")  # a time the agent cannot read: no reason to hold it
    assert flush_wait(odd, now=now, seen_for=0.0, max_delay=60.0, full_at=500) == 0.0
    # a path that forgets idle connections: go before the open one is forgotten
    assert flush_wait(p, now=now, seen_for=0.0, max_delay=60.0, full_at=500, connection_left=4) == 4


def test_heartbeat_when_nothing_reached_the_receiver_for_a_while_or_after_an_upgrade():
    now = 1_795_000_000.0
    kw = {"now": now, "agent": "0.2.0", "every": 1800.0}
    assert heartbeat_wait(last_contact=iso_of_epoch(now - 600), announced="0.2.0", **kw) == 1200
    assert heartbeat_wait(last_contact=iso_of_epoch(now - 1800), announced="0.2.0", **kw) == 0
    assert heartbeat_wait(last_contact=iso_of_epoch(now - 10), announced="0.1.0", **kw) == 0
    assert heartbeat_wait(last_contact=None, announced="0.2.0", **kw) == 0
    assert heartbeat_wait(last_contact=iso_of_epoch(now + 9e5), announced="0.2.0", **kw) == 1800
    off = {**kw, "every": 0.0}
    assert heartbeat_wait(last_contact=None, announced=None, **off) == math.inf


# --- when: the engine's own loop on a virtual clock ----------------------------------------------


def engine_on(clock: VirtualClock, db: Path, url: str, **sync) -> SyncEngine:
    cfg = with_overrides(
        Config(),
        site={"id": SITE},
        store={"path": str(db)},
        sync={"endpoint": url, "timeout": 5.0, "max_backoff": 5.0, **sync},
    )
    return SyncEngine(
        cfg,
        token=TOKEN,
        clock=lambda: clock.now().timestamp(),
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )


def guest(clock: VirtualClock, uuid: str, kind: str = "created") -> tuple[Event, str, str]:
    now = iso_of_epoch(clock.now().timestamp())
    return Event(kind, uuid, 7, now, {"party_size": 2}), now, "notify"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "pe.db"
    Store(path).close()
    return path


async def test_the_engine_sends_once_the_oldest_event_is_max_delay_old_then_beats(db):
    srv = FaultyServer().start()
    clock = VirtualClock()
    engine = engine_on(clock, db, srv.url, interval=30.0, max_delay=60.0, heartbeat_minutes=30.0)
    store = Store(db, synchronous="NORMAL")
    try:
        first = await engine.step()  # a new agent: nothing to send, it says hello (its version)
        assert srv.log.heartbeats[-1]["agent"] == __version__ and first == 30.0
        write_events(store, [guest(clock, "a")])
        assert await engine.step() == 30.0 and srv.log.count() == 0  # seen, 60 s to go: a look
        clock.advance(30)
        write_events(store, [guest(clock, "b")])
        assert await engine.step() == 30.0 and srv.log.count() == 0
        clock.advance(20)
        assert await engine.step() == 10.0  # the oldest is 50 s old: sleep until it is due
        clock.advance(10)
        await engine.step()
        assert srv.log.count() == 2 and srv.log.requests == 2  # one batch for both, at 60 s
        beats = len(srv.log.heartbeats)
        for _ in range(59):  # half an hour idle: looks, and nothing on the wire …
            clock.advance(await engine.step())
        assert srv.log.requests == 2
        for _ in range(3):  # … until the heartbeat is due
            clock.advance(await engine.step())
        assert len(srv.log.heartbeats) == beats + 1 and srv.log.requests == 3
        beat = srv.log.heartbeats[-1]
        assert beat["heartbeat"]["pending"] == 0 and beat["site"] == SITE
        # a full batch goes at once, whatever its age
        write_events(store, [guest(clock, f"f{i}") for i in range(5)])
        engine.cfg = with_overrides(engine.cfg, sync={"max_batch_events": 5})
        await engine.step()
        assert srv.log.count() == 7
    finally:
        store.close()
        await engine.aclose()
        srv.stop()
    reader = Store(db, readonly=True)
    try:
        s = sync_status(reader)
        assert s["backlog"] == 0 and s["requests"] == srv.log.requests
        assert s["bytes_sent"] == srv.log.bytes_in and s["bytes_received"] == srv.log.bytes_out
    finally:
        reader.close()


async def test_a_v1_batch_in_flight_before_the_upgrade_goes_again_as_v1(db):
    """The same key must carry the same events in the same format; new batches are v2."""
    formats: list[tuple[str, str]] = []

    def note(batch: dict) -> None:
        formats.append((batch["format"], f"{batch['first']}-{batch['last']}"))

    srv = FaultyServer(reject=note).start()
    store = Store(db, synchronous="NORMAL")
    write_events(store, evening(5))  # 15 events
    store.conn.execute('UPDATE sync_state SET inflight = \'{"kind":"all","lo":0,"hi":6}\'')
    store.conn.commit()
    store.close()
    engine = engine_on(VirtualClock(), db, srv.url)
    try:
        res = await engine.sync_once()
    finally:
        await engine.aclose()
        srv.stop()
    assert res.done
    assert formats == [("pager-edge-sync/1", "1-6"), ("pager-edge-sync/2", "7-15")]
    reader = Store(db, readonly=True)
    try:
        assert_exactly_once(srv.log, list(reader.iter_events()), SITE)
    finally:
        reader.close()


# --- over what: HTTP/2 on TLS, resumed, counted ---------------------------------------------------


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    pytest.importorskip("hypercorn")
    from bench.tls import make_chain

    return make_chain(tmp_path_factory.mktemp("tls"))


async def test_http2_over_tls_with_a_resumed_session_counted_to_the_byte(db, chain):
    from bench.link import IngestApp, LinkProxy, serve_https

    clock = VirtualClock()
    app = IngestApp(TOKEN)
    port, stop = await serve_https(app, str(chain.cert_file), str(chain.key_file))
    proxy = await LinkProxy(("127.0.0.1", port), clock).start()
    url = f"https://localhost:{proxy.port}/v1/batches"
    engine = engine_on(clock, db, url, ca_file=str(chain.ca_file), max_batch_events=20)
    store = Store(db, synchronous="NORMAL")
    try:
        write_events(store, evening(10))
        assert (await engine.sync_once()).done
        clock.advance(1000)  # idle past the keep-alive: a new connection, the session resumed
        write_events(store, evening(3, seed=9))
        assert (await engine.sync_once()).done
    finally:
        store.close()
        await engine.aclose()
        await proxy.stop()
        await stop()
    assert app.http_versions == {"2": 3}  # ALPN chose h2: 2 + 1 batches
    assert engine.link.connections == 2 and engine.link.resumed == 1
    t = proxy.totals
    assert (engine.link.sent, engine.link.received) == (t.payload_in, t.payload_out)
    assert t.payload_out > chain.chain_bytes  # the first handshake carried the chain …
    assert engine.bytes_sent + engine.bytes_received == engine.link.sent + engine.link.received
    reader = Store(db, readonly=True)
    try:
        assert_exactly_once(app.log, list(reader.iter_events()), SITE)
    finally:
        reader.close()


async def test_a_bad_certificate_is_refused_and_nothing_is_sent(db, chain, tmp_path):
    from bench.link import IngestApp, serve_https
    from bench.tls import make_chain

    other = make_chain(tmp_path / "other")  # a chain the agent does not trust
    app = IngestApp(TOKEN)
    port, stop = await serve_https(app, str(other.cert_file), str(other.key_file))
    engine = engine_on(VirtualClock(), db, f"https://localhost:{port}/v1/batches",
                       ca_file=str(chain.ca_file))  # fmt: skip
    store = Store(db, synchronous="NORMAL")
    try:
        write_events(store, evening(2))
        res = await engine.sync_once()
    finally:
        store.close()
        await engine.aclose()
        await stop()
    assert res.retryable and "certificate" in res.error.lower() and app.log.count() == 0


async def test_a_nat_that_forgets_idle_connections_is_learnt(db, chain):
    """The first request on a forgotten connection is lost and goes again at once; then the
    engine opens a new connection after that much idle time instead of losing requests."""
    from bench.link import IngestApp, LinkProxy, serve_https

    clock = VirtualClock()
    app = IngestApp(TOKEN)
    port, stop = await serve_https(app, str(chain.cert_file), str(chain.key_file))
    proxy = await LinkProxy(("127.0.0.1", port), clock, nat_idle=60.0).start()
    url = f"https://localhost:{proxy.port}/v1/batches"
    engine = engine_on(clock, db, url, ca_file=str(chain.ca_file), heartbeat_minutes=0.0)
    store = Store(db, synchronous="NORMAL")
    try:
        for i in range(12):  # an event every 80 s: longer than the NAT keeps an idle connection
            write_events(store, [guest(clock, f"g{i}")])
            for _ in range(4):
                clock.advance(await engine.step())
                proxy.tick()
                if clock.monotonic() >= 80 * (i + 1):
                    break
            clock.advance(max(0.0, 80 * (i + 1) - clock.monotonic()))
            proxy.tick()
    finally:
        store.close()
        await engine.aclose()
        await proxy.stop()
        await stop()
    assert app.log.count() == 12 and not app.log.key_mismatches
    # The idle time at a loss is an upper bound of the NAT's: a second loss at most narrows it.
    assert 1 <= proxy.totals.resets <= 2
    assert engine._path_idle is not None and engine._path_idle >= 60.0
    assert proxy.totals.connections <= 12 + proxy.totals.resets


@pytest.mark.bench
async def test_bench_sync_short_run_counts_every_case():
    pytest.importorskip("hypercorn")
    from bench.sync import run_bench

    r = await run_bench(20, quiet_hours=1.0)
    busy, _h1, _nat, *_rest = r["rows"]
    assert r["naive"].per_guest > busy.per_guest > 0 and busy.stale_max <= 60
    assert busy.engine_bytes == busy.payload_in + busy.payload_out
    assert r["quiet"].extra["heartbeats"] == 2
