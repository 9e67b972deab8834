"""The demo: the built-in T7470 simulator with a guest flow, the agent and the wait-board.

No hardware and no configuration: everything binds loopback, the database is a throw-away file
(unless ``--db`` keeps it), and ``--headless --duration N`` runs without a screen and prints a
summary — including whether the recorded history equals the simulator's own ground truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from agent.clock import ScaledClock
from agent.config import Config, with_overrides
from agent.daemon import Agent
from agent.export import session_records
from agent.store import Store

if TYPE_CHECKING:
    from agent.simulator.device import Keypad
    from agent.simulator.server import Simulator

log = logging.getLogger(__name__)
DEMO_PING_INTERVAL = 5.0


def _summary(db: Path, sim: Simulator, elapsed: float) -> tuple[str, bool]:
    store = Store(db, readonly=True)
    try:
        recorded = sorted(session_records(store), key=lambda r: r["uuid"])
        h = store.health()
        events = store.event_count()
    finally:
        store.close()
    truth = sorted(sim.ground_truth(), key=lambda r: r["uuid"])
    states: dict[str, int] = {}
    for r in recorded:
        states[r["state"]] = states.get(r["state"], 0) + 1
    match = recorded == truth
    lines = [
        f"demo ran {elapsed:.0f} s against the built-in T7470 simulator",
        f"  sessions recorded: {len(recorded)} "
        f"({', '.join(f'{n} {s}' for s, n in sorted(states.items())) or 'none'})",
        f"  lifecycle events:  {events}",
        f"  notifications:     {h.notifications} received, "
        f"{sim.notifications_dropped} dropped by fault injection",
        f"  resyncs / gaps:    {h.resyncs} / {h.gaps}",
        f"  malformed:         {h.malformed}",
        f"  matches the simulator's ground truth: {'yes' if match else 'NO'}",
        f"  database:          {db}",
    ]
    return "\n".join(lines), match


async def _converged(db: Path, sim: Simulator, timeout: float) -> None:
    """Give the agent a moment to record the last changes before summarising."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = Store(db, readonly=True)
        try:
            recorded = sorted(session_records(store), key=lambda r: r["uuid"])
        finally:
            store.close()
        if recorded == sorted(sim.ground_truth(), key=lambda r: r["uuid"]):
            return
        await asyncio.sleep(0.2)


async def run_demo(
    *,
    headless: bool,
    duration: float | None,
    flow: str,
    speed: float,
    seed: int,
    drop_rate: float,
    db: Path,
    kiosk: bool,
    web: bool = False,
    ascii: bool | None = None,
) -> bool:
    """Run the demo in this loop; False when a headless run's history differs from the truth."""
    from agent.simulator.flow import GuestFlow
    from agent.simulator.server import Simulator

    clock = ScaledClock()  # real time; its shift moves the transmitter back while warm-starting
    sim = await Simulator.start(
        host="127.0.0.1",
        port=0,
        ping_interval=DEMO_PING_INTERVAL,
        seed=seed,
        drop_rate=drop_rate,
        clock=clock,
    )
    rng = random.Random(seed)
    _past_evenings(sim, clock, rng)
    _warm_start(sim, clock, rng)
    cfg = with_overrides(
        Config(),
        store={"path": str(db)},
        controller={"host": "127.0.0.1", "port": sim.port, "ping_interval": DEMO_PING_INTERVAL},
        # A demo seat takes effect after a short grace too, so Undo can be tried.
        board={"undo_seconds": 6.0},
    )
    agent = Agent(cfg)
    guests = GuestFlow(sim, flow, speed=speed, seed=seed, compress_goals=True)
    flow_task = asyncio.create_task(guests.run(), name="flow")
    started = time.monotonic()
    ok = True
    try:
        await agent.start()
        if headless:
            await _headless(db, duration, started)
            await _converged(db, sim, timeout=3 * DEMO_PING_INTERVAL)
            text, ok = _summary(db, sim, time.monotonic() - started)
            click.echo(text)
        elif web:
            await _serve_web(cfg, duration)
        else:
            from tui.app import BoardApp

            # The demo's kiosk quits with Ctrl+Q; only the installed kiosk is quit-proof.
            app = BoardApp(
                db,
                client=agent.client,
                kiosk=kiosk,
                config=cfg,
                ascii=ascii,
                ansi=ascii,
                quit_proof=False,
            )
            if duration:
                asyncio.get_running_loop().call_later(duration, app.exit)
            await app.run_async()
    finally:
        flow_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await flow_task
        await agent.stop()
        await sim.stop()
    return ok


