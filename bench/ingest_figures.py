"""The ingest benchmark's arithmetic: medians with their spread, percentiles, commit times per
notification, and when a backlog grows. Pure functions, so the report can be tested without a run.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Spread:
    """The median of alternating rounds and the range the rounds covered (a noisy machine)."""

    median: float
    low: float
    high: float

    def text(self, fmt: str = ",.0f") -> str:
        return f"{self.median:{fmt}} ({self.low:{fmt}}–{self.high:{fmt}})"


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no rounds")
    return Spread(statistics.median(values), min(values), max(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values: a value that was measured."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n q / 100), at least the first
    return ordered[int(rank) - 1]


def commit_times(count: int, commit_log: Sequence[tuple[float, int]], base: int) -> list[float]:
    """When the i-th of `count` notifications (in arrival order, after `base` already committed)
    became durable: the first commit whose running total reaches it. NaN if none did."""
    totals = [n for _, n in commit_log]
    out: list[float] = []
    for i in range(count):
        at = bisect.bisect_left(totals, base + i + 1)
        out.append(commit_log[at][0] if at < len(totals) else float("nan"))
    return out


def latencies_ms(sent: Sequence[float], committed: Sequence[float]) -> list[float]:
    """Send → commit in milliseconds for every notification that was committed."""
    return [1000 * (c - s) for s, c in zip(sent, committed, strict=True) if c == c]


def slope(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (time, value) samples: how fast a backlog grows (per second)."""
    if len(samples) < 2:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in samples)
    mean_v = statistics.fmean(v for _, v in samples)
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in samples) / var


GROWTH_SHARE = 0.03  # a backlog growing by more than 3 % of the offered rate is not keeping up


def backlog_grows(samples: Sequence[tuple[float, float]], offered: float) -> bool:
    """Over the later two thirds of a step (the first third is the start-up), does the backlog
    (scheduled minus committed) grow faster than `GROWTH_SHARE` of the offered rate?"""
    if not samples:
        return False
    start, end = samples[0][0], samples[-1][0]
    later = [s for s in samples if s[0] >= start + (end - start) / 3]
    return slope(later) > GROWTH_SHARE * offered


@dataclass(frozen=True, slots=True)
class Step:
    offered: float  # notifications/s the producer was told to send
    delivered: float  # notifications/s committed over the step
    grows: bool
    p99_ms: float


def saturation(steps: Sequence[Step]) -> tuple[float | None, float | None]:
    """(the highest offered rate kept up with below the first growing step, the lowest offered
    rate at which the backlog grew); None where the sweep did not find one."""
    ordered = sorted(steps, key=lambda s: s.offered)
    first_growing = next((s.offered for s in ordered if s.grows), None)
    kept = [
        s.offered
        for s in ordered
        if not s.grows and (first_growing is None or s.offered < first_growing)
    ]
    return (max(kept) if kept else None), first_growing


def share(part: Spread, whole: Spread) -> float:
    """Median durable ingest as a share of the median ceiling."""
    return part.median / whole.median


P99_TARGET_MS = 15.0  # the latency target, notification → committed


def quick_up_to(steps: Sequence[Step], limit_ms: float) -> float | None:
    """The highest offered rate below the first step whose p99 exceeds `limit_ms` (None if the
    lowest step already does): how far the latency target holds as the load rises."""
    best = None
    for s in sorted(steps, key=lambda s: s.offered):
        if s.p99_ms > limit_ms:
            break
        best = s.offered
    return best
