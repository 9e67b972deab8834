"""Staff requests, carried out by the agent when due (see :mod:`agent.store.requests`).

Boards put a seat or remove in the store with its undo grace; the agent — which runs all evening,
unlike a tablet's tab — sends it to the transmitter once the grace has passed, unless a board
undid it. The same road carries close-out (at the end of the night, by hand or at
``[board] close_out_at``), re-adding a party the transmitter forgot or one seated by mistake (the
new session is linked to the old in the store) and dismissing a lost party.

Before acting on a pager number the agent checks that it still belongs to the party the request
names: pagers are reused all evening, and seating the next party on pager 12 by mistake is worse
than not seating anyone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from agent.clock import Clock, iso_utc, local
from agent.config import Config, parse_hhmm
from agent.controller.client import ControllerClient, ControllerError
from agent.ingest.messages import Control, KeepView, Reopen, TagEnd
from agent.session import SessionView
from agent.store import Store
from agent.store.requests import RequestQueue, StaffRequest

log = logging.getLogger(__name__)
POLL = 0.5  # seconds between looks at the queue (a board's undo grace is seconds long)


class RequestFailed(Exception):
    """The request could not be carried out; the message says why, for the board."""


class StaffRequests:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        client: ControllerClient,
        control: Callable[[Control], None],
        clock: Clock,
    ):
        self.cfg = cfg
        self.store = store
        self.queue = RequestQueue(store.conn)
        self.client = client
        self.control = control  # the ingest pipeline's: links, end tags, stored views
        self.clock = clock
        self.zone = cfg.transmitter_zone()
        self._closed_out_on: str | None = None

    async def run(self) -> None:
        released = await asyncio.to_thread(self.queue.release_running)
        if released:
            log.warning("%d staff request(s) a stopped agent had begun: doing them again", released)
        self._closed_out_on = self._service_day()  # a close-out is due when the time next passes
        while True:
            await self._close_out_if_due()
            for request in await asyncio.to_thread(self.queue.due, self.clock.now()):
                if await asyncio.to_thread(self.queue.claim, request.id):
                    await self._carry_out(request)
            await self.clock.sleep(POLL)

    async def _carry_out(self, request: StaffRequest) -> None:
        try:
            result = await self._perform(request)
            ok = True
        except (RequestFailed, ControllerError) as exc:
            result, ok = str(exc), False
            log.warning("staff request %d (%s) failed: %s", request.id, request.kind, exc)
        except Exception as exc:  # the queue must go on whatever one request did
            log.exception("staff request %d (%s) failed", request.id, request.kind)
            result, ok = f"unexpected error: {exc}", False
        else:
            log.info("staff request %d (%s): %s", request.id, request.kind, result)
        await asyncio.to_thread(
            self.queue.finish, request.id, ok=ok, result=result, now=self.clock.now()
        )

    async def _perform(self, r: StaffRequest) -> str:
        if r.kind in ("seat", "remove"):
            assert r.number is not None
            await self._check_owner(r.number, r.uuid)
            if r.kind == "seat":
                await self.client.clear(r.number)
                return f"seated pager {r.number}"
            await self.client.remove(r.number)
            return f"removed pager {r.number}"
        if r.kind == "close_out":
            return await self._close_out(r.payload.get("action", "remove"))
        if r.kind == "readd":
            return await self._readd(r)
        if r.kind == "dismiss":
            return await self._dismiss(r)
        raise RequestFailed(f"unknown request kind {r.kind!r}")

    async def _check_owner(self, number: int, uuid: str | None) -> None:
        doc = await self.client.get_session(number)
        now_on = [s.uuid for s in doc.sessions or ()]
        if uuid is not None and uuid not in now_on:
            raise RequestFailed(f"pager {number} no longer belongs to that party; nothing sent")

    async def _close_out(self, action: str) -> str:
        """Seat or remove every party still open; each end is recorded as the close-out's."""
        reply = await self.client.get_sessions()
        sessions = list(reply.document.sessions or ()) if reply.document else []
        done = 0
        for s in sessions:
            if s.ended:
                continue
            self.control(TagEnd(s.uuid, "close_out"))
            try:
                if action == "seat":
                    await self.client.clear(s.number)
                else:
                    await self.client.remove(s.number)
                done += 1
            except ControllerError as exc:
                log.warning("close-out: pager %d: %s", s.number, exc)
        verb = "seated" if action == "seat" else "removed"
        return f"closed out: {done} of {len(sessions)} open part{'y' if len(sessions) == 1 else 'ies'} {verb}"

    async def _readd(self, r: StaffRequest) -> str:
        p = r.payload
        number = int(p["number"])
        if r.uuid is not None:
            self.control(Reopen(number, r.uuid))
        await self.client.create_session(
            number,
            goal=p.get("goal_seconds"),
            label=p.get("label"),
            party_size=p.get("party_size"),
        )
        return f"re-added pager {number}"

    async def _dismiss(self, r: StaffRequest) -> str:
        views = await asyncio.to_thread(self.store.lost_views)
        view: SessionView | None = next((v for v in views if v.uuid == r.uuid), None)
        if view is None:
            raise RequestFailed("that party is not lost (or already dismissed)")
        dismissed = view._replace(dismissed_at=iso_utc(self.clock.now()))
        self.control(KeepView(dismissed))
        return f"dismissed lost pager {view.number}"

    # the end of the night --------------------------------------------------------------------

    def _service_day(self) -> str | None:
        """The local date whose close-out is behind us (None without an automatic close-out)."""
        at = parse_hhmm(self.cfg.board.close_out_at) if self.cfg.board.close_out_at else None
        if at is None:
            return None
        here = local(self.clock.now(), self.zone)
        if (here.hour, here.minute) < at:
            here -= timedelta(days=1)
        return here.date().isoformat()

    async def _close_out_if_due(self) -> None:
        day = self._service_day()
        if day is None or day == self._closed_out_on:
            return
        self._closed_out_on = day
        action = self.cfg.board.close_out_action
        log.info("close-out at %s: every party still open is %s", self.cfg.board.close_out_at,
                 "seated" if action == "seat" else "removed")  # fmt: skip
        await asyncio.to_thread(
            self.queue.submit,
            "close_out",
            now=self.clock.now(),
            payload={"action": action, "automatic": True},
            board="agent",
        )
