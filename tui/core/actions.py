"""Staff actions, declared once: :data:`ACTIONS` says everything the board knows of each.

One :class:`StaffAction` per action — its key and footer label, its command-palette entry, its
touch-panel button, the words of its messages, whether it needs a selected party, whether it goes
through the store's request queue (and waits out the undo grace), the controller call — and the
staff screen's bindings, the palette, the panel, the dimmed footer keys, the queueing and the undo
all read it. Adding an action is one entry here (and, for a key, the staff screen's
``action_<name>`` saying what it does with the selection); see tui/README.md.

:func:`perform` sends a request through the agent's controller client (bounded by its timeout)
and turns the answer into an :class:`ActionResult`: the views to overlay until the agent has
recorded them (made with the agent's own session transitions), or the readable reason it failed.
It never raises: the board keeps working whatever the request did.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal

from agent.controller.client import ControllerClient, ControllerError, ControllerUnreachable, Reply
from agent.session import SessionView, edit, page
from agent.store.requests import RequestKind, RequestQueue
from tui.core.overlay import reply_view

log = logging.getLogger(__name__)

ActionKind = Literal[
    "add",
    "page",
    "repage",
    "seat",
    "remove",
    "edit",
    "page_number",
    "settings",
    "set_clock",
    "readd",
    "dismiss",
    "close_out",
    "undo",
]
# Where a party stands, for the touch panel: which buttons it offers.
PartyStatus = Literal["waiting", "paged", "lost", "ended"]


@dataclass(frozen=True, slots=True)
class PartyFields:
    """What the add/edit form returns; in edit mode only the fields the host changed are set."""

    number: int
    label: str | None = None
    party_size: int | None = None
    goal_seconds: int | None = None

    @property
    def changes(self) -> dict[str, Any]:
        """The session fields this sets (store names: label, party_size, goal_seconds)."""
        return {
            k: v
            for k, v in (
                ("label", self.label),
                ("party_size", self.party_size),
                ("goal_seconds", self.goal_seconds),
            )
            if v is not None
        }


@dataclass(frozen=True, slots=True)
class Request:
    kind: ActionKind
    party: SessionView | None = None  # the selected party (None for "add")
    fields: PartyFields | None = None  # add / edit
    # page_number: {"number", "mode"}; settings: the settings to change (transmitter names)
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def number(self) -> int:
        if self.party is not None:
            return self.party.number
        if self.fields is not None:
            return self.fields.number
        return int(self.values.get("number", 0))


Call = Callable[[ControllerClient, Request], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class StaffAction:
    """One staff action, everything the board shows and does for it.

    `name` is the staff screen's ``action_<name>`` (and the panel button's id); `kind` the
    :class:`Request` it makes (None: the board alone — a filter, another screen).
    """

    name: str
    kind: ActionKind | None = None
    # the key: Textual binding (footer label, id for a site's keymap; shown in the footer or not)
    key: str | None = None
    footer: str = ""
    key_display: str | None = None
    binding_id: str | None = None  # default: `name`
    in_footer: bool = True
    footer_before: str | None = None  # the footer shows it just before that action's key
    # the command palette
    title: str | None = None
    help: str = ""
    # the touch panel: its button's title for a party that stands so (none: not offered)
    panel: Mapping[PartyStatus, str] = field(default_factory=dict)
    danger: bool = False  # the panel's button in the warning colour
    # the touch layout's permanent action bar: its button's title (none: not on the bar; the
    # bar's "More" offers every palette entry that is not on it)
    bar: str | None = None
    needs_selection: bool = False  # dimmed in the footer while no party is selected
    # messages: "Seat 12 refused", what was done ({number} is the pager)
    verb: str = ""
    done: str = ""
    # the store's request queue (carried out by the agent; see agent.store.requests)
    queued: RequestKind | None = None
    grace: bool = False  # waits out [board] undo_seconds; queued only while the agent runs
    carries_party: bool = False  # the request carries the party's pager, label, size and goal
    pending: str | None = None  # what its row says while it waits ("seating")
    undone: str = "not done"  # what undoing it says ("pager 12 stays")
    call: Call | None = None  # the controller call (None: queued only, or handled apart)

    @property
    def binding(self) -> str:
        return self.binding_id or self.name


def _session_fields(r: Request) -> dict[str, Any]:
    """The form's fields as the controller client's keywords (add / edit)."""
    assert r.fields is not None
    return {
        "goal": r.fields.goal_seconds,
        "label": r.fields.label,
        "party_size": r.fields.party_size,
    }


# In the command palette's order; the footer follows it too (see `footer_before`).
ACTIONS: tuple[StaffAction, ...] = (
    StaffAction(
        "add", "add", key="a", footer="Add", bar="Add party",
        title="Add party", help="Create a session on a pager (form with a suggested quote)",
        verb="Add", done="Added pager {number}",
        call=lambda c, r: c.create_session(r.number, **_session_fields(r)),
    ),
    StaffAction(
        "page", "page", key="p", footer="Page", bar="Page",
        title="Page party", help="Page the selected party's pager",
        panel={"waiting": "Page"}, needs_selection=True,
        verb="Page", done="Paged pager {number}",
        call=lambda c, r: c.page(r.number),
    ),
    StaffAction(
        "repage", "repage", key="r", footer="Repage",
        title="Re-page party", help="Page the selected party again",
        panel={"paged": "Re-page"}, needs_selection=True,
        verb="Re-page", done="Re-paged pager {number}",
        call=lambda c, r: c.page(r.number),
    ),
    StaffAction(
        "seat", "seat", key="s", footer="Seat", bar="Seat",
        title="Seat party", help="Clear the selected session: the party is seated",
        panel={"waiting": "Seat", "paged": "Seat"}, needs_selection=True,
        verb="Seat", done="Seated pager {number}",
        queued="seat", grace=True, pending="seating", undone="stays",
        call=lambda c, r: c.clear(r.number),
    ),
    StaffAction(
        "remove", "remove", key="x", footer="Remove", bar="Remove",
        title="Remove party", help="Remove the selected session (asks to confirm)",
        panel={"waiting": "Remove…", "paged": "Remove…"}, danger=True, needs_selection=True,
        verb="Remove", done="Removed pager {number}",
        queued="remove", grace=True, pending="removing", undone="stays",
        call=lambda c, r: c.remove(r.number),
    ),
    StaffAction(
        "edit", "edit", key="e", footer="Edit",
        title="Edit party", help="Change label, party size or goal of the selected party",
        panel={"waiting": "Edit", "paged": "Edit"}, needs_selection=True,
        verb="Edit", done="Updated pager {number}",
        call=lambda c, r: c.update_session(r.number, **_session_fields(r)),
    ),
    StaffAction(
        "filter_size", key="f", footer="Size", binding_id="filter",
        title="Filter by party size", help="Cycle all → 1–2 → 3–4 → 5–6 → 7+",
    ),
    StaffAction(
        "search", key="slash", footer="Find", key_display="/",
        title="Search", help="Find parties by label or pager number",
    ),
    StaffAction(
        "history", key="h", footer="History",
        title="History", help="Today's finished parties: seated vs removed, quoted vs actual",
    ),
    StaffAction(
        "transmitter", key="t", footer="Transmitter",
        title="Transmitter", help="Its own statistics and settings, its clock, page any pager",
    ),
    StaffAction(
        "report", key="d", footer="Report",
        title="Day report",
        help="Any day's figures: parties, seated, walk-aways, waits; export CSV",
    ),
    StaffAction(
        "close_out", "close_out",
        title="Close out the night", help="Seat or remove every party still open (asks first)",
        verb="Close out", done="Closing out the night",
        queued="close_out", pending="closing out",
    ),
    StaffAction(
        "undo", "undo", key="u", footer="Undo", footer_before="report", bar="Undo",
        title="Undo", help="Cancel the seat or remove still in its grace",
        verb="Undo", done="Undone",
    ),
    StaffAction(
        "readd", "readd",
        panel={"lost": "Re-add to the transmitter", "ended": "Reopen (re-add)"},
        verb="Re-add", done="Re-adding pager {number}",
        queued="readd", carries_party=True,
    ),
    # (Screen has an action_dismiss of its own: the staff screen's is dismiss_lost.)
    StaffAction(
        "dismiss_lost", "dismiss",
        panel={"lost": "Dismiss"},
        verb="Dismiss", done="Dismissed lost pager {number}",
        queued="dismiss",
    ),
    StaffAction(
        "clear_filters", key="escape", footer="Clear filter", binding_id="clear-filter",
        in_footer=False,
    ),
    # the transmitter screen's
    StaffAction(
        "page_number", "page_number",
        verb="Page", done="Paged pager {number}",
        call=lambda c, r: c.page_pager(r.number, page_mode=r.values.get("mode")),
    ),
    StaffAction(
        "settings", "settings",
        verb="Settings", done="The transmitter's settings changed",
        call=lambda c, r: c.set_settings(**r.values),
    ),
    StaffAction("set_clock", "set_clock", verb="Set clock", done="The transmitter's clock is set"),
)  # fmt: skip

BY_NAME: Mapping[str, StaffAction] = {a.name: a for a in ACTIONS}
BY_KIND: Mapping[str, StaffAction] = {a.kind: a for a in ACTIONS if a.kind is not None}
BY_QUEUED: Mapping[str, StaffAction] = {a.queued: a for a in ACTIONS if a.queued is not None}
# what a pending request reads as on its party's row, by the request queue's kind
PENDING_WORDS: Mapping[str, str] = {
    a.queued: a.pending for a in ACTIONS if a.queued is not None and a.pending is not None
}


def key_actions() -> list[StaffAction]:
    """The actions with a key, in the footer's order."""
    keyed = [a for a in ACTIONS if a.key is not None]
    for a in [a for a in keyed if a.footer_before is not None]:
        keyed.remove(a)
        keyed.insert(next(i for i, b in enumerate(keyed) if b.name == a.footer_before), a)
    return keyed


