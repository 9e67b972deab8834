"""The T7470's state and the JSON documents it speaks — pure state, no I/O.

Everything the device knows lives in :class:`Transmitter`: active sessions, the history of finished
ones (with ``clearType`` STOP or REMOVED), statistics, settings and the 16-bit
``globalSessionSequence``. Every mutation returns the notification document(s) the device would
broadcast to its observers; the CoAP layer (:mod:`agent.simulator.server`) only encodes and sends.

Choices where the vendor documentation is silent (each one is something a client must cope with):

* Every broadcast notification bumps ``globalSessionSequence`` by exactly one — session changes,
  settings changes and statistics resets alike — so a client sees consecutive sequences and any gap
  means a missed notification. A request that changes a session *and* acts on it (PUT with a label
  and ``action: page``) is two changes: two notifications, two sequence numbers.
* ``clear_all()`` (``DELETE /v1/sessions``) sends one notification per cleared session.
* ``POST /v1/sessions`` for a pager that already has an active session is **4.09 Conflict**
  (not an update): a client that means "update" must PUT.
* Labels are limited to :data:`MAX_LABEL_CHARS` characters without control characters, so a
  single-session notification always fits one CoAP block (1024 bytes).
* ``sessionSequence`` is the sequence of the session's last change in notifications, and 65535
  ("unset") in ``GET`` documents, as in the vendor's single-session example.
* ``notified`` is the time of the *latest* page (the device overwrites it on a re-page).
* Statistics count since the last reset (``DELETE /v1/sessions/statistics`` or the daily
  ``statisticsClearMark`` hour, applied lazily, without a notification). A guest is "served" when
  first paged; late means first paged after the goal. With nobody served both percentages are 0.

Time. The device speaks naive local wall time (``2026-11-01T01:05:00``), which is ambiguous for an
hour every autumn and skips an hour every spring. So the model never keeps wall times: every
session time is the true instant (aware UTC) at which the device's own clock — moved by any
``POST /v1/settings {"datetime"}`` — saw it, and the wall time is rendered in the device's zone
only for the documents. Ground truth, waiting times and the statistics mark are computed on
instants, so they stay right across the changes while the wire repeats or skips an hour, exactly
as a real T7470 on local time does.
"""

from __future__ import annotations

import random
import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from agent.clock import SYSTEM_CLOCK, Clock, iso_utc, to_utc, wall_time
from agent.simulator.limits import (
    DEFAULT_PAGE_MODE,
    MAX_GOAL_SECONDS,
    MAX_MESSAGE_CHARS,
    MAX_PARTY_SIZE,
    SEQUENCE_MODULUS,
    UNSET,
    UNSET_SEQUENCE,
    ClearType,
    Doc,
    SimError,
    _int,
    _short_str,
    check_label,
    check_number,
    check_page_mode,
    fmt,
    parse_device_time,
)


@dataclass
class Session:
    """One session; `clear_type` is set once it has ended (and it lives in history).

    Its times are true instants (aware UTC); :meth:`to_json` renders them as the device shows them.
    """

    id: int
    uuid: str
    number: int
    party_size: int
    goal: int
    created: datetime
    label: str | None
    notified: datetime | None = None
    first_notified: datetime | None = None
    cleared: datetime | None = None
    clear_type: ClearType | None = None
    page_count: int = 0
    sequence: int = UNSET_SEQUENCE

    @property
    def state(self) -> str:
        if self.clear_type is not None:
            return "cleared"
        return "paged" if self.notified is not None else "started"

    def to_json(self, *, sequence: int | None, zone: tzinfo | None) -> Doc:
        """The session object in the vendor's key order, times as wall times in `zone`;
        `sequence=None` omits sessionSequence."""
        out: Doc = {"id": self.id}
        if sequence is not None:
            out["sessionSequence"] = sequence
        out.update(
            uuid=self.uuid,
            number=self.number,
            partySize=self.party_size,
            goalInSeconds=self.goal,
            created=fmt(self.created, zone),
            started=fmt(self.created, zone),
        )
        if self.notified is not None:
            out["notified"] = fmt(self.notified, zone)
        if self.cleared is not None:
            out["cleared"] = fmt(self.cleared, zone)
        out["label"] = self.label
        out["state"] = self.state
        return out


