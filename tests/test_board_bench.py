"""`pager-edge bench board`: the arithmetic of its figures (fast) and one short real run (bench)."""

from __future__ import annotations

import os

import pytest

from pager_edge.bench import machine_description
from pager_edge.bench.board import build_store, format_report, run_bench, summarize


def test_summarize_phases_and_change_to_visible_latency():
    record = {
        "marks": {"start": [100.0, 1.0], "phase2": [110.0, 1.1], "end": [120.0, 1.5]},
        "frames": [[101.0, 2.0], [105.0, 4.0], [111.0, 20.0], [115.0, 30.0]],
        "updates": [[101.0, 1.0], [112.0, 5.0]],
        "shown": {"1": 111.2, "3": 113.5},  # change 2 was overtaken by change 3
    }
    commits = {1: 111.0, 2: 112.0, 3: 113.0, 4: 119.9}  # 4 never shown
    s = summarize(record, commits)
    assert s["timers_only"]["cpu_percent"] == pytest.approx(1.0)
    assert s["timers_and_changes"]["cpu_percent"] == pytest.approx(4.0)
    assert s["timers_only"]["frames"] == 2 and s["timers_and_changes"]["frames"] == 2
    v = s["visible_ms"]
    assert (v["n"], v["of"]) == (3, 4)
    assert v["max"] == pytest.approx(1500.0)  # change 2 became visible with change 3
    assert v["p50"] == pytest.approx(500.0)


def test_report_names_the_machine_and_the_targets():
    result = {
        "timers_only": {"seconds": 10, "cpu_percent": 0.5, "frames": 10, "frame_ms_p50": 2.0,
                        "frame_ms_max": 7.0, "updates": 10, "update_ms_p50": 1.0,
                        "update_ms_max": 2.0},
        "timers_and_changes": {"seconds": 20, "cpu_percent": 6.0, "frames": 40,
                               "frame_ms_p50": 15.0, "frame_ms_max": 40.0, "updates": 40,
                               "update_ms_p50": 3.0, "update_ms_max": 9.0},
        "visible_ms": {"n": 20, "of": 20, "p50": 120.0, "p95": 230.0, "max": 240.0},
        "machine": machine_description("Textual 8.2.8"),
        "refresh": 0.2,
    }  # fmt: skip
    text = format_report(result, sessions=500, size=(120, 40), rate=1.0, mode="staff board, pty")
    assert "500 active sessions, 120×40" in text and f"{os.cpu_count()} CPUs" in text
    assert "Textual 8.2.8" in text
    assert "CPU ≤ 5 % (MISSED)" in text and "(9.0 ms, ok)" in text and "p95 ≤ 250 ms (ok)" in text


def test_bench_store_has_the_marker_first(tmp_path):
    from agent.store import Store

    db = tmp_path / "b.db"
    build_store(db, 50)
    store = Store(db, readonly=True)
    try:
        rows = store.active_views()
    finally:
        store.close()
    assert len(rows) == 50 and rows[0].uuid == "bench-marker"


@pytest.mark.bench
def test_short_headless_run_produces_figures():
    result = run_bench(sessions=100, rate=2.0, phase1=1.0, phase2=2.0, headless=True)
    assert result["timers_only"]["seconds"] > 0.9
    assert result["visible_ms"]["n"] >= 1
