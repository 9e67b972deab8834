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
import collections
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

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
from agent.lifecycle import fold, reopened
from agent.sequence import REORDER_GRACE, SequenceWatch
from agent.session import ENDED, SessionView, lose
from agent.skew import ClockWatch, host_clock_synchronised
from agent.store import Store, WriteBatch

log = logging.getLogger(__name__)
YIELD_EVERY = 16  # documents folded between two turns of the event loop
# At most one history fetch this often (seconds): the history is blockwise and grows all day, and
# in a rush of ends (or a close-out) one fetch a second tells how all of them ended.
HISTORY_INTERVAL = 1.0


@dataclass(slots=True)
class Incoming:
    payload: bytes
    received: float  # time.monotonic()
    observed_at: str  # UTC ISO


@dataclass(slots=True)
class Control:
    """A non-document item in the queue: resync request, heartbeat, link state change."""

    kind: str
    reason: str = ""
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Counters:
    notifications: int = 0
    malformed: int = 0
    gaps: int = 0
    resyncs: int = 0
    duplicates: int = 0
    write_errors: int = 0
    events: int = 0


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
        self.queue: asyncio.Queue[Incoming | Control] = asyncio.Queue()
        self.counters = Counters()
        self.views: dict[str, SessionView] = store.load_views()
        self.ended: set[str] = store.ended_uuids()
        self.sequence = SequenceWatch(reorder_grace)
        self.pending = WriteBatch()
        # What the store's health row says, as of the last commit that changed it; the fields
        # every document moves (last data and ping, the notification count) are kept apart and
        # folded in once per commit (see _health_now), not copied into a new record each time.
        self.health: Health = Health()
        self._last_data_at: str | None = None
        self._last_ping_at: str | None = None
        self._last_sequence: int | None = None
        self._written_health: Health | None = None
        self.committed = 0  # notifications committed; the log says when: (monotonic, committed)
        self.commit_log: collections.deque[tuple[float, int]] = collections.deque(maxlen=100_000)
        self._inflight: asyncio.Future[int] | None = None
        self._resync_wanted: str | None = None
        self._history_due_at: float | None = None  # monotonic time of the next history fetch
        # The history fetch after a burst of ends runs beside the folding, not in its way: it is
        # blockwise and slow, and notifications queued behind it would wait that long to commit.
        self._history_task: asyncio.Task[None] | None = None
        self._history_retry = history_delay
        self._history_fetched_at = -HISTORY_INTERVAL  # monotonic time the last fetch started
        # "cleared" seen, history has not said how yet → the time bound when it was seen: the
        # history may come much later (transmitter away), and a wall time in a repeated hour
        # must be read as of the end, not as of the answer.
        self._awaiting_end: dict[str, str | None] = {}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._uncommitted = 0  # notifications folded since the last batch was handed over
        self._write_failing = False
        self._observed_second = -1
        self._observed_text = ""
        self._last_doc_time: datetime | None = None
        self._last_snapshot: dict[str, dict[str, Any]] = {}
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

    def control(self, kind: str, reason: str = "", **values: Any) -> None:
        self.queue.put_nowait(Control(kind, reason, values))

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
            if self._history_task is not None:
                self._history_task.cancel()

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
            if self._resync_wanted is not None:
                await self.resync(self._resync_wanted)
            elif self._history_due():
                self._history_task = asyncio.create_task(self._fetch_history_beside())
            await self._commit()

    def _handle(self, item: Incoming | Control) -> None:
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

    async def _next_item(self) -> Incoming | Control | None:
        """The next queue item, or None when a deferred history fetch or write retry falls due."""
        if not self.queue.empty():
            return self.queue.get_nowait()
        waits = []
        if self._history_due_at is not None and self._history_task is None:
            waits.append(self._history_due_at - time.monotonic())
        if self._write_failing:
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

    def _history_due(self) -> bool:
        """Seatings come in bursts; one history fetch (blockwise, it grows all day) serves a burst."""
        return (
            self._history_task is None
            and self._history_due_at is not None
            and time.monotonic() >= self._history_due_at
        )

    # --- documents -------------------------------------------------------------------------

    def _on_payload(self, item: Incoming) -> None:
        self.counters.notifications += 1
        try:
            doc = parse_document(item.payload, max_bytes=self.max_payload_bytes)
        except ProtocolError as exc:
            self._malformed(str(exc), item.payload)
            return
        self._uncommitted += 1
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
                self.pending.snapshots.append((kind, observed_at, value))
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
        bound = self._awaiting_end.get(record.uuid) or self.clocks.bound(
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
            self._awaiting_end.setdefault(record.uuid, bound)
            self._want_history()
        if view is None or (not result.events and view == known):
            return
        pending = self.pending
        for ev in result.events:
            pending.events.append((ev, observed_at, end_source if ev.kind in ENDED else source))
        pending.views[view.uuid] = view
        if view.state in ENDED:
            self.views.pop(view.uuid, None)
            self.ended.add(view.uuid)
            self._awaiting_end.pop(view.uuid, None)
        else:
            self.views[view.uuid] = view

    def _want_history(self, delay: float | None = None) -> None:
        due = max(
            time.monotonic() + (self.history_delay if delay is None else delay),
            self._history_fetched_at + HISTORY_INTERVAL,
        )
        if self._history_due_at is None or due < self._history_due_at:
            self._history_due_at = due

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
        if item.kind == "resync":
            self.want_resync(item.reason)
        elif item.kind == "health":
            self.health = self.health.but(**item.values)
        elif item.kind == "heartbeat":
            self.health = self.health.but(
                heartbeat_at=iso_utc(self.clock.now()), host_clock_synced=host_clock_synchronised()
            )
        elif item.kind == "reopen":  # a re-add is on its way: link the new session to the old
            self._reopen[item.values["number"]] = (item.values["uuid"], time.monotonic() + 60)
        elif item.kind == "tag_end":  # an end the agent itself asked for (close-out)
            self._end_source[item.values["uuid"]] = item.values["source"]
        elif item.kind == "history":  # the background fetch's answer, in queue order
            self._history_task = None
            if (doc := item.values.get("doc")) is not None:
                self._fold_history(doc, item.values["observed_at"], "history")
            else:
                self._history_failed(item.reason)
        elif item.kind == "store_view":  # an ended session's staff decision (dismissed)
            view = item.values["view"]
            self.pending.views[view.uuid] = view

    def want_resync(self, reason: str) -> None:
        if self._resync_wanted is None:
            self._resync_wanted = reason

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
        self._resync_wanted = None
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
            self._awaiting_end.pop(uuid, None)

    async def _request_history(self) -> Document:
        self._history_due_at = None
        self._history_fetched_at = time.monotonic()
        if self.client is None:
            raise ControllerError("no transmitter to ask")
        return await self.client.get_history()

    async def _fetch_history_beside(self) -> None:
        """Fetch the history and queue the answer (or the failure) for the loop to fold: what the
        fetch changes is changed by the loop alone, in the order things arrived."""
        values: dict[str, Any] = {}
        reason = ""
        try:
            values["doc"] = await self._request_history()
            values["observed_at"] = self._observed_now()
        except ControllerError as exc:
            reason = str(exc)
        except Exception as exc:  # never lose the loop's wake-up: it waits for this answer
            log.exception("history fetch failed unexpectedly")
            reason = repr(exc)
        self.queue.put_nowait(Control("history", reason, values))

    async def _fetch_history(self, source: str = "history") -> bool:
        """Fold ``/v1/sessions/history`` now (a resync's second half)."""
        try:
            history = await self._request_history()
        except ControllerError as exc:
            self._history_failed(str(exc))
            return False
        self._fold_history(history, self._observed_now(), source)
        return True

    def _history_failed(self, reason: str) -> None:
        log.warning("history fetch failed (%s); will retry", reason)
        self._history_again()

    def _history_again(self) -> None:
        """Ask again later, less and less often."""
        self._want_history(self._history_retry)
        self._history_retry = min(self._history_retry * 2, 30.0)

    def _fold_history(self, history: Document, now: str, source: str) -> None:
        """Fold a history answer; fetch again later while an ended session is missing."""
        self._history_doc = history
        self._note_liveness(history, now)
        self.apply(history, observed_at=now, source=source)
        if self._awaiting_end:  # what history ended left it (see _fold)
            log.info(
                "%d ended session(s) not in history yet; asking again", len(self._awaiting_end)
            )
            self._history_again()
        else:
            self._history_retry = self.history_delay

    # --- writing ---------------------------------------------------------------------------

    async def _commit(self) -> None:
        """Start writing the pending batch in the writer thread — pipelined group commit.

        The previous batch may still be committing: wait for it first (one transaction at a time,
        in order), then hand over everything folded meanwhile. The loop goes on folding the next
        batch while this one is fsynced, so batches grow with load and the CPU and the disk
        overlap. A failed write is merged back in front of what came since and retried.
        """
        if self._inflight is not None:
            await asyncio.wait({self._inflight})
        self.health = self._health_now()
        if self.health != self._written_health:
            self.pending.health = self._written_health = self.health
        batch = self.pending
        if not batch:
            return
        count, self._uncommitted = self._uncommitted, 0
        self.pending = WriteBatch()
        fut = asyncio.get_running_loop().run_in_executor(
            self._writer, self.store.write_or_set_aside, batch
        )
        self._inflight = fut
        fut.add_done_callback(lambda f: self._written(f, batch, count))

    def _written(self, fut: asyncio.Future[int], batch: WriteBatch, count: int) -> None:
        self._inflight = None
        exc = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if exc is not None:  # disk full, I/O error, locked: keep everything, retry
            self.counters.write_errors += 1
            self._write_failing = True
            log.error(
                "cannot write to the store (%s); keeping %d event(s) in memory and retrying "
                "(%d write failures so far)",
                exc,
                len(batch.events) + len(self.pending.events),
                self.counters.write_errors,
            )
            self.pending = batch.merge(self.pending)
            self._uncommitted += count
            return
        if self._write_failing:
            log.warning("store writable again; %d pending event(s) written", len(batch.events))
            self._write_failing = False
        if set_aside := fut.result():
            self.counters.malformed += set_aside
        self.counters.events += len(batch.events)
        self.committed += count
        self.commit_log.append((time.monotonic(), self.committed))

    def drain(self) -> None:
        """Handle everything still queued, without talking to the transmitter (shutdown)."""
        self._resync_wanted = None
        while not self.queue.empty():
            self._handle(self.queue.get_nowait())

    async def flush(self) -> bool:
        """Write whatever is pending and wait for it (shutdown); False if the write failed."""
        await self._commit()
        if self._inflight is not None:
            await asyncio.wait({self._inflight})
        return not self.pending.events

    def close(self) -> None:
        self._writer.shutdown(wait=True)
