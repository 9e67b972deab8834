"""Hostile text from the LAN: labels reach people only through the one sanitizer.

Anyone on the restaurant's LAN can create a session with any label (the transmitter's API has no
authentication). Properties over arbitrary Unicode: what the board renders for a label holds no
control character or escape sequence and has the column's display width; CSV cells never start a
formula unless ``--raw``; the store, JSONL export and sync wire keep the label exactly.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from agent.display import FORMULA_STARTS, PLACEHOLDER, printable, spreadsheet_safe
from agent.export import SESSION_FIELDS, session_records, write_records
from agent.session import SessionView
from agent.store import Store, WriteBatch
from agent.sync.wire import decode_body, encode_batch
from tests.board_fixtures import NOW, ago
from tui.render.cells import history_cells, party_cells
from tui.render.theme import UNICODE
from tui.widgets.table import cell_text

ATTACKS = (
    "\x1b]0;owned\x07Title",  # sets the terminal's title
    "\x1b]52;c;b3duZWQ=\x07clip",  # writes the clipboard
    "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\",  # a hyperlink
    "\x1b[31mRED\x1b[0m",  # colours
    "\x1b[6n",  # asks the terminal to answer (cursor position report)
    "\x9b31mC1",  # the same in 8-bit C1 form
    "\x1bPdevice control\x1b\\",
    "Kim\n2026-12-03T10:00:00 ERROR agent: forged",
    "\u202eevil\u202c",  # right-to-left override
    "👨\u200d👩\u200d👧 family",  # zero-width joiners: widths terminals disagree on
    "[bold]Kim[/bold]",  # Rich markup: shown literally
    '=HYPERLINK("http://x","a")',
    "@SUM(1+1)",
    "+1-555",
)
# Everything a terminal could act on or measure differently.
FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}

labels = st.one_of(st.text(max_size=60), st.sampled_from(ATTACKS))


def render(text, width: int) -> str:
    """A cell as the terminal receives it, through Rich, with colours on."""
    out = io.StringIO()
    console = Console(
        file=out, width=width, force_terminal=True, color_system="truecolor", legacy_windows=False
    )
    text = text.copy()
    text.truncate(width, overflow="ellipsis", pad=True)
    console.print(text, end="", soft_wrap=True)
    return out.getvalue()


def _assert_clean(shown: str) -> None:
    assert "\x1b" not in shown
    bad = [ch for ch in shown if unicodedata.category(ch) in FORBIDDEN_CATEGORIES]
    assert not bad, f"control/format characters reach the terminal: {bad!r}"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(label=labels, width=st.integers(min_value=4, max_value=30))
def test_a_label_cell_holds_no_control_and_has_the_column_width(label, width):
    party = SessionView(uuid="u", number=7, label=label, created=ago(5))
    cell = party_cells(party, NOW, UNICODE)[1]
    shown = render(cell_text(cell, ansi=False), width)
    _assert_clean(shown)
    assert cell_len(shown) == width  # CJK and emoji count two cells, as Rich measures them


@settings(max_examples=200, deadline=None)
@given(label=labels)
def test_history_cells_and_sanitizer_properties(label):
    row = SessionView(uuid="u", number=3, label=label, state="cleared", created=ago(30))
    text = history_cells(row, None)[1][0]
    _assert_clean(text)
    assert printable(text) == text  # idempotent
    assert "\n" not in printable(label) and "\r" not in printable(label)


@given(label=st.text(alphabet=st.characters(categories=["L", "N", "P", "Zs"]), max_size=40))
def test_ordinary_text_is_shown_unchanged(label):
    expected = "".join(ch for ch in label if ch not in "\u180e")  # (a format char in old Unicode)
    assert printable(label) == expected


def test_known_attacks_become_harmless_but_visible():
    assert printable("\x1b]0;owned\x07Title") == f"{PLACEHOLDER}Title"
    assert printable("\x1b[31mRED\x1b[0m") == f"{PLACEHOLDER}RED{PLACEHOLDER}"
    assert printable("Kim\nforged") == "Kim forged"
    assert printable("\u202eevil\u202c") == "evil"
    assert printable("[bold]Kim[/bold]") == "[bold]Kim[/bold]"
    assert cell_len(printable("👨\u200d👩\u200d👧")) == 6


def _csv_rows(records, *, raw: bool) -> list[list[str]]:
    out = io.StringIO()
    write_records(records, SESSION_FIELDS, "csv", out, raw=raw)
    return list(csv.reader(io.StringIO(out.getvalue(), newline="")))


@settings(max_examples=200, deadline=None)
@given(label=st.one_of(labels, st.text(alphabet="=+-@\t\r \"',;abc1", max_size=12)))
def test_csv_never_starts_a_formula_unless_raw(label):
    record = dict.fromkeys(SESSION_FIELDS)
    record.update(uuid="u-1", number=7, label=label, state="waiting", page_count=0)
    header, row = _csv_rows([record], raw=False)
    assert header == list(SESSION_FIELDS)
    assert not any(cell.startswith(FORMULA_STARTS) for cell in row)
    assert row[header.index("label")] == spreadsheet_safe(label)
    _header, raw_row = _csv_rows([record], raw=True)
    assert raw_row[header.index("label")] == label  # --raw: exactly the text


def test_store_jsonl_export_and_sync_wire_keep_the_exact_labels(tmp_path):
    store = Store(tmp_path / "agent.db", synchronous="NORMAL")
    views = {
        f"u-{i}": SessionView(uuid=f"u-{i}", number=i, label=label, created=ago(10))
        for i, label in enumerate(ATTACKS, start=1)
    }
    try:
        from agent.session import Event

        events = [
            (Event("created", v.uuid, v.number, ago(10), {"label": v.label}), ago(10), "notify")
            for v in views.values()
        ]
        store.write_batch(WriteBatch(events=events, views=views))
        out = io.StringIO()
        write_records(session_records(store), SESSION_FIELDS, "jsonl", out)
        exported = [json.loads(line) for line in out.getvalue().splitlines()]
        assert sorted(r["label"] for r in exported) == sorted(ATTACKS)
        _key, body = encode_batch("site-1", "test", store.iter_events())
        decoded = decode_body(body)
        assert sorted(e["changes"]["label"] for e in decoded["events"]) == sorted(ATTACKS)
    finally:
        store.close()


def test_log_lines_cannot_be_forged_or_carry_escapes():
    import logging

    from agent.logs import setup_logging

    out = io.StringIO()
    setup_logging("INFO", stream=out)
    try:
        logging.getLogger("agent.test").warning(
            "session label %r", "Kim\n2026-12-03T10:00:00 ERROR agent: forged\x1b]0;owned\x07"
        )
        logging.getLogger("agent.test").warning("raw %s", "a\nb\x1b[31mc")
    finally:
        setup_logging("WARNING")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(line.split(" ", 1)[1].startswith("WARNING") for line in lines)
    assert "\x1b" not in out.getvalue()


async def test_the_agent_records_hostile_text_exactly_and_shows_it_harmlessly(tmp_path):
    """A transmitter document with a hostile label and device name, through the real agent."""
    from zoneinfo import ZoneInfo

    from agent.daemon import Agent
    from agent.simulator.server import Simulator
    from agent.status import collect_status, format_status
    from tests.agent_helpers import ZONE, eventually, exported, health, make_config

    label = "\x1b]0;owned\x07Kim\n\u202eevil"
    db = tmp_path / "agent.db"
    sim = await Simulator.start(ping_interval=0.3, tz=ZoneInfo(ZONE))
    agent = Agent(make_config(db, sim.port))
    try:
        await agent.start()
        await eventually(lambda: health(db).state == "connected")
        doc = {
            "responseTypes": ["sessions"],
            "timestamp": "2026-03-07T18:00:00",
            "deviceName": "\x1b]0;dev\x07T7470\nforged",
            "firmwareVersion": "8.4\x1b[31m",
            "sessions": [
                {
                    "id": 1,
                    "uuid": "1c6a1f6e-0000-4000-8000-000000000001",
                    "number": 61,
                    "partySize": 2,
                    "goalInSeconds": 600,
                    "created": "2026-03-07T17:55:00",
                    "label": label,
                    "state": "started",
                }
            ],
        }
        sim.inject_raw(json.dumps(doc).encode())
        await eventually(lambda: any(r["number"] == 61 for r in exported(db)))
        (row,) = [r for r in exported(db) if r["number"] == 61]
        assert row["label"] == label  # the record keeps what the transmitter said
        store = Store(db, readonly=True)
        try:
            assert store.health().device_name == doc["deviceName"]
            text = format_status(collect_status(store))
        finally:
            store.close()
        assert "\x1b" not in text and "T7470 forged" in text  # one line, no escape
    finally:
        await agent.stop()
        await sim.stop()
