"""The arithmetic of `pager-edge bench board`: a run's record → its figures → the report.

Pure functions over what the board's probe recorded (monotonic times, process CPU) and the writer's
commit times, so that each figure can be checked by a test without running a board.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

TARGETS = {"cpu_percent": 5.0, "update_ms": 50.0, "visible_p95_ms": 250.0}
PI_SLOWDOWN = (4.0, 7.0)  # a Raspberry Pi 4/5 against the x86 machines the figures come from
# After a minute turn: the late alerts it raised stay 12 s (tui.app's notify timeout), then go.
AFTERMATH = 14.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def minute_shift(moment: datetime) -> timedelta:
    """How far to move a clock forward (0 to < 60 s) for `moment` to fall on a whole minute."""
    into = moment.second + moment.microsecond / 1e6
    return timedelta(seconds=(60 - into) % 60)


def tick_costs(
    ticks: list[tuple[float, float, float]],
    lo: float,
    hi: float,
    turns: list[float],
    cpu_ms: float,
) -> dict[str, Any]:
    """CPU per second of timers and per minute turn, for a phase [lo, hi) that used `cpu_ms`.

    Each tick notes (monotonic, process CPU) when its refresh ends; the CPU between two ticks is a
    second of the board with timers only: a tick, its paint, five polls. An ordinary second is the
    median of those that keep clear of a minute turn's aftermath (rebuild, repaint, flashed rows,
    the late alerts shown for 12 s and then removed); a minute turn costs whatever the phase used
    beyond its ordinary seconds.
    """
    inside = [t for t in ticks if lo <= t[0] < hi]
    in_phase = [t for t in turns if lo <= t < hi]
    seconds: list[float] = []
    clear: list[float] = []
    for (t0, c0, *_a), (t1, c1, *_b) in itertools.pairwise(inside):
        seconds.append((c1 - c0) * 1000)
        if not any(t0 < turn + AFTERMATH and turn - 1.0 < t1 for turn in in_phase):
            clear.append(seconds[-1])
    ordinary = clear if len(clear) >= 3 else seconds
    tick_ms = pct(ordinary, 50)
    minute_ms = None
    if in_phase and ordinary:
        minute_ms = max(0.0, (cpu_ms - tick_ms * (hi - lo)) / len(in_phase))
    return {
        "tick_ms": round(tick_ms, 2),
        "tick_ms_max": round(max(ordinary, default=float("nan")), 2),
        "seconds": len(ordinary),
        "minute_turn_ms": None if minute_ms is None else round(minute_ms, 1),
    }


def summarize(record: dict[str, Any], commits: dict[int, float]) -> dict[str, Any]:
    marks = record["marks"]
    (t0, c0), (t1, c1), (t2, c2) = marks["start"], marks["phase2"], marks["end"]

    def phase(lo: float, hi: float, cpu: float) -> dict[str, float]:
        frames = [d for t, d in record["frames"] if lo <= t < hi]
        updates = [d for t, d in record["updates"] if lo <= t < hi]
        return {
            "seconds": round(hi - lo, 2),
            "cpu_percent": round(100 * cpu / (hi - lo), 2),
            "frames": len(frames),
            "updates": len(updates),
            "update_ms_p50": round(pct(updates, 50), 2),
            "update_ms_max": round(max(updates, default=0.0), 2),
        }

    turns = record.get("turns", [])
    costs = tick_costs(record.get("ticks", []), t0, t1, turns, (c1 - c0) * 1000)
    changes = sum(1 for t in commits.values() if t1 <= t < t2)
    timers = costs["tick_ms"] * (t2 - t1) + (costs["minute_turn_ms"] or 0.0) * sum(
        1 for t in turns if t1 <= t < t2
    )
    costs["changes"] = changes
    costs["change_ms"] = round(((c2 - c1) * 1000 - timers) / changes, 2) if changes else None
    shown = {int(k): v for k, v in record["shown"].items()}
    latencies = []
    for seq, committed in commits.items():
        # The first frame showing this change, or a later one (a newer label replaced it).
        visible = min((t for s, t in shown.items() if s >= seq and t >= committed), default=None)
        if visible is not None:
            latencies.append((visible - committed) * 1000)
    return {
        "timers_only": phase(t0, t1, c1 - c0),
        "timers_and_changes": phase(t1, t2, c2 - c1),
        "cpu_ms": costs,
        "visible_ms": {
            "n": len(latencies),
            "of": len(commits),
            "p50": round(pct(latencies, 50), 1),
            "p95": round(pct(latencies, 95), 1),
            "max": round(max(latencies, default=float("nan")), 1),
        },
    }


def projected_percent(costs: dict[str, Any], rate: float, *, slowdown: float = 1.0) -> float | None:
    """CPU share of one core at `rate` changes a second from the per-unit figures, on a machine
    `slowdown` times slower: (a second of timers + rate × a change + a minute turn / 60) ms per
    second, as a percentage."""
    tick, change = costs.get("tick_ms"), costs.get("change_ms")
    if tick is None or change is None or tick != tick:  # nan: no ticks measured
        return None
    minute = float(costs.get("minute_turn_ms") or 0.0)
    per_second: float = float(tick) + rate * max(0.0, float(change)) + minute / 60
    return slowdown * per_second / 10


def format_report(
    result: dict[str, Any], *, sessions: int, size: tuple[int, int], rate: float, mode: str
) -> str:
    a, b, v = result["timers_only"], result["timers_and_changes"], result["visible_ms"]
    cpu = max(a["cpu_percent"], b["cpu_percent"])
    update = max(a["update_ms_max"], b["update_ms_max"])

    def ok(value: float, target: float) -> str:
        return "ok" if value <= target else "MISSED"

    lines = [
        f"pager-edge bench board: {sessions} active sessions, {size[0]}×{size[1]}, {mode}, "
        f"refresh {result['refresh']} s",
        f"machine: {result['machine']}",
    ]
    if (spread := result.get("spread")) is not None:

        def low_high(key: str, unit: str) -> str:
            values = spread.get(key)
            return f"{values[0]:.2f}–{values[1]:.2f}{unit}" if values else "—"

        lines.append(
            f"  medians of {result['rounds']} rounds; lowest–highest: CPU "
            f"{low_high('timers_cpu_percent', ' %')} timers only, "
            f"{low_high('changes_cpu_percent', ' %')} with changes; "
            f"{low_high('tick_ms', ' ms')} per second of timers, "
            f"{low_high('change_ms', ' ms')} per change"
        )
    for title, p in (("timers only", a), (f"timers + {rate:g} changes/s", b)):
        lines.append(
            f"  {title:<26} CPU {p['cpu_percent']:5.2f} % of one core over {p['seconds']:.0f} s; "
            f"update p50 {p['update_ms_p50']:.1f} ms max {p['update_ms_max']:.1f} ms "
            f"({p['updates']}); {p['frames']} frames"
        )
    lines.append(
        f"  change → visible           p50 {v['p50']:.0f} ms, p95 {v['p95']:.0f} ms, "
        f"max {v['max']:.0f} ms ({v['n']} of {v['of']} commits seen)"
    )
    costs = result.get("cpu_ms")
    if costs:
        minute = costs.get("minute_turn_ms")
        change = costs.get("change_ms")
        lines.append(
            f"  CPU per unit               {costs['tick_ms']:.2f} ms per second of timers "
            f"(1 tick, polls; max {costs['tick_ms_max']:.1f}), "
            + (f"{minute:.1f} ms per minute turn, " if minute is not None else "no minute turn, ")
            + (f"{change:.2f} ms per change ({costs['changes']})" if change is not None else
               "no change committed")
        )  # fmt: skip
        here = projected_percent(costs, rate)
        slow, slower = (projected_percent(costs, rate, slowdown=k) for k in PI_SLOWDOWN)
        if here is not None and slow is not None and slower is not None:
            lines.append(
                f"  {'so at ' + format(rate, 'g') + ' changes/s':<26} {here:.2f} % here; on a "
                f"machine {PI_SLOWDOWN[0]:g}–{PI_SLOWDOWN[1]:g}× slower (a Raspberry Pi) "
                f"≈ {slow:.0f}–{slower:.0f} % of a core"
            )
    lines.append(
        f"  targets: CPU ≤ {TARGETS['cpu_percent']:g} % ({ok(cpu, TARGETS['cpu_percent'])}), "
        f"longest update ≤ {TARGETS['update_ms']:g} ms ({update:.1f} ms, "
        f"{ok(update, TARGETS['update_ms'])}), visible p95 ≤ {TARGETS['visible_p95_ms']:g} ms "
        f"({ok(v['p95'], TARGETS['visible_p95_ms'])})"
    )
    return "\n".join(lines)


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs as one result: every figure is its median over the rounds (a machine shared
    with other work is noisy), and ``spread`` keeps the lowest and highest of the headline ones."""
    if len(rounds) == 1:
        return rounds[0]

    def median(values: list[Any]) -> Any:
        numbers = sorted(v for v in values if isinstance(v, int | float) and v == v)
        if not numbers:
            return values[0]
        mid = len(numbers) // 2
        middle = numbers[mid] if len(numbers) % 2 else (numbers[mid - 1] + numbers[mid]) / 2
        return round(middle, 2)

    def merge(parts: list[Any]) -> Any:
        if isinstance(parts[0], dict):
            return {k: merge([p.get(k) for p in parts]) for k in parts[0]}
        return median(parts)

    combined: dict[str, Any] = merge(rounds)

    def span(path: tuple[str, ...]) -> list[float] | None:
        values = []
        for r in rounds:
            value: Any = r
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, int | float) and value == value:
                values.append(float(value))
        return [min(values), max(values)] if values else None

    combined["rounds"] = len(rounds)
    combined["spread"] = {
        "timers_cpu_percent": span(("timers_only", "cpu_percent")),
        "changes_cpu_percent": span(("timers_and_changes", "cpu_percent")),
        "tick_ms": span(("cpu_ms", "tick_ms")),
        "change_ms": span(("cpu_ms", "change_ms")),
        "visible_p95": span(("visible_ms", "p95")),
    }
    return combined
