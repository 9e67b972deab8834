"""The /v1/notify stream: one notification per change, chunking, pings, eviction, faults."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import aiocoap

from tests.simfixtures import PING, Observation, doc, eventually, request, sim_and_client


def sequences(docs: list[dict]) -> list[int]:
    return [d["globalSessionSequence"] for d in docs if "sessions" in d["responseTypes"]]


async def test_a_burst_of_50_changes_gives_50_notifications_in_order():
    async with sim_and_client(ping_interval=5.0) as (sim, ctx, _clock):
        async with Observation(ctx, sim) as obs:
            assert sim.observer_count == 1
            for n in range(1, 51):
                sim.create(n, label=f"guest {n}")
            await obs.wait(lambda o: len(o.messages) >= 50)
            await asyncio.sleep(0.05)
            assert sequences(obs.docs) == list(range(1, 51))
            observe = [m.opt.observe for m in obs.messages]
            assert observe == sorted(observe) and len(set(observe)) == 50
            assert all(
                d["sessions"][0]["sessionSequence"] == d["globalSessionSequence"] for d in obs.docs
            )
            assert sim.notifications_sent == 50


async def test_requests_over_coap_are_broadcast_too():
    async with sim_and_client(ping_interval=5.0) as (sim, ctx, _):
        async with Observation(ctx, sim) as obs:
            await request(ctx, sim, aiocoap.POST, "/v1/sessions", {"number": 3, "action": "page"})
            await request(ctx, sim, aiocoap.POST, "/v1/settings", {"systemId": 2})
            await request(ctx, sim, aiocoap.DELETE, "/v1/sessions/statistics")
            await request(ctx, sim, aiocoap.DELETE, "/v1/sessions?number=3")
            await obs.wait(lambda o: len(o.messages) >= 5)
            kinds = [(d["responseTypes"], d["globalSessionSequence"]) for d in obs.docs]
            assert kinds == [
                (["sessions", "statistics"], 1),
                (["sessions", "statistics"], 2),
                (["settings"], 3),
                (["statistics"], 4),
                (["sessions", "statistics"], 5),
            ]
            assert obs.docs[-1]["sessions"][0]["state"] == "cleared"


async def test_get_sessions_first_answer_is_chunked():
    async with sim_and_client(ping_interval=5.0, initial_chunk=2) as (sim, ctx, _clock):
        for n in range(1, 6):
            sim.create(n, label=None)
        async with Observation(ctx, sim) as obs:
            first = doc(obs.first)
            assert first["responseTypes"] == ["sessions", "statistics"]
            assert first["globalSessionSequence"] == 5
            assert [s["number"] for s in first["sessions"]] == [1, 2]
            await obs.wait(lambda o: len(o.messages) >= 2)
            assert [[s["number"] for s in d["sessions"]] for d in obs.docs] == [[3, 4], [5]]
            assert {d["globalSessionSequence"] for d in obs.docs} == {5}
            sim.create(6)
            await obs.wait(lambda o: len(o.messages) >= 3)
            assert obs.docs[-1]["globalSessionSequence"] == 6


def all_sessions(obs: Observation) -> list[int]:
    return [
        s["number"] for d in [doc(obs.first), *obs.docs] if "sessions" in d for s in d["sessions"]
    ]


async def test_chunks_also_respect_the_block_size():
    async with sim_and_client(ping_interval=5.0) as (sim, ctx, _):
        for n in range(1, 31):
            sim.create(n, label="李娜 Øyvind Zoë José " * 3)
        async with Observation(ctx, sim) as obs:
            await obs.wait(lambda o: len(all_sessions(o)) >= 30)
            assert all(len(m.payload) <= 1024 for m in [obs.first, *obs.messages])
            assert all_sessions(obs) == list(range(1, 31))
            assert len(obs.messages) > 3  # the default of 20 per chunk would not fit a block


async def test_plain_notify_starts_with_metadata_only():
    async with sim_and_client(ping_interval=5.0) as (sim, ctx, _):
        sim.create(1)
        async with Observation(ctx, sim, "/v1/notify") as obs:
            first = doc(obs.first)
            assert first["responseTypes"] == [] and first["globalSessionSequence"] == 1
            assert first["deviceName"] == "T7470"
            sim.page(1)
            await obs.wait(lambda o: len(o.messages) == 1)
        resp = await request(ctx, sim, aiocoap.GET, "/v1/notify?action=get_sessions")
        assert [s["number"] for s in doc(resp)["sessions"]] == [1]


async def test_pings_are_con_notifications_with_the_sequence():
    async with sim_and_client(ping_interval=PING) as (sim, ctx, _):
        sim.create(7)
        async with Observation(ctx, sim) as obs:
            await obs.wait(lambda o: len(o.of_type("ping")) >= 3, timeout=PING * 6)
            pings = [m for m in obs.messages if doc(m)["responseTypes"] == ["ping"]]
            assert all(m.mtype == aiocoap.CON for m in pings)
            assert set(doc(pings[0])) == {
                "responseTypes",
                "globalSessionSequence",
                "timestamp",
                "deviceName",
                "firmwareVersion",
            }
            assert doc(pings[0])["globalSessionSequence"] == 1
            assert sim.observer_count == 1  # acknowledged pings keep the observer


async def test_a_silent_observer_is_evicted_after_three_ping_intervals():
    """A raw socket registers an observation and never ACKs. Measured: evicted ≈ 4 P after
    registration, i.e. 3 P after the first unacknowledged ping (ping at P, its retransmission at
    2 P, give-up at 4 P)."""
    async with sim_and_client(ping_interval=PING) as (sim, _, _clock):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        req = aiocoap.Message(code=aiocoap.GET, observe=0, uri_path=("v1", "notify"))
        req.mtype, req.mid, req.token = aiocoap.CON, 0x1234, b"\x01\x02"
        await loop.sock_sendto(sock, req.encode(), ("127.0.0.1", sim.port))
        registered = time.monotonic()
        first = aiocoap.Message.decode(await loop.sock_recv(sock, 2048))
        assert first.mtype == aiocoap.ACK and first.opt.observe == 0
        seen: list[tuple[float, aiocoap.Message]] = []

        async def read() -> None:
            while True:
                data = await loop.sock_recv(sock, 2048)
                seen.append((time.monotonic() - registered, aiocoap.Message.decode(data)))

        reader = asyncio.create_task(read())
        try:
            await eventually(lambda: sim.observer_count == 0, timeout=PING * 8)
            evicted = time.monotonic() - registered
        finally:
            reader.cancel()
            sock.close()
        assert 3.5 * PING <= evicted <= 5 * PING, evicted
        assert all(m.mtype == aiocoap.CON for _, m in seen)
        assert len({m.mid for _, m in seen}) == 1 and len(seen) == 2  # one ping, retransmitted once
        assert json.loads(seen[0][1].payload)["responseTypes"] == ["ping"]


async def test_a_silent_observer_with_a_pending_notification_is_evicted_3p_after_it():
    async with sim_and_client(ping_interval=PING) as (sim, _, _clock):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        req = aiocoap.Message(code=aiocoap.GET, observe=0, uri_path=("v1", "notify"))
        req.mtype, req.mid, req.token = aiocoap.CON, 0x4321, b"\x03"
        try:
            await loop.sock_sendto(sock, req.encode(), ("127.0.0.1", sim.port))
            await loop.sock_recv(sock, 2048)
            sim.create(1)
            changed = time.monotonic()
            await eventually(lambda: sim.observer_count == 0, timeout=PING * 8)
            evicted = time.monotonic() - changed
        finally:
            sock.close()
        assert 2.5 * PING <= evicted <= 4 * PING, evicted


async def test_a_cancelled_client_observation_is_cleaned_up():
    async with sim_and_client(ping_interval=PING) as (sim, ctx, _):
        async with Observation(ctx, sim):
            assert sim.observer_count == 1
        sim.create(1)  # the CON notification is answered with RST
        await eventually(lambda: sim.observer_count == 0, timeout=PING * 3)


async def test_drop_rate_is_seeded_and_leaves_detectable_gaps():
    async def run(seed: int) -> tuple[list[int], int]:
        async with sim_and_client(ping_interval=5.0, seed=seed, drop_rate=0.25) as (sim, ctx, _):
            async with Observation(ctx, sim) as obs:
                for n in range(1, 201):
                    sim.create(n)
                await eventually(lambda: sim.notifications_sent + sim.notifications_dropped == 200)
                await obs.wait(lambda o: len(o.messages) == sim.notifications_sent)
                return sequences(obs.docs), sim.notifications_dropped

    got, dropped = await run(seed=4)
    assert 30 <= dropped <= 70  # 25 % of 200, give or take
    assert len(got) == 200 - dropped and got == sorted(got)
    assert await run(seed=4) == (got, dropped)  # same seed, same drops
    assert (await run(seed=5))[0] != got


async def test_duplicates_and_reordering():
    async with sim_and_client(ping_interval=PING, seed=1, duplicate_rate=0.2, reorder_rate=0.2) as (
        sim,
        ctx,
        _,
    ):
        async with Observation(ctx, sim) as obs:
            for n in range(1, 101):
                sim.create(n)
            # The last held-back notification goes out before the next ping.
            await obs.wait(lambda o: set(sequences(o.docs)) == set(range(1, 101)), timeout=2)
            seqs = sequences(obs.docs)
            assert len(seqs) > 100  # duplicates
            assert seqs != sorted(seqs)  # reordered
            assert sim.fanout.duplicated > 0 and sim.fanout.reordered > 0


async def test_silence_stops_pings_and_notifications_then_resume():
    async with sim_and_client(ping_interval=PING) as (sim, ctx, _):
        async with Observation(ctx, sim) as obs:
            sim.silence()
            await asyncio.sleep(0.02)
            count = len(obs.messages)
            sim.create(1)
            await asyncio.sleep(PING * 2.5)
            assert len(obs.messages) == count  # nothing at all while silent
            assert sim.notifications_suppressed == 1
            sim.resume()
            await obs.wait(lambda o: len(o.of_type("ping")) >= 1)
            sim.create(2)
            await obs.wait(lambda o: 2 in sequences(o.docs))
            assert 1 not in sequences(obs.docs)  # lost, as across an outage: a gap to detect


async def test_restart_resets_the_sequence_and_ends_observations():
    async with sim_and_client(ping_interval=PING) as (sim, ctx, _clock):
        for n in (1, 2, 3):
            sim.create(n)
        async with Observation(ctx, sim) as obs:
            await sim.restart(reset_sequence=True)
            assert sim.observer_count == 0
            sim.create(4)
            await asyncio.sleep(PING * 2)
            assert all(d["globalSessionSequence"] != 1 for d in obs.docs)  # never reached us
        async with Observation(ctx, sim) as fresh:
            assert doc(fresh.first)["globalSessionSequence"] == 1
            await fresh.wait(lambda o: all_sessions(o) == [1, 2, 3, 4])
        resp = await request(ctx, sim, aiocoap.GET, "/v1/sessions")
        assert doc(resp)["globalSessionSequence"] == 1


async def test_inject_raw_small_and_blockwise():
    async with sim_and_client(ping_interval=1.0) as (sim, ctx, _):
        async with Observation(ctx, sim) as obs:
            sim.inject_raw(b"{not json")
            big = json.dumps({"responseTypes": ["sessions"], "pad": "x" * 20_000}).encode()
            sim.inject_raw(big)
            sim.create(1)
            await obs.wait(lambda o: len(o.messages) >= 3, timeout=5)
            payloads = [m.payload for m in obs.messages[:3]]
            assert payloads[0] == b"{not json"
            assert payloads[1] == big
            assert doc(obs.messages[2])["globalSessionSequence"] == 1


async def test_vendor_exact_notifications_over_the_wire():
    async with sim_and_client(ping_interval=5.0, vendor_exact_notifications=True) as (sim, ctx, _):
        async with Observation(ctx, sim) as obs:
            sim.create(1)
            await obs.wait(lambda o: len(o.messages) == 1)
            assert list(obs.docs[0]) == [
                "responseTypes",
                "globalSessionSequence",
                "statistics",
                "sessions",
            ]
