"""Hostile labels on a real terminal: the board, its history screen and the kiosk under tmux.

A label (or firmware string) from anyone on the LAN carries OSC (set the title), SGR (colours) and
wide or joined characters. On a real terminal emulator (tmux, which interprets every sequence as a
terminal does) the pane's title must stay as it was, no label may bring its own colours, and the
table's columns must line up whatever the labels' widths.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.cells import cell_len

from agent.health import Health
from agent.session import SessionView
from agent.store import Store, WriteBatch
from tests.board_fixtures import SETTINGS, STATISTICS

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

TITLE_ATTACK = "\x1b]0;owned\x07Title"
COLOUR_ATTACK = "\x1b[31mRED\x1b[0m"
# (pager, label, party size): the sizes identify the rows when checking the columns.
PARTIES = (
    (40, "Ana", 1),  # first row: the cursor's (styled differently)
    (41, "Kim", 2),
    (42, TITLE_ATTACK, 3),
    (43, COLOUR_ATTACK, 4),
    (44, "李娜🎂 Zoë", 5),
    (45, "👨\u200d👩\u200d👧 fam", 6),
    (46, "\u202eevil\u202c", 7),
    (47, "\x1b]2;owned2\x1b\\x", 8),
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _store(path: Path, *, finished: bool) -> Path:
    now = datetime.now(UTC)
    views = {}
    for i, (number, label, size) in enumerate(PARTIES):
        created = now - timedelta(minutes=40 - i)
        v = SessionView(
            uuid=f"u-{number}",
            number=number,
            transmitter_id=number,
            label=label,
            party_size=size,
            goal_seconds=1800,
            created=_iso(created),
        )
        if finished:
            v = v._replace(
                state="cleared",
                first_notified=_iso(created + timedelta(minutes=10)),
                notified=_iso(created + timedelta(minutes=10)),
                cleared=_iso(now - timedelta(minutes=5 - i / 2)),
                page_count=1,
            )
        views[v.uuid] = v
    health = Health(
        state="connected",
        since=_iso(now - timedelta(hours=1)),
        heartbeat_at=_iso(now),
        last_ping_at=_iso(now),
        firmware="\x1b]0;fw-owned\x07\x1b[41m8.4\x1b[0m",
        device_name="\x1b]0;dev-owned\x07T7470",
        clock_skew_seconds=1.0,
    )
    store = Store(path, synchronous="NORMAL")
    try:
        store.write_batch(
            WriteBatch(
                views=views,
                snapshots=[
                    ("statistics", _iso(now), STATISTICS),
                    ("settings", _iso(now), SETTINGS),
                ],
                health=health,
            )
        )
    finally:
        store.close()
    return path


class Tmux:
    def __init__(self, tmp: Path):
        self.socket = f"pe-{uuid.uuid4().hex[:8]}"
        self.tmp = tmp

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout

    def start(self, command: list[str]) -> str:
        env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
        shell = "sleep 1; exec " + shlex.join(command)
        subprocess.run(
            [
                "tmux",
                "-L",
                self.socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "pe",
                "-x",
                "120",
                "-y",
                "40",
                shell,
            ],
            check=True,
            env=env,
            timeout=10,
        )
        return self.title()

    def title(self) -> str:
        return self("display-message", "-p", "-t", "pe", "#{pane_title}").strip()

    def capture(self, *, escapes: bool = False) -> list[str]:
        args = ["capture-pane", "-p", "-t", "pe"] + (["-e"] if escapes else [])
        return self(*args).splitlines()

    def wait_for(self, needle: str, timeout: float = 25.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.capture()
            if any(needle in line for line in lines):
                time.sleep(0.5)  # let the frame finish
                return self.capture()
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} never shown:\n" + "\n".join(self.capture()))

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "pe", *keys)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    # The check means something only if this tmux lets a program set the pane's title.
    t.start(["sh", "-c", r"printf '\033]0;probe-title\007'; sleep 5"])
    deadline = time.monotonic() + 5
    while t.title() != "probe-title" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert t.title() == "probe-title", "tmux ignores OSC 0 here; the title checks would be void"
    t.kill()
    yield t
    t.kill()


def _board(tmp_path: Path, db: Path, *extra: str) -> list[str]:
    conf = tmp_path / "config.toml"
    conf.write_text(f'[store]\npath = "{db}"\n[controller]\nport = 9\nrequest_timeout = 0.5\n')
    return [sys.executable, "-m", "pager_edge", "board", "--config", str(conf), *extra]


_SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def _style_at(line: str, needle: str) -> tuple[str, str]:
    """(foreground, background) in effect where `needle` starts in an escaped capture line."""
    fg = bg = "default"
    pos = 0
    plain = ""
    while pos < len(line):
        m = _SGR.match(line, pos)
        if m:
            params = [int(p) if p else 0 for p in re.split("[;:]", m.group(1) or "0")]
            i = 0
            while i < len(params):
                p = params[i]
                if p == 0:
                    fg = bg = "default"
                elif p in (38, 48):
                    n = 3 if params[i + 1 : i + 2] == [5] else 5
                    value = ",".join(map(str, params[i : i + n]))
                    fg, bg = (value, bg) if p == 38 else (fg, value)
                    i += n - 1
                elif 30 <= p <= 37 or 90 <= p <= 97 or p == 39:
                    fg = str(p)
                elif 40 <= p <= 47 or 100 <= p <= 107 or p == 49:
                    bg = str(p)
                i += 1
            pos = m.end()
            continue
        plain += line[pos]
        pos += 1
        if plain.endswith(needle):
            return fg, bg
    raise AssertionError(f"{needle!r} not in line")


def _columns_line_up(lines: list[str], header_word: str) -> None:
    """Each party row shows its size in the display columns of the header's `header_word`."""
    header = next(line for line in lines if header_word in line and "#" in line)
    start = cell_len(header[: header.index(header_word)])
    seen = 0
    for number, _label, size in PARTIES:
        row = next((line for line in lines if re.match(rf"\s*{number}\s", line)), None)
        assert row is not None, f"row of pager {number} missing:\n" + "\n".join(lines)
        column = ""
        width = 0
        for ch in row:
            if start <= width < start + 4:
                column += ch
            width += cell_len(ch)
        assert column.strip() == str(size), f"pager {number}: {row!r}"
        seen += 1
    assert seen == len(PARTIES)


