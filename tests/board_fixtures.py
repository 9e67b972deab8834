"""Pinned data for the board tests: a real SQLite store written through the agent's own writer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.clock import VirtualClock
from agent.config import Config, with_overrides
from agent.health import Health
from agent.session import SessionView
from agent.store import Store, WriteBatch

# Friday 13 March 2026, 19:30 in Paris (18:30 UTC): a busy Friday evening.
NOW = datetime(2026, 3, 13, 18, 30, 0, tzinfo=UTC)
ZONE = "Europe/Paris"
SECRET_LABEL = "Zebulon-Quartz"  # must never appear on the kiosk
# The board's terminal size in a tablet's browser at the touch font (tui.web.server's
# TOUCH_FONT_SIZE: cells of 10×24 CSS px in Debian's Chromium); tests/test_web_browser.py checks
# these against the real page, so a Pilot test at this size lays the board out as the tablet does.
TOUCH_CELLS = {(1280, 800): (128, 33), (800, 1280): (80, 53)}
# The kiosk's, at its font (16 px: cells of 9×21 CSS px); also checked against the real page.
KIOSK_CELLS = {(1280, 800): (142, 38), (800, 1280): (88, 60), (1920, 1080): (213, 51)}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(minutes: float = 0, seconds: float = 0, *, now: datetime = NOW) -> str:
    return iso(now - timedelta(minutes=minutes, seconds=seconds))


def board_config(db: Path | str, **board) -> Config:
    return with_overrides(
        Config(),
        store={"path": str(db)},
        controller={"timezone": ZONE},
        board=board,
    )


def fixed_clock(moment: datetime = NOW) -> VirtualClock:
    """A clock that stays at `moment` (snapshot tests)."""
    return VirtualClock(moment)


def MovableClock(moment: datetime = NOW) -> VirtualClock:
    """A clock the test moves by hand (`advance`)."""
    return VirtualClock(moment)


def view(uuid: str, number: int, **kw) -> SessionView:
    return SessionView(uuid=uuid, number=number, transmitter_id=number, **kw)


def active_views() -> list[SessionView]:
    """Eight parties: waiting on time / nearly due / late, paged once / re-paged / paged late."""
    return [
        view("u-07", 7, label="Martin", party_size=2, goal_seconds=1200, created=ago(38),
             first_notified=ago(30), notified=ago(1, 5), state="paged", page_count=3),
        view("u-12", 12, label=SECRET_LABEL, party_size=4, goal_seconds=1500, created=ago(31),
             state="waiting"),
        view("u-03", 3, label="Okafor", party_size=6, goal_seconds=1800, created=ago(24),
             first_notified=ago(0, 45), notified=ago(0, 45), state="paged", page_count=1),
        view("u-21", 21, label="Nguyen", party_size=2, goal_seconds=900, created=ago(14),
             state="waiting"),
        view("u-15", 15, label=None, party_size=3, goal_seconds=1200, created=ago(9),
             state="waiting"),
        view("u-44", 44, label="Schmidt-Larsson family", party_size=8, goal_seconds=2700,
             created=ago(6), state="waiting"),
        view("u-09", 9, label="Ito", party_size=1, goal_seconds=600, created=ago(3),
             state="waiting"),
        view("u-30", 30, label="Alvarez", party_size=4, goal_seconds=1500, created=ago(0, 40),
             state="waiting"),
    ]  # fmt: skip


def finished_views(now: datetime = NOW) -> list[SessionView]:
    """Today's finished parties plus four previous Fridays around 19:30 for the quote."""
    out = [
        view("h-1", 5, label="Dubois", party_size=2, goal_seconds=900, created=ago(90),
             first_notified=ago(78), notified=ago(78), cleared=ago(75), state="cleared",
             page_count=1),
        view("h-2", 8, label="Rossi", party_size=4, goal_seconds=1200, created=ago(80),
             first_notified=ago(52), notified=ago(50), cleared=ago(48), state="cleared",
             page_count=2),
        view("h-3", 11, label="Walked", party_size=2, goal_seconds=900, created=ago(70),
             cleared=ago(55), state="removed"),
        view("h-4", 2, label="Chen", party_size=3, goal_seconds=1200, created=ago(60),
             cleared=ago(44), state="cleared"),
    ]  # fmt: skip
    # Previous Fridays: parties of 3–4 waited 20, 24, 26, 30 min; parties of 1–2 about 12 min.
    for week in range(1, 5):
        base = now - timedelta(weeks=week)
        for i, wait in enumerate((20, 24, 26, 30)):
            created = base - timedelta(minutes=10 * i)
            out.append(
                view(f"w{week}-big-{i}", 100 + i, label=f"Regular-{week}-{i}", party_size=4,
                     goal_seconds=1500, created=iso(created),
                     first_notified=iso(created + timedelta(minutes=wait + week)),
                     notified=iso(created + timedelta(minutes=wait + week)),
                     cleared=iso(created + timedelta(minutes=wait + week + 2)),
                     state="cleared", page_count=1)
            )  # fmt: skip
        created = base - timedelta(minutes=5)
        out.append(
            view(f"w{week}-small", 110, label=f"Solo-{week}", party_size=2, goal_seconds=900,
                 created=iso(created), first_notified=iso(created + timedelta(minutes=12)),
                 notified=iso(created + timedelta(minutes=12)),
                 cleared=iso(created + timedelta(minutes=14)), state="cleared", page_count=1)
        )  # fmt: skip
    return out


