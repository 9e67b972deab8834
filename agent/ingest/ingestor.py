"""The ingest pipeline: notifications in, lifecycle events durably out.

One task consumes the queue the observation callback fills. It parses each document, checks
``globalSessionSequence`` (wrap-safe), folds sessions into lifecycle events against an in-memory
copy of the active views, and hands everything that arrived meanwhile to the writer thread as one
transaction (group commit). The event loop never waits on an fsync, so the observation keeps being
consumed (and pings ACKed) while SQLite syncs.

Recovery is always the same move: a *resync* — ``GET /v1/sessions`` then
``GET /v1/sessions/history`` folded like notifications. It runs after every (re)registration, on a
sequence gap, on a sequence decrease (transmitter restart), after a malformed item, and when a
session ended (``state: cleared``) so that history can say whether it was seated or removed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import datetime, tzinfo

from agent import __version__
from agent.absence import AbsenceWatch
from agent.clock import SYSTEM_CLOCK, Clock, iso_utc, parse_iso
from agent.controller.client import ControllerClient, ControllerError
from agent.controller.protocol import (
    Document,
    ProtocolError,
    SessionRecord,
    parse_document,
    sequence_delta,
)
from agent.health import Health
from agent.ingest.history import HistoryFetcher, HistorySchedule
from agent.ingest.messages import (
    Control,
    Counters,
    Heartbeat,
    HistoryAnswer,
    Incoming,
    Item,
    KeepView,
    LinkChanged,
    Reopen,
    Resync,
    TagEnd,
)
from agent.ingest.writer import GroupCommit
from agent.lifecycle import fold, reopened
from agent.sequence import REORDER_GRACE, SequenceWatch
from agent.session import ENDED, SessionView, lose
from agent.skew import ClockWatch, host_clock_synchronised
from agent.store import Store, WriteBatch

log = logging.getLogger(__name__)
YIELD_EVERY = 16  # documents folded between two turns of the event loop


class Ingestor:
    def __init__(
        self,
        store: Store,
        client: ControllerClient | None,
        *,
        zone: tzinfo | None,
        max_payload_bytes: int = 256 * 1024,
        max_batch: int = 256,
        history_delay: float = 0.25,
        clock: Clock = SYSTEM_CLOCK,
        reorder_grace: float = REORDER_GRACE,
    ):
        self.store = store
        self.client = client
        self.zone = zone
        self.max_payload_bytes = max_payload_bytes
        self.max_batch = max_batch
        self.history_delay = history_delay
        self.clock = clock
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self.counters = Counters()
        self.writer = GroupCommit(store, self.counters)
        self.views: dict[str, SessionView] = store.load_views()
        self.ended: set[str] = store.ended_uuids()
        self.sequence = SequenceWatch(reorder_grace)
        # What the store's health row says, as of the last commit that changed it; the fields
        # every document moves (last data and ping, the notification count) are kept apart and
        # folded in once per commit (see _health_now), not copied into a new record each time.
        self.health: Health = Health()
        self._last_data_at: str | None = None
        self._last_ping_at: str | None = None
        self._last_sequence: int | None = None
        self._written_health: Health | None = None
        self.resync_wanted: str | None = None
        self.history = HistorySchedule(history_delay)
        self.fetcher = HistoryFetcher(
            client,
            self.history,
            answer=self.queue.put_nowait,
            observed_now=self._observed_now,
            monotonic=time.monotonic,
        )
        self._observed_second = -1
        self._observed_text = ""
        self._last_doc_time: datetime | None = None
        self._last_snapshot: dict[str, dict[str, object]] = {}
        # The transmitter's clock minus the host's, measured from documents' own timestamps:
        # what bounds the times of a document without one (the vendor's notifications).
        self.clocks = ClockWatch(zone)
        self.absence = AbsenceWatch()
        self._history_doc: Document | None = None
        # Staff requests in flight: a re-added session's pager → (the old uuid, until); an end
        # the agent itself caused (close-out) → the source its event is recorded with.
        self._reopen: dict[int, tuple[str, float]] = {}
        self._end_source: dict[str, str] = {}

    # --- feeding ---------------------------------------------------------------------------

    def feed(self, payload: bytes) -> None:
        """Called synchronously from the observation callback: must never block or raise."""
        try:
            observed = self._observed_now()
        except Exception:  # a broken clock must not cost a notification
            log.exception("cannot read the clock; recording the notification without it")
            observed = ""
        self.queue.put_nowait(Incoming(payload, time.monotonic(), observed))

    def _observed_now(self) -> str:
        now = self.clock.now()
        second = int(now.timestamp())
        if second != self._observed_second:
            self._observed_second, self._observed_text = second, iso_utc(now) or ""
        return self._observed_text

    def control(self, message: Control) -> None:
        """For the link, the daemon and staff requests: a message for the loop, in order."""
        self.queue.put_nowait(message)

    @property
    def pending(self) -> WriteBatch:
        """What the next group commit writes (folded since the last one)."""
        return self.writer.pending

    @property
    def committed(self) -> int:
        return self.writer.committed

    # --- main loop -------------------------------------------------------------------------

    async def run(self) -> None:
        # From the row the last run left: what this run has not seen yet (the firmware, the
        # last ping) stays as it was until it is seen again.
        before = self.store.health()
        self._last_data_at, self._last_ping_at = before.last_data_at, before.last_ping_at
        self._last_sequence = before.sequence
        self.health = before.but(
            agent_pid=os.getpid(),
            agent_version=__version__,
            agent_started_at=iso_utc(self.clock.now()),
            heartbeat_at=iso_utc(self.clock.now()),
            stopped_at=None,
        )
        await self._commit()
        try:
            await self._loop()
        finally:
            self.fetcher.cancel()

    async def _loop(self) -> None:
        while True:
            item = await self._next_item()
            handled = 0
            while item is not None:
                self._handle(item)
                handled += 1
                if handled >= self.max_batch or self.queue.empty():
                    break
                if handled % YIELD_EVERY == 0:
                    # Let aiocoap run: it ACKs CON notifications from the loop, and the
                    # transmitter sends the next one only after the ACK (NSTART=1). Not after
                    # every few documents: a turn of the loop costs about as much as one.
                    await asyncio.sleep(0)
                item = self.queue.get_nowait()
            self._check_ahead(time.monotonic())
            confirm = self.absence.confirmation_due()
            if confirm is not None and time.monotonic() >= confirm:
                self.want_resync("confirming sessions the transmitter no longer lists")
            if self.resync_wanted is not None:
                await self.resync(self.resync_wanted)
            elif self.fetcher.task is None and self.history.is_due(time.monotonic()):
                self.fetcher.start_beside()
            await self._commit()

    def _handle(self, item: Item) -> None:
        """One queue item; nothing a document contains may take the ingest task down."""
        try:
            if isinstance(item, Incoming):
                self._on_payload(item)
            else:
                self._on_control(item)
        except Exception as exc:
            payload = item.payload if isinstance(item, Incoming) else b""
            log.exception("unexpected failure handling a document")
            self._malformed(f"unexpected: {exc!r}", payload)
            self.want_resync("a document could not be handled")

    async def _next_item(self) -> Item | None:
        """The next queue item, or None when a deferred history fetch or write retry falls due."""
        if not self.queue.empty():
            return self.queue.get_nowait()
        waits = []
        if self.history.due_at is not None and self.fetcher.task is None:
            waits.append(self.history.due_at - time.monotonic())
        if self.writer.failing:
            waits.append(1.0)  # retry the write
        if self.sequence.ahead is not None:
            waits.append(self.sequence.ahead[1] - time.monotonic())
        if (confirm := self.absence.confirmation_due()) is not None:
            waits.append(confirm - time.monotonic())
        if not waits:
            return await self.queue.get()
        try:
            async with asyncio.timeout(max(0.0, min(waits))):
                return await self.queue.get()
        except TimeoutError:
            return None

    # --- documents -------------------------------------------------------------------------

    def _on_payload(self, item: Incoming) -> None:
        self.counters.notifications += 1
        try:
            doc = parse_document(item.payload, max_bytes=self.max_payload_bytes)
        except ProtocolError as exc:
            self._malformed(str(exc), item.payload)
            return
        self.writer.uncommitted += 1
        self._note_liveness(doc, item.observed_at)
        if doc.unknown_types:
            self._malformed(f"unknown responseTypes {list(doc.unknown_types)}", item.payload)
        if doc.rejected:
            for reason in doc.rejected:
                self._malformed(reason, item.payload)
            self.want_resync("malformed session item")
        if not self._sequence_ok(doc, item.received):
            return
        self.apply(doc, observed_at=item.observed_at, source="notify")

    def _sequence_ok(self, doc: Document, received: float) -> bool:
        """Decide from ``globalSessionSequence`` whether to apply `doc` and whether to resync."""
        seq = doc.meta.sequence
        if seq is None:
            return True
        self._last_sequence = seq
        verdict = self.sequence.check(seq, is_ping=doc.is_ping, received=received)
        if verdict.duplicate:
            self.counters.duplicates += 1
        if verdict.gap is not None:
            self.counters.gaps += 1
            self.want_resync(verdict.gap)
        return verdict.apply

    def _check_ahead(self, now: float) -> None:
        if (reason := self.sequence.overdue(now)) is not None:
            self.counters.gaps += 1
            self.want_resync(reason)

    def apply(self, doc: Document, *, observed_at: str, source: str) -> None:
        """Fold a document's sessions and history into views, events and snapshots."""
        for kind, value in (("statistics", doc.statistics), ("settings", doc.settings)):
            if value is not None and value != self._last_snapshot.get(kind):
                self._last_snapshot[kind] = value
                self.pending.snapshot(kind, observed_at, value)
        for records, src in ((doc.sessions, source), (doc.history, "history")):
            for record in records or ():
                if record.uuid in self.ended:
                    continue
                try:
                    self._fold(record, doc, observed_at, src)
                except ValueError as exc:  # e.g. a time that cannot be converted
                    self._malformed(f"session {record.uuid}: {exc}", b"")

    def _fold(self, record: SessionRecord, doc: Document, observed_at: str, source: str) -> None:
        known = self.views.get(record.uuid)
        # The latest instant a time in the document can mean; for a session whose end was seen,
        # the bound of that moment (its history may come much later, across a repeated hour).
        bound = self.history.awaiting_end.get(record.uuid) or self.clocks.bound(
            doc.meta.timestamp, observed_at
        )
        result = fold(
            known,
            record,
            zone=self.zone,
            doc_time=doc.meta.timestamp,
            observed_at=observed_at,
            not_after=bound,
        )
        view = result.view
        if known is None and self._reopen and view is not None:
            old, until = self._reopen.pop(view.number, ("", 0.0))
            if old and time.monotonic() <= until:  # a staff re-add, within its minute
                result = reopened(result, old)
                view = result.view
        end_source = source
        if self._end_source and view is not None and view.ended:
            # e.g. close_out: recorded as such
            end_source = self._end_source.pop(view.uuid, source)
        if result.needs_history:
            self.history.awaiting_end.setdefault(record.uuid, bound)
            self.history.want(time.monotonic())
        if view is None or (not result.events and view == known):
            return
        pending = self.pending
        for ev in result.events:
            pending.events.append((ev, observed_at, end_source if ev.kind in ENDED else source))
        pending.views[view.uuid] = view
        if view.state in ENDED:
            self.views.pop(view.uuid, None)
            self.ended.add(view.uuid)
            self.history.awaiting_end.pop(view.uuid, None)
        else:
            self.views[view.uuid] = view

    def _malformed(self, reason: str, payload: bytes) -> None:
        self.counters.malformed += 1
        log.error(
            "malformed document from the transmitter (%s); %d so far; first bytes: %r",
            reason,
            self.counters.malformed,
            payload[:80],
        )

    def _note_liveness(self, doc: Document, observed_at: str) -> None:
        self._last_data_at = observed_at
        if doc.is_ping:
            self._last_ping_at = observed_at
        meta, h = doc.meta, self.health
        firmware, device = meta.firmware or h.firmware, meta.device_name or h.device_name
        if (firmware, device) != (h.firmware, h.device_name):
            self.health = h.but(firmware=firmware, device_name=device)
        if meta.timestamp is not None and meta.timestamp != self._last_doc_time:
            # once per transmitter second is plenty (its clock has one-second resolution)
            self._last_doc_time = meta.timestamp
            seen = parse_iso(observed_at) or self.clock.now()
            skew = self.clocks.measure(meta.timestamp, seen, self.health.host_clock_synced)
            self.health = self.health.but(clock_skew_seconds=round(skew, 1))

    def _health_now(self) -> Health:
        """The health row as of now: the record, with what every document moves folded in."""
        c, h = self.counters, self.health
        return h.but(
            last_data_at=self._last_data_at,
            last_ping_at=self._last_ping_at,
            sequence=self._last_sequence,
            notifications=c.notifications,
            gaps=c.gaps,
            resyncs=c.resyncs,
            malformed=c.malformed,
        )

    # --- control ---------------------------------------------------------------------------

    def _on_control(self, item: Control) -> None:
        match item:
            case Resync(reason):
                self.want_resync(reason)
            case LinkChanged():
                h = self.health
                self.health = h.but(
                    state=item.state,
                    since=item.since or h.since,
                    last_error=None if item.clear_error else item.last_error or h.last_error,
                    reconnects=item.reconnects,
                )
            case Heartbeat():
                self.health = self.health.but(
                    heartbeat_at=iso_utc(self.clock.now()),
                    host_clock_synced=host_clock_synchronised(),
                )
            case Reopen(number, uuid):  # a re-add is on its way: link the new session to the old
                self._reopen[number] = (uuid, time.monotonic() + 60)
            case TagEnd(uuid, source):  # an end the agent itself asked for (close-out)
                self._end_source[uuid] = source
            case HistoryAnswer(doc, observed_at, error):  # the fetch beside, in queue order
                self.fetcher.task = None
                if doc is not None:
                    self._fold_history(doc, observed_at, "history")
                else:
                    self.fetcher.failed(error)
            case KeepView(view):  # an ended session's staff decision (dismissed)
                self.pending.views[view.uuid] = view

    def want_resync(self, reason: str) -> None:
        if self.resync_wanted is None:
            self.resync_wanted = reason

    async def resync(self, reason: str) -> bool:
        """Fetch active sessions and history and fold them; False if the transmitter did not answer."""
        if self.client is None:
            return False
        log.info("resyncing with the transmitter: %s", reason)
        try:
            sessions = await self.client.get_sessions()
        except ControllerError as exc:
            log.warning("resync failed (%s); will retry", exc)
            self.health = self.health.but(last_error=str(exc))
            return False
        self.sequence.snapshot_at = time.monotonic()
        now = self._observed_now()
        snapshot = sessions.document
        before = self.sequence.last
        if snapshot is not None:
            self._note_liveness(snapshot, now)
            self.apply(snapshot, observed_at=now, source="resync")
            if snapshot.meta.sequence is not None:
                self.sequence.snapshot(snapshot.meta.sequence)
        if not await self._fetch_history(source="resync"):
            return False
        self._conclude_absence(snapshot, before, now)
        self.resync_wanted = None
        self.counters.resyncs += 1
        return True

    def _conclude_absence(self, snapshot: Document | None, before: int | None, now: str) -> None:
        """End `lost` what a complete snapshot and the history both lack, when confirmed."""
        history = self._history_doc
        complete = (
            snapshot is not None
            and snapshot.sessions is not None
            and not snapshot.rejected
            and history is not None
            and not history.rejected
        )
        present: set[str] = set()
        if complete:
            assert snapshot is not None and snapshot.sessions is not None and history is not None
            present = {r.uuid for r in snapshot.sessions} | {r.uuid for r in history.history or ()}
        seq = snapshot.meta.sequence if snapshot is not None else None
        reset = before is not None and seq is not None and sequence_delta(before, seq) < 0
        for uuid in self.absence.observe(
            known=list(self.views), present=present, complete=complete, reset=reset,
            now=time.monotonic(),
        ):  # fmt: skip
            view, event = lose(self.views.pop(uuid), now)
            log.warning(
                "pager %d (session %s): the transmitter no longer knows it (%s); ended as lost",
                view.number, uuid, "it restarted" if reset else "absent from two snapshots",
            )  # fmt: skip
            self.pending.events.append((event, now, "resync"))
            self.pending.views[uuid] = view
            self.ended.add(uuid)
            self.history.awaiting_end.pop(uuid, None)

    async def _fetch_history(self, source: str = "history") -> bool:
        """Fold ``/v1/sessions/history`` now (a resync's second half)."""
        try:
            history = await self.fetcher.fetch()
        except ControllerError as exc:
            self.fetcher.failed(str(exc))
            return False
        self._fold_history(history, self._observed_now(), source)
        return True

    def _fold_history(self, history: Document, now: str, source: str) -> None:
        """Fold a history answer; fetch again later while an ended session is missing."""
        self._history_doc = history
        self._note_liveness(history, now)
        self.apply(history, observed_at=now, source=source)
        self.history.answered(time.monotonic())  # again while an end it should tell is missing

    def drain(self) -> None:
        """Handle everything still queued, without talking to the transmitter (shutdown)."""
        self.resync_wanted = None
        while not self.queue.empty():
            self._handle(self.queue.get_nowait())

    async def _commit(self) -> None:
        """The next group commit, with the health record when it changed."""
        self.health = self._health_now()
        if self.health != self._written_health:
            self.pending.health = self._written_health = self.health
        await self.writer.commit()

    async def flush(self) -> bool:
        """Write whatever is pending and wait for it (shutdown); False if the write failed."""
        await self._commit()
        await self.writer.wait_in_flight()
        return not self.pending.events

    def close(self) -> None:
        self.writer.close()