def test_staff_board_and_history_on_a_real_terminal(tmp_path, tmux):
    db = _store(tmp_path / "agent.db", finished=False)
    before = tmux.start(_board(tmp_path, db))
    lines = tmux.wait_for("Size")
    text = "\n".join(lines)
    assert "Title" in text and "RED" in text  # the labels are there, harmless
    assert tmux.title() == before and "owned" not in tmux.title()
    escaped = tmux.capture(escapes=True)
    red_line = next(line for line in escaped if "RED" in line)
    kim_line = next(line for line in escaped if "Kim" in line)
    assert _style_at(red_line, "RED") == _style_at(kim_line, "Kim")  # no colour of its own
    fw_line = next(line for line in escaped if "8.4" in line)
    assert _style_at(fw_line, "8.4")[1] == "default"  # the firmware's red background is gone
    _columns_line_up(lines, "Size")

    # History: the same parties, finished, in another store (the screen reads today's).
    tmux.kill()
    db2 = _store(tmp_path / "history.db", finished=True)
    before = tmux.start(_board(tmp_path, db2))
    tmux.wait_for("No parties waiting")
    tmux.keys("h")
    lines = tmux.wait_for("Outcome")
    assert tmux.title() == before
    escaped = tmux.capture(escapes=True)
    red_line = next(line for line in escaped if "RED" in line)
    kim_line = next(line for line in escaped if "Kim" in line)
    assert _style_at(red_line, "RED") == _style_at(kim_line, "Kim")
    _columns_line_up(lines, "Size")


def test_kiosk_on_a_real_terminal_shows_no_label_and_keeps_the_title(tmp_path, tmux):
    db = _store(tmp_path / "agent.db", finished=False)
    before = tmux.start(_board(tmp_path, db, "--kiosk"))
    lines = tmux.wait_for("WAITING")
    text = "\n".join(lines)
    assert tmux.title() == before and "owned" not in tmux.title()
    for word in ("Title", "RED", "Kim", "evil", "fam"):
        assert word not in text
