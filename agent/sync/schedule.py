"""When the sync sends: pure decisions on what the store holds and what the clocks say.

A request costs the metered link a few hundred bytes whatever it carries (TCP/IP and TLS headers,
HTTP/2 frames, the answer, the acknowledgements), so the agent sends the events a guest's visit
produces together rather than one by one — but never later than ``[sync] max_delay`` after the
oldest of them was observed:

* a batch goes when its oldest event is ``max_delay`` old, at once when it is full
  (``max_batch_events``) or urgent (a batch in flight, deferred events waiting);
* ``[sync] interval`` is how often the engine looks for new events: it sleeps until the next look
  or until the oldest pending event comes due, whichever is first (events are therefore at most
  ``max(max_delay, interval)`` old when sent);
* on a path seen to forget idle connections (a carrier NAT), pending events go before the open
  connection has been idle that long — a request costs less than a new handshake;
* with nothing to send, a heartbeat goes once nothing reached the receiver for
  ``heartbeat_minutes`` (and once after an upgrade, to announce the new agent version).

Age is measured on the wall clock (``observed_at`` is the agent's wall time, so an event stored
before a restart is not held another ``max_delay``) and on the monotonic clock since the engine
first saw the event pending (a wall clock set back — a Raspberry Pi without a clock battery at
boot — cannot hold an event back).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from agent.clock import epoch_of_iso


@dataclass(frozen=True)
class Pending:
    """What the next batch would hold (``SyncState.due_now``)."""

    count: int  # events, up to a full batch
    oldest_seq: int | None
    oldest_observed: str | None  # observed_at of the oldest (the agent's wall clock)
    urgent: bool = False


def flush_wait(
    pending: Pending,
    *,
    now: float,
    seen_for: float,
    max_delay: float,
    full_at: int,
    connection_left: float = math.inf,
) -> float:
    """Seconds until the pending events must go: 0 now, ``inf`` when nothing is pending.

    `now` is wall time (epoch seconds), `seen_for` how long (monotonic) the engine has known the
    oldest pending event. `connection_left` is how long the open connection will still be usable
    (on a path seen to forget idle connections): pending events go before then, because sending
    them a little early costs less than a new TLS handshake.
    """
    if pending.urgent:
        return 0.0
    if pending.count == 0:
        return math.inf
    if pending.count >= full_at:
        return 0.0
    observed = epoch_of_iso(pending.oldest_observed)
    age = seen_for if observed is None else max(now - observed, seen_for)
    if observed is None and pending.oldest_observed is not None:
        age = max_delay  # a time the agent cannot read: do not hold the event for it
    return max(0.0, min(max_delay - age, connection_left))


def heartbeat_wait(
    *,
    now: float,
    last_contact: str | None,
    announced: str | None,
    agent: str,
    every: float,
) -> float:
    """Seconds until a heartbeat is due (0: now), when nothing else is to be sent.

    `last_contact` is when the receiver last took a batch or a heartbeat (store form); `announced`
    the agent version the last heartbeat named. ``every <= 0`` turns heartbeats off.
    """
    if every <= 0:
        return math.inf
    if announced != agent:
        return 0.0
    last = epoch_of_iso(last_contact)
    if last is None:
        return 0.0
    return max(0.0, min(every, last + every - now))


__all__ = ["Pending", "flush_wait", "heartbeat_wait"]
