"""What the transmitter just answered, shown before the agent has recorded it.

A staff action's reply carries the session as the transmitter now sees it: the board folds it
with the agent's own lifecycle function into the view the store will soon hold, and shows that at
once. An entry is a view, or None for "this session ended". It is dropped once the store agrees
(or shows something newer), or after `ttl` seconds: the store is the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import tzinfo

from agent.controller.protocol import SessionRecord
from agent.lifecycle import fold
from agent.session import EDITABLE, SessionView


def reply_view(
    record: SessionRecord, zone: tzinfo | None, base: SessionView | None, now_iso: str
) -> SessionView | None:
    """A session from the transmitter's reply as the store will record it (None: it ended).

    `base` is what the board showed before, so the re-page count stays right.
    """
    if record.ended:
        return None
    return fold(base, record, zone=zone, doc_time=None, observed_at=now_iso).view


_SETTLE = ("state", "page_count", *EDITABLE)


class Overlay:
    def __init__(self, monotonic: Callable[[], float], ttl: float = 15.0):
        self.ttl = ttl
        self.monotonic = monotonic
        self._items: dict[str, tuple[SessionView | None, float]] = {}
        self.version = 0  # bumped on every change, so a view knows when to recompute

    def __len__(self) -> int:
        return len(self._items)

    def put(self, uuid: str, view: SessionView | None) -> None:
        self._items[uuid] = (view, self.monotonic() + self.ttl)
        self.version += 1

    def settle(self, stored: Iterable[SessionView]) -> None:
        store = {v.uuid: v for v in stored}
        now = self.monotonic()
        for uuid, (view, deadline) in list(self._items.items()):
            have = store.get(uuid)
            if now >= deadline:
                caught_up = True
            elif view is None:
                caught_up = have is None
            elif have is None:
                caught_up = False
            else:
                newer = have.page_count > view.page_count
                caught_up = newer or all(getattr(have, k) == getattr(view, k) for k in _SETTLE)
            if caught_up:
                del self._items[uuid]
                self.version += 1

    def merge(self, stored: Sequence[SessionView]) -> list[SessionView]:
        """The store's views with the replies applied, oldest first."""
        if not self._items:
            return list(stored)
        out = []
        seen = set()
        for v in stored:
            seen.add(v.uuid)
            if v.uuid in self._items:
                replied = self._items[v.uuid][0]
                if replied is not None:
                    out.append(replied)
            else:
                out.append(v)
        added = [v for uuid, (v, _d) in self._items.items() if v is not None and uuid not in seen]
        if added:
            out += added
            out.sort(key=lambda v: (v.created or "", v.transmitter_id or 0))
        return out
