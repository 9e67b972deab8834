"""`pager-edge bench web`: its readings of /proc and its report (fast), and one short real run
(bench: a stand, two websocket tablets, three Chromium rounds)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.web import children, cpu_seconds, memory, p95, report, run


def test_memory_and_cpu_of_a_live_process_and_its_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while child.pid not in children(os.getpid()):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        ours = memory(os.getpid())
        assert ours["rss"] >= ours["pss"] >= ours["uss"] > 1  # MB; shared pages split in PSS
        before = cpu_seconds(os.getpid())
        sum(i * i for i in range(2_000_000))  # some CPU of our own
        assert cpu_seconds(os.getpid()) > before
    finally:
        child.kill()
        child.wait()


def test_p95_and_the_report():
    assert p95([float(i) for i in range(1, 101)]) == 95.0 and p95([7.0]) == 7.0
    text = report(
        {
            "machine": "a machine",
            "tablets": 2,
            "rounds": 3,
            "board_rss_mb": 45.8,
            "board_pss_mb": 35.2,
            "board_uss_mb": 33.1,
            "per_extra_tablet_mb": 33.9,
            "tree_pss_mb": [71.4, 105.3],
            "cpu_idle_percent": 0.7,
            "cpu_1_change_per_s_percent": 1.15,
            "notification_ms": [130.0, 150.0],
            "seat_ms": [],
        }
    )
    assert "machine: a machine" in text and "per extra tablet: 33.9 MB" in text
    assert "71.4, 105.3 MB" in text and "p50 140 ms, p95 150 ms (n=2)" in text
    assert "tap Seat → row gone: not measured" in text


@pytest.mark.bench
async def test_a_short_real_run():
    result = await run(tablets=2, rounds=1, seconds=1.0, taps=3)
    assert result["board_rss_mb"] > 10 and result["per_extra_tablet_mb"] is not None
    assert len(result["notification_ms"]) == len(result["seat_ms"]) == 3
