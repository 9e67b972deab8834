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

import functools
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from agent.clock import iso_utc, to_utc
from agent.controller.protocol import SessionRecord
from agent.session import EDITABLE, Event, SessionView, edit, end, page


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
                {k: getattr(record, k) for k in EDITABLE},
            )
        )
    else:
        view = known
        changes: dict[str, Any] = {}
        if record.has_label:  # null is a value: "no label"; an absent key is not a change
            changes["label"] = record.label
        # History items omit partySize; an absent number means "not reported", not a change.
        for attr in ("party_size", "goal_seconds"):
            if (value := getattr(record, attr)) is not None:
                changes[attr] = value
        if edited := edit(view, changes, update_at):
            view, event = edited
            events.append(event)

    notified = utc(record.notified)
    if notified is not None and (paged := page(view, notified)):
        view, event = paged
        events.append(event)

    if record.clear_type is not None:
        kind = "cleared" if record.clear_type == "STOP" else "removed"
        view, event = end(view, kind, utc(record.cleared) or update_at)
        events.append(event)
        return FoldResult(view, tuple(events))

    return FoldResult(view, tuple(events), needs_history=record.state == "cleared")