def palette_entries() -> list[tuple[str, str, str]]:
    """The command palette's staff commands, in order: (action name, title, help)."""
    return [(a.name, a.title, a.help) for a in ACTIONS if a.title is not None]


def bar_actions() -> list[StaffAction]:
    """The touch layout's action bar, in the table's order (Add party, Page, Seat, Remove, Undo)."""
    return [a for a in ACTIONS if a.bar is not None]


def more_actions() -> list[StaffAction]:
    """What the touch layout's "More" offers: every palette entry not on the bar."""
    return [a for a in ACTIONS if a.title is not None and a.bar is None]


def party_status(party: SessionView) -> PartyStatus:
    if party.state == "lost":
        return "lost"
    if party.ended:
        return "ended"
    return "paged" if party.paged else "waiting"


def offered(party: SessionView) -> list[tuple[StaffAction, str]]:
    """What staff can do to a party, in the order the touch panel shows it: (action, title)."""
    status = party_status(party)
    return [(a, a.panel[status]) for a in ACTIONS if status in a.panel]


def undo_key() -> str:
    key = BY_NAME["undo"].key
    assert key is not None
    return key


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What became of one staff request: done (with what to overlay) or why not."""

    kind: ActionKind
    number: int
    ok: bool
    error: str | None = None
    title: str | None = None
    # (uuid, view or None for "ended") to show until the store agrees
    overlay: tuple[tuple[str, SessionView | None], ...] = field(default=())
    message: str | None = None  # what to tell staff when it worked (default: the action's)

    @property
    def verb(self) -> str:
        return BY_KIND[self.kind].verb

    @property
    def done(self) -> str:
        return self.message or BY_KIND[self.kind].done.format(number=self.number)


def submit_to_request_queue(
    queue: RequestQueue, request: Request, *, now: datetime, grace: float, board: str
) -> ActionResult:
    """Put a staff action in the store's request queue, for the agent to carry out (after the
    undo grace, for those that have one); says what to tell staff."""
    action = BY_KIND[request.kind]
    assert action.queued is not None
    party = request.party
    payload: dict[str, Any] = dict(request.values)
    if action.carries_party and party is not None:
        payload.update(
            number=party.number,
            label=party.label,
            party_size=party.party_size,
            goal_seconds=party.goal_seconds,
        )
    queue.submit(
        action.queued,
        now=now,
        grace=grace if action.grace else 0.0,
        uuid=party.uuid if party is not None else None,
        number=request.number if party is not None else None,
        payload=payload,
        board=board,
    )
    number = request.number
    if action.grace and action.pending:
        message = (
            f"{action.pending.capitalize()} pager {number} in {grace:g} s — Undo: {undo_key()}"
        )
        return ActionResult(request.kind, number, True, message=message)
    return ActionResult(request.kind, number, True)


def undone_text(kind: str, number: int | None) -> str:
    """What cancelling a queued request (of the request queue's `kind`) says."""
    action = BY_QUEUED.get(kind)
    return f"Undone: pager {number} {action.undone if action else 'not done'}"


async def perform(
    client: ControllerClient | None,
    request: Request,
    *,
    zone: tzinfo | None,
    now_iso: str,
    shown: Mapping[str, SessionView],
) -> ActionResult:
    """Send `request`; `shown` is what the board shows now (by uuid), the base for the overlay."""
    kind, number = request.kind, request.number
    action = BY_KIND[kind]
    if client is None:
        return ActionResult(
            kind, number, False, "no transmitter connection (the board runs read-only)"
        )
    if kind == "set_clock":
        return await _set_clock(client, zone)
    if action.call is None:
        return ActionResult(kind, number, False, f"{action.verb}: not a transmitter request")
    try:
        reply = await action.call(client, request)
    except ControllerUnreachable as exc:
        text = str(exc)
        if text.startswith("no answer"):
            text += "; it may still act on it, watch the board"
        return ActionResult(
            kind, number, False, text, f"{action.verb} {number}: transmitter unreachable"
        )
    except ControllerError as exc:
        return ActionResult(kind, number, False, str(exc), f"{action.verb} {number} refused")
    except Exception as exc:
        log.exception("board: %s %s failed", kind, number)
        return ActionResult(kind, number, False, f"unexpected error: {exc}")
    overlay = replied_views(request, reply, zone=zone, now_iso=now_iso, shown=shown)
    return ActionResult(kind, number, True, overlay=tuple(overlay))


async def _set_clock(client: ControllerClient, zone: tzinfo | None) -> ActionResult:
    """The host's time onto the transmitter — refused while the host itself is not in sync."""
    from agent.skew import ClockRefused, format_skew, set_transmitter_clock

    try:
        _before, after = await set_transmitter_clock(client, zone)
    except (ControllerError, ClockRefused) as exc:
        return ActionResult("set_clock", 0, False, str(exc), "Set clock refused")
    message = f"Transmitter clock set: {format_skew(after)}"
    return ActionResult("set_clock", 0, True, message=message)


def replied_views(
    request: Request,
    reply: Reply,
    *,
    zone: tzinfo | None,
    now_iso: str,
    shown: Mapping[str, SessionView],
) -> list[tuple[str, SessionView | None]]:
    """What to show now: the sessions in the reply, else the transition the action implies."""
    records = list(reply.document.sessions or ()) if reply.document is not None else []
    if records:
        return [(r.uuid, reply_view(r, zone, shown.get(r.uuid), now_iso)) for r in records]
    party = request.party
    base = shown.get(party.uuid) if party is not None else None
    if party is None:
        return []
    if request.kind in ("seat", "remove"):
        return [(party.uuid, None)]
    if base is None:
        return []
    if request.kind in ("page", "repage") and (paged := page(base, now_iso)):
        return [(party.uuid, paged[0])]
    if request.kind == "edit" and request.fields is not None:
        if edited := edit(base, request.fields.changes, now_iso):
            return [(party.uuid, edited[0])]
    return []
