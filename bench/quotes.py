"""`pager-edge bench quotes`: how close each kind of quote comes to the wait that followed.

A small restaurant model makes evenings with known outcomes: tables by size (2-, 4-, 6- and
8-tops for the board's size buckets), arrivals rising to a peak and falling over the evening (each
evening a little busier or quieter than the last), dining times by party size, tables given first
in, first out per table size. A party that finds a table free and nobody of its size waiting sits
at once and never gets a pager; every other party gets one, is paged when its table comes up and
sits down a minute or few later — or walks away when its patience runs out. One evening a week on
the same weekday, so that the history quote has its weekday and hour.

At every paged party's arrival three quotes are computed from what was known at that moment — the
store's rows as they stood then, built as :class:`agent.session.SessionView`\\ s and fed to the
board's own quote functions (:mod:`tui.core.quotes`): the transmitter's default goal, the history
median, and the live quote. The figure is the mean absolute error against the wait that followed
(arrival → first page), in minutes, over the measured evenings (the warm-up evenings only make
history). Deterministic for a seed; several seeds show the spread.
"""

from __future__ import annotations

import heapq
import json
import random
import statistics as stats
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import click

from agent.clock import iso_utc
from agent.session import SessionView, ViewState
from bench import machine_description
from tui.core.parties import SIZE_BUCKETS, size_bucket
from tui.core.quotes import (
    RATE_WINDOW_MINUTES,
    Queue,
    Sample,
    live_quote,
    suggest_quote,
    wait_samples,
)
from tui.core.waits import called_at

ZONE = ZoneInfo("Europe/Paris")
FIRST_EVENING = datetime(2026, 5, 1, tzinfo=ZONE)  # a Friday; no clock change for 12 weeks
KINDS = ("default", "history", "live")


@dataclass(frozen=True, slots=True)
class Restaurant:
    tables: tuple[int, ...] = (20, 14, 5, 2)  # per size bucket: 2-, 4-, 6-, 8-tops
    dining_minutes: tuple[float, ...] = (55.0, 70.0, 85.0, 100.0)  # mean, per size bucket
    dining_spread: float = 0.25  # log-normal sigma
    # (party size, weight): mostly couples, then fours
    sizes: tuple[tuple[int, float], ...] = (
        (1, 8), (2, 42), (3, 12), (4, 22), (5, 6), (6, 6), (7, 2), (8, 2),
    )  # fmt: skip
    # (local hour the rate starts, parties an hour); arrivals stop at `last_arrival`
    arrivals: tuple[tuple[float, float], ...] = (
        (17.5, 20.0), (18.5, 45.0), (19.5, 55.0), (20.5, 30.0), (21.5, 12.0),
    )  # fmt: skip
    last_arrival: float = 22.0
    busyness_spread: float = 0.2  # log-normal sigma of an evening's arrivals
    return_seconds: tuple[int, int] = (60, 240)  # page → seated
    patience_minutes: tuple[float, float] = (45.0, 120.0)  # then a waiting party walks away

    def describe(self) -> str:
        tops = ", ".join(
            f"{n}× {title}" for n, (title, _lo, _hi) in zip(self.tables, SIZE_BUCKETS, strict=True)
        )
        per_evening = sum(
            rate * (end - start)
            for (start, rate), end in zip(
                self.arrivals,
                [*(a for a, _ in self.arrivals[1:]), self.last_arrival],
                strict=True,
            )
        )
        return (
            f"tables {tops}; ~{per_evening:.0f} parties an evening "
            f"(±{self.busyness_spread:.0%} from evening to evening), dining "
            + "/".join(f"{m:.0f}" for m in self.dining_minutes)
            + " min by size"
        )


@dataclass(slots=True)
class Party:
    """One party that got a pager, with its outcome."""

    uuid: str
    size: int
    arrived: datetime
    paged: datetime | None = None
    ended: datetime | None = None
    seated: bool = False

    def as_of(self, t: datetime) -> SessionView | None:
        """The store's row for this party as it stood at `t` (None before it arrived)."""
        if self.arrived > t:
            return None
        paged = self.paged if self.paged is not None and self.paged <= t else None
        state: ViewState = "paged" if paged is not None else "waiting"
        cleared = None
        if self.ended is not None and self.ended <= t:
            state, cleared = ("cleared" if self.seated else "removed"), self.ended
        return SessionView(
            uuid=self.uuid,
            number=0,
            party_size=self.size,
            created=iso_utc(self.arrived),
            first_notified=iso_utc(paged),
            notified=iso_utc(paged),
            cleared=iso_utc(cleared),
            state=state,
            page_count=1 if paged is not None else 0,
        )

    @property
    def wait(self) -> float | None:
        """Arrival → first page, seconds (None: walked away)."""
        return None if self.paged is None else (self.paged - self.arrived).total_seconds()


