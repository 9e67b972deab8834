"""`pager-edge bench cloud`: how batches are cut (fast), and one short real run (bench)."""

from __future__ import annotations

import pytest

from agent.sync.wire import decode_body
from bench.cloud import cut, run_bench, site_day


def test_a_site_day_is_cut_as_the_agent_would_sync_it():
    events = site_day(3, 40)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    batches = cut("bench-003", events, 30)
    decoded = [decode_body(b.body) for b in batches]
    assert [e for d in decoded for e in d["events"]] == [
        {"id": f"bench-003:{e['seq']}", **e} for e in events
    ]  # every event once, in order, as the encoder wrote it
    for b, d in zip(batches, decoded, strict=True):
        assert b.key == f"bench-003:{d['first']}-{d['last']}" and b.events == len(d["events"])
    assert len(cut("bench-003", events, 900)) < len(batches) / 5  # rarer syncs, bigger batches
    assert max(b.events for b in cut("bench-003", events, 10**9, most=50)) == 50


@pytest.mark.bench
def test_short_real_run_stores_every_event_once():
    r = run_bench(sites=6, guests=30, interval=60, replicas=2, concurrency=8, resend=0.2)
    assert r["stored_events"] == r["events"] > 500 and not r["sites_wrong"]
    assert r["second_copies_409"] > 0 and all(p["requests"] for p in r["per_replica"])
    assert r["latency_ms"]["p99"] >= r["latency_ms"]["p50"] > 0
