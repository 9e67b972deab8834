"""`pager-edge bench web`: what each signed-in tablet costs the Pi, and how soon it shows things.

The stand is real, as in the browser tests: the simulator and the agent in this process,
`pager-edge web` as a site runs it (a subprocess; PIN from its environment; ``[board]
undo_seconds = 0``, so a seat is sent at once).

**Cost per tablet.** A tablet here is a websocket client (sign in with the PIN, open ``/ws/touch``
at the touch layout's 128×33 cells of a 1280×800 tablet, read everything the board draws): the
board process the server starts for it is the same one a browser gets, and the browser's own cost
is on the tablet, not on the Pi. With 1…N tablets open: each board process's RSS, PSS and USS
(``/proc/<pid>/smaps_rollup``), the PSS of the server's whole process tree, and each board's CPU
(utime + stime) over a window idle and a window with one transmitter change a second (a waiting
party's label). Per extra tablet = (tree PSS with N − tree PSS with 1) / (N − 1): what one more
tablet adds to the machine, shared pages counted once.

**Tap → visible** and **notification → visible**, in Debian's headless Chromium through
Playwright (a 1280×800 touch tablet on the touch layout): each round a party arrives at the
transmitter, timed until its label reaches the page (the websocket frame that carries it); then a
tap on the bar's Seat (the only row holds the cursor: it is the selected party) is timed until the
board draws its empty table.

Rounds alternate nothing (one stand); figures are medians (and p95 for latencies) over rounds.
Figures, never assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from bench import machine_description

PIN = "73019482"
TABLET = (1280, 800)
TOUCH_CELLS = (128, 33)  # the touch layout's terminal at 1280×800 (tests/board_fixtures.py)
CHROMIUM = Path("/usr/bin/chromium")
WAIT = 30.0


# --- /proc ------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Every live process below `pid`."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of one process, MB (from smaps_rollup)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        with contextlib.suppress(ValueError, IndexError):
            fields[name] = int(rest.split()[0])
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {
        "rss": fields.get("Rss", 0) / 1024,
        "pss": fields.get("Pss", 0) / 1024,
        "uss": uss / 1024,
    }


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def boards(server: int) -> list[int]:
    """The board processes below the web server."""
    found = []
    for pid in children(server):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"tui.web.tablet" in argv or b"board" in argv:  # the board now, or before
                found.append(pid)
    return found


# --- the stand --------------------------------------------------------------------------------


@dataclass
class Stand:
    sim: Any
    agent: Any
    cfg: Any
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    numbers: int = 500  # pager numbers handed out from here

    def next_number(self) -> int:
        self.numbers += 1
        return self.numbers


def spawn_web(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """`pager-edge web` as a site runs it (the PIN in its environment), output into `log`."""
    env = {k: v for k, v in os.environ.items() if k != "PAGER_EDGE_WEB_PIN"}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pager_edge", "web", "--config", str(config)],
            env={**env, "PAGER_EDGE_WEB_PIN": PIN},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@contextlib.asynccontextmanager
async def stand(tmp: Path) -> AsyncIterator[Stand]:
    import socket

    from agent.config import Config, to_toml, with_overrides
    from agent.daemon import Agent
    from agent.simulator.server import Simulator

    zone = "Europe/Paris"
    sim = await Simulator.start(host="127.0.0.1", port=0, ping_interval=2.0, tz=ZoneInfo(zone))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = with_overrides(
        Config(),
        store={"path": str(tmp / "agent.db"), "synchronous": "NORMAL"},
        controller={
            "host": "127.0.0.1",
            "port": sim.port,
            "ping_interval": 2.0,
            "timezone": zone,
            "request_timeout": 2.0,
            "max_backoff": 0.5,
        },
        board={"undo_seconds": 0.0},
        web={"port": port, "max_sessions": 8},
    )
    config = tmp / "config.toml"
    config.write_text(to_toml(cfg))
    agent = Agent(cfg)
    await agent.start()
    log = tmp / "web.log"
    proc = spawn_web(config, log)
    try:
        deadline = time.monotonic() + WAIT
        while "web board on" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise click.ClickException(f"pager-edge web did not start:\n{log.read_text()}")
            await asyncio.sleep(0.05)
        yield Stand(sim, agent, cfg, f"http://127.0.0.1:{port}", proc, log)
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            proc.kill()
        await agent.stop()
        await sim.stop()


# --- tablets as websocket clients -------------------------------------------------------------


@dataclass
class Tablet:
    """One signed-in tablet's websocket, its output drained in the background."""

    ws: Any
    output: bytearray = field(default_factory=bytearray)
    reader: asyncio.Task[None] | None = None


