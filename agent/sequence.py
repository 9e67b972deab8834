"""Reading ``globalSessionSequence``: apply a document, drop it as a duplicate, or resync.

Pure bookkeeping (the caller passes the monotonic time), so every ordering the network can
produce is a plain test. Two races shape it, both seen in the field of aiocoap and the simulator:

- a *ping* renders the sequence at send time, so it can announce changes whose notifications are
  still queued behind it: those get a grace to arrive before they count as lost;
- a resync's *snapshot* (a piggybacked response) can overtake notifications queued behind an
  unacknowledged CON: those, arriving soon after and just behind the snapshot, are duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.controller.protocol import sequence_delta

# Data notifications sent before a snapshot or ping may still be on their way (queued behind an
# unacknowledged CON under NSTART=1, or retransmitted once). They count as late, not lost, if
# they arrive within this many seconds ...
REORDER_GRACE = 2.0
# ... and trail the snapshot by at most this many sequence numbers (a restart resets to 0).
REORDER_WINDOW = 256


@dataclass(frozen=True, slots=True)
class Verdict:
    apply: bool
    duplicate: bool = False
    gap: str | None = None  # why to resync: numbers were missed, or went back


APPLY = Verdict(True)
DUPLICATE = Verdict(False, duplicate=True)


class SequenceWatch:
    def __init__(self, reorder_grace: float = REORDER_GRACE):
        self.reorder_grace = reorder_grace
        self.last: int | None = None
        self.snapshot_at = -1.0  # monotonic time the last resync's sessions snapshot was taken
        self.snapshot_seq: int | None = None  # that snapshot's sequence
        # (sequence, deadline): a ping showed this sequence before its data notifications came
        self.ahead: tuple[int, float] | None = None

    def snapshot(self, seq: int) -> None:
        """A resync's snapshot says the transmitter is at `seq`."""
        self.last = self.snapshot_seq = seq

    def check(self, seq: int, *, is_ping: bool, received: float) -> Verdict:
        if self.last is None:
            self.last = seq
            return APPLY
        delta = sequence_delta(self.last, seq)
        if delta <= 0 and self._reflected_in_snapshot(seq, received):
            return DUPLICATE
        if delta < 0:
            # Older than what we have: a late (reordered) notification or a restarted transmitter.
            return Verdict(False, gap=f"sequence went back from {self.last} to {seq}")
        if is_ping:
            # A ping carries the sequence of the latest change without being one.
            if delta > 0 and self.ahead is None:
                self.ahead = (seq, received + self.reorder_grace)
            return APPLY
        # Every other notification is one change (sessions, statistics or settings): one number.
        if delta == 0:
            return DUPLICATE
        self.last = seq
        if delta > 1:
            return Verdict(True, gap=f"missed {delta - 1} notification(s) before {seq}")
        return APPLY

    def _reflected_in_snapshot(self, seq: int, received: float) -> bool:
        """True for a notification the last resync's snapshot already contains: received before
        the snapshot was taken and handled after it, or sent before it but overtaken by it."""
        if received <= self.snapshot_at:
            return True
        if self.snapshot_seq is None or received - self.snapshot_at > self.reorder_grace:
            return False
        return -REORDER_WINDOW <= sequence_delta(self.snapshot_seq, seq) <= 0

    def overdue(self, now: float) -> str | None:
        """Why to resync, if the notifications a ping announced have not come within the grace."""
        if self.ahead is None or self.last is None:
            return None
        seq, deadline = self.ahead
        if sequence_delta(self.last, seq) <= 0:
            self.ahead = None
        elif now >= deadline:
            self.ahead = None
            return f"missed notification(s) up to {seq}"
        return None
