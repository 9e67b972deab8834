"""Staff actions: one request to the transmitter, and what the board shows of its answer.

:func:`perform` sends the action through the agent's controller client (bounded by its timeout)
and turns the answer into an :class:`Outcome`: the views to overlay until the agent has recorded
them (made with the agent's own session transitions), or the readable reason it failed. It never
raises: the board keeps working whatever the request did.
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
# Carried out by the agent from the store's request queue (see agent.store.requests): seat and
# remove after the undo grace; the others need the agent to record what they mean.
QUEUED: dict[str, RequestKind] = {
    "seat": "seat",
    "remove": "remove",
    "readd": "readd",
    "dismiss": "dismiss",
    "close_out": "close_out",
}
# kind → (verb, what was done) for messages; {number} is the pager
VERBS: dict[str, tuple[str, str]] = {
    "add": ("Add", "Added pager {number}"),
    "page": ("Page", "Paged pager {number}"),
    "repage": ("Re-page", "Re-paged pager {number}"),
    "seat": ("Seat", "Seated pager {number}"),
    "remove": ("Remove", "Removed pager {number}"),
    "edit": ("Edit", "Updated pager {number}"),
    "page_number": ("Page", "Paged pager {number}"),
    "settings": ("Settings", "The transmitter's settings changed"),
    "set_clock": ("Set clock", "The transmitter's clock is set"),
    "readd": ("Re-add", "Re-adding pager {number}"),
    "dismiss": ("Dismiss", "Dismissed lost pager {number}"),
    "close_out": ("Close out", "Closing out the night"),
    "undo": ("Undo", "Undone"),
}
# what a pending request reads as on its party's row
PENDING_WORDS = {"seat": "seating", "remove": "removing", "close_out": "closing out"}


def offered(party: SessionView) -> list[tuple[str, str]]:
    """What staff can do to a party, in the order the touch panel shows it: (action, title)."""
    if party.state == "lost":
        # (Screen has an action_dismiss of its own: the staff screen's is dismiss_lost.)
        return [("readd", "Re-add to the transmitter"), ("dismiss_lost", "Dismiss")]
    if party.ended:
        return [("readd", "Reopen (re-add)")]
    first = ("repage", "Re-page") if party.paged else ("page", "Page")
    return [first, ("seat", "Seat"), ("remove", "Remove…"), ("edit", "Edit")]


def queue_it(
    queue: RequestQueue, request: Request, *, now: datetime, grace: float, board: str
) -> int:
    """Put a staff action in the store's request queue (seat/remove wait out `grace`)."""
    party = request.party
    payload: dict[str, Any] = dict(request.values)
    if request.kind == "readd" and party is not None:
        payload.update(
            number=party.number,
            label=party.label,
            party_size=party.party_size,
            goal_seconds=party.goal_seconds,
        )
    return queue.submit(
        QUEUED[request.kind],
        now=now,
        grace=grace if request.kind in ("seat", "remove") else 0.0,
        uuid=party.uuid if party is not None else None,
        number=request.number if request.kind != "close_out" else None,
        payload=payload,
        board=board,
    )


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


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: ActionKind
    number: int
    ok: bool
    error: str | None = None
    title: str | None = None
    # (uuid, view or None for "ended") to show until the store agrees
    overlay: tuple[tuple[str, SessionView | None], ...] = field(default=())
    message: str | None = None  # what to tell staff when it worked (default: VERBS)

    @property
    def done(self) -> str:
        return self.message or VERBS[self.kind][1].format(number=self.number)


Call = Callable[[ControllerClient, Request], Awaitable[Reply]]


def _fields(r: Request) -> PartyFields:
    assert r.fields is not None
    return r.fields


CALLS: dict[str, Call] = {
    "add": lambda c, r: c.create_session(
        r.number,
        goal=_fields(r).goal_seconds,
        label=_fields(r).label,
        party_size=_fields(r).party_size,
    ),
    "page": lambda c, r: c.page(r.number),
    "repage": lambda c, r: c.page(r.number),
    "seat": lambda c, r: c.clear(r.number),
    "remove": lambda c, r: c.remove(r.number),
    "edit": lambda c, r: c.update_session(
        r.number,
        goal=_fields(r).goal_seconds,
        label=_fields(r).label,
        party_size=_fields(r).party_size,
    ),
    "page_number": lambda c, r: c.page_pager(r.number, page_mode=r.values.get("mode")),
    "settings": lambda c, r: c.set_settings(**r.values),
}


async def perform(
    client: ControllerClient | None,
    request: Request,
    *,
    zone: tzinfo | None,
    now_iso: str,
    shown: Mapping[str, SessionView],
) -> Outcome:
    """Send `request`; `shown` is what the board shows now (by uuid), the base for the overlay."""
    kind, number = request.kind, request.number
    verb = VERBS[kind][0]
    if client is None:
        return Outcome(kind, number, False, "no transmitter connection (the board runs read-only)")
    if kind == "set_clock":
        return await _set_clock(client, zone)
    try:
        reply = await CALLS[kind](client, request)
    except ControllerUnreachable as exc:
        text = str(exc)
        if text.startswith("no answer"):
            text += "; it may still act on it, watch the board"
        return Outcome(kind, number, False, text, f"{verb} {number}: transmitter unreachable")
    except ControllerError as exc:
        return Outcome(kind, number, False, str(exc), f"{verb} {number} refused")
    except Exception as exc:
        log.exception("board: %s %s failed", kind, number)
        return Outcome(kind, number, False, f"unexpected error: {exc}")
    overlay = replied_views(request, reply, zone=zone, now_iso=now_iso, shown=shown)
    return Outcome(kind, number, True, overlay=tuple(overlay))


async def _set_clock(client: ControllerClient, zone: tzinfo | None) -> Outcome:
    """The host's time onto the transmitter — refused while the host itself is not in sync."""
    from agent.skew import ClockRefused, format_skew, set_transmitter_clock

    try:
        _before, after = await set_transmitter_clock(client, zone)
    except (ControllerError, ClockRefused) as exc:
        return Outcome("set_clock", 0, False, str(exc), "Set clock refused")
    return Outcome("set_clock", 0, True, message=f"Transmitter clock set: {format_skew(after)}")


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
