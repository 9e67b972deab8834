"""The ingest pipeline: notifications in, lifecycle events durably out.

receive (:meth:`Ingestor.feed`, from aiocoap's callback) → parse (:mod:`agent.controller.protocol`)
→ sequence check (:mod:`agent.sequence`) → fold (:mod:`agent.lifecycle`) → pending batch →
group commit (:mod:`agent.ingest.writer`). Around it: the typed control messages
(:mod:`agent.ingest.messages`), the history's schedule and fetch (:mod:`agent.ingest.history`),
lost-party detection (:mod:`agent.absence`) and the clock skew (:mod:`agent.skew`).
"""

from agent.ingest.ingestor import Ingestor
from agent.ingest.messages import (
    Control,
    Counters,
    Heartbeat,
    HistoryAnswer,
    Incoming,
    KeepView,
    LinkChanged,
    Reopen,
    Resync,
    TagEnd,
)

__all__ = [
    "Control",
    "Counters",
    "Heartbeat",
    "HistoryAnswer",
    "Incoming",
    "Ingestor",
    "KeepView",
    "LinkChanged",
    "Reopen",
    "Resync",
    "TagEnd",
]
