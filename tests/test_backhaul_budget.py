"""The budget: projection, the mode thresholds and the cycle boundary (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.backhaul.reading import cycle_bounds, decide

GB = 1_000_000_000


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "day", "start", "end"),
    [
        (utc(2024, 5, 15, 12), 1, utc(2024, 5, 1), utc(2024, 6, 1)),
        (utc(2024, 5, 15, 12), 20, utc(2024, 4, 20), utc(2024, 5, 20)),
        (utc(2024, 5, 20), 20, utc(2024, 5, 20), utc(2024, 6, 20)),
        (utc(2024, 1, 3), 10, utc(2023, 12, 10), utc(2024, 1, 10)),
        (utc(2024, 12, 31, 23, 59), 28, utc(2024, 12, 28), utc(2025, 1, 28)),
    ],
)
def test_cycle_bounds(now, day, start, end):
    assert cycle_bounds(now, day) == (start, end)


def _mode_at_projection(projected_share: float) -> str:
    """Half-way through a 30-day cycle, used = half the projection (linear burn)."""
    now = utc(2024, 6, 16)  # June: 30 days, 15 elapsed
    used = round(projected_share * 10 * GB / 2)
    return decide(10 * GB, used, now, 0, now, 1).mode


@pytest.mark.parametrize(
    ("share", "mode"),
    [
        (0.50, "normal"),
        (0.7498, "normal"),
        (0.75, "conserve"),
        (0.90, "conserve"),
        (0.95, "critical"),
        (1.5, "critical"),
    ],
)
def test_mode_switches_at_the_projection_thresholds(share, mode):
    assert _mode_at_projection(share) == mode


def test_projection_is_used_plus_burn_rate_times_time_left():
    now = utc(2024, 6, 16)
    b = decide(10 * GB, 3 * GB, now - timedelta(hours=1), 1 * GB, now, 1)
    assert b.used_bytes == 4 * GB  # operator figure + the agent's own bytes since
    assert b.projected_bytes == 8 * GB
    assert b.percent_used == 40.0 and b.percent_projected == 80.0
    assert b.mode == "conserve" and b.alert is None
    assert (b.cycle_start, b.cycle_end) == (utc(2024, 6, 1), utc(2024, 7, 1))


def test_blocked_when_used_reaches_the_cap_and_alerts_on_used():
    now = utc(2024, 6, 16)
    assert decide(10 * GB, 10 * GB, now, 0, now, 1).mode == "blocked"
    assert decide(10 * GB, 9 * GB, now, 1 * GB, now, 1).mode == "blocked"
    assert decide(10 * GB, 10 * GB, now, 0, now, 1).alert == "exhausted"
    assert decide(10 * GB, 9_600_000_000, now, 0, now, 1).alert == "critical"
    assert decide(10 * GB, 7_600_000_000, now, 0, now, 1).alert == "warn"
    assert decide(10 * GB, 7 * GB, now, 0, now, 1, 60, 80).alert == "warn"


def test_reset_at_the_cycle_boundary():
    before = utc(2024, 6, 30, 23, 0)
    full = decide(10 * GB, 99 * GB // 10, before, 0, before, 1)
    assert full.mode == "critical"
    after = utc(2024, 7, 1, 0, 5)
    fresh = decide(10 * GB, 99 * GB // 10, before, 0, after, 1)
    assert fresh.used_bytes == 0 and fresh.mode == "normal"
    assert fresh.cycle_start == utc(2024, 7, 1)
    # the agent's own bytes since the (old) reading still count
    assert decide(10 * GB, 99 * GB // 10, before, 5, after, 1).used_bytes == 5


def test_operator_cycle_window_is_used_while_it_holds():
    now = utc(2016, 11, 10, 5, 31)
    window = (utc(2016, 10, 31, 10, 30), utc(2016, 11, 30, 10, 29, 59))
    b = decide(GB, 1000, now, 0, now, 1, cycle=window)
    assert (b.cycle_start, b.cycle_end) == window
    later = utc(2016, 12, 5)
    assert decide(GB, 1000, now, 0, later, 1, cycle=window).cycle_start == utc(2016, 12, 1)


def test_early_in_a_cycle_the_projection_does_not_explode():
    now = utc(2024, 6, 1, 1)  # one hour in
    b = decide(10 * GB, 10_000_000, now, 0, now, 1)
    assert b.projected_bytes < 400_000_000 and b.mode == "normal"


def test_without_a_cap_the_mode_is_normal():
    now = utc(2024, 6, 16)
    b = decide(0, 50 * GB, now, 0, now, 1)
    assert b.mode == "normal" and b.percent_used is None and b.used_bytes == 50 * GB
