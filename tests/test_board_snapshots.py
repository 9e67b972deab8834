"""SVG snapshots of the staff board (pinned clock and data) at 80×24 and 120×40.

Update after a deliberate visual change with ``pytest tests/test_board_snapshots.py
--snapshot-update`` and look at the SVGs before committing them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.board_fixtures import (
    NOW,
    PINNED_EXTRAS,
    board_config,
    fixed_clock,
    make_store,
    pin_extras,
    wait_for,
)
from tui.app import BoardApp


@pytest.fixture
def pinned_db(tmp_path, monkeypatch):
    pin_extras(monkeypatch, {})  # no sync/backhaul sections unless a test pins them
    return make_store(tmp_path / "board.db")


def staff(db, *, clock=None, **kw) -> BoardApp:
    return BoardApp(db, clock=clock or fixed_clock(), config=board_config(db), **kw)


async def shown(pilot) -> None:
    await wait_for(lambda: pilot.app.snapshots_seen > 0)
    await pilot.pause()


def test_staff_80x24(snap_compare, pinned_db):
    assert snap_compare(staff(pinned_db), terminal_size=(80, 24), run_before=shown)


def test_staff_120x40_with_sync_and_backhaul(snap_compare, pinned_db, monkeypatch):
    pin_extras(monkeypatch, PINNED_EXTRAS)
    assert snap_compare(staff(pinned_db), terminal_size=(120, 40), run_before=shown)


def test_staff_linux_console_80x24(snap_compare, pinned_db):
    """ASCII markers and the explicit 16-colour mapping."""
    app = staff(pinned_db, ascii=True, ansi=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=shown)


def test_staff_agent_stopped_writing_banner_80x24(snap_compare, pinned_db):
    later = fixed_clock(NOW + timedelta(minutes=7))
    assert snap_compare(staff(pinned_db, clock=later), terminal_size=(80, 24), run_before=shown)


def test_staff_history_80x24(snap_compare, pinned_db):
    async def history(pilot):
        await shown(pilot)
        await pilot.press("h")
        await wait_for(lambda: pilot.app.screen.id == "history" and pilot.app.screen.rows)
        await pilot.pause()

    assert snap_compare(staff(pinned_db), terminal_size=(80, 24), run_before=history)


def test_staff_add_form_with_suggested_quote_120x40(snap_compare, pinned_db):
    async def add(pilot):
        await shown(pilot)
        await pilot.press("a")
        await wait_for(lambda: pilot.app.screen.__class__.__name__ == "PartyForm")
        await pilot.press("tab", "4")  # number pre-filled, focus on label; party of 4
        await pilot.pause()

    assert snap_compare(staff(pinned_db), terminal_size=(120, 40), run_before=add)


def test_staff_cursor_moved_80x24(snap_compare, pinned_db):
    """Row renders are cached: only the row under the cursor may look selected."""

    async def move(pilot):
        await shown(pilot)
        await pilot.press("down", "down", "down", "up")
        await pilot.pause()
        assert pilot.app.main_screen.selected.number == 3

    assert snap_compare(staff(pinned_db), terminal_size=(80, 24), run_before=move)
