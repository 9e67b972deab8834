"""`pager-edge bench board`: the arithmetic of its figures (fast) and one short real run (bench)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from bench import machine_description
from bench.board import build_store, run_bench
from bench.board_figures import (
    combine,
    format_report,
    minute_shift,
    projected_percent,
    summarize,
    tick_costs,
)


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

    result["cpu_ms"] = {"tick_ms": 5.0, "tick_ms_max": 6.0, "seconds": 9, "minute_turn_ms": 60.0,
                        "changes": 20, "change_ms": 10.0}  # fmt: skip
    text = format_report(result, sessions=500, size=(120, 40), rate=4.0, mode="staff board, pty")
    assert "5.00 ms per second of timers" in text and "60.0 ms per minute turn" in text
    assert "10.00 ms per change (20)" in text
    assert "4.60 % here" in text and "4–7× slower (a Raspberry Pi) ≈ 18–32 % of a core" in text


def _ticks(start: float, cpu: float, per_second: list[float]) -> list[tuple[float, float, float]]:
    """One tick a second (refresh of 1 ms); `per_second` ms of CPU between consecutive ticks."""
    ticks = [(start, cpu, 1.0)]
    for ms in per_second:
        start, cpu = start + 1.0, cpu + ms / 1000
        ticks.append((start, cpu, 1.0))
    return ticks


def test_a_second_of_timers_is_the_median_clear_of_the_minute_turn_which_costs_the_rest():
    # 20 s: ordinary seconds of 5 ms, a turn at 102.5 s costing 40 + 30 ms in the two seconds
    # around it, and its alerts removed 12 s later (+10 ms).
    seconds = [5.0] * 19
    seconds[2], seconds[3], seconds[14] = 45.0, 35.0, 15.0
    ticks = _ticks(100.0, 1.0, seconds)
    used = sum(seconds)  # the phase's CPU: 175 ms
    c = tick_costs(ticks, 100.0, 120.0, [102.5, 162.5], used)
    assert c["tick_ms"] == pytest.approx(5.0) and c["tick_ms_max"] == pytest.approx(5.0)
    assert c["minute_turn_ms"] == pytest.approx(175 - 20 * 5.0)  # all beyond 20 ordinary seconds
    assert c["seconds"] < 19  # the aftermath's seconds are left out of the median

    # Without a turn in the phase every second counts and nothing is put down to a turn.
    quiet = tick_costs(_ticks(200.0, 2.0, [5.0] * 4 + [7.0]), 200.0, 206.0, [102.5], 27.0)
    assert quiet["tick_ms"] == pytest.approx(5.0) and quiet["minute_turn_ms"] is None
    assert quiet["seconds"] == 5 and quiet["tick_ms_max"] == pytest.approx(7.0)


def test_summarize_puts_the_changes_phase_cpu_less_its_timers_on_each_change():
    record = {
        "marks": {"start": [100.0, 1.0], "phase2": [110.0, 1.1], "end": [120.0, 1.5]},
        "frames": [], "updates": [], "shown": {},
        "ticks": _ticks(100.0, 1.0, [10.0] * 9),  # 10 ms a second, no turn
        "turns": [170.0],
    }  # fmt: skip
    commits = {n: 110.0 + n / 4 for n in range(1, 40)}  # 39 changes, ~4/s
    costs = summarize(record, commits)["cpu_ms"]
    assert costs["tick_ms"] == pytest.approx(10.0) and costs["minute_turn_ms"] is None
    # 400 ms in the changes phase, 10 s × 10 ms of it timers: 300 ms over 39 changes
    assert costs["changes"] == 39 and costs["change_ms"] == pytest.approx(300 / 39, abs=0.01)


def test_projection_scales_the_per_unit_figures():
    costs = {"tick_ms": 6.0, "change_ms": 11.0, "minute_turn_ms": 60.0}
    assert projected_percent(costs, 4.0) == pytest.approx((6 + 44 + 1) / 10)
    assert projected_percent(costs, 4.0, slowdown=5) == pytest.approx(5 * 5.1)
    assert projected_percent({**costs, "minute_turn_ms": None}, 0.0) == pytest.approx(0.6)
    assert projected_percent({**costs, "change_ms": None}, 4.0) is None
    assert projected_percent({**costs, "change_ms": -2.0}, 4.0) == pytest.approx(0.7)


def test_minute_shift_puts_a_moment_on_a_whole_minute():
    moment = datetime(2026, 3, 13, 18, 30, 41, 250_000, tzinfo=UTC)
    shift = minute_shift(moment)
    assert shift == timedelta(seconds=18.75)
    assert (moment + shift).second == 0 and (moment + shift).microsecond == 0
    assert minute_shift(datetime(2026, 3, 13, 18, 31, tzinfo=UTC)) == timedelta(0)


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


def test_rounds_combine_into_medians_with_their_spread():
    def one(cpu: float, change_ms: float | None, p95: float) -> dict:
        # fmt: off
        return {
            "timers_only": {"cpu_percent": 1.0, "seconds": 20, "frames": 26, "updates": 20,
                            "update_ms_p50": 2.0, "update_ms_max": 9.0},
            "timers_and_changes": {"cpu_percent": cpu, "seconds": 20, "frames": 78,
                                   "updates": 98, "update_ms_p50": 3.0, "update_ms_max": 12.0},
            "cpu_ms": {"tick_ms": 6.0, "tick_ms_max": 8.0, "seconds": 15, "changes": 78,
                       "change_ms": change_ms, "minute_turn_ms": None},
            "visible_ms": {"p50": 110.0, "p95": p95, "max": 230.0, "n": 78, "of": 78},
            "machine": "m",
            "refresh": 0.2,
        }
        # fmt: on

    rounds = [one(5.6, 12.0, 200.0), one(4.2, 9.0, 210.0), one(4.8, None, 190.0)]
    c = combine(rounds)
    assert c["rounds"] == 3 and c["machine"] == "m"
    assert c["timers_and_changes"]["cpu_percent"] == pytest.approx(4.8)
    assert c["cpu_ms"]["change_ms"] == pytest.approx(10.5)  # a round without a figure is left out
    assert c["cpu_ms"]["minute_turn_ms"] is None and c["visible_ms"]["p95"] == pytest.approx(200)
    assert c["spread"]["changes_cpu_percent"] == [4.2, 5.6]
    assert c["spread"]["change_ms"] == [9.0, 12.0]
    assert combine(rounds[:1]) is rounds[0]  # one round is reported as it is
    text = format_report(c | {"refresh": 0.2}, sessions=500, size=(120, 40), rate=4.0, mode="x")
    assert "medians of 3 rounds" in text and "4.20–5.60 % with changes" in text