def _arrival_times(rng: random.Random, day: datetime, model: Restaurant) -> list[datetime]:
    """A non-homogeneous Poisson process over the evening (by thinning)."""
    busy = rng.lognormvariate(0.0, model.busyness_spread)
    peak = max(rate for _, rate in model.arrivals) * busy
    starts = [h for h, _ in model.arrivals]
    t = starts[0]
    out: list[datetime] = []
    while True:
        t += rng.expovariate(peak)  # hours
        if t >= model.last_arrival:
            return out
        rate = next(r for h, r in reversed(model.arrivals) if h <= t) * busy
        if rng.random() < rate / peak:
            out.append(day + timedelta(hours=t))


def simulate_evening(
    rng: random.Random, day: datetime, model: Restaurant, *, tag: str = "e"
) -> list[Party]:
    """One evening, first in first out per table size; the parties that got a pager."""
    sizes, weights = zip(*model.sizes, strict=True)
    seq = 0
    events: list[tuple[datetime, int, str, int, Party | None]] = []  # (t, seq, kind, bucket, p)

    def push(t: datetime, kind: str, bucket: int, party: Party | None = None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, bucket, party))

    def dine(t: datetime, bucket: int) -> datetime:
        mean = model.dining_minutes[bucket]
        sigma = model.dining_spread
        minutes = rng.lognormvariate(0.0, sigma) * mean / (1 + sigma**2 / 2)  # mean stays `mean`
        return t + timedelta(minutes=minutes)

    for i, at in enumerate(_arrival_times(rng, day, model)):
        size = rng.choices(sizes, weights)[0]
        bucket = size_bucket(size)
        assert bucket is not None
        push(
            at.astimezone(UTC).replace(microsecond=0),
            "arrive",
            bucket,
            Party(f"{tag}-{i}", size, at),
        )
    free = list(model.tables)
    queues: list[deque[Party]] = [deque() for _ in model.tables]
    pagered: list[Party] = []
    while events:
        t, _seq, kind, bucket, party = heapq.heappop(events)
        queue = queues[bucket]
        if kind == "arrive":
            assert party is not None
            party.arrived = t
            if free[bucket] > 0 and not queue:
                free[bucket] -= 1  # a table is free: seated at once, no pager
                push(dine(t, bucket), "free", bucket)
                continue
            queue.append(party)
            pagered.append(party)
            patience = timedelta(minutes=rng.uniform(*model.patience_minutes))
            push(t + patience, "leave", bucket, party)
        elif kind == "leave":
            assert party is not None
            if party.paged is None and party.ended is None:
                queue.remove(party)
                party.ended = t.replace(microsecond=0)
        elif kind == "free":
            if not queue:
                free[bucket] += 1
                continue
            nxt = queue.popleft()
            nxt.paged = t.replace(microsecond=0)
            nxt.ended = nxt.paged + timedelta(seconds=rng.randint(*model.return_seconds))
            nxt.seated = True
            push(dine(nxt.ended, bucket), "free", bucket)
    return pagered


# --- scoring ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scored:
    """One paged party: its size, its actual wait and each quote (seconds), the live quote's kind."""

    size: int
    actual: float
    quotes: dict[str, float]
    live_kind: str


def _views(parties: Iterable[Party], t: datetime) -> list[SessionView]:
    return [v for p in parties if (v := p.as_of(t)) is not None]


def score_evening(
    parties: Sequence[Party],
    past: Sequence[SessionView],
    *,
    default_goal: int,
    zone: tzinfo,
) -> list[Scored]:
    """Each quote for each paged party, from what was known at its arrival."""
    out = []
    window = timedelta(minutes=RATE_WINDOW_MINUTES)
    for party in parties:
        if party.wait is None:
            continue  # walked away: no wait to compare a quote with
        t = party.arrived
        known = _views((p for p in parties if p is not party), t)
        active = [v for v in known if not v.ended]
        recent = [v for v in known if (c := called_at(v)) is not None and t - window <= c <= t]
        finished: list[SessionView] = [*past, *(v for v in known if v.ended)]
        samples: list[Sample] = wait_samples(finished, t, zone)
        history = suggest_quote(samples, party.size, default_goal=default_goal, now=t, zone=zone)
        live = live_quote(
            Queue(t, active, recent, samples, default_goal=default_goal, zone=zone), party.size
        )
        quotes = {"default": float(default_goal)}
        for kind, q in (("history", history), ("live", live)):
            quotes[kind] = float(q.seconds if q.seconds is not None else default_goal)
        out.append(Scored(party.size, party.wait, quotes, live.kind))
    return out


def mean_abs_error_minutes(scored: Sequence[Scored], kind: str) -> float:
    return stats.fmean(abs(s.quotes[kind] - s.actual) for s in scored) / 60 if scored else 0.0