async def open_tablet(http: Any, s: Stand) -> Tablet:
    import aiohttp

    from tui.web.server import COOKIE

    async with http.post(f"{s.url}/login", data={"pin": PIN}, allow_redirects=False) as r:
        await r.read()
        if r.status != 303 or COOKIE not in r.cookies:
            raise click.ClickException(f"sign-in refused: HTTP {r.status}")
        cookie = r.cookies[COOKIE].value
    cols, rows = TOUCH_CELLS
    ws = await http.ws_connect(
        f"{s.url}/ws/touch?width={cols}&height={rows}",
        headers={"Cookie": f"{COOKIE}={cookie}", "Origin": s.url},
    )
    tablet = Tablet(ws)

    async def drain() -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                tablet.output.extend(msg.data)

    tablet.reader = asyncio.create_task(drain())
    return tablet


async def until(predicate: Any, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise click.ClickException(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def cost_round(s: Stand, tablets: int, seconds: float) -> dict[str, Any]:
    """Open 1…`tablets` tablets one by one; memory after each, CPU idle and at 1 change/s."""
    import aiohttp

    label_number = s.next_number()
    s.sim.create(label_number, goal=900, label="Bench-0", party_size=2)
    tree: list[float] = []
    opened: list[Tablet] = []
    result: dict[str, Any] = {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        try:
            for n in range(1, tablets + 1):
                opened.append(await open_tablet(http, s))
                await until(
                    lambda: (
                        all(b"Bench-" in t.output for t in opened) and len(boards(s.proc.pid)) == n  # noqa: B023 (awaited here)
                    ),
                    "the boards to draw",
                )
                await asyncio.sleep(2.0)  # settled: the first frames and the first polls done
                pids = [s.proc.pid, *children(s.proc.pid)]
                tree.append(sum(memory(p)["pss"] for p in pids if Path(f"/proc/{p}").exists()))
            pids = boards(s.proc.pid)
            per_board = [memory(p) for p in pids]
            result["rss"] = statistics.median(m["rss"] for m in per_board)
            result["pss"] = statistics.median(m["pss"] for m in per_board)
            result["uss"] = statistics.median(m["uss"] for m in per_board)
            result["tree"] = tree
            result["per_extra"] = (tree[-1] - tree[0]) / (len(tree) - 1) if len(tree) > 1 else None
            before = {p: cpu_seconds(p) for p in pids}
            await asyncio.sleep(seconds)
            idle = [(cpu_seconds(p) - before[p]) / seconds for p in pids]
            before = {p: cpu_seconds(p) for p in pids}
            started = time.monotonic()
            i = 0
            while time.monotonic() - started < seconds:
                i += 1
                s.sim.update(label_number, label=f"Bench-{i}")
                await asyncio.sleep(max(0.0, started + i - time.monotonic()))
            busy = [(cpu_seconds(p) - before[p]) / (time.monotonic() - started) for p in pids]
            result["cpu_idle"] = 100 * statistics.median(idle)
            result["cpu_busy"] = 100 * statistics.median(busy)
        finally:
            for t in opened:
                await t.ws.close()
                if t.reader is not None:
                    t.reader.cancel()
            s.sim.remove(label_number)
    await until(lambda: not boards(s.proc.pid), "the boards to exit")
    return result


# --- latencies in Chromium --------------------------------------------------------------------


async def seat_cell(s: Stand, size: tuple[int, int]) -> tuple[int, int]:
    """The middle of the touch board's Seat button at this size, once a party is on the board:
    the same app, store and configuration as the tablet's board process, laid out by Pilot."""
    from textual.widgets import Button

    from tui.app import BoardApp
    from tui.widgets.table import PartyTable

    app = BoardApp(Path(s.cfg.store.path), config=s.cfg, layout="touch")
    async with app.run_test(size=size) as pilot:
        screen = app.main_screen
        table = screen.query_one(PartyTable)
        await until(lambda: bool(table.row_keys), "the Pilot board's first row")
        await pilot.pause()
        seat = screen.query_one("#bar-seat", Button).region
        return seat.x + seat.width // 2, seat.y + seat.height // 2


async def latency_rounds(s: Stand, rounds: int) -> dict[str, list[float]]:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        raise click.ClickException("playwright is not installed: pip install -e '.[test]'") from exc
    if not CHROMIUM.exists():
        raise click.ClickException(f"no {CHROMIUM}: apt-get install chromium")
    seen = bytearray()
    size: list[tuple[int, int]] = []

    def on_ws(ws: Any) -> None:
        ws.on("framereceived", lambda p: seen.extend(p) if isinstance(p, bytes) else None)

        def sent(p: Any) -> None:
            if isinstance(p, str) and p.startswith('["resize"'):
                d = json.loads(p)[1]
                size.append((d["width"], d["height"]))

        ws.on("framesent", sent)

    async def drawn(needle: bytes, since: int) -> float:
        deadline = time.monotonic() + WAIT
        while needle not in seen[since:]:
            if time.monotonic() > deadline:
                tail = bytes(seen[-300:])
                raise click.ClickException(f"the board never drew {needle!r}: …{tail!r}")
            await asyncio.sleep(0.002)
        return time.monotonic()

    out: dict[str, list[float]] = {"notification": [], "seat": []}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        context = await browser.new_context(
            viewport={"width": TABLET[0], "height": TABLET[1]}, has_touch=True
        )
        page = await context.new_page()
        page.on("websocket", on_ws)
        await page.goto(s.url)
        await page.fill("#pin", PIN)
        async with page.expect_navigation():
            await page.tap("button[type=submit]")
        await drawn(b"No parties waiting", 0)
        await until(lambda: bool(size), "the page's terminal size")
        box = await page.locator(".xterm-screen").bounding_box()
        if box is None:
            raise click.ClickException("the page shows no terminal")
        cols, rows = size[-1]

        def at(cell: tuple[int, int]) -> tuple[float, float]:
            return (
                box["x"] + (cell[0] + 0.5) * box["width"] / cols,
                box["y"] + (cell[1] + 0.5) * box["height"] / rows,
            )

        seat: tuple[int, int] | None = None
        for i in range(rounds):
            number = s.next_number()
            label = f"Lat-{number}"
            mark = len(seen)
            t0 = time.monotonic()
            s.sim.create(number, goal=900, label=label, party_size=2)
            out["notification"].append(await drawn(label.encode(), mark) - t0)
            if seat is None:
                seat = await seat_cell(s, (cols, rows))
            # The only row holds the cursor: it is the selected party the bar's Seat acts on.
            await asyncio.sleep(0.3)
            mark = len(seen)
            t0 = time.monotonic()
            await page.touchscreen.tap(*at(seat))
            out["seat"].append(await drawn(b"No parties waiting", mark) - t0)
            await asyncio.sleep(0.3)
            click.echo(
                f"  round {i + 1}/{rounds}: notification {1000 * out['notification'][-1]:.0f} ms, "
                f"seat {1000 * out['seat'][-1]:.0f} ms",
                err=True,
            )
        await browser.close()
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# --- the command ------------------------------------------------------------------------------


async def run(tablets: int, rounds: int, seconds: float, taps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pager-edge-bench-web-") as tmp:
        async with stand(Path(tmp)) as s:
            costs = []
            for i in range(rounds):
                click.echo(f"cost round {i + 1}/{rounds}: 1…{tablets} tablets", err=True)
                costs.append(await cost_round(s, tablets, seconds))
            latencies = await latency_rounds(s, taps) if taps else {"notification": [], "seat": []}

    def med(key: str) -> float | None:
        values = [c[key] for c in costs if c.get(key) is not None]
        return statistics.median(values) if values else None

    return {
        "machine": machine_description(),
        "tablets": tablets,
        "rounds": rounds,
        "board_rss_mb": med("rss"),
        "board_pss_mb": med("pss"),
        "board_uss_mb": med("uss"),
        "per_extra_tablet_mb": med("per_extra"),
        "tree_pss_mb": [statistics.median(c["tree"][i] for c in costs) for i in range(tablets)],
        "cpu_idle_percent": med("cpu_idle"),
        "cpu_1_change_per_s_percent": med("cpu_busy"),
        "notification_ms": [1000 * v for v in latencies["notification"]],
        "seat_ms": [1000 * v for v in latencies["seat"]],
    }


def report(r: dict[str, Any]) -> str:
    def ms(values: list[float]) -> str:
        if not values:
            return "not measured"
        return f"p50 {statistics.median(values):.0f} ms, p95 {p95(values):.0f} ms (n={len(values)})"

    tree = ", ".join(f"{v:.1f}" for v in r["tree_pss_mb"])
    lines = [
        f"machine: {r['machine']}",
        f"tablets 1…{r['tablets']}, {r['rounds']} rounds (medians)",
        f"board process per tablet: RSS {r['board_rss_mb']:.1f} MB, PSS {r['board_pss_mb']:.1f} MB,"
        f" USS {r['board_uss_mb']:.1f} MB",
        f"server tree PSS with 1…{r['tablets']} tablets: {tree} MB",
        f"per extra tablet: {r['per_extra_tablet_mb']:.1f} MB"
        if r["per_extra_tablet_mb"] is not None
        else "per extra tablet: (needs --tablets ≥ 2)",
        f"board CPU per tablet: idle {r['cpu_idle_percent']:.2f} % of a core, "
        f"at 1 change/s {r['cpu_1_change_per_s_percent']:.2f} %",
        f"notification → on the tablet: {ms(r['notification_ms'])}",
        f"tap Seat → row gone: {ms(r['seat_ms'])}",
    ]
    return "\n".join(lines)


@click.command("web")
@click.option("--tablets", type=click.IntRange(1, 8), default=4, show_default=True)
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--seconds", type=float, default=10.0, show_default=True, help="each CPU window")
@click.option(
    "--taps", type=click.IntRange(min=0), default=20, show_default=True, help="latency rounds"
)
@click.option("--json", "as_json", is_flag=True)
def web_bench_cmd(tablets: int, rounds: int, seconds: float, taps: int, as_json: bool) -> None:
    """Memory and CPU per signed-in tablet; tap → visible and notification → visible."""
    result = asyncio.run(run(tablets, rounds, seconds, taps))
    click.echo(json.dumps(result, indent=2) if as_json else report(result))