@dataclass
class Statistics:
    num_sessions: int = 0
    served: int = 0
    late: int = 0
    total_served_seconds: int = 0

    def to_json(self) -> Doc:
        if self.served:
            late = round(100 * self.late / self.served)
            on_time, avg = 100 - late, round(self.total_served_seconds / self.served)
        else:
            late = on_time = avg = 0
        return {
            "guestsServed": self.served,
            "percentLate": late,
            "percentOnTime": on_time,
            "averageTimeServed": avg,
            "numSessions": self.num_sessions,
        }


class Transmitter:
    """The device's state. Mutations return the notification documents to broadcast.

    `clock` is the true time; the transmitter's wall clock is what a clock in `tz` (None: the
    host's zone) shows at that time, moved by whatever ``POST /v1/settings {"datetime"}`` set. `seed` makes uuids reproducible. With
    `vendor_exact_notifications` the sessions/settings notifications omit ``timestamp``,
    ``deviceName`` and ``firmwareVersion`` like the vendor's example; with `vendor_exact_history`
    history items omit ``partySize`` and ``state`` like the vendor's history example.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        tz: tzinfo | None = None,
        *,
        seed: int = 0,
        vendor_exact_notifications: bool = False,
        vendor_exact_history: bool = False,
        device_name: str = "T7470",
        firmware_version: str = "8.4.100.43",
        system_id: int = 0,
        default_target_goal: int = 300,
        statistics_clear_mark: int = 24,
        start_sequence: int = 0,
        history_limit: int | None = None,
    ):
        # A real device keeps a bounded history (a day's worth); None keeps everything.
        self.history_limit = history_limit
        self._clock = clock or SYSTEM_CLOCK
        self.tz = tz
        self._rng = random.Random(f"t7470-uuid:{seed}")
        self.vendor_exact_notifications = vendor_exact_notifications
        self.vendor_exact_history = vendor_exact_history
        self.device_name = device_name
        self.firmware_version = firmware_version
        self.system_id = _int(system_id, "systemId", 0, 0xFFFF)
        self.default_target_goal = _int(
            default_target_goal, "defaultTargetGoal", 1, MAX_GOAL_SECONDS
        )
        self.statistics_clear_mark = _int(statistics_clear_mark, "statisticsClearMark", 0, 24)
        self.sequence = _int(start_sequence, "start_sequence", 0, SEQUENCE_MODULUS - 1)
        self._offset = timedelta(0)  # POST /v1/settings {"datetime"} moves the device clock
        self._next_id = 1
        self.active: dict[int, Session] = {}  # by pager number
        self.history: list[Session] = []  # in the order sessions ended
        self._all: list[Session] = []  # every session ever created, for ground truth
        self._forgotten: set[str] = set()  # active when a reboot forgot them: `lost`
        self.stats = Statistics()
        self._stats_since = self.now()
        self.standalone_pages: list[Doc] = []
        self.boots = 1

    # --- time -----------------------------------------------------------------------------

    def now(self) -> datetime:
        """The instant the transmitter's clock shows (aware UTC, whole seconds)."""
        return (self._clock.now() + self._offset).replace(microsecond=0)

    def _fmt(self, moment: datetime | None) -> str | None:
        return fmt(moment, self.tz)

    def _session_json(self, s: Session, sequence: int | None) -> Doc:
        return s.to_json(sequence=sequence, zone=self.tz)

    def _instant_of(self, wall: datetime) -> datetime:
        """The instant a clock in `tz` shows `wall`: the first of the two in the autumn change's
        repeated hour; a time in the spring change's missing hour is read with the offset from
        before the change (02:30 is 03:30). ValueError when there is no such instant."""
        moment = to_utc(wall, self.tz)
        if moment is None:  # to_utc passes only None through as None
            raise ValueError("no wall time")
        return moment

    def _maybe_auto_reset_statistics(self, now: datetime) -> None:
        """Reset once the wall clock has passed the daily mark hour since the last reset."""
        wall = wall_time(now, self.tz)
        mark_wall = wall.replace(hour=self.statistics_clear_mark % 24, minute=0, second=0)
        if mark_wall > wall:
            mark_wall -= timedelta(days=1)
        mark = self._instant_of(mark_wall)
        if self._stats_since < mark:
            self.stats = Statistics()
            self._stats_since = mark

    # --- documents ------------------------------------------------------------------------

    def _bump(self) -> int:
        self.sequence = (self.sequence + 1) % SEQUENCE_MODULUS
        return self.sequence

    def _meta(self, types: list[str], *, metadata: bool = True) -> Doc:
        doc: Doc = {"responseTypes": types, "globalSessionSequence": self.sequence}
        if metadata:
            doc.update(
                timestamp=self._fmt(self.now()),
                deviceName=self.device_name,
                firmwareVersion=self.firmware_version,
            )
        return doc

    def statistics_json(self) -> Doc:
        self._maybe_auto_reset_statistics(self.now())
        return self.stats.to_json()

    def settings_json(self) -> Doc:
        return {
            "datetime": self._fmt(self.now()),
            "systemId": self.system_id,
            "defaultTargetGoal": self.default_target_goal,
            "statisticsClearMark": self.statistics_clear_mark,
        }

    def _history_item(self, s: Session) -> Doc:
        item = self._session_json(s, None)
        if self.vendor_exact_history:
            item.pop("partySize")
            item.pop("state")
        item["clearType"] = s.clear_type
        return item

    def sessions_notification(self, session: Session) -> Doc:
        """What the device broadcasts when one session changed (sequence already bumped)."""
        doc = self._meta(["sessions", "statistics"], metadata=not self.vendor_exact_notifications)
        doc["statistics"] = self.statistics_json()
        doc["sessions"] = [self._session_json(session, session.sequence)]
        return doc

    def sessions_chunk(self, sessions: list[Session]) -> Doc:
        """A sessions notification carrying several active sessions (the notify stream's start)."""
        doc = self._meta(["sessions", "statistics"], metadata=not self.vendor_exact_notifications)
        doc["statistics"] = self.statistics_json()
        doc["sessions"] = [self._session_json(s, s.sequence) for s in sessions]
        return doc

    def sessions_document(self, number: int | None = None) -> Doc:
        """``GET /v1/sessions`` (all active + statistics) or ``?number=N`` (one, in an array)."""
        if number is None:
            doc = self._meta(["sessions", "statistics"])
            doc["statistics"] = self.statistics_json()
            doc["sessions"] = [
                self._session_json(s, UNSET_SEQUENCE) for s in self.active_sessions()
            ]
            return doc
        s = self._get(number)
        doc = self._meta(["sessions"])
        doc["sessions"] = [self._session_json(s, UNSET_SEQUENCE)]
        return doc

    def reply_document(self, number: int) -> Doc:
        """The reply to a request that changed pager `number`'s session: that session as it now
        is (also when it just ended) with its sessionSequence, statistics and full metadata."""
        s = self.active.get(number) or next(h for h in reversed(self.history) if h.number == number)
        doc = self._meta(["sessions", "statistics"])
        doc["statistics"] = self.statistics_json()
        doc["sessions"] = [self._session_json(s, s.sequence)]
        return doc

    def history_document(self) -> Doc:
        doc = self._meta(["session_history"])
        kept = self.history[-self.history_limit :] if self.history_limit else self.history
        doc["session_history"] = [self._history_item(s) for s in kept]
        return doc

    def statistics_document(self) -> Doc:
        doc = self._meta(["statistics"])
        doc["statistics"] = self.statistics_json()
        return doc

    def settings_document(self, *, metadata: bool = True) -> Doc:
        doc = self._meta(["settings"], metadata=metadata)
        doc["settings"] = self.settings_json()
        return doc

    def ping_document(self) -> Doc:
        return self._meta(["ping"])

    def metadata_document(self) -> Doc:
        """The first answer of a plain ``/v1/notify`` observation: metadata, nothing else."""
        return self._meta([])

    def error_document(self, message: str) -> Doc:
        doc = self._meta(["error"])
        doc["error"] = message
        return doc

    def active_sessions(self) -> list[Session]:
        return sorted(self.active.values(), key=lambda s: s.id)

    # --- mutations ------------------------------------------------------------------------

    def _get(self, number: Any) -> Session:
        number = check_number(number)
        try:
            return self.active[number]
        except KeyError:
            raise SimError("4.04", f"no active session for pager {number}") from None

    def _changed(self, s: Session) -> list[Doc]:
        s.sequence = self._bump()
        return [self.sessions_notification(s)]

    def create(
        self,
        number: int,
        goal: int | None = None,
        label: str | None = None,
        party_size: int = 1,
    ) -> list[Doc]:
        number = check_number(number)
        goal = self.default_target_goal if goal is None else _int(goal, "goal", 1, MAX_GOAL_SECONDS)
        label = check_label(label)
        party_size = _int(party_size, "partySize", 1, MAX_PARTY_SIZE)
        if number in self.active:
            raise SimError("4.09", f"pager {number} already has an active session")
        now = self.now()
        self._maybe_auto_reset_statistics(now)
        s = Session(
            id=self._next_id,
            uuid=str(uuidlib.UUID(int=self._rng.getrandbits(128), version=4)),
            number=number,
            party_size=party_size,
            goal=goal,
            created=now,
            label=label,
        )
        self._next_id += 1
        self.active[number] = s
        self._all.append(s)
        self.stats.num_sessions += 1
        return self._changed(s)

    def update(
        self,
        number: int,
        goal: int | None = None,
        label: str | None = UNSET,
        party_size: int | None = None,
    ) -> list[Doc]:
        s = self._get(number)
        if goal is None and label is UNSET and party_size is None:
            raise SimError("4.00", "nothing to update")
        new_goal = s.goal if goal is None else _int(goal, "goal", 1, MAX_GOAL_SECONDS)
        new_label = s.label if label is UNSET else check_label(label)
        new_size = (
            s.party_size if party_size is None else _int(party_size, "partySize", 1, MAX_PARTY_SIZE)
        )
        s.goal, s.label, s.party_size = new_goal, new_label, new_size
        return self._changed(s)

    def page(self, number: int, page_mode: str | None = None) -> list[Doc]:
        s = self._get(number)
        check_page_mode(page_mode)
        now = self.now()
        self._maybe_auto_reset_statistics(now)
        if s.first_notified is None:
            s.first_notified = now
            waited = int((now - s.created).total_seconds())
            self.stats.served += 1
            self.stats.total_served_seconds += waited
            if waited > s.goal:
                self.stats.late += 1
        s.notified = now
        s.page_count += 1
        return self._changed(s)

    def _end(self, number: int, clear_type: ClearType) -> list[Doc]:
        s = self._get(number)
        s.cleared = self.now()
        s.clear_type = clear_type
        del self.active[s.number]
        self.history.append(s)
        return self._changed(s)

    def clear(self, number: int) -> list[Doc]:
        """The guest was served/seated: ``clearType: STOP``."""
        return self._end(number, "STOP")

    def remove(self, number: int) -> list[Doc]:
        """Walk-away, no-show or mistake: ``clearType: REMOVED``."""
        return self._end(number, "REMOVED")

    def clear_all(self) -> list[Doc]:
        docs: list[Doc] = []
        for s in self.active_sessions():
            docs += self._end(s.number, "STOP")
        return docs

    def reset_statistics(self) -> list[Doc]:
        self.stats = Statistics()
        self._stats_since = self.now()
        self._bump()
        doc = self._meta(["statistics"], metadata=not self.vendor_exact_notifications)
        doc["statistics"] = self.stats.to_json()
        return [doc]

    def set_settings(self, **subset: Any) -> list[Doc]:
        """Change any of ``datetime, systemId, defaultTargetGoal, statisticsClearMark``."""
        known = {"datetime", "systemId", "defaultTargetGoal", "statisticsClearMark"}
        unknown = sorted(set(subset) - known)
        if unknown:
            raise SimError("4.00", f"unknown settings: {', '.join(unknown)}")
        if not subset:
            raise SimError("4.00", "no settings given")
        # Validate everything before changing anything.
        when = self._settable_time(subset["datetime"]) if "datetime" in subset else None
        system_id = _int(subset.get("systemId", self.system_id), "systemId", 0, 0xFFFF)
        goal = _int(
            subset.get("defaultTargetGoal", self.default_target_goal),
            "defaultTargetGoal",
            1,
            MAX_GOAL_SECONDS,
        )
        mark = _int(
            subset.get("statisticsClearMark", self.statistics_clear_mark),
            "statisticsClearMark",
            0,
            24,
        )
        if when is not None:
            self._offset = when - self._clock.now().replace(microsecond=0)
        self.system_id, self.default_target_goal, self.statistics_clear_mark = system_id, goal, mark
        self._bump()
        return [self.settings_document(metadata=not self.vendor_exact_notifications)]

    def _settable_time(self, value: Any) -> datetime:
        """The instant a ``datetime`` setting asks the device's clock to show now."""
        wall = parse_device_time(value)
        try:
            return self._instant_of(wall)
        except ValueError:
            raise SimError("4.00", f"datetime: out of range: {value}") from None

    def standalone_page(
        self,
        number: int,
        page_mode: str | None = None,
        message: str | None = None,
        system_id: int | None = None,
    ) -> list[Doc]:
        """``POST /v1/page``: page a pager without a session. No session changes, no notification."""
        number = check_number(number)
        check_page_mode(page_mode)
        if message is not None:
            _short_str(message, "message", MAX_MESSAGE_CHARS)
        if system_id is not None:
            _int(system_id, "systemId", 0, 0xFFFF)
        self.standalone_pages.append(
            {
                "number": number,
                "pageMode": page_mode or DEFAULT_PAGE_MODE,
                "message": message,
                "systemId": self.system_id if system_id is None else system_id,
                "at": self._fmt(self.now()),
            }
        )
        return []

    def restart(self, reset_sequence: bool = True, *, forget: bool = False) -> None:
        """A reboot: sessions, history and statistics survive; the sequence starts again at 0.

        `forget`: a transmitter that loses its sessions and history on reboot (the vendor does
        not say which kind the T7470 is). The forgotten sessions are `lost` in the ground truth:
        nobody can know how or when they ended.
        """
        self.boots += 1
        if reset_sequence:
            self.sequence = 0
        if forget:
            for session in self.active.values():
                self._forgotten.add(session.uuid)
            self.active.clear()
            self.history.clear()

    # --- ground truth ---------------------------------------------------------------------

    def ground_truth(self) -> list[Doc]:
        """Every session ever created, in the shape of the agent's export, by created then id."""
        out = []
        for s in sorted(self._all, key=lambda s: (s.created, s.id)):
            if s.uuid in self._forgotten:
                state = "lost"
            elif s.clear_type is None:
                state = "paged" if s.notified is not None else "waiting"
            else:
                state = "cleared" if s.clear_type == "STOP" else "removed"
            wait = (
                None
                if s.first_notified is None
                else round((s.first_notified - s.created).total_seconds())
            )
            out.append(
                {
                    "uuid": s.uuid,
                    "number": s.number,
                    "label": s.label,
                    "party_size": s.party_size,
                    "goal_seconds": s.goal,
                    "created": iso_utc(s.created),
                    "notified": iso_utc(s.notified),
                    "cleared": iso_utc(s.cleared),
                    "state": state,
                    "page_count": s.page_count,
                    "first_notified": iso_utc(s.first_notified),
                    "wait_seconds": wait,
                    "reopened_from": None,
                }
            )
        return out