def queue_views() -> list[SessionView]:
    """A queue in front of the host at 19:30 for live quotes: parties of 3–4 seated at −36, −25
    (without a page) and −10 min, three still waiting, one paged long ago, one walked away; 1–2:
    one seated, one waiting. Alone, 3–4 had somebody waiting for the last 48 minutes."""
    return [
        view("q-s1", 41, label="Seated-41", party_size=4, goal_seconds=1500, created=ago(48),
             first_notified=ago(36), notified=ago(36), cleared=ago(34), state="cleared",
             page_count=1),
        view("q-s2", 42, label="Seated-42", party_size=3, goal_seconds=1500, created=ago(40),
             cleared=ago(25), state="cleared"),
        view("q-s3", 43, label=f"{SECRET_LABEL}-43", party_size=4, goal_seconds=1500,
             created=ago(30), first_notified=ago(10), notified=ago(10), state="paged",
             page_count=1),
        view("q-old", 44, label="Long-ago", party_size=4, goal_seconds=1500, created=ago(100),
             first_notified=ago(70), notified=ago(70), cleared=ago(68), state="cleared",
             page_count=1),
        view("q-gone", 45, label="Walked-away", party_size=4, goal_seconds=1500, created=ago(45),
             cleared=ago(15), state="removed"),
        view("q-w1", 51, label=f"{SECRET_LABEL}-51", party_size=4, goal_seconds=1500,
             created=ago(20), state="waiting"),
        view("q-w2", 52, label="Waiting-52", party_size=3, goal_seconds=1500, created=ago(12),
             state="waiting"),
        view("q-w3", 53, label="Waiting-53", party_size=4, goal_seconds=1500, created=ago(5),
             state="waiting"),
        view("q-s4", 61, label="Couple-61", party_size=2, goal_seconds=900, created=ago(8),
             first_notified=ago(6), notified=ago(6), state="paged", page_count=1),
        view("q-w4", 62, label="Couple-62", party_size=2, goal_seconds=900, created=ago(3),
             state="waiting"),
    ]  # fmt: skip


STATISTICS = {
    "guestsServed": 41,
    "percentLate": 12,
    "percentOnTime": 88,
    "averageTimeServed": 1130,
    "numSessions": 49,
}
SETTINGS = {"datetime": "2026-03-13T19:30:00", "systemId": 0, "defaultTargetGoal": 900}


def healthy(now: datetime = NOW) -> Health:
    return Health(
        state="connected",
        since=ago(180, now=now),
        heartbeat_at=ago(0, 3, now=now),
        last_ping_at=ago(0, 12, now=now),
        last_data_at=ago(0, 12, now=now),
        clock_skew_seconds=2.0,
        firmware="8.4.100.43",
        device_name="T7470",
        agent_pid=4242,
        agent_version="0.1.0",
    )


def make_store(
    path: Path,
    views: Iterable[SessionView] | None = None,
    *,
    finished: bool = True,
    health: Health | None = None,
) -> Path:
    """Write pinned sessions, statistics, settings and health into a real store file."""
    store = Store(path, synchronous="NORMAL")
    try:
        vs = list(active_views() if views is None else views)
        if finished:
            vs += finished_views()
        store.write_batch(
            WriteBatch(
                views={v.uuid: v for v in vs},
                snapshots=[("statistics", ago(1), STATISTICS), ("settings", ago(60), SETTINGS)],
                health=healthy() if health is None else health,
            )
        )
    finally:
        store.close()
    return path


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> None:
    """Poll a condition in the event loop (the app keeps running meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


# Optional header sections (the sync and backhaul features' status sections), pinned.
PINNED_EXTRAS = {
    "sync": {"backlog": 37, "last_success": ago(2), "bytes_sent": 1_840_000, "quarantined": 0},
    "backhaul": {
        "online": True,
        "ipv4": "10.64.3.17",
        "cycle_bytes": 3_900_000_000,
        "used_bytes": 3_900_000_000,
        "cap_bytes": 5_000_000_000,
        "projected_bytes": 4_600_000_000,
        "mode": "conserve",
        "taken_at": ago(20),
    },
}


def pin_extras(monkeypatch, extras: dict | None = None) -> None:
    """Make BoardSource report exactly these status sections (independent of other features)."""
    from tui.core.source import BoardSource

    monkeypatch.setattr(BoardSource, "_read_extras", lambda self, store: dict(extras or {}))
