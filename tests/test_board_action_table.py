"""The one staff-action table (tui/core/actions.py) and what is derived from it.

The keys, the footer, the command palette and the touch panel are pinned here as they were when
each was its own table; and the table is checked to be whole: every action a key, the palette or
the panel offers has its method on the staff screen, every request kind a way to be carried out.
"""

from __future__ import annotations

from typing import get_args

from tests.board_fixtures import view
from tui.core.actions import (
    ACTIONS,
    BY_KIND,
    PENDING_WORDS,
    ActionKind,
    key_actions,
    offered,
    palette_entries,
    undone_text,
)


def test_the_staff_keys_and_footer_are_as_they_were():
    from tui.screens.staff import StaffScreen

    bindings = [
        (b.key, b.action, b.description, b.show, b.key_display, b.id)
        for b in StaffScreen.BINDINGS
        if not isinstance(b, tuple)
    ]
    assert bindings == [
        ("a", "add", "Add", True, None, "add"),
        ("p", "page", "Page", True, None, "page"),
        ("r", "repage", "Repage", True, None, "repage"),
        ("s", "seat", "Seat", True, None, "seat"),
        ("x", "remove", "Remove", True, None, "remove"),
        ("e", "edit", "Edit", True, None, "edit"),
        ("f", "filter_size", "Size", True, None, "filter"),
        ("slash", "search", "Find", True, "/", "search"),
        ("h", "history", "History", True, None, "history"),
        ("t", "transmitter", "Transmitter", True, None, "transmitter"),
        ("u", "undo", "Undo", True, None, "undo"),
        ("d", "report", "Report", True, None, "report"),
        ("escape", "clear_filters", "Clear filter", False, None, "clear-filter"),
    ]
    assert [a.name for a in key_actions()] == [b[1] for b in bindings]


def test_the_command_palette_is_as_it_was():
    assert palette_entries() == [
        ("add", "Add party", "Create a session on a pager (form with a suggested quote)"),
        ("page", "Page party", "Page the selected party's pager"),
        ("repage", "Re-page party", "Page the selected party again"),
        ("seat", "Seat party", "Clear the selected session: the party is seated"),
        ("remove", "Remove party", "Remove the selected session (asks to confirm)"),
        ("edit", "Edit party", "Change label, party size or goal of the selected party"),
        ("filter_size", "Filter by party size", "Cycle all → 1–2 → 3–4 → 5–6 → 7+"),
        ("search", "Search", "Find parties by label or pager number"),
        ("history", "History", "Today's finished parties: seated vs removed, quoted vs actual"),
        ("transmitter", "Transmitter", "Its own statistics and settings, its clock, page any pager"),
        ("report", "Day report", "Any day's figures: parties, seated, walk-aways, waits; export CSV"),
        ("close_out", "Close out the night", "Seat or remove every party still open (asks first)"),
        ("undo", "Undo", "Cancel the seat or remove still in its grace"),
    ]  # fmt: skip


def test_the_touch_panel_offers_what_it_did():
    def panel(**kw):
        return [(a.name, title) for a, title in offered(view("u-1", 5, **kw))]

    active = [("seat", "Seat"), ("remove", "Remove…"), ("edit", "Edit")]
    assert panel(state="waiting") == [("page", "Page"), *active]
    assert panel(state="paged", page_count=1, notified="2026-03-13T18:00:00Z") == [
        ("repage", "Re-page"),
        *active,
    ]
    assert panel(state="lost") == [
        ("readd", "Re-add to the transmitter"),
        ("dismiss_lost", "Dismiss"),
    ]
    assert panel(state="cleared") == panel(state="removed") == [("readd", "Reopen (re-add)")]
    assert [a.name for a in ACTIONS if a.danger] == ["remove"]  # its button in the warning colour


def test_the_table_is_whole():
    """Every action a key, the palette or the panel offers is a method of the staff screen, and
    every request kind has one entry and a way to be carried out."""
    from tui.screens.staff import StaffScreen

    offered_somewhere = [a for a in ACTIONS if a.key or a.title or a.panel]
    assert [a.name for a in offered_somewhere if not hasattr(StaffScreen, f"action_{a.name}")] == []
    kinds = [a.kind for a in ACTIONS if a.kind is not None]
    assert sorted(kinds) == sorted(get_args(ActionKind))  # one entry per kind, no stray kind
    handled_apart = {"set_clock", "undo"}  # the skew check; the request queue's cancel
    assert [
        k
        for k in kinds
        if BY_KIND[k].call is None and not BY_KIND[k].queued and k not in handled_apart
    ] == []
    assert all(BY_KIND[k].verb and BY_KIND[k].done for k in kinds)
    # an undo grace only makes sense through the queue, with a word for the waiting row
    assert all(a.queued and a.pending for a in ACTIONS if a.grace)


def test_the_queue_words_come_from_the_table():
    assert PENDING_WORDS == {"seat": "seating", "remove": "removing", "close_out": "closing out"}
    assert undone_text("seat", 12) == "Undone: pager 12 stays"
    assert undone_text("remove", 3) == "Undone: pager 3 stays"


def test_no_screen_calls_the_controller_itself():
    """Screens post requests (tui/messages.py); only the app holds the controller client, so each
    request takes the app's one path (the transmitter screen once asked for settings itself)."""
    import ast
    from pathlib import Path

    screens = Path(__file__).resolve().parent.parent / "tui" / "screens"
    found = []
    for path in sorted(screens.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "client":
                found.append(f"{path.name}:{node.lineno}: .client")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "agent.controller"
            ):
                found.append(f"{path.name}:{node.lineno}: {node.module}")
    assert found == []
