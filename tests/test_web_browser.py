"""The web board in a real browser: headless Chromium (Debian's package) driven by Playwright.

One stand per module: the T7470 simulator and the agent in this event loop, `pager-edge web` as a
site runs it (a subprocess, PIN from its environment), and one Chromium. Each test opens its own
browser context (fresh cookies) at a tablet size with touch. The board is drawn on a canvas, so
the tests look at state instead of DOM text: what the transmitter did (``sim.model``), what the
agent recorded (the store), which board processes ran (``/proc``), and the terminal output the
board sent down the websocket (where a label would be plain text). The cells to tap come from the
same board laid out by Textual's Pilot at the browser's terminal size.

Never `playwright install`: the browser is /usr/bin/chromium (`.ci/run` installs it when missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from agent.config import Config, to_toml, with_overrides
from agent.daemon import Agent
from agent.simulator.server import Simulator
from tests.agent_helpers import exported
from tests.board_fixtures import ZONE
from tests.webfixtures import PIN, WRONG, board_argvs, free_port, spawn_web, wait_listening

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TABLETS = [(1280, 800), (800, 1280)]
WAIT = 30.0  # seconds: generous for a loaded 2-core machine, but bounded

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed: pip install -e '.[test]'"
)
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no /usr/bin/chromium: apt-get install chromium"
    ),
]


@dataclass
class Stand:
    sim: Simulator
    agent: Agent
    cfg: Config
    db: Path
    url: str
    log: Path
    proc: Any
    browser: Any
    shots: Path


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stand(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stand]:
    tmp = tmp_path_factory.mktemp("stand")
    sim = await Simulator.start(host="127.0.0.1", port=0, ping_interval=2.0, tz=ZoneInfo(ZONE))
    db = tmp / "agent.db"
    port = free_port()
    cfg = with_overrides(
        Config(),
        store={"path": str(db), "synchronous": "NORMAL"},
        controller={
            "host": "127.0.0.1",
            "port": sim.port,
            "ping_interval": 2.0,
            "timezone": ZONE,
            "request_timeout": 2.0,
            "max_backoff": 0.5,
        },
        board={"refresh_interval": 0.1},
        web={"port": port, "max_sessions": 3},
    )
    config = tmp / "config.toml"
    config.write_text(to_toml(cfg))
    agent = Agent(cfg)
    await agent.start()
    log = tmp / "web.log"
    proc = spawn_web(config, log, PAGER_EDGE_WEB_PIN=PIN)
    pw = browser = None
    try:
        await wait_listening(proc, log)
        pw = await playwright_api.async_playwright().start()
        try:
            # launch() gives every run a fresh temporary profile (user-data dir).
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except playwright_api.Error as exc:
            pytest.skip(f"{CHROMIUM} does not start here: {str(exc).splitlines()[0]}")
        yield Stand(sim, agent, cfg, db, f"http://127.0.0.1:{port}", log, proc, browser, tmp)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0, log.read_text()
        assert board_argvs(proc.pid) == []
    finally:
        if browser is not None:
            await browser.close()
        if pw is not None:
            await pw.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await agent.stop()
        await sim.stop()


@dataclass
class Tab:
    """One browser tab, with everything it asked for and everything the board sent it."""

    page: Any
    requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    output: bytearray = field(default_factory=bytearray)
    size: tuple[int, int] | None = None
    errors: list[str] = field(default_factory=list)

    def _frame_sent(self, payload: str | bytes) -> None:
        if isinstance(payload, str) and payload.startswith('["resize"'):
            import json

            d = json.loads(payload)[1]
            self.size = (d["width"], d["height"])

    def _websocket(self, ws: Any) -> None:
        self.websockets.append(ws.url)
        q = parse_qs(urlparse(ws.url).query)
        if "width" in q:
            self.size = (int(q["width"][0]), int(q["height"][0]))
        ws.on("framereceived", lambda p: self.output.extend(p if isinstance(p, bytes) else b""))
        ws.on("framesent", self._frame_sent)

    async def until_output(self, *needles: bytes, since: int = 0) -> None:
        deadline = time.monotonic() + WAIT
        while not all(n in self.output[since:] for n in needles):
            if time.monotonic() > deadline:
                tail = bytes(self.output[-400:])
                raise AssertionError(f"the board never drew {needles}: …{tail!r}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def tab(stand: Stand, size: tuple[int, int]) -> AsyncIterator[Tab]:
    context = await stand.browser.new_context(
        viewport={"width": size[0], "height": size[1]}, has_touch=True, is_mobile=False
    )
    page = await context.new_page()
    page.set_default_timeout(WAIT * 1000)
    t = Tab(page)
    page.on("request", lambda r: t.requests.append(r.url))
    page.on("websocket", t._websocket)
    page.on("console", lambda m: t.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: t.errors.append(str(e)))
    try:
        yield t
    finally:
        await context.close()
    # Nothing a page asked for left the stand's LAN (here: the server itself).
    strangers = [u for u in t.requests + t.websockets if not _ours(stand, u)]
    assert strangers == []
    assert stand_log(stand).count(PIN) == 0


def _ours(stand: Stand, url: str) -> bool:
    origin = urlparse(stand.url)
    u = urlparse(url)
    return u.hostname == origin.hostname and u.port == origin.port


def stand_log(stand: Stand) -> str:
    return stand.log.read_text(errors="replace")


def sessions_started(stand: Stand) -> int:
    return len(re.findall(r"(staff|kiosk) session \d+ started", stand_log(stand)))


async def sign_in(t: Tab, stand: Stand, pin: str, *, query: str = "") -> Any:
    """Open the board as a host would: the address, the PIN on the touch keypad, Sign in (then
    the board's address with `query`, when given)."""
    await t.page.goto(f"{stand.url}/")
    assert urlparse(t.page.url).path == "/login"  # 303 from / without a session
    await t.page.tap("#pin")
    await t.page.keyboard.type(pin)
    async with t.page.expect_navigation() as nav:
        await t.page.tap("button[type=submit]")
    response = await nav.value
    if query and response.status == 200:
        response = await t.page.goto(f"{stand.url}/{query}")
    return response


async def screen_cell(t: Tab, column: int, row: int) -> tuple[float, float]:
    """The centre, in page pixels, of terminal cell (column, row)."""
    assert t.size is not None
    cols, rows = t.size
    box = await t.page.locator(".xterm-screen").bounding_box()
    assert box is not None
    return (
        box["x"] + (column + 0.5) * box["width"] / cols,
        box["y"] + (row + 0.5) * box["height"] / rows,
    )


@dataclass(frozen=True)
class Layout:
    rows: dict[int, tuple[int, int]]  # pager number → (column, row) of a cell in its table row
    seat: tuple[int, int]  # the Seat button of the panel a tap on a party opens


async def board_layout(
    stand: Stand, size: tuple[int, int], numbers: set[int], *, layout: str = "compact"
) -> Layout:
    """Where the staff board puts each party and the Seat key at this terminal size.

    The same app as the browser's board process, on the same store and configuration, laid out
    by Textual's Pilot: the layout is the board's own, not a copy of it in the test.
    """
    from textual.widgets import Button

    from tests.board_fixtures import wait_for
    from tui.app import BoardApp
    from tui.widgets.table import PartyTable

    app = BoardApp(stand.db, config=stand.cfg, layout=layout)
    async with app.run_test(size=size) as pilot:
        screen = app.main_screen
        table = screen.query_one(PartyTable)

        def on_board() -> dict[int, int]:
            return {screen.parties[k].number: i for i, k in enumerate(table.row_keys)}

        await wait_for(lambda: numbers <= set(on_board()), timeout=WAIT)
        await pilot.pause()
        box = table.content_region
        top = box.y + table.header_height - round(table.scroll_y)
        rows = {n: (box.x + 6, top + i) for n, i in on_board().items() if n in numbers}
        await pilot.click(offset=next(iter(rows.values())))  # a tap opens the party's panel
        await wait_for(lambda: bool(app.screen.query("#party-actions")), timeout=WAIT)
        await pilot.pause()
        r = app.screen.query_one("#seat", Button).region
        return Layout(rows, (r.x + r.width // 2, r.y + r.height // 2))


async def arrive(stand: Stand, *parties: tuple[int, str, int]) -> None:
    """Parties added at the transmitter (as another stand would), recorded by the agent."""
    for number, label, size in parties:
        stand.sim.create(number, goal=900, label=label, party_size=size)
    want = {n for n, _l, _s in parties}
    deadline = time.monotonic() + WAIT
    while not want <= {r["number"] for r in exported(stand.db) if r["state"] == "waiting"}:
        assert time.monotonic() < deadline, "the agent did not record the new parties"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("size", TABLETS, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_sign_in_tap_a_party_tap_seat(stand: Stand, size: tuple[int, int]):
    """The compact layout (asked for by the address) on a touch screen: a tap opens the party's
    panel, its Seat seats it."""
    base = 40 if size[0] > size[1] else 60
    first, second = (base + 1, f"Amsel-{base}", 2), (base + 2, f"Birke-{base}", 4)
    await arrive(stand, first, second)
    async with tab(stand, size) as t:
        response = await sign_in(t, stand, PIN, query="?layout=compact")
        assert response.status == 200 and urlparse(t.page.url).path == "/"
        await t.until_output(first[1].encode(), second[1].encode())  # staff see labels
        assert t.size is not None
        box = await t.page.locator(".xterm-screen").bounding_box()
        assert box["width"] > 0.95 * size[0] and box["height"] > 0.95 * size[1]  # fills it
        layout = await board_layout(stand, t.size, {first[0], second[0]})

        # Tap the second party's row: its actions open as large buttons; tap Seat.
        await t.page.touchscreen.tap(*await screen_cell(t, *layout.rows[second[0]]))
        await t.until_output(f"Pager {second[0]}".encode())  # the panel's title
        await t.page.screenshot(path=stand.shots / f"staff-{size[0]}x{size[1]}.png")
        await t.page.touchscreen.tap(*await screen_cell(t, *layout.seat))

        model = stand.sim.model
        deadline = time.monotonic() + WAIT
        while second[0] in model.active:
            assert time.monotonic() < deadline, "Seat never reached the transmitter"
            await asyncio.sleep(0.05)
        assert [s.clear_type for s in model.history if s.number == second[0]] == ["STOP"]
        assert first[0] in model.active  # the tap chose the row: the other party still waits
        while {r["number"]: r["state"] for r in exported(stand.db)}.get(second[0]) != "cleared":
            assert time.monotonic() < deadline, "the agent did not record the seating"
            await asyncio.sleep(0.1)
        assert urlparse(t.websockets[-1]).path == "/ws/compact"  # the layout the address asked
        assert t.errors == []
    assert "staff session" in stand_log(stand)


@dataclass(frozen=True)
class TouchLayout:
    """The touch layout's regions, in cells, at the browser's terminal size."""

    rows: dict[int, Any]  # pager number → its table row (a Region), for the rows on screen
    bar: dict[str, Any]  # the action bar's buttons
    form: dict[str, Any]  # the add form's fields and buttons


async def touch_layout(stand: Stand, size: tuple[int, int], numbers: set[int]) -> TouchLayout:
    """Where the touch board puts each party, its action bar and its add form at this size: the
    same app as the browser's board process (same store, configuration and layout), laid out by
    Textual's Pilot."""
    from textual.geometry import Region
    from textual.widgets import Button, Input

    from tests.board_fixtures import wait_for
    from tui.app import BoardApp
    from tui.screens.dialogs import PartyForm
    from tui.widgets.table import PartyTable

    app = BoardApp(stand.db, config=stand.cfg, layout="touch")
    async with app.run_test(size=size) as pilot:
        screen = app.main_screen
        table = screen.query_one(PartyTable)
        await wait_for(lambda: numbers <= {p.number for p in screen.parties.values()}, WAIT)
        await pilot.pause()
        box = table.content_region
        y = box.y + table.header_height - round(table.scroll_y)
        rows = {}
        for key, row in zip(table.row_keys, table.ordered_rows, strict=True):
            region = Region(box.x, y, box.width, row.height)
            if box.contains_region(region):
                rows[screen.parties[key].number] = region
            y += row.height
        bar = {b.id: b.region for b in screen.query("#action-bar Button").results(Button)}
        await pilot.click(screen.query_one("#bar-add", Button))
        await wait_for(lambda: isinstance(app.screen, PartyForm), WAIT)
        await pilot.pause()
        form = {w.id: w.region for w in app.screen.query("Input, Button") if w.id}
        assert all(isinstance(w, Input | Button) for w in app.screen.query("Input, Button"))
        return TouchLayout(rows, bar, form)


async def tap_region(t: Tab, region: Any) -> None:
    """A finger in the middle of a region of cells."""
    await t.page.touchscreen.tap(
        *await screen_cell(t, region.x + region.width // 2, region.y + region.height // 2)
    )


async def keyboard_mode(t: Tab) -> str | None:
    """The soft keyboard the page asks for: xterm.js's textarea's inputmode."""
    return await t.page.locator(".xterm-helper-textarea").get_attribute("inputmode")


async def until_keyboard(t: Tab, mode: str) -> None:
    deadline = time.monotonic() + WAIT
    while (now := await keyboard_mode(t)) != mode:
        assert time.monotonic() < deadline, f"the page's keyboard stayed {now!r}, not {mode!r}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("size", TABLETS, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_touch_rows_and_buttons_are_finger_sized_taps_select_and_add(
    stand: Stand, size: tuple[int, int]
):
    """A touch screen (no layout in the address: the page sees a coarse pointer) gets the touch
    layout: every row and bar button ≥ 44 CSS px, a tap in the middle of row k selects row k (a
    second tap opens that party's panel), the bar's Seat seats the selected party, and Add party
    → the form (number pad for numbers, a size button) → a party the simulator holds."""
    from tests.board_fixtures import TOUCH_CELLS

    base = 100 if size[0] > size[1] else 120
    parties = [(base + i, f"Touch-{base + i}", 2 + i % 3) for i in range(1, 5)]
    await arrive(stand, *parties)
    labels = {n: label for n, label, _s in parties}
    async with tab(stand, size) as t:
        response = await sign_in(t, stand, PIN)
        assert response.status == 200
        await t.until_output(*(label.encode() for label in labels.values()))
        assert [urlparse(u).path for u in t.websockets] == ["/ws/touch"]
        assert t.size == TOUCH_CELLS[size]  # what the Pilot tests lay the board out at
        box = await t.page.locator(".xterm-screen").bounding_box()
        cell = box["height"] / t.size[1]
        layout = await touch_layout(stand, t.size, set(labels))
        assert set(labels) <= set(layout.rows)
        heights = [r.height * cell for r in [*layout.rows.values(), *layout.bar.values()]]
        assert min(heights) >= 44, heights
        await until_keyboard(t, "none")  # tapping the board brings up no soft keyboard
        await t.page.screenshot(path=stand.shots / f"staff-touch-{size[0]}x{size[1]}.png")

        for number, region in layout.rows.items():
            mark = len(t.output)
            await tap_region(t, region)  # selects …
            await asyncio.sleep(0.3)
            await tap_region(t, region)  # … and a tap on the selected row opens its panel
            await t.until_output(f"Pager {number}".encode(), since=mark)
            if number in labels:
                await t.until_output(labels[number].encode(), since=mark)
            await t.page.keyboard.press("Escape")
            await asyncio.sleep(0.5)

        seated = parties[1][0]
        await tap_region(t, layout.rows[seated])
        await asyncio.sleep(0.3)
        await tap_region(t, layout.bar["bar-seat"])
        model = stand.sim.model
        deadline = time.monotonic() + WAIT
        while seated in model.active:
            assert time.monotonic() < deadline, "the bar's Seat never reached the transmitter"
            await asyncio.sleep(0.05)
        assert [s.clear_type for s in model.history if s.number == seated] == ["STOP"]
        assert {n for n, _l, _s in parties} - {seated} <= set(model.active)

        before = set(model.active)
        mark = len(t.output)
        await tap_region(t, layout.bar["bar-add"])
        await t.until_output(b"Add a party", since=mark)
        await until_keyboard(t, "text")  # the label field has the cursor
        await tap_region(t, layout.form["number"])
        await until_keyboard(t, "numeric")  # a pager number: the number pad
        await tap_region(t, layout.form["size-4"])
        await until_keyboard(t, "none")
        await t.page.screenshot(path=stand.shots / f"form-touch-{size[0]}x{size[1]}.png")
        await tap_region(t, layout.form["ok"])
        while not set(model.active) - before:
            assert time.monotonic() < deadline + WAIT, "the form's party never reached it"
            await asyncio.sleep(0.05)
        (added,) = set(model.active) - before
        assert model.active[added].party_size == 4
        assert t.errors == []


async def test_a_wrong_pin_never_reaches_the_board(stand: Stand):
    started_before = sessions_started(stand)
    async with tab(stand, TABLETS[0]) as t:
        response = await sign_in(t, stand, WRONG)
        assert response.status == 401
        assert urlparse(t.page.url).path == "/login"
        assert "Wrong PIN" in await t.page.locator(".message").inner_text()
        await t.page.goto(f"{stand.url}/")  # and the board's address sends it back
        assert urlparse(t.page.url).path == "/login"
        await asyncio.sleep(1.0)
        assert t.websockets == []  # no websocket was ever opened, the board page never loaded…
        assert not [u for u in t.requests if "/static/" in u]
    # …so no board process was started for it, and the server says so.
    assert sessions_started(stand) == started_before
    assert "wrong PIN from 127.0.0.1" in stand_log(stand)


async def test_the_kiosk_needs_no_pin_and_shows_no_label(stand: Stand):
    label = "Zebulon-Quartz"
    await arrive(stand, (77, label, 3))
    async with tab(stand, TABLETS[1]) as t:
        await t.page.goto(f"{stand.url}/kiosk")
        assert urlparse(t.page.url).path == "/kiosk"
        await t.until_output(b"WAITING")
        await t.page.wait_for_selector("body.-first-byte")
        await asyncio.sleep(0.5)
        await t.page.screenshot(path=stand.shots / "kiosk-800x1280.png")
        kiosks = [a for a in board_argvs(stand.proc.pid) if "--kiosk" in a]
        assert len(kiosks) == 1  # the served command is the read-only kiosk
        assert [u for u in t.websockets if urlparse(u).path == "/kiosk/ws"] == t.websockets
        assert label.encode() not in t.output
        assert t.errors == []


async def kiosk_glyphs(stand: Stand, size: tuple[int, int]) -> tuple[int, tuple[int, ...]]:
    """The rows the kiosk draws its paged digits in at this terminal size, and the numbers: the
    same app as the browser's kiosk process (store, configuration), laid out by Textual's Pilot."""
    from tests.board_fixtures import wait_for
    from tui.app import BoardApp
    from tui.widgets.header import BigNumbers

    app = BoardApp(stand.db, config=stand.cfg, kiosk=True)
    async with app.run_test(size=size) as pilot:
        await wait_for(lambda: app.snapshots_seen > 0, timeout=WAIT)
        await pilot.pause()
        paging = app.main_screen.query_one("#paging", BigNumbers)
        return paging.glyph_rows, paging.numbers


async def test_the_kiosk_draws_the_paged_number_a_third_of_the_screen_high(stand: Stand):
    """At 1280×800, 1920×1080 and 800×1280 the paged digits are ≥ 1/3 of the viewport's height
    (the glyph rows the kiosk draws × the page's cell height); a screenshot of each is written."""
    from tests.board_fixtures import KIOSK_CELLS

    await arrive(stand, (88, "Kiosk-Paged", 2))
    stand.sim.page(88)
    deadline = time.monotonic() + WAIT
    while not any(r["number"] == 88 and r["state"] == "paged" for r in exported(stand.db)):
        assert time.monotonic() < deadline, "the agent did not record the page"
        await asyncio.sleep(0.1)
    for size in [(1280, 800), (1920, 1080), (800, 1280)]:
        async with tab(stand, size) as t:
            await t.page.goto(f"{stand.url}/kiosk")
            await t.until_output(b"NOW PAGING")
            await t.page.wait_for_selector("body.-first-byte")
            assert t.size == KIOSK_CELLS[size]  # what the Pilot tests lay the kiosk out at
            box = await t.page.locator(".xterm-screen").bounding_box()
            cell = box["height"] / t.size[1]
            rows, numbers = await kiosk_glyphs(stand, t.size)
            assert 88 in numbers
            assert rows * cell >= size[1] / 3, (size, rows, cell)
            await asyncio.sleep(0.5)  # the last frame drawn
            await t.page.screenshot(path=stand.shots / f"kiosk-{size[0]}x{size[1]}.png")
            assert t.errors == []
