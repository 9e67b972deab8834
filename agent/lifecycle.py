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

Times: the transmitter's wall times are resolved to instants with what the fold knows — a time is
never later than the document's `not_after` (when it was observed, in the transmitter's frame)
and a session's times are in order (created ≤ paged ≤ cleared; a re-page after the last page) —
which decides the autumn's repeated hour (see :func:`agent.clock.resolve_wall`).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, tzinfo
from operator import attrgetter
from typing import Any, Literal, NamedTuple

from agent.clock import resolve_wall
from agent.controller.protocol import SessionRecord
from agent.session import EDITABLE, Event, SessionView, edit, end, page


class FoldResult(NamedTuple):
    view: SessionView | None
    events: tuple[Event, ...] = ()
    needs_history: bool = False


_editable = attrgetter(*EDITABLE)


def _utc(
    moment: datetime | None, zone: tzinfo | None, before: str | None, after: str | None
) -> str | None:
    """The instant a transmitter wall time means, bounded by `before` and `after` (store text)."""
    if moment is None:
        return None
    return resolve_wall(moment, zone, not_after=before, not_before=after)


def fold(
    known: SessionView | None,
    record: SessionRecord,
    *,
    zone: tzinfo | None,
    doc_time: datetime | None,
    observed_at: str,
    not_after: str | None = None,
) -> FoldResult:
    """Fold one observation of a session into its view.

    `doc_time` is the document's transmitter timestamp (naive local) used as the time of an
    ``updated`` event; `observed_at` (UTC ISO) stands in when the document carries none.
    `not_after` bounds every time in the document (None: the earlier pass of a repeated hour).
    """
    if known is not None and known.ended:
        return FoldResult(known)  # a finished session never changes again

    update_at = _utc(doc_time, zone, not_after, None) or observed_at
    events: list[Event] = []
    # Latest first: each time bounds the one before it.
    cleared_at = _utc(record.cleared, zone, not_after, None)
    bound = cleared_at or not_after
    since = known.notified or known.created if known is not None else None
    notified = _utc(record.notified, zone, bound, since)
    created = _utc(record.created, zone, notified or bound, None)

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
                dict(zip(EDITABLE, _editable(record), strict=True)),
            )
        )
    else:
        view = known
        changes: dict[str, Any] = {}
        # null is a value: "no label"; an absent key is not a change
        if record.has_label and record.label != view.label:
            changes["label"] = record.label
        # History items omit partySize; an absent number means "not reported", not a change.
        if record.party_size is not None and record.party_size != view.party_size:
            changes["party_size"] = record.party_size
        if record.goal_seconds is not None and record.goal_seconds != view.goal_seconds:
            changes["goal_seconds"] = record.goal_seconds
        if changes and (edited := edit(view, changes, update_at)):
            view, event = edited
            events.append(event)

    if notified is not None and (paged := page(view, notified)):
        view, event = paged
        events.append(event)

    if record.clear_type is not None:
        kind: Literal["cleared", "removed"] = (
            "cleared" if record.clear_type == "STOP" else "removed"
        )
        view, event = end(view, kind, cleared_at or update_at)
        events.append(event)
        return FoldResult(view, tuple(events))

    return FoldResult(view, tuple(events), needs_history=record.state == "cleared")


def reopened(result: FoldResult, old: str) -> FoldResult:
    """A new session staff re-added for `old` (lost, or seated by mistake): it names it."""
    if result.view is None:
        return result
    return FoldResult(
        result.view._replace(reopened_from=old),
        tuple(
            dataclasses.replace(e, changes={**e.changes, "reopened_from": old})
            if e.kind == "created"
            else e
            for e in result.events
        ),
        result.needs_history,
    )
