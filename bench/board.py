"""`pager-edge bench board`: what the wait-board costs with 500 active sessions and timers ticking.

The board runs in a child process attached to a pseudo-terminal of the requested size (a real
Textual driver: frames are rendered to ANSI and written, as on a host-stand screen); the parent
drains the terminal, and a writer thread in the parent commits changes to the store through its own
connection, as the agent does. Only the board's process is measured:

* CPU share of one core (``time.process_time`` over wall time; all of the board's threads), first
  with timers only, then with timers plus N store changes a second;
* the same CPU in milliseconds per unit of work, to scale to a slower machine (a Raspberry Pi is
  4–7× slower): per second of timers (one tick, five polls), per minute turn (every timer on screen
  moves: the board's clock is shifted so that one falls in the middle of the timers-only phase), and
  per store change (the changes phase's CPU less its seconds of timers, over its commits);
* update time (snapshot/tick → table diffed and applied) and the number of frames displayed;
* store change → visible latency: from the writer's commit to the end of the first frame that shows
  it (both processes read CLOCK_MONOTONIC). A subclass of the board defined here reports to a probe
from the app's own hook points (`refresh_screens`, `show_snapshot`) and Textual's public
`post_display_hook`; nothing of Textual's is patched, and the shipped board carries no probe.

``--headless`` runs the board in-process with Textual's headless driver instead (no ANSI output).
Figures, never assertions: the test suite does not time anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from bench import machine_description
from bench.board_figures import (
    combine,
    format_report,
    minute_shift,
    pct,
    summarize,
)

MARKER_UUID = "bench-marker"
MARKER_BASE = 1000  # the marker's pager number is MARKER_BASE + the change's sequence number


# --- data ---------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_store(path: Path, sessions: int, *, seed: int = 0) -> None:
    """`sessions` active parties spread over the last hour, about one in ten paged."""
    from agent.health import Health
    from agent.session import SessionView
    from agent.store import Store, WriteBatch

    rng = random.Random(seed)
    now = datetime.now(UTC)
    views: dict[str, SessionView] = {}
    # The marker is the oldest party: first row, always on screen.
    views[MARKER_UUID] = SessionView(
        uuid=MARKER_UUID,
        number=MARKER_BASE,
        transmitter_id=1,
        label="bench 0",
        party_size=2,
        goal_seconds=900,
        created=_iso(now - timedelta(minutes=70)),
    )
    for i in range(1, sessions):
        created = now - timedelta(seconds=rng.uniform(0, 3600))
        paged = rng.random() < 0.1
        notified = _iso(created + timedelta(seconds=rng.uniform(60, 600))) if paged else None
        views[f"s-{i}"] = SessionView(
            uuid=f"s-{i}",
            number=i + 1,
            transmitter_id=i + 1,
            label=rng.choice(["Martin", "Okafor", "Nguyen", None, "Schmidt", "Ito", "Alvarez"]),
            party_size=rng.randint(1, 8),
            goal_seconds=rng.choice([600, 900, 1200, 1500, 1800]),
            created=_iso(created),
            first_notified=notified,
            notified=notified,
            state="paged" if paged else "waiting",
            page_count=1 if paged else 0,
        )
    store = Store(path, synchronous="NORMAL")
    try:
        store.write_batch(
            WriteBatch(
                views=views,
                health=Health(state="connected", heartbeat_at=_iso(now), last_ping_at=_iso(now)),
                snapshots=[
                    ("statistics", _iso(now), {"guestsServed": 120, "percentOnTime": 91,
                                               "averageTimeServed": 1100, "percentLate": 9,
                                               "numSessions": 130 + sessions}),
                    ("settings", _iso(now), {"defaultTargetGoal": 900}),
                ],
            )
        )  # fmt: skip
    finally:
        store.close()


class Writer(threading.Thread):
    """Commits `rate` changes a second between `start_at` and `stop_at` (monotonic): the marker's
    label carries a sequence number; each commit also pages or edits another party."""

    def __init__(self, db: Path, rate: float, start_at: float, stop_at: float, sessions: int):
        super().__init__(name="bench-writer", daemon=True)
        self.db, self.rate, self.start_at, self.stop_at = db, rate, start_at, stop_at
        self.sessions = sessions
        self.commits: dict[int, float] = {}
        self.write_ms: list[float] = []

    def run(self) -> None:

        from agent.store import Store, WriteBatch

        store = Store(self.db, synchronous="NORMAL")
        health = store.health()
        rng = random.Random(1)
        try:
            views = store.load_views()
            while time.monotonic() < self.start_at:
                time.sleep(0.01)
            seq = 0
            due = time.monotonic()
            while time.monotonic() < self.stop_at:
                seq += 1
                now = datetime.now(UTC)
                # The sequence number shows as the marker's pager number (kiosk) and label (staff).
                changed = {
                    MARKER_UUID: views[MARKER_UUID]._replace(
                        number=MARKER_BASE + seq, label=f"bench {seq}"
                    )
                }
                other = views[f"s-{rng.randrange(1, self.sessions)}"]
                if rng.random() < 0.5:
                    other = other._replace(
                        state="paged",
                        notified=_iso(now),
                        first_notified=other.first_notified or _iso(now),
                        page_count=other.page_count + 1,
                    )
                else:
                    other = other._replace(party_size=rng.randint(1, 8))
                views[other.uuid] = changed[other.uuid] = other
                t0 = time.monotonic()
                health = health.but(heartbeat_at=_iso(now))
                store.write_batch(WriteBatch(views=changed, health=health))
                t1 = time.monotonic()
                self.commits[seq] = t1
                self.write_ms.append((t1 - t0) * 1000)
                due += 1.0 / self.rate
                time.sleep(max(0.0, due - time.monotonic()))
        finally:
            store.close()


# --- the board side (child process) ----------------------------------------------------------


class Probe:
    """What the measured board reports: each refresh's time, each display, and
    when each marker sequence number was first on screen (the first display after its snapshot)."""

    def __init__(self, record: dict[str, Any]):
        self.frames: list[tuple[float, float]] = record["frames"]
        self.updates: list[tuple[float, float]] = record["updates"]
        self.ticks: list[tuple[float, float, float]] = record["ticks"]
        self.shown_at: dict[int, float] = record["shown"]
        self._waiting: list[int] = []

    def refreshed(self, ms: float, *, from_store: bool) -> None:
        now = time.monotonic()
        self.updates.append((now, ms))
        if not from_store:  # the board's 1 s tick (or a reply shown): when, process CPU, wall ms
            self.ticks.append((now, time.process_time(), ms))

    def shown(self, snapshot: Any) -> None:
        for row in snapshot.sessions:
            if row.uuid == MARKER_UUID:
                seq = row.number - MARKER_BASE
                if seq > 0 and seq not in self.shown_at:
                    self._waiting.append(seq)
                break

    def displayed(self) -> None:
        now = time.monotonic()
        self.frames.append((now, 0.0))
        for seq in self._waiting:
            self.shown_at.setdefault(seq, now)
        self._waiting.clear()


def child_main(args_json: str) -> None:
    """Run the board (in the pty, or headless), then write the figures to args["out"]."""
    args = json.loads(args_json)
    from agent.clock import ScaledClock
    from agent.config import Config, with_overrides
    from tui.app import BoardApp

    cfg = with_overrides(
        Config(), board={"refresh_interval": args["refresh"]}, agent={"stale_after": 600}
    )
    record: dict[str, Any] = {
        "frames": [], "updates": [], "ticks": [], "shown": {}, "marks": {}, "turns": [],
    }  # fmt: skip
    clock = ScaledClock(1.0)  # real time, shifted below so that a minute turns when wanted
    probe = Probe(record)

    class MeasuredBoard(BoardApp):
        """The board, timed at its hook points for the probe."""

        def refresh_screens(self, *, from_store: bool) -> None:
            t0 = time.perf_counter()
            super().refresh_screens(from_store=from_store)
            probe.refreshed((time.perf_counter() - t0) * 1000, from_store=from_store)

        def show_snapshot(self, snap: Any) -> None:
            super().show_snapshot(snap)
            probe.shown(snap)

        def post_display_hook(self) -> None:
            probe.displayed()

    app = MeasuredBoard(args["db"], config=cfg, kiosk=args["kiosk"], clock=clock)
    phase1, phase2 = args["phase1"], args["phase2"]
    settle = 1.5

    def mark(name: str) -> None:
        record["marks"][name] = (time.monotonic(), time.process_time())

    async def schedule() -> None:
        import asyncio

        while app.snapshots_seen == 0:
            await asyncio.sleep(0.01)
        # The board's minute turns early in the timers-only phase, so that its aftermath (late
        # alerts shown, then removed) falls in that phase too; the jump itself, if it crosses a
        # minute, is absorbed while the first full paint settles.
        turn = time.monotonic() + settle + min(2.0, phase1 / 4)
        clock.shift = minute_shift(clock.now() + timedelta(seconds=turn - time.monotonic()))
        record["turns"] = [turn + 60 * k for k in range(int((phase1 + phase2) // 60) + 2)]
        await asyncio.sleep(settle)  # let the first full paint settle
        mark("start")
        Path(args["ready"]).write_text(json.dumps({"phase2_at": time.monotonic() + phase1}))
        await asyncio.sleep(phase1)
        mark("phase2")
        await asyncio.sleep(phase2)
        mark("end")
        app.exit()

    async def main() -> None:
        async def pilot(_pilot: Any) -> None:
            await schedule()

        size = tuple(args["size"]) if args["headless"] else None
        await app.run_async(headless=args["headless"], size=size, auto_pilot=pilot)

    import asyncio

    asyncio.run(main())
    Path(args["out"]).write_text(
        json.dumps({k: v for k, v in record.items()}, default=lambda o: list(o))
    )


# --- the parent -------------------------------------------------------------------------------


def _run_in_pty(cmd: list[str], size: tuple[int, int], timeout: float) -> int:
    """Run `cmd` on a pseudo-terminal of `size` (cols, rows), draining its output."""
    import fcntl
    import pty
    import struct
    import termios

    cols, rows = size
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - child
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
        env.pop("TEXTUAL", None)
        os.execvpe(cmd[0], cmd, env)
    deadline = time.monotonic() + timeout
    status = None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    os.read(fd, 65536)
                except OSError:
                    break
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        else:
            os.kill(pid, 9)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        if status is None:
            _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def run_bench(
    *,
    sessions: int = 500,
    size: tuple[int, int] = (120, 40),
    rate: float = 4.0,
    phase1: float = 20.0,
    phase2: float = 20.0,
    refresh: float = 0.2,
    headless: bool = False,
    kiosk: bool = False,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pe-bench-board-") as tmp:
        tmpdir = Path(tmp)
        db = tmpdir / "bench.db"
        build_store(db, sessions)
        args: dict[str, Any] = {
            "db": str(db),
            "out": str(tmpdir / "result.json"),
            "ready": str(tmpdir / "ready.json"),
            "size": list(size),
            "phase1": phase1,
            "phase2": phase2,
            "refresh": refresh,
            "headless": headless,
            "kiosk": kiosk,
        }
        cmd = [sys.executable, "-m", "bench.board", json.dumps(args)]
        result_box: dict[str, int] = {}

        def board() -> None:
            budget = phase1 + phase2 + 60
            if headless:
                import subprocess

                result_box["rc"] = subprocess.run(cmd, timeout=budget, check=False).returncode
            else:
                result_box["rc"] = _run_in_pty(cmd, size, budget)

        runner = threading.Thread(target=board, name="bench-board")
        runner.start()
        ready = Path(args["ready"])
        deadline = time.monotonic() + 60
        while not ready.exists() and runner.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not ready.exists():
            runner.join(timeout=5)
            raise click.ClickException(f"the board did not start (exit status {result_box})")
        time.sleep(0.05)
        phase2_at = json.loads(ready.read_text())["phase2_at"]
        writer = Writer(db, rate, phase2_at, phase2_at + phase2 - 0.5, sessions)
        writer.start()
        runner.join()
        writer.join(timeout=5)
        out = Path(args["out"])
        if not out.exists():
            raise click.ClickException(f"the board exited without figures ({result_box})")
        record = json.loads(out.read_text())
    result = summarize(record, writer.commits)
    import textual

    result["machine"] = machine_description(
        f"Textual {textual.__version__}", f"SQLite {sqlite3.sqlite_version}"
    )
    result["refresh"] = refresh
    result["writer_commit_ms_p50"] = round(pct(writer.write_ms, 50), 2)
    return result


@click.command("board")
@click.option("--sessions", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--size", default="120x40", show_default=True, help="terminal COLSxROWS")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="store changes a second",
)
@click.option(
    "--timers-seconds",
    type=float,
    default=20.0,
    show_default=True,
    help="the timers-only phase; it holds one minute turn and, from 16 s, all its aftermath",
)
@click.option("--changes-seconds", type=float, default=20.0, show_default=True)
@click.option("--refresh", type=float, default=0.2, show_default=True, help="poll interval, s")
@click.option("--headless", is_flag=True, help="Textual's headless driver instead of a pty")
@click.option("--kiosk", is_flag=True, help="measure the kiosk instead of the staff board")
@click.option(
    "--rounds", type=click.IntRange(1), default=1, show_default=True, help="runs; medians shown"
)
@click.option("--json", "as_json", is_flag=True)
def board_bench_cmd(
    sessions: int,
    size: str,
    rate: float,
    timers_seconds: float,
    changes_seconds: float,
    refresh: float,
    headless: bool,
    kiosk: bool,
    rounds: int,
    as_json: bool,
) -> None:
    """Wait-board CPU share, update time and change-to-screen latency."""
    try:
        cols, rows = (int(x) for x in size.lower().split("x"))
    except ValueError:
        raise click.BadParameter("expected COLSxROWS, e.g. 120x40", param_hint="--size") from None
    result = combine(
        [
            run_bench(
                sessions=sessions,
                size=(cols, rows),
                rate=rate,
                phase1=timers_seconds,
                phase2=changes_seconds,
                refresh=refresh,
                headless=headless,
                kiosk=kiosk,
            )
            for _round in range(rounds)
        ]
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    mode = ("kiosk" if kiosk else "staff board") + (", headless" if headless else ", pty")
    click.echo(format_report(result, sessions=sessions, size=(cols, rows), rate=rate, mode=mode))


if __name__ == "__main__":  # the board side, started by run_bench
    child_main(sys.argv[1])
