"""Guests for the simulator: a live flow generator and a deterministic scripted scenario.

* :class:`GuestFlow` — parties arrive (``steady``: one every 40–120 s; ``rush``: several times
  denser), get a free pager 1–99, wait roughly their goal, are paged (about 15 % again later), and
  are mostly seated (STOP); about 8 % walk away (REMOVED); some have their party size or label
  edited meanwhile. `speed` divides every wait, so the demo can run at 10× and the board moves.
* :func:`scripted_scenario` — a fixed list of :class:`Action` for tests, applied one by one by
  :func:`play`, which sleeps on the clock it is handed between them (a
  :class:`~agent.clock.VirtualClock` only moves: a whole evening takes milliseconds). Same seed, same actions, same uuids, same ground truth.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.clock import SYSTEM_CLOCK, Clock
from agent.simulator.device import Keypad
from agent.simulator.limits import SimError

log = logging.getLogger("agent.simulator.flow")

NAMES = (
    "Zoë", "Øyvind", "李娜", "José", "Smith", "Nguyễn", "Müller", "O'Brien", "Dvořák", "Ana",
    "Priya", "Mohammed", "Chen", "Łukasz", "Siobhán", "Renée", "Kowalski", "Björk", "Søren",
    "Γιώργος", "Олег", "さくら", "김민준", "Fatma", "García", "Okonkwo", "Patel", "Dubois",
    "window seat — Ines", "Birthday 🎂 Ravi", "VIP: Mr. Lee", "patio, high chair",
)  # fmt: skip
PARTY_SIZES = (1, 2, 3, 4, 5, 6, 7, 8)
PARTY_WEIGHTS = (6, 30, 20, 22, 8, 7, 3, 4)
GOALS = (300, 600, 900, 1200, 1500, 1800, 2100, 2700)
GOAL_WEIGHTS = (10, 20, 20, 18, 12, 10, 5, 5)

REPAGE_SPACING = 10

Op = Literal["create", "update", "page", "clear", "remove"]


def pick_label(rng: random.Random) -> str | None:
    """A name most of the time (many non-ASCII), sometimes empty, sometimes null."""
    r = rng.random()
    if r < 0.12:
        return ""
    if r < 0.24:
        return None
    return rng.choice(NAMES)


def pick_party(rng: random.Random) -> int:
    return rng.choices(PARTY_SIZES, PARTY_WEIGHTS)[0]


def pick_goal(rng: random.Random) -> int:
    return rng.choices(GOALS, GOAL_WEIGHTS)[0]


# --- scripted scenario ----------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """`advance` seconds after the previous action, ``sim.<op>(number, **kwargs)``."""

    advance: float
    op: Op
    number: int
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Party:
    created_at: int  # action index
    pages: int = 0
    last_page: int = -1000


def scripted_scenario(seed: int, sessions: int = 70, pool: int = 20) -> list[Action]:
    """A deterministic evening: ≥ `sessions` sessions' worth of actions, a few left active.

    Guarantees, whatever the seed: labels include ``""``, ``None`` and non-ASCII names; pager
    numbers are reused (the pool is small); at least one session is re-paged, one cleared, one
    removed, and at the end at least one is still waiting and one is paged. Consecutive actions are
    5–30 s apart, and a re-page comes at least :data:`REPAGE_SPACING` actions after the previous
    page of the same session, so a client that missed a page notification (the device keeps only
    the latest page time) has time to notice the sequence gap and resync before the next page.
    """
    rng = random.Random(f"scenario:{seed}")
    actions: list[Action] = []
    active: dict[int, _Party] = {}
    created = repaged = cleared = removed = 0
    forced_labels = ["", None, "Zoë", "李娜"]
    keep_active = rng.randint(4, 7)

    def add(op: Op, number: int, **kwargs: Any) -> None:
        actions.append(Action(float(rng.randint(5, 30)), op, number, kwargs))

    while created < sessions or len(active) > keep_active:
        idx = len(actions)
        free = [n for n in range(1, pool + 1) if n not in active]
        waiting = [n for n, p in active.items() if p.pages == 0]
        paged = [n for n, p in active.items() if p.pages > 0]
        repageable = [
            n for n in paged if active[n].pages < 3 and idx - active[n].last_page >= REPAGE_SPACING
        ]
        clearable = [n for n in paged if idx - active[n].last_page >= 2]
        finishing = created >= sessions
        options: list[tuple[str, float]] = []
        if not finishing and free:
            options.append(("create", 4.0 if len(active) < 8 else 0.6))
        if waiting:
            options.append(("page", 3.0))
        if repageable:
            options.append(("repage", 0.6 if repaged else 3.0))
        if active:
            options.append(("update", 0.8))
            options.append(("remove", 0.22 if removed else 2.0))
        if clearable:
            options.append(("clear", 3.5 if finishing else 2.5))
        if waiting and finishing:
            options.append(("seat", 0.3))  # seated without a page: STOP straight from waiting
        kind = rng.choices([o for o, _ in options], [w for _, w in options])[0]
        if kind == "create":
            number = rng.choice(free)
            label = forced_labels.pop(0) if forced_labels else pick_label(rng)
            add("create", number, goal=pick_goal(rng), label=label, party_size=pick_party(rng))
            active[number] = _Party(idx)
            created += 1
        elif kind in ("page", "repage"):
            number = rng.choice(waiting if kind == "page" else repageable)
            add("page", number, **({"page_mode": "Vibe1"} if rng.random() < 0.05 else {}))
            active[number].pages += 1
            active[number].last_page = idx
            repaged += kind == "repage"
        elif kind == "update":
            number = rng.choice(sorted(active))
            field_ = rng.choice(["party_size", "label", "goal"])
            value = {"party_size": pick_party, "label": pick_label, "goal": pick_goal}[field_](rng)
            add("update", number, **{field_: value})
        elif kind in ("clear", "seat"):
            number = rng.choice(clearable if kind == "clear" else waiting)
            add("clear", number)
            del active[number]
            cleared += 1
        else:
            number = rng.choice(sorted(active))
            add("remove", number)
            del active[number]
            removed += 1

    # Leave the evening mid-flow: someone still waiting and someone paged.
    while len(active) < 2 or not any(p.pages == 0 for p in active.values()):
        number = next(n for n in range(1, pool + 1) if n not in active)
        add("create", number, goal=600, label=pick_label(rng), party_size=pick_party(rng))
        active[number] = _Party(len(actions))
    if not any(p.pages > 0 for p in active.values()):
        add("page", min(active))
    if not repaged or not cleared or not removed:  # pragma: no cover - guarded by tests
        raise AssertionError(f"scenario {seed} lacks a re-page, clear or remove")
    return actions


async def play(sim: Any, actions: list[Action], clock: Clock, delay: float = 0.0) -> None:
    """Apply `actions` to a simulator (or a bare model), sleeping ``action.advance`` seconds on
    `clock` before each one and `delay` real seconds after it (room for observers to keep up)."""
    for action in actions:
        await clock.sleep(action.advance)
        getattr(sim, action.op)(action.number, **action.kwargs)
        await asyncio.sleep(delay)


# --- live guest flow ------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    arrival_gap: tuple[float, float]  # seconds between parties (simulated time)


PROFILES = {
    "steady": Profile(arrival_gap=(40.0, 120.0)),
    "rush": Profile(arrival_gap=(10.0, 30.0)),
}


class GuestFlow:
    """Parties arriving at a running simulator, through its keypad API (``sim.create`` etc.).

    Staff may act on the same sessions over CoAP (clear from the board, say); a party whose
    session is gone simply leaves (the 4.04 ends its task).
    """

    def __init__(
        self,
        sim: Keypad,
        profile: str = "steady",
        *,
        speed: float = 1.0,
        seed: int | None = None,
        pool: range = range(1, 100),
        clock: Clock = SYSTEM_CLOCK,
        compress_goals: bool = False,
    ):
        if profile not in PROFILES:
            raise ValueError(f"unknown flow profile {profile!r} (known: {', '.join(PROFILES)})")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.sim = sim
        self.profile = PROFILES[profile]
        self.speed = speed
        self.rng = random.Random(seed)
        self.pool = pool
        self._clock = clock
        # With a time-lapse on a real transmitter clock (the demo), quote goals in lapsed time
        # too, so parties are paged around their quote — a few of them late — as in real life.
        self.compress_goals = compress_goals
        self._parties: set[asyncio.Task[None]] = set()
        self._reserved: set[int] = set()
        self.parties_started = 0

    async def wait(self, seconds: float) -> None:
        await self._clock.sleep(seconds / self.speed)

    def _free_number(self) -> int | None:
        busy = set(self.sim.model.active) | self._reserved
        free = [n for n in self.pool if n not in busy]
        return self.rng.choice(free) if free else None

    async def run(self) -> None:
        """Run until cancelled; cancelling also ends every party in progress."""
        try:
            while True:
                await self.wait(self.rng.uniform(*self.profile.arrival_gap))
                number = self._free_number()
                if number is None:
                    log.info("all pagers in use; the next party waits at the door")
                    continue
                self._reserved.add(number)
                task = asyncio.create_task(self._party(number), name=f"party-{number}")
                self._parties.add(task)
                task.add_done_callback(self._parties.discard)
                self.parties_started += 1
        finally:
            for task in list(self._parties):
                task.cancel()
            await asyncio.gather(*self._parties, return_exceptions=True)

    async def _party(self, number: int) -> None:
        rng, sim = self.rng, self.sim
        try:
            goal = pick_goal(rng)
            quoted = max(60, round(goal / self.speed)) if self.compress_goals else goal
            sim.create(number, goal=quoted, label=pick_label(rng), party_size=pick_party(rng))
            self._reserved.discard(number)
            wait = goal * rng.uniform(0.6, 1.15)
            if rng.random() < 0.08:  # walk-away: gone before being paged
                await self.wait(wait * rng.uniform(0.2, 1.3))
                sim.remove(number)
                return
            if rng.random() < 0.2:  # an edit while waiting
                await self.wait(wait * 0.3)
                wait *= 0.7
                if rng.random() < 0.5:
                    sim.update(number, party_size=pick_party(rng))
                else:
                    sim.update(number, label=pick_label(rng))
            await self.wait(wait)
            sim.page(number)
            if rng.random() < 0.15:
                await self.wait(rng.uniform(60, 180))
                sim.page(number)
            await self.wait(rng.uniform(30, 240))
            sim.clear(number)
        except SimError as exc:
            log.info("party on pager %d leaves: %s", number, exc.message)
        finally:
            self._reserved.discard(number)