@dataclass(slots=True)
class SeedResult:
    seed: int
    parties: int = 0  # got a pager, measured evenings
    walked: int = 0
    scored: list[Scored] = field(default_factory=list)

    def mae(self, kind: str) -> float:
        return mean_abs_error_minutes(self.scored, kind)

    def figures(self) -> dict[str, object]:
        waits = sorted(s.actual / 60 for s in self.scored)
        kinds = [s.live_kind for s in self.scored]
        return {
            "seed": self.seed,
            "parties": self.parties,
            "paged": len(self.scored),
            "walked": self.walked,
            "wait_p50_min": round(_pct(waits, 50), 1),
            "wait_p90_min": round(_pct(waits, 90), 1),
            "mae_min": {k: round(self.mae(k), 2) for k in KINDS},
            "live_basis": {k: kinds.count(k) for k in ("live", "history", "default")},
        }


def _pct(values: Sequence[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def run_seed(
    seed: int,
    *,
    warmup: int,
    evenings: int,
    default_goal: int,
    model: Restaurant | None = None,
) -> SeedResult:
    """`warmup` evenings that only make history, then `evenings` measured ones, a week apart."""
    model = model or Restaurant()
    rng = random.Random(seed)
    past: list[SessionView] = []
    result = SeedResult(seed)
    for week in range(warmup + evenings):
        day = FIRST_EVENING + timedelta(weeks=week)
        parties = simulate_evening(rng, day, model, tag=f"s{seed}w{week}")
        if week >= warmup:
            result.parties += len(parties)
            result.walked += sum(1 for p in parties if p.paged is None)
            result.scored += score_evening(parties, past, default_goal=default_goal, zone=ZONE)
        end = day + timedelta(days=1)
        past += _views(parties, end)
    return result


def format_report(
    results: Sequence[SeedResult],
    *,
    warmup: int,
    evenings: int,
    default_goal: int,
    model: Restaurant,
) -> str:
    lines = [
        f"pager-edge bench quotes — seeds {', '.join(str(r.seed) for r in results)}; "
        f"{warmup} warm-up + {evenings} measured Friday evenings each",
        f"machine: {machine_description()}",
        f"restaurant: {model.describe()}; default goal {default_goal // 60} min",
        "",
        "seed  pagers  paged  walked  wait p50/p90 min  |  MAE min: default  history  live"
        "  |  live quote from live/history/default",
    ]
    for r in results:
        f = r.figures()
        basis = f["live_basis"]
        assert isinstance(basis, dict)
        lines.append(
            f"{r.seed:>4}  {r.parties:>6}  {len(r.scored):>5}  {r.walked:>6}  "
            f"{f['wait_p50_min']:>7} / {f['wait_p90_min']:<6}  |  "
            f"{r.mae('default'):>16.1f}  {r.mae('history'):>7.1f}  {r.mae('live'):>4.1f}  |  "
            f"{basis['live']}/{basis['history']}/{basis['default']}"
        )
    if len(results) > 1:
        lines.append("")
        for kind in KINDS:
            maes = [r.mae(kind) for r in results]
            lines.append(
                f"{kind:>8} quote: MAE {stats.fmean(maes):.1f} min over {len(results)} seeds "
                f"(range {min(maes):.1f}–{max(maes):.1f})"
            )
    return "\n".join(lines)


@click.command("quotes")
@click.option("--seed", type=int, default=1, show_default=True, help="the first seed")
@click.option("--seeds", type=int, default=10, show_default=True, help="how many seeds from --seed")
@click.option("--warmup", type=int, default=4, show_default=True, help="evenings of history first")
@click.option("--evenings", type=int, default=4, show_default=True, help="measured evenings")
@click.option(
    "--default-goal", type=int, default=15, show_default=True, help="the default goal, minutes"
)
@click.option("--json", "as_json", is_flag=True)
def quotes_bench_cmd(
    seed: int, seeds: int, warmup: int, evenings: int, default_goal: int, as_json: bool
) -> None:
    """Mean absolute error of the live quote vs the default goal and the history median."""
    if seeds < 1 or evenings < 1 or warmup < 0 or default_goal < 1:
        raise click.BadParameter("seeds, evenings and default goal ≥ 1, warm-up ≥ 0")
    model = Restaurant()
    results = [
        run_seed(s, warmup=warmup, evenings=evenings, default_goal=default_goal * 60, model=model)
        for s in range(seed, seed + seeds)
    ]
    if as_json:
        doc = {
            "machine": machine_description(),
            "warmup": warmup,
            "evenings": evenings,
            "default_goal_min": default_goal,
            "seeds": [r.figures() for r in results],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(
        format_report(
            results,
            warmup=warmup,
            evenings=evenings,
            default_goal=default_goal * 60,
            model=model,
        )
    )