WARM_START = [
    # (minutes ago created, party size, goal s, label, minutes ago paged or None, seated?)
    (22, 2, 600, "Müller", 12, True),
    (19, 4, 900, "Okonkwo", 5, True),
    (14, 3, 600, "Zoë & Sam", None, False),
    (11, 2, 480, "李娜", 2, False),
    (9, 6, 1200, "Birthday — table for 6", None, False),
    (6, 2, 300, "", None, False),
    (4, 5, 900, "José", None, False),
    (2, 1, 300, None, None, False),
]


async def _serve_web(cfg: Config, duration: float | None) -> None:
    """The demo board in a browser: a made-up PIN, printed, and the kiosk at /kiosk."""
    from tui.web import WebBoard, make_pin

    pin = make_pin()
    async with WebBoard(cfg, pin, port=0 if cfg.web.port == 8080 else None) as board:
        click.echo(
            f"pager-edge demo in the browser:\n  staff board  {board.url}/   (PIN {pin})\n"
            f"  kiosk        {board.url}/kiosk\nCtrl+C stops the demo."
        )
        if duration:
            await asyncio.sleep(duration)
        else:
            await asyncio.Event().wait()


# Past evenings at this weekday and hour, so history-based quotes and the report have data:
# (weeks ago, how many parties, typical wait in minutes).
PAST_EVENINGS = [(1, 14, 18), (2, 12, 22), (3, 15, 16), (4, 11, 20)]


def _past_evenings(sim: Keypad, clock: ScaledClock, rng: random.Random) -> None:
    """Four past evenings around this hour, played through the device clock moved back: the
    agent learns them from the transmitter's history at its first resync, as on a real site."""
    steps: list[tuple[timedelta, str, int, dict[str, object]]] = []
    for weeks, parties, typical in PAST_EVENINGS:
        base = timedelta(weeks=weeks)
        for i in range(parties):
            arrive = base + timedelta(minutes=75 - 10 * i * 60 / parties / 10 - rng.uniform(0, 5))
            size = rng.choice((2, 2, 2, 3, 4, 4, 5, 6))
            wait = max(2.0, rng.gauss(typical + (4 if size >= 5 else 0), 4))
            number = 100 + i  # past pagers: far from tonight's 1–99
            kwargs = {"goal": 60 * typical, "label": f"Guest {weeks}-{i}", "party_size": size}
            steps.append((arrive, "create", number, kwargs))
            steps.append((arrive - timedelta(minutes=wait), "page", number, {}))
            outcome = "clear" if rng.random() > 0.08 else "remove"
            steps.append((arrive - timedelta(minutes=wait + 2), outcome, number, {}))
    for ago, op, number, kwargs in sorted(steps, key=lambda s: -s[0]):
        clock.shift = -ago
        getattr(sim, op)(number, **kwargs)
    clock.shift = timedelta(0)


def _warm_start(sim: Keypad, clock: ScaledClock, rng: random.Random) -> None:
    """A restaurant in full swing at start-up: back-dated parties through the device clock."""
    numbers = rng.sample(range(1, 100), len(WARM_START))
    steps = []
    for (created, size, goal, label, paged, seated), number in zip(
        WARM_START, numbers, strict=True
    ):
        steps.append(
            (created, "create", number, {"goal": goal, "label": label, "party_size": size})
        )
        if paged is not None:
            steps.append((paged, "page", number, {}))
            if seated:
                steps.append((paged - 1, "clear", number, {}))
    for minutes_ago, op, number, kwargs in sorted(steps, key=lambda s: -s[0]):
        clock.shift = -timedelta(minutes=minutes_ago)
        getattr(sim, op)(number, **kwargs)
    clock.shift = timedelta(0)


async def _headless(db: Path, duration: float | None, started: float) -> None:
    """Print a progress line every few seconds until the duration is up (or Ctrl-C)."""
    end = started + duration if duration else None
    while end is None or time.monotonic() < end:
        await asyncio.sleep(min(5.0, max(0.0, (end or 1e18) - time.monotonic())))
        if not db.exists():
            continue
        store = Store(db, readonly=True)
        try:
            c = store.session_counts()
            h = store.health()
        finally:
            store.close()
        click.echo(
            f"[{time.monotonic() - started:5.0f} s] transmitter {h.state or '?'}: "
            f"{c['waiting']} waiting, {c['paged']} paged, {c['cleared']} seated, "
            f"{c['removed']} removed",
            err=True,
        )
