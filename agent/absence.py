"""Sessions the transmitter no longer knows: an end concluded from absence, on evidence only.

A transmitter that reboots and forgets its sessions, or a session that ended while nobody
listened and fell out of the bounded history, would otherwise stay waiting in the store forever.
But a session missing from one document proves nothing (documents may be partial, answers and
notifications cross). The evidence that counts: a *complete* ``GET /v1/sessions`` snapshot and the
history both lack the session, confirmed by a sequence reset (the transmitter rebooted) or by a
second complete snapshot taken later. Such a session ends ``lost`` — never from notifications.
"""

from __future__ import annotations

from collections.abc import Iterable

CONFIRM_AFTER = 10.0  # seconds between the two snapshots that must both lack a session


class AbsenceWatch:
    def __init__(self, confirm_after: float = CONFIRM_AFTER):
        self.confirm_after = confirm_after
        self.suspects: dict[str, float] = {}  # uuid → monotonic time first seen absent

    def observe(
        self,
        *,
        known: Iterable[str],
        present: set[str],
        complete: bool,
        reset: bool,
        now: float,
    ) -> list[str]:
        """The sessions to conclude lost after one resync (snapshot + history)."""
        if not complete:
            return []  # an incomplete snapshot neither accuses nor clears anyone
        absent = {u for u in known if u not in present}
        lost = sorted(
            u
            for u in absent
            if reset or (u in self.suspects and now - self.suspects[u] >= self.confirm_after)
        )
        self.suspects = {
            u: self.suspects.get(u, now) for u in absent if u not in lost
        }  # reappeared: cleared
        return lost

    def confirmation_due(self) -> float | None:
        """When a second snapshot can confirm the oldest suspicion (monotonic), if any."""
        return min(self.suspects.values()) + self.confirm_after if self.suspects else None
