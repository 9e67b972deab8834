"""A guest session, written once: its fields, states, event kinds and transitions.

The transmitter's own document (:class:`agent.controller.protocol.SessionRecord`, zone-less wall
times, as the device sends it) is folded into a :class:`SessionView` — the store's row, its UTC
timestamps as text — by :mod:`agent.lifecycle`. Everything after that speaks this module's
language: the store (its ``sessions`` columns are :data:`COLUMNS`), the export (:data:`EXPORT_FIELDS`),
the sync wire (:data:`EVENT_KINDS`, :data:`LIFECYCLE_KINDS`), the board (views and the same
transitions for the transmitter's direct replies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, get_args

from agent.clock import epoch_of_iso

ViewState = Literal["waiting", "paged", "cleared", "removed", "lost"]
STATES: tuple[ViewState, ...] = get_args(ViewState)
# `lost`: the transmitter no longer knows the session (rebooted and forgot it, or it ended while
# nobody listened and fell out of its bounded history) — nobody saw how or when it ended.
ENDED: frozenset[str] = frozenset({"cleared", "removed", "lost"})

EventKind = Literal["created", "updated", "paged", "cleared", "removed", "lost"]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
# The steps of a guest's visit: what still goes to the cloud in critical budget mode.
LIFECYCLE_KINDS: tuple[EventKind, ...] = ("created", "paged", "cleared", "removed", "lost")
# What staff can change on a session (``updated`` events carry a subset of these).
EDITABLE: tuple[str, ...] = ("label", "party_size", "goal_seconds")


class SessionView(NamedTuple):
    """One session as the store knows it (UTC ISO strings, as stored).

    A NamedTuple, like the transmitter's records: ingest makes a new view for nearly every
    notification (each transition is a copy with a field or two changed), and ``_replace`` on a
    tuple costs half what ``dataclasses.replace`` on a frozen dataclass does (2.0 against 4.3 µs).
    """

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
    reopened_from: str | None = None  # the session this one re-adds (lost, or seated by mistake)
    dismissed_at: str | None = None  # a lost party staff dismissed (UTC ISO)

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def paged(self) -> bool:
        return self.state == "paged"

    @classmethod
    def from_row(cls, row: Any) -> SessionView:
        """A store row (mapping or ``sqlite3.Row``) with at least the view's columns."""
        return cls(**{c: row[c] for c in COLUMNS})


# The store's ``sessions`` columns, in the view's order.
COLUMNS: tuple[str, ...] = SessionView._fields

# `pager-edge export` (sessions): a contract other scripts rely on — order and meaning stay.
EXPORT_FIELDS: tuple[str, ...] = (
    "uuid",
    "number",
    "label",
    "party_size",
    "goal_seconds",
    "created",
    "notified",
    "cleared",
    "state",
    "page_count",
    # since: the first page (`notified` stays the latest), its wait, and what it re-adds
    "first_notified",
    "wait_seconds",
    "reopened_from",
)
# `pager-edge export --events`.
EVENT_EXPORT_FIELDS: tuple[str, ...] = ("seq", "uuid", "number", "kind", "at", "observed_at")


@dataclass(frozen=True, slots=True)
class Event:
    """One lifecycle transition; `at` is the transmitter's time of it (UTC ISO)."""

    kind: EventKind
    uuid: str
    number: int
    at: str
    changes: dict[str, Any] = field(default_factory=dict)

    def record(self, seq: int, observed_at: str, source: str) -> dict[str, Any]:
        """The event as the store hands it out (export, sync wire): ``seq`` is its rowid."""
        return {
            "seq": seq,
            "uuid": self.uuid,
            "number": self.number,
            "kind": self.kind,
            "at": self.at,
            "observed_at": observed_at,
            "changes": dict(self.changes),
            "source": source,
        }


# --- transitions ------------------------------------------------------------------------------


def page(view: SessionView, at: str) -> tuple[SessionView, Event] | None:
    """The session was paged at `at` — if that is newer than the last page seen (a re-page
    counts again); None when `at` is not news."""
    if view.notified is not None and at <= view.notified:
        return None
    count = view.page_count + 1
    paged = view._replace(
        notified=at,
        first_notified=view.first_notified or at,
        page_count=count,
        state="paged",
    )
    return paged, Event("paged", view.uuid, view.number, at, {"page": count})


def edit(view: SessionView, changes: dict[str, Any], at: str) -> tuple[SessionView, Event] | None:
    """Label, party size or goal changed (only the fields that really differ); None if none."""
    real = {k: v for k, v in changes.items() if k in EDITABLE and getattr(view, k) != v}
    if not real:
        return None
    return view._replace(**real), Event("updated", view.uuid, view.number, at, real)


def end(
    view: SessionView, kind: Literal["cleared", "removed"], at: str
) -> tuple[SessionView, Event]:
    """The session ended: seated (``cleared``) or removed."""
    return view._replace(state=kind, cleared=at), Event(kind, view.uuid, view.number, at)


def lose(view: SessionView, concluded_at: str) -> tuple[SessionView, Event]:
    """The transmitter no longer knows the session: it ends `lost`, its event at the moment the
    agent concluded it; ``cleared`` stays empty (nobody saw when it ended)."""
    lost = view._replace(state="lost")
    return lost, Event("lost", view.uuid, view.number, concluded_at)


def wait_seconds(view: SessionView) -> int | None:
    """Arrival to the first page, in seconds (None until paged)."""
    created, paged = epoch_of_iso(view.created), epoch_of_iso(view.first_notified)
    return None if created is None or paged is None else paged - created
