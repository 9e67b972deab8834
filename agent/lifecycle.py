"""Lifecycle folding: (what the store knew, what the transmitter now says) → lifecycle events.

Pure functions, no I/O. The transmitter is the source of truth; folding only records what it saw:

* a session first seen → ``created`` (and ``paged`` if it is already paged);
* label / party size / goal changed → ``updated`` with just the changed fields;
* ``notified`` moved forward → ``paged`` (again for every re-page);
* a history item with ``clearType`` → ``cleared`` (STOP) or ``removed`` (REMOVED).

A sessions notification with ``state: "cleared"`` does not say *how* the session ended, so it yields
no end event: the caller learns that it must look at ``/v1/sessions/history`` (``needs_history``).
Missing from a document never means ended (documents may be partial).

Idempotent: folding an observation into the view it produced yields nothing.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal

from agent.controller.protocol import SessionRecord, iso_utc, to_utc

ViewState = Literal["waiting", "paged", "cleared", "removed"]
EventKind = Literal["created", "updated", "paged", "cleared", "removed"]
ENDED: frozenset[str] = frozenset({"cleared", "removed"})


@dataclass(frozen=True, slots=True)
class SessionView:
    """The store's current view of one session (UTC ISO strings, as stored)."""

    uuid: str
    number: int
    transmitter_id: int | None = None
    label: str | None = None
    party_size: int | None = None
    goal_seconds: int | None = None
    created: str | None = None
    first_notified: str | None = None
    notified: str | None = None
    cleared: str | None = None
    state: ViewState = "waiting"
    page_count: int = 0

    @property
    def ended(self) -> bool:
        return self.state in ENDED


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    uuid: str
    number: int
    at: str  # transmitter time of the transition, UTC ISO
    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FoldResult:
    view: SessionView | None
    events: tuple[Event, ...] = ()
    needs_history: bool = False


@functools.lru_cache(maxsize=8192)
def utc_iso(moment: datetime, zone: tzinfo | None) -> str:
    """Transmitter wall-clock time → stored UTC string (cached: the same times recur constantly)."""
    return iso_utc(to_utc(moment, zone)) or ""


def fold(
    known: SessionView | None,
    record: SessionRecord,
    *,
    zone: tzinfo | None,
    doc_time: datetime | None,
    observed_at: str,
) -> FoldResult:
    """Fold one observation of a session into its view.

    `doc_time` is the document's transmitter timestamp (naive local) used as the time of an
    ``updated`` event; `observed_at` (UTC ISO) stands in when the document carries none.
    """
    if known is not None and known.ended:
        return FoldResult(known)  # a finished session never changes again

    def utc(moment: datetime | None) -> str | None:
        return None if moment is None else utc_iso(moment, zone)

    update_at = utc(doc_time) or observed_at
    events: list[Event] = []
    created = utc(record.created)

    if known is None:
        view = SessionView(
            uuid=record.uuid,
            number=record.number,
            transmitter_id=record.id,
            label=record.label,
            party_size=record.party_size,
            goal_seconds=record.goal_seconds,
            created=created,
        )
        events.append(
            Event(
                "created",
                record.uuid,
                record.number,
                created or update_at,
                {
                    "label": record.label,
                    "party_size": record.party_size,
                    "goal_seconds": record.goal_seconds,
                },
            )
        )
    else:
        view = known
        changes: dict[str, Any] = {}
        if record.has_label and record.label != known.label:  # null is a value: "no label"
            changes["label"] = record.label
        # History items omit partySize; an absent number means "not reported", not a change.
        for attr in ("party_size", "goal_seconds"):
            value = getattr(record, attr)
            if value is not None and value != getattr(known, attr):
                changes[attr] = value
        if changes:
            view = dataclasses.replace(view, **changes)
            events.append(Event("updated", record.uuid, record.number, update_at, changes))

    notified = utc(record.notified)
    if notified is not None and (view.notified is None or notified > view.notified):
        view = dataclasses.replace(
            view,
            notified=notified,
            first_notified=view.first_notified or notified,
            page_count=view.page_count + 1,
            state="paged",
        )
        events.append(
            Event("paged", record.uuid, record.number, notified, {"page": view.page_count})
        )

    if record.clear_type is not None:
        kind: EventKind = "cleared" if record.clear_type == "STOP" else "removed"
        cleared = utc(record.cleared) or update_at
        view = dataclasses.replace(view, state=kind, cleared=cleared)
        events.append(Event(kind, record.uuid, record.number, cleared, {}))
        return FoldResult(view, tuple(events))

    return FoldResult(view, tuple(events), needs_history=record.state == "cleared")
