"""A fault-injecting ingest receiver for the sync tests: the reference receiver plus bad days.

Faults (chosen per request from a seeded RNG): 500, 503, 429 with ``Retry-After``, sleeping past
the client's timeout (before or after storing the batch), closing the socket without an answer
(before or after storing), and slow answers. ``block_on`` parks the n-th request (before or after
storing) until the test releases it — the moment a test SIGKILLs the uploader.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from typing import Any

from agent.session import Event
from agent.store import Store, WriteBatch
from agent.sync.receiver import IngestHandler, IngestLog, IngestServer

TOKEN = "tok-5a3c9e1f7b2d4068a1c3e5f7"

FAULTS = (
    "500",
    "503",
    "429",
    "timeout_before",
    "timeout_after",
    "drop_before",
    "drop_after",
    "slow",
)


class FaultyHandler(IngestHandler):
    server: FaultyServer

    def _stall(self) -> None:
        time.sleep(self.server.stall)
        self.close_connection = True

    def _park(self, when: str, key: str) -> bool:
        srv = self.server
        with srv.plan_lock:
            srv.request_no += 1
            hit = srv.block_on is not None and srv.request_no == srv.block_on[0]
        if hit and srv.block_on[1] == when:
            srv.blocked_key = key
            srv.blocked.set()
            srv.release.wait(30)
            self.close_connection = True
            return True
        return False

    def before_store(self, key: str, body: bytes) -> bool:
        srv = self.server
        if srv.block_on is not None and srv.block_on[1] == "before":
            if self._park("before", key):
                return False
        self.act = act = srv.next_fault()
        if act in ("500", "503"):
            self.reply(int(act), {"error": "try later"})
        elif act == "429":
            self.reply(429, {"error": "slow down"}, {"Retry-After": str(srv.retry_after)})
        elif act == "timeout_before":
            self._stall()
        elif act == "drop_before":
            self.close_connection = True
        else:
            if act == "slow":
                time.sleep(srv.slow)
            return True
        return False

    def after_store(self, key: str) -> bool:
        srv = self.server
        if srv.block_on is not None and srv.block_on[1] == "after":
            if self._park("after", key):
                return False
        if self.act == "timeout_after":
            self._stall()
            return False
        if self.act == "drop_after":
            self.close_connection = True
            return False
        return True


class FaultyServer(IngestServer):
    def __init__(
        self,
        *,
        port: int = 0,
        seed: int = 0,
        fault_rate: float = 0.0,
        faults: tuple[str, ...] = FAULTS,
        stall: float = 0.6,
        slow: float = 0.05,
        retry_after: int = 1,
        block_on: tuple[int, str] | None = None,
        **kw: Any,
    ):
        kw.setdefault("token", TOKEN)
        super().__init__(("127.0.0.1", port), FaultyHandler, **kw)
        self.rnd = random.Random(seed)
        self.fault_rate = fault_rate
        self.faults = faults
        self.stall = stall
        self.slow = slow
        self.retry_after = retry_after
        self.plan_lock = threading.Lock()
        self.fault_counts: Counter[str] = Counter()
        self._bag: list[str] = []
        self.block_on = block_on
        self.request_no = 0
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.blocked_key: str | None = None

    def next_fault(self) -> str | None:
        with self.plan_lock:
            if self.rnd.random() >= self.fault_rate:
                return None
            if not self._bag:  # every fault once per round, in random order
                self._bag = list(self.faults)
                self.rnd.shuffle(self._bag)
            act = self._bag.pop()
            self.fault_counts[act] += 1
            return act

    def stop(self) -> None:
        self.release.set()
        super().stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_events(store: Store, events: list[tuple[Event, str, str]], chunk: int = 10_000) -> None:
    for i in range(0, len(events), chunk):
        store.write_batch(WriteBatch(events=events[i : i + chunk]))


def assert_exactly_once(
    log: IngestLog, store_events: list[dict[str, Any]], site: str, *, ordered: bool = True
) -> None:
    """Every store event arrived once, identical, and (`ordered`) each session's in rowid order.

    Not ordered: critical budget mode defers ``updated`` events, which arrive after later ones.
    """
    got = log.events
    want = {f"{site}:{e['seq']}": e for e in store_events}
    assert set(got) == set(want), (
        f"missing {sorted(set(want) - set(got))[:5]}, extra {sorted(set(got) - set(want))[:5]}"
    )
    for eid, ev in got.items():
        assert {k: v for k, v in ev.items() if k != "id"} == want[eid]
    for uuid, seqs in log.by_session.items():
        assert not ordered or seqs == sorted(seqs), f"session {uuid} out of order: {seqs}"
    assert not log.key_mismatches, f"same key, different bytes: {log.key_mismatches}"


__all__ = ["FAULTS", "TOKEN", "FaultyServer", "assert_exactly_once", "free_port", "write_events"]
