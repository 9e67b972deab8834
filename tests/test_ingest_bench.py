"""`pager-edge bench ingest`: its arithmetic, its CoAP bytes and its transmitter shadow (fast),
and one short real run (bench marker)."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import aiocoap
import pytest
from aiocoap.numbers.contentformat import ContentFormat

from agent.clock import VirtualClock
from agent.controller.protocol import parse_document
from agent.simulator.jsonio import dumps
from agent.simulator.model import Transmitter
from bench import coapwire as cw
from bench.ingest import rounds_report, saturation_report
from bench.ingest_figures import (
    Step,
    backlog_grows,
    commit_times,
    latencies_ms,
    percentile,
    quick_up_to,
    saturation,
    slope,
    spread,
)
from bench.producer import Shadow, lifecycle_docs, step_of

# --- arithmetic ---------------------------------------------------------------------------------


def test_spread_and_percentile_are_measured_values():
    s = spread([3000.0, 2500.0, 4000.0])
    assert (s.median, s.low, s.high) == (3000.0, 2500.0, 4000.0)
    assert s.text() == "3,000 (2,500–4,000)"
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 99) == 99.0
    assert percentile(values, 50) == 50.0
    assert percentile([7.0], 99) == 7.0
    assert percentile(list(reversed(values)), 100) == 100.0
    with pytest.raises(ValueError):
        spread([])


def test_commit_times_map_each_notification_to_its_commit():
    # 10 notifications were committed before; then commits of 3, 2 and 4 notifications
    log = [(5.0, 10), (10.0, 13), (10.5, 15), (11.0, 19)]
    times = commit_times(10, log, base=10)
    assert times[:3] == [10.0, 10.0, 10.0]
    assert times[3:5] == [10.5, 10.5]
    assert times[5:9] == [11.0] * 4
    assert math.isnan(times[9])  # never committed
    sent = [9.9, 9.95, 9.99, 10.1, 10.2, 10.3, 10.4, 10.5, 10.6, 10.7]
    lat = latencies_ms(sent, times)
    assert len(lat) == 9  # the uncommitted one is left out, not counted as fast
    assert lat[0] == pytest.approx(100.0)
    assert lat[8] == pytest.approx(400.0)


def test_a_growing_backlog_is_told_from_a_steady_one():
    steady = [(t / 10, 50.0 + (5 if t % 2 else -5)) for t in range(40)]
    assert slope(steady) == pytest.approx(0.0, abs=1.0)
    assert not backlog_grows(steady, 1000.0)
    # the producer falls behind by 100/s at 1,000/s offered: 10 %, over the 3 % threshold
    growing = [(t / 10, 100.0 * t / 10) for t in range(40)]
    assert slope(growing) == pytest.approx(100.0)
    assert backlog_grows(growing, 1000.0)
    assert not backlog_grows(growing, 10_000.0)  # 1 % of 10,000/s: within the noise allowance
    # a start-up hump that then drains does not count as growth
    hump = [(t / 10, 300.0 if t < 10 else 40.0) for t in range(40)]
    assert not backlog_grows(hump, 1000.0)


def test_saturation_is_the_first_offered_rate_whose_backlog_grows():
    steps = [
        Step(1000, 1000, False, 3.0),
        Step(1500, 1490, False, 5.0),
        Step(2000, 1700, True, 80.0),
        Step(2500, 1800, True, 200.0),
    ]
    assert saturation(steps) == (1500, 2000)
    assert saturation(steps[:2]) == (1500, None)
    assert saturation(steps[2:]) == (None, 2000)
    lines = saturation_report(steps, spread([4000.0]))
    assert "grows from 2,000/s offered (50% of the ceiling)" in lines[0]
    assert "kept up at 1,500/s" in lines[0]
    assert "2,000→1,700 (p99 80 ms) grows" in lines[1]
    assert "1,500→1,490 (p99 5 ms)," in lines[1]
    assert "p99 ≤ 15 ms up to 1,500/s offered (38% of the ceiling)" in lines[2]


def test_the_latency_target_holds_up_to_the_step_before_the_first_slow_one():
    steps = [Step(100, 100, False, 4.0), Step(300, 300, False, 16.0), Step(200, 200, False, 9.0)]
    assert quick_up_to(steps, 15.0) == 200
    assert quick_up_to(steps, 20.0) == 300
    assert quick_up_to(steps, 3.0) is None
    assert "above 15 ms at every step" in saturation_report(steps[1:2], spread([400.0]))[2]


def test_rounds_report_gives_medians_spread_and_the_share():
    ceilings = [
        {"rate": 10_000.0, "cpu_ms": 0.06, "producer_cpu_ms": 0.02},
        {"rate": 12_000.0, "cpu_ms": 0.05, "producer_cpu_ms": 0.03},
        {"rate": 11_000.0, "cpu_ms": 0.07, "producer_cpu_ms": 0.02},
    ]
    base = {"p50_ms": 5.0, "p99_ms": 12.0, "max_ms": 14.0, "resyncs": 0, "gaps": 0}
    ingests = [
        {**base, "rate": 8_000.0, "cpu_ms": 0.10},
        {**base, "rate": 8_400.0, "cpu_ms": 0.09},
        {**base, "rate": 7_000.0, "cpu_ms": 0.11},
    ]
    paced = [{**base, "offered": 4_400.0, "p99_ms": p} for p in (6.0, 9.0, 7.5)]
    lines = rounds_report(ceilings, ingests, paced)
    text = "\n".join(lines)
    assert "11,000 (10,000–12,000) notifications/s" in text
    assert "8,000 (7,000–8,400) notifications/s = 73 % of the ceiling" in text
    assert "rounds: 80%, 70%, 64%" in text
    assert "agent 0.100 (0.090–0.110) ms, bare aiocoap 0.060 (0.050–0.070) ms" in text
    assert "the agent's own 0.040 ms" in text
    assert "40% of the ceiling (4,400/s offered)" in text and "p99 7.5 (6.0–9.0) ms" in text


# --- the bytes ----------------------------------------------------------------------------------


def _model() -> tuple[Transmitter, VirtualClock]:
    clock = VirtualClock(datetime(2026, 11, 20, 18, 0, 0, tzinfo=UTC))
    return Transmitter(clock=clock, seed=3), clock


def test_prepared_notifications_are_coap_that_aiocoap_decodes():
    model, clock = _model()
    doc = next(lifecycle_docs(model, clock, 1, first=0, rate=1000))
    step = step_of(doc)
    token = b"\x01\x02\x03\x04"
    for observe in (1, 300, 70_000, (1 << 24) + 5):
        raw = cw.notification(cw.CON, 0xBEEF, token, observe, step.tail)
        msg = aiocoap.Message.decode(raw)
        assert msg.mtype == aiocoap.CON and msg.mid == 0xBEEF and msg.token == token
        assert msg.code == aiocoap.CONTENT
        assert msg.opt.observe == observe & 0xFFFFFF
        assert msg.opt.content_format == ContentFormat.JSON
        assert msg.payload == dumps(doc)
        parsed = parse_document(msg.payload)  # the agent's own parser reads the document
        assert parsed.meta.sequence == model.sequence
        assert parsed.sessions is not None and parsed.sessions[0].label == "Party 1 Zoë"
        assert cw.decode(raw).payload == msg.payload  # and so does the producer's decoder


def test_answers_with_block2_and_etag_decode_in_aiocoap():
    raw = cw.encode(
        cw.ACK,
        cw.CONTENT,
        7,
        b"\xaa",
        [(cw.BLOCK2, cw.block2_value(3, True, 6)), (cw.ETAG, b"12345678"),
         (cw.CONTENT_FORMAT, bytes([cw.JSON_FORMAT]))],
        b"x" * 1024,
    )  # fmt: skip
    msg = aiocoap.Message.decode(raw)
    assert msg.mtype == aiocoap.ACK and msg.mid == 7 and msg.token == b"\xaa"
    assert msg.opt.block2.block_number == 3 and msg.opt.block2.more
    assert msg.opt.block2.size_exponent == 6
    assert msg.opt.etag == b"12345678"
    assert len(msg.payload) == 1024


def test_requests_aiocoap_encodes_are_read_by_the_producer():
    req = aiocoap.Message(
        code=aiocoap.GET, uri="coap://127.0.0.1:5683/v1/notify?action=get_sessions", observe=0
    )
    req.mid, req.token, req.mtype = 4242, b"\x09\x08", aiocoap.CON
    got = cw.decode(req.encode())
    assert (got.mtype, got.code, got.mid, got.token) == (cw.CON, cw.GET, 4242, b"\x09\x08")
    assert got.path() == "/v1/notify" and got.query() == ["action=get_sessions"]
    assert got.uint_option(cw.OBSERVE) == 0
    follow = aiocoap.Message(code=aiocoap.GET, uri="coap://127.0.0.1/v1/sessions/history")
    follow.opt.block2 = aiocoap.optiontypes.BlockOption.BlockwiseTuple(12, False, 6)
    follow.mid, follow.token, follow.mtype = 1, b"", aiocoap.CON
    assert cw.decode(follow.encode()).block2() == (12, False, 6)
    with pytest.raises(cw.CoapDecodeError):
        cw.decode(b"\x40\x01")


# --- the shadow ---------------------------------------------------------------------------------


def test_the_shadow_answers_as_the_simulated_device_would():
    """After every prepared notification, the shadow's GET documents equal the model's own."""
    model, clock = _model()
    shadow = Shadow(model, history_limit=5)
    reference, ref_clock = _model()
    model.history_limit = None
    reference.history_limit = 5
    steps = [step_of(d) for d in lifecycle_docs(model, clock, 12, first=0, rate=2)]
    replay = lifecycle_docs(reference, ref_clock, 12, first=0, rate=2)
    assert len(steps) == 36
    for step in steps:
        next(replay)  # the reference device makes the same change...
        shadow.apply(step)  # ...and the shadow learns it from the prepared notification
        assert shadow.sessions_document() == reference.sessions_document()
        assert shadow.history_document() == reference.history_document()
        assert shadow.ping_document() == reference.ping_document()
    assert shadow.sequence == 36 and not shadow.active and len(shadow.history) == 5


def test_initial_chunks_fit_one_block_and_carry_every_active_session():
    model, clock = _model()
    shadow = Shadow(model, history_limit=5)
    docs = lifecycle_docs(model, clock, 8, first=0, rate=2)
    for _ in range(16):  # eight created and paged, none seated yet
        shadow.apply(step_of(next(docs)))
    chunks = shadow.initial_chunks(limit=1024)
    assert len(chunks) > 1 and all(len(c) <= 1024 for c in chunks)
    numbers = [s.number for c in chunks for s in parse_document(c).sessions or ()]
    assert numbers == list(range(1, 9))


# --- a real run ---------------------------------------------------------------------------------


@pytest.mark.bench
def test_a_short_real_run(tmp_path: Path):
    from bench.ingest import measure_ceiling, measure_ingest
    from bench.producer import ProducerProcess

    producer = ProducerProcess(history_limit=50)
    try:
        ceiling = asyncio.run(measure_ceiling(producer, 100, 4))
        ingest = asyncio.run(measure_ingest(producer, 100, tmp_path / "a.db", window=4))
        paced = asyncio.run(measure_ingest(producer, 50, tmp_path / "b.db", window=4, rate=300))
    finally:
        producer.stop()
    assert ceiling["notifications"] == 300 and ceiling["rate"] > 0
    assert ingest["notifications"] == 300 and 0 < ingest["rate"]
    assert ingest["gaps"] == 0 and ingest["resyncs"] == 0
    assert ingest["p99_ms"] >= ingest["p50_ms"] > 0
    assert paced["seconds"] >= 150 / 300 * 0.9  # it really was paced
    assert not backlog_grows(paced["samples"], 300)
    lines = rounds_report([ceiling], [ingest], [paced])
    assert "% of the ceiling" in lines[1]


def test_the_split_prototype_frames_payloads_and_reports_beside_the_ceiling():
    from bench.ingest import split_report
    from bench.split import frame, unframe

    payloads = [b"", b"{}", "Zoë".encode() * 300, bytes(range(256))]
    assert unframe(frame(payloads)) == payloads and unframe(frame([])) == []
    ceilings = [{"rate": 10_000.0}, {"rate": 12_000.0}]
    splits = [
        {
            "rate": r,
            "cpu_ms": 0.2,
            "main_cpu_ms": 0.1,
            "worker_cpu_ms": 0.1,
            "worker_peak_rss_mb": m,
        }
        for r, m in ((8_000.0, 30.0), (6_000.0, 31.5))
    ]
    paced = [{"p50_ms": 3.0, "p99_ms": 8.0}, {"p50_ms": 4.0, "p99_ms": 9.0}]
    text = "\n".join(split_report(splits, ceilings, paced))
    assert "7,000 (6,000–8,000) notifications/s = 64 % of the ceiling (rounds: 80%, 50%)" in text
    assert "peak RSS 31.5 MB" in text and "p99 8.5 (8.0–9.0) ms" in text


@pytest.mark.bench
def test_a_short_real_run_of_the_split_prototype(tmp_path: Path):
    from bench.producer import ProducerProcess
    from bench.split import measure_split

    producer = ProducerProcess(history_limit=50)
    try:
        r = asyncio.run(measure_split(producer, 100, tmp_path / "s.db", window=4))
    finally:
        producer.stop()
    assert r["notifications"] == 300 and r["rate"] > 0 and r["worker_cpu_ms"] > 0
    assert r["p99_ms"] >= r["p50_ms"] > 0
    events = sqlite3.connect(tmp_path / "s.db").execute("SELECT count(*) FROM events").fetchone()
    assert events[0] == 200  # created and paged; the ends wait for a history it cannot fetch


def test_the_benches_refuse_nonsense_values_with_a_message_not_a_traceback():
    from click.testing import CliRunner

    from pager_edge.cli import cli

    for args in (
        ["bench", "ingest", "--rounds", "0"],
        ["bench", "ingest", "--lifecycles", "0"],
        ["bench", "ingest", "--window", "0"],
        ["bench", "sync", "--guests", "0"],
        ["bench", "cloud", "--sites", "0"],
        ["bench", "board", "--rate", "0"],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, args
        assert "Invalid value for" in result.output and "Traceback" not in result.output
