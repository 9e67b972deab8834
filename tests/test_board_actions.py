"""Every staff action, driven with Pilot against the real simulator over loopback.

The full loop runs in one event loop: simulator ← CoAP → agent → SQLite store → board (read-only),
and the board's actions go to the simulator through the agent's controller client. Each test checks
the transmitter's own state afterwards (``sim.model``), not just the screen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.clock import ScaledClock
from agent.config import Config, with_overrides
from agent.controller.client import ControllerClient, create_context
from agent.daemon import Agent
from agent.simulator.server import Simulator
from tests.board_fixtures import ZONE, pin_extras, wait_for
from tui.app import BoardApp
from tui.screens.dialogs import ConfirmDialog, PartyForm
from tui.widgets.table import PartyTable


class TransmitterClock(ScaledClock):
    """The simulated transmitter's clock: real time plus a shift a test can move.

    The T7470 reports times to the second, so two pages within one second look like one; a test
    that re-pages moves this clock on instead of sleeping.
    """

    def advance(self, seconds: float) -> None:
        self.shift += timedelta(seconds=seconds)


@dataclass
class Rig:
    sim: Simulator
    agent: Agent
    cfg: Config
    db: Path
    clock: TransmitterClock
    agent_running: bool = True

    async def stop_agent(self) -> None:
        self.agent_running = False
        await self.agent.stop()


@contextlib.asynccontextmanager
async def running_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = TransmitterClock()
    sim = await Simulator.start(
        host="127.0.0.1", port=0, ping_interval=2.0, seed=7, clock=clock, tz=ZoneInfo(ZONE)
    )
    db = tmp_path / "agent.db"
    cfg = with_overrides(
        Config(),
        store={"path": str(db), "synchronous": "NORMAL"},
        controller={
            "host": "127.0.0.1",
            "port": sim.port,
            "ping_interval": 2.0,
            "timezone": ZONE,
            "request_timeout": 0.5,
            "max_backoff": 0.5,
        },
        # The transmitter acts at once: these tests are about the actions themselves (the undo
        # grace has tests of its own).
        board={"refresh_interval": 0.05, "undo_seconds": 0},
    )
    agent = Agent(cfg)
    await agent.start()
    rig = Rig(sim, agent, cfg, db, clock)
    try:
        yield rig
    finally:
        if rig.agent_running:
            await agent.stop()
        await sim.stop()


@pytest.fixture
async def rig(tmp_path, monkeypatch):
    pin_extras(monkeypatch, {})
    async with running_rig(tmp_path) as r:
        yield r


def board(rig: Rig, **kw) -> BoardApp:
    return BoardApp(rig.db, client=rig.agent.client, config=rig.cfg, **kw)


def numbers_on_board(app: BoardApp) -> list[int]:
    screen = app.main_screen
    table = screen.query_one(PartyTable)
    return [screen.parties[k].number for k in table.row_keys]


async def seed(rig: Rig, app: BoardApp, *parties: tuple[int, str, int]) -> None:
    """Create sessions on the transmitter (as another host stand would) and wait for the board."""
    for number, label, size in parties:
        rig.sim.create(number, goal=600, label=label, party_size=size)
    await wait_for(lambda: all(n in numbers_on_board(app) for n, _l, _s in parties))


async def select(pilot, number: int) -> None:
    screen = pilot.app.main_screen
    await wait_for(lambda: screen.select_number(number))
    await pilot.pause()
    assert screen.selected is not None and screen.selected.number == number


async def last_result(app: BoardApp, count: int):
    await wait_for(lambda: len(app.action_results) >= count, timeout=5)
    return app.action_results[count - 1]


# --- actions ----------------------------------------------------------------------------------


async def test_add_party_through_the_form(rig):
    app = board(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.snapshots_seen > 0)
        await seed(rig, app, (5, "Ann", 2))
        await select(pilot, 5)
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, PartyForm))
        form = app.screen
        assert form.query_one("#number").value == "1"  # lowest free pager
        # No history yet: the goal is the transmitter's defaultTargetGoal (asked over CoAP).
        await wait_for(lambda: form.query_one("#goal").value == "5")
        await pilot.press(*"Okafor", "tab", "4", "tab")
        await pilot.press("ctrl+a", "ctrl+k", "1", "2", "enter")  # goal 12 min
        result = await last_result(app, 1)
        assert result.ok and result.kind == "add"
        session = rig.sim.model.active[1]
        assert (session.label, session.party_size, session.goal) == ("Okafor", 4, 720)
        assert numbers_on_board(app) == [5, 1]  # the reply is on screen at once
        assert app.main_screen.selected.number == 5  # the cursor stays where the host was
        await wait_for(lambda: [r.number for r in app.snapshot.sessions] == [5, 1])
        assert app.worker_errors == []


async def test_page_repage_edit_seat_and_remove(rig):
    app = board(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await seed(rig, app, (11, "Ana", 2), (12, "Bo", 3), (13, "Cy", 5))
        model = rig.sim.model

        await select(pilot, 11)
        await pilot.press("p")
        assert (await last_result(app, 1)).ok
        assert model.active[11].page_count == 1 and model.active[11].notified is not None
        await wait_for(lambda: app.main_screen.parties_by_number(11).paged)

        rig.clock.advance(2)
        await pilot.press("r")
        assert (await last_result(app, 2)).kind == "repage"
        assert model.active[11].page_count == 2
        await wait_for(lambda: "×2" in app.main_screen.cells_by_number(11)[6][0])

        await select(pilot, 12)
        await pilot.press("e")
        await wait_for(lambda: isinstance(app.screen, PartyForm))
        assert app.screen.query_one("#number").disabled
        await pilot.press("ctrl+a", "ctrl+k", *"Bo+1", "tab", "ctrl+a", "ctrl+k", "4")
        await pilot.press("enter", "enter")  # Enter moves on to the goal, then submits
        assert (await last_result(app, 3)).kind == "edit"
        assert (model.active[12].label, model.active[12].party_size) == ("Bo+1", 4)
        assert model.active[12].goal == 600  # untouched fields are not sent
        await wait_for(lambda: app.main_screen.parties_by_number(12).label == "Bo+1")

        await select(pilot, 11)
        await pilot.press("s")
        assert (await last_result(app, 4)).kind == "seat"
        assert 11 not in model.active
        assert [s.clear_type for s in model.history if s.number == 11] == ["STOP"]
        assert 11 not in numbers_on_board(app)

        await select(pilot, 13)
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("n")  # changed my mind
        await pilot.pause()
        assert 13 in model.active and len(app.action_results) == 4
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        assert (await last_result(app, 5)).kind == "remove"
        assert [s.clear_type for s in model.history if s.number == 13] == ["REMOVED"]
        await wait_for(lambda: numbers_on_board(app) == [12])
        # The agent recorded every step: the store agrees with the transmitter.
        await wait_for(lambda: [r.number for r in app.snapshot.sessions] == [12])
        assert all(r.ok for r in app.action_results) and app.worker_errors == []


async def test_command_palette_reaches_the_actions(rig):
    app = board(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await seed(rig, app, (21, "Dee", 2))
        await select(pilot, 21)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Page party")
        await pilot.pause(0.3)
        await pilot.press("enter")
        assert (await last_result(app, 1)).kind == "page"
        assert rig.sim.model.active[21].page_count == 1


# --- refusals and an unreachable transmitter ----------------------------------------------


async def test_refused_action_shows_an_error_and_changes_nothing(rig):
    app = board(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await seed(rig, app, (31, "Eve", 2), (32, "Fay", 2))
        # The transmitter forgets pager 31 behind everyone's back (no notification).
        rig.sim.model.remove(31)
        await select(pilot, 31)
        await pilot.press("p")
        result = await last_result(app, 1)
        assert not result.ok and "no active session" in (result.error or "")
        await pilot.pause()
        assert any("refused" in (n.title or "") for n in app._notifications)
        assert 31 in numbers_on_board(app)  # nothing changed on the board
        assert not app.main_screen.parties_by_number(31).paged
        # …and the board keeps working.
        await select(pilot, 32)
        await pilot.press("p")
        assert (await last_result(app, 2)).ok
        assert rig.sim.model.active[32].page_count == 1


async def test_transmitter_refuses_a_pager_already_in_use(rig):
    await rig.stop_agent()  # nobody records anything: the board cannot know pager 1 is taken
    context = await create_context()
    client = ControllerClient(context, "127.0.0.1", rig.sim.port, timeout=1.0)
    app = BoardApp(rig.db, client=client, config=rig.cfg)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(lambda: app.snapshots_seen > 0)
            rig.sim.model.create(1, label="elsewhere")  # taken at another stand
            await pilot.press("a")
            await wait_for(lambda: isinstance(app.screen, PartyForm))
            assert app.screen.query_one("#number").value == "1"
            await pilot.press(*"Gus", "enter", "2", "enter", "enter")  # label, size, goal
            result = await last_result(app, 1)
            assert not result.ok and result.kind == "add"
            assert "already" in (result.error or "")
            assert rig.sim.model.active[1].label == "elsewhere"
            assert numbers_on_board(app) == []
    finally:
        await context.shutdown()


async def test_silent_or_stopped_transmitter_is_reported_and_the_board_keeps_working(rig):
    context = await create_context()
    client = ControllerClient(context, "127.0.0.1", rig.sim.port, timeout=0.3)
    app = BoardApp(rig.db, client=client, config=rig.cfg)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await seed(rig, app, (41, "Hal", 2), (42, "Ivy", 3))
            rig.sim.silence()  # the transmitter stops answering: a timeout
            await select(pilot, 41)
            await pilot.press("s")
            result = await last_result(app, 1)
            assert not result.ok and "no answer from the transmitter" in (result.error or "")
            assert 41 in numbers_on_board(app)  # the board changed nothing
            assert not app.action_results[0].error.endswith("0.3 s")  # says the outcome is unknown
            # A request that timed out may still be carried out when the transmitter wakes up;
            # the board then follows what the agent records.
            rig.sim.resume()
            await wait_for(lambda: 41 not in numbers_on_board(app))
            await rig.sim.stop()  # and now nobody listens on the port at all
            await select(pilot, 42)
            await pilot.press("p")
            result = await last_result(app, 2)
            assert not result.ok and "cannot reach the transmitter" in (result.error or "")
            titles = [n.title for n in app._notifications]
            assert titles[0] == "Seat 41: transmitter unreachable"
            assert "Page 42: transmitter unreachable" in titles
            assert rig.sim.model.active[42].page_count == 0
            assert numbers_on_board(app) == [42]
            assert not app.main_screen.parties_by_number(42).paged
            await pilot.press("h")
            await wait_for(lambda: app.screen.id == "history")
            await pilot.press("escape")
            await wait_for(lambda: app.screen.id == "staff")
            assert app.is_running and app.worker_errors == []
    finally:
        await context.shutdown()


async def test_read_only_board_without_a_client_refuses_politely(rig):
    app = board(rig)
    app.client = None
    async with app.run_test(size=(80, 24)) as pilot:
        await seed(rig, app, (51, "Jo", 2))
        await select(pilot, 51)
        await pilot.press("p")
        result = await last_result(app, 1)
        assert not result.ok and "read-only" in (result.error or "")
        assert rig.sim.model.active[51].page_count == 0


# --- the transmitter's reply shows at once ---------------------------------------------------


async def test_reply_is_shown_before_the_agent_records_it(rig):
    app = board(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await seed(rig, app, (61, "Kim", 2))
        rig.sim.drop_rate = 1.0  # the agent hears nothing more; only the direct reply remains
        await select(pilot, 61)
        await pilot.press("p")
        assert (await last_result(app, 1)).ok
        assert app.main_screen.parties_by_number(61).paged  # from the reply, at once
        assert app.snapshot.sessions[0].state == "waiting"  # the store has not caught up


async def test_tapping_a_party_offers_its_actions_as_large_buttons(rig):
    """A tap on a row (no keyboard) opens the panel; its Seat button seats at the transmitter."""
    from textual.widgets import Button

    from tui.screens.party import PartyActions

    app = board(rig)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(lambda: app.snapshots_seen > 0)
        await seed(rig, app, (31, "Ana", 2), (32, "Bo", 4))
        table = app.main_screen.query_one(PartyTable)
        row = numbers_on_board(app).index(32)
        box = table.content_region
        await pilot.click(offset=(box.x + 2, box.y + table.header_height + row))
        await wait_for(lambda: isinstance(app.screen, PartyActions))
        await pilot.pause()
        buttons = {b.id: b for b in app.screen.query(Button)}
        assert {"page", "seat", "remove", "edit", "cancel"} <= set(buttons)
        assert all(b.outer_size.height >= 3 for b in buttons.values())  # large: for a finger
        await pilot.click(buttons["seat"])
        await wait_for(lambda: not isinstance(app.screen, PartyActions))
        result = await last_result(app, 1)
        assert result.ok and (result.kind, result.number) == ("seat", 32)
        assert 32 not in rig.sim.model.active and 31 in rig.sim.model.active


async def test_the_transmitter_screen_pages_any_pager_and_changes_settings(rig):
    from tui.screens.transmitter import TransmitterScreen

    app = board(rig)
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(lambda: app.snapshots_seen > 0)
        await pilot.press("t")
        await wait_for(lambda: isinstance(app.screen, TransmitterScreen))
        screen = app.screen
        assert "The transmitter's own statistics" in str(screen.query_one("#tx-stats").render())
        assert screen.query_one("#set-clock").disabled  # clocks agree: nothing to offer
        screen.query_one("#page-number").value = "812"
        screen.query_one("#page-mode").value = "Vibe1"
        await pilot.click("#page-any")
        result = await last_result(app, 1)
        assert result.ok and result.kind == "page_number"
        assert rig.sim.model.standalone_pages[-1]["number"] == 812
        assert rig.sim.model.standalone_pages[-1]["pageMode"] == "Vibe1"
        await wait_for(lambda: screen.query_one("#clear-mark").value == "24")  # asked over CoAP
        screen.query_one("#default-goal").value = "12"
        await pilot.click("#save-settings")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        result = await last_result(app, 2)
        assert result.ok and result.kind == "settings"
        assert rig.sim.model.default_target_goal == 720


# --- undo: the store holds the action, the agent carries it out --------------------------------


@contextlib.asynccontextmanager
async def graced_rig(tmp_path: Path, grace: float = 1.5) -> AsyncIterator[Rig]:
    async with running_rig(tmp_path) as r:
        r.cfg = with_overrides(r.cfg, board={"undo_seconds": grace})
        yield r


def other_board_sees(rig: Rig):
    """What any other board (another tablet) reads from the store: the open staff requests."""
    from tui.core.source import BoardSource

    src = BoardSource(rig.db, config=rig.cfg)
    try:
        snap = src.poll(force=True)
        return [] if snap is None else list(snap.requests)
    finally:
        src.close()


async def test_undo_within_the_grace_sends_nothing_after_it_the_party_is_seated(tmp_path):
    async with graced_rig(tmp_path) as rig:
        app = board(rig)
        async with app.run_test(size=(120, 40)) as pilot:
            await seed(rig, app, (41, "Ana", 2), (42, "Bo", 3))
            await select(pilot, 42)
            await pilot.press("s")
            assert (await last_result(app, 1)).ok
            # Held in the store: every board sees it pending, the row says so, nothing sent yet.
            await wait_for(lambda: [r.kind for r in other_board_sees(rig)] == ["seat"])
            await wait_for(lambda: "SEATING" in app.main_screen.cells_by_number(42)[6][0])
            assert app.main_screen.query_one("#pending-bar").display
            await pilot.press("u")
            result = await last_result(app, 2)
            assert result.ok and result.kind == "undo" and "stays" in (result.done or "")
            await asyncio.sleep(2.5)  # well past the grace
            assert 42 in rig.sim.model.active  # undone: the transmitter never heard of it
            assert other_board_sees(rig) == []
            # Seat again and let the grace pass: the agent seats it.
            await pilot.press("s")
            await wait_for(lambda: 42 not in rig.sim.model.active, timeout=30)
            assert [s.clear_type for s in rig.sim.model.history if s.number == 42] == ["STOP"]
            assert 41 in rig.sim.model.active


async def test_a_board_that_closes_mid_grace_still_has_the_seat_carried_out(tmp_path):
    # A grace a loaded machine cannot overrun between the key and the check that nothing was sent
    # yet (1 s did, once, in a full parallel run).
    async with graced_rig(tmp_path, grace=3.0) as rig:
        app = board(rig)
        async with app.run_test(size=(120, 40)) as pilot:
            await seed(rig, app, (51, "Cy", 2))
            await select(pilot, 51)
            await pilot.press("s")
            assert (await last_result(app, 1)).ok
            assert 51 in rig.sim.model.active
        # The tab is gone (the app has exited); the request is in the store, the agent does it.
        await wait_for(lambda: 51 not in rig.sim.model.active, timeout=30)
        assert [s.clear_type for s in rig.sim.model.history if s.number == 51] == ["STOP"]


async def test_lost_parties_are_re_added_or_dismissed_from_the_board(rig):
    """The transmitter reboots and forgets: the board shows the lost in their own group (not as
    waiting); re-add creates the same party again, linked to the old session; dismiss records it."""
    from textual.widgets import Button

    from tests.agent_helpers import exported
    from tui.screens.party import PartyActions

    app = board(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await seed(rig, app, (61, "Lina", 3), (62, "Max", 2))
        await rig.sim.restart(forget=True)
        screen = app.main_screen
        await wait_for(
            lambda: sorted(v.number for v in screen.lost.values()) == [61, 62], timeout=30
        )
        assert numbers_on_board(app) == []  # not counted as waiting
        assert screen.query_one("#lost-table").display
        lost = screen.query_one("#lost-table")

        async def tap_lost(number: int) -> None:
            # The group has just appeared: let its layout settle before aiming at a row.
            await wait_for(lambda: lost.row_count == len(screen.lost) and lost.size.height > 1)
            await pilot.pause()
            row = [screen.lost[k].number for k in lost.row_keys].index(number)
            box = lost.content_region
            await pilot.click(offset=(box.x + 2, box.y + lost.header_height + row))
            await wait_for(lambda: isinstance(app.screen, PartyActions), timeout=15)
            await pilot.pause()

        await tap_lost(61)
        assert {b.id for b in app.screen.query(Button)} == {"readd", "dismiss_lost", "cancel"}
        await pilot.click("#readd")
        await wait_for(lambda: 61 in rig.sim.model.active, timeout=30)
        again = rig.sim.model.active[61]
        assert (again.label, again.party_size) == ("Lina", 3)

        await wait_for(lambda: [v.number for v in screen.lost.values()] == [62], timeout=30)
        await tap_lost(62)
        await pilot.click("#dismiss_lost")
        await wait_for(lambda: not screen.lost, timeout=30)  # both handled: the group is gone
        await wait_for(lambda: 61 in numbers_on_board(app))

    rows = {(r["number"], r["state"]): r for r in exported(rig.db)}
    old, new = rows[(61, "lost")], rows[(61, "waiting")]
    assert new["reopened_from"] == old["uuid"] and old["reopened_from"] is None
    from agent.store import Store

    store = Store(rig.db, readonly=True)
    try:
        assert store.lost_views() == []  # 62 dismissed, 61 re-added
        dismissed = {v.number: v.dismissed_at for v in store.iter_views() if v.state == "lost"}
        assert dismissed[62] is not None
    finally:
        store.close()


# --- the end of the night ----------------------------------------------------------------------


async def test_close_out_and_the_report_agree_with_the_header_and_the_export(rig):
    """Seat one, walk one, page one, then close out the rest: the report screen, the header and
    figures computed here from `pager-edge export` say the same; the close-out is recorded."""
    import statistics

    from agent.export import session_records
    from agent.store import Store
    from tui.screens.report import CloseOutDialog, ReportScreen

    model = rig.sim.model
    app = board(rig)
    async with app.run_test(size=(120, 40)) as pilot:
        await seed(rig, app, (71, "Ana", 2), (72, "Bo", 4), (73, "Cy", 2), (74, "Dee", 6))
        rig.clock.advance(300)
        rig.sim.page(71)
        rig.clock.advance(120)
        rig.sim.clear(71)  # seated
        rig.sim.remove(72)  # walked away
        rig.clock.advance(60)
        rig.sim.page(73)  # paged, still here
        await wait_for(lambda: numbers_on_board(app) == [73, 74])
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Close out")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, CloseOutDialog))
        await pilot.click("#seat")  # they ate: seat them
        await wait_for(lambda: not model.active, timeout=30)
        assert sorted(s.clear_type for s in model.history if s.number in (73, 74)) == ["STOP"] * 2
        await wait_for(lambda: numbers_on_board(app) == [])
        await wait_for(lambda: app.snapshot.today is not None and app.snapshot.today.open == 0)
        header = app.snapshot.today
        await pilot.press("d")
        await wait_for(lambda: isinstance(app.screen, ReportScreen) and app.screen.report)
        report = app.screen.report
        assert report == header  # the same definitions, the same figures

    store = Store(rig.db, readonly=True)
    try:
        exported = [r for r in session_records(store) if r["number"] in (71, 72, 73, 74)]
        sources = {e["uuid"]: e["source"] for e in store.iter_events() if e["kind"] in ("cleared",)}
    finally:
        store.close()
    waits = [r["wait_seconds"] for r in exported if r["wait_seconds"] is not None]
    judged = [(r["wait_seconds"], r["goal_seconds"]) for r in exported if r["wait_seconds"]]
    assert (
        (report.parties, report.seated, report.walk_aways, report.lost, report.open)
        == (
            sum(1 for _ in exported),
            sum(1 for r in exported if r["state"] == "cleared"),
            sum(1 for r in exported if r["state"] == "removed"),
            0,
            0,
        )
        == (4, 3, 1, 0, 0)
    )
    assert report.mean_wait == statistics.fmean(waits)
    assert report.on_time == sum(1 for w, g in judged if w <= g) / len(judged)
    by_number = {r["number"]: r["uuid"] for r in exported}
    assert sources[by_number[73]] == "close_out" and sources[by_number[74]] == "close_out"
    assert sources[by_number[71]] != "close_out"  # seated by the host before: not the close-out
