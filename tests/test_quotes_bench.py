"""`pager-edge bench quotes`: the restaurant model and the scoring (fast), one short real run (bench)."""

from __future__ import annotations

import os
import random
from datetime import timedelta

import pytest
from click.testing import CliRunner

from bench.quotes import (
    FIRST_EVENING,
    ZONE,
    Party,
    Restaurant,
    Scored,
    SeedResult,
    format_report,
    mean_abs_error_minutes,
    quotes_bench_cmd,
    run_seed,
    score_evening,
    simulate_evening,
)
from tui.core.parties import size_bucket

T0 = FIRST_EVENING.replace(hour=20)
MIN = timedelta(minutes=1)


def test_a_party_is_seen_as_the_store_held_it_at_each_moment():
    p = Party("p", 4, T0, paged=T0 + 20 * MIN, ended=T0 + 23 * MIN, seated=True)
    assert p.as_of(T0 - MIN) is None
    assert p.as_of(T0).state == "waiting" and p.as_of(T0).first_notified is None
    assert p.as_of(T0 + 21 * MIN).state == "paged"
    done = p.as_of(T0 + 30 * MIN)
    assert (done.state, done.cleared) == ("cleared", "2026-05-01T18:23:00Z")  # Paris is UTC+2
    gone = Party("g", 2, T0, ended=T0 + 50 * MIN)
    assert gone.as_of(T0 + 60 * MIN).state == "removed" and gone.wait is None
    assert p.wait == 20 * 60


def test_each_quote_uses_only_what_was_known_at_the_arrival():
    """Three parties of four seated in the 50 minutes before T0, somebody of four waiting all
    along (the last of them still waits at T0, and walks away later): one table every
    50 / (3 + 1) = 12.5 min, and a party arriving at T0 with one ahead is quoted two: 25 min.
    Its own page at +30 and the party arriving after it are not known yet."""
    seated = [
        Party(f"s{i}", 4, T0 - a * MIN, paged=T0 - p * MIN, ended=T0 - p * MIN + MIN, seated=True)
        for i, (a, p) in enumerate([(50, 36), (40, 25), (30, 10)])
    ]
    me = Party("me", 4, T0, paged=T0 + 30 * MIN, ended=T0 + 32 * MIN, seated=True)
    after = Party("after", 3, T0 + 5 * MIN, paged=T0 + 40 * MIN, ended=T0 + 41 * MIN, seated=True)
    walked = Party("walked", 4, T0 - 20 * MIN, ended=T0 + 50 * MIN)  # ahead, then walks away
    scored = score_evening([*seated, me, after, walked], [], default_goal=900, zone=ZONE)
    by_actual = {s.actual: s for s in scored}
    assert len(scored) == 5  # the walk-away has no wait to compare with
    mine = by_actual[30 * 60]
    assert mine.quotes == {"default": 900.0, "history": 900.0, "live": 1500.0}
    assert mine.live_kind == "live"
    first = by_actual[14 * 60]  # s0: nothing known before it
    assert first.live_kind == "default" and first.quotes["live"] == 900.0


def test_mean_absolute_error_in_minutes():
    scored = [
        Scored(2, 600.0, {"default": 900.0, "history": 600.0, "live": 300.0}, "live"),
        Scored(4, 1800.0, {"default": 900.0, "history": 1200.0, "live": 2100.0}, "live"),
    ]
    assert mean_abs_error_minutes(scored, "default") == pytest.approx(10.0)  # (5 + 15) / 2
    assert mean_abs_error_minutes(scored, "history") == pytest.approx(5.0)
    assert mean_abs_error_minutes(scored, "live") == pytest.approx(5.0)
    assert mean_abs_error_minutes([], "live") == 0.0


def test_an_evening_is_first_in_first_out_per_table_size_and_deterministic():
    model = Restaurant()
    a = simulate_evening(random.Random(3), FIRST_EVENING, model)
    b = simulate_evening(random.Random(3), FIRST_EVENING, model)
    assert [(p.size, p.arrived, p.paged, p.ended) for p in a] == [
        (p.size, p.arrived, p.paged, p.ended) for p in b
    ]
    assert len(a) > 20
    for bucket in range(len(model.tables)):
        paged = [p for p in a if size_bucket(p.size) == bucket and p.paged is not None]
        assert [p.uuid for p in sorted(paged, key=lambda p: p.arrived)] == [
            p.uuid for p in sorted(paged, key=lambda p: (p.paged, p.arrived))
        ]
    for p in a:
        assert p.ended is not None and p.arrived <= p.ended
        if p.paged is not None:
            assert p.arrived <= p.paged < p.ended and p.seated
    # Arrivals stay within the evening (17:30–22:00 local).
    hours = [p.arrived.astimezone(ZONE).hour + p.arrived.astimezone(ZONE).minute / 60 for p in a]
    assert min(hours) >= 17.5 and max(hours) < 22.0


def test_report_names_machine_seed_and_each_quote():
    r = SeedResult(7, parties=3, walked=1)
    r.scored = [Scored(2, 600.0, {"default": 900.0, "history": 600.0, "live": 660.0}, "live")]
    text = format_report([r, r], warmup=4, evenings=4, default_goal=900, model=Restaurant())
    assert "seeds 7, 7" in text and f"{os.cpu_count()} CPUs" in text
    assert "default quote: MAE 5.0 min over 2 seeds (range 5.0–5.0)" in text
    assert "live quote: MAE 1.0 min" in text and "history quote: MAE 0.0 min" in text


def test_a_seed_is_deterministic():
    one = run_seed(5, warmup=1, evenings=1, default_goal=900).figures()
    assert one == run_seed(5, warmup=1, evenings=1, default_goal=900).figures()
    assert one["parties"] and one["seed"] == 5


@pytest.mark.bench
def test_quotes_bench_runs_and_prints_its_figures():
    result = CliRunner().invoke(
        quotes_bench_cmd, ["--seed", "1", "--seeds", "2", "--warmup", "2", "--evenings", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "seeds 1, 2; 2 warm-up + 2 measured" in result.output
    assert "machine:" in result.output
    for kind in ("default", "history", "live"):
        assert f"{kind} quote: MAE" in result.output
