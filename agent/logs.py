"""Logging set-up with secret redaction.

Every secret the agent reads goes through :func:`register_secret`; a filter on the root handler
replaces it wherever it would appear (messages, arguments, tracebacks), so a careless `log.exception`
near an HTTP client cannot leak an API key to the journal.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType
from typing import TextIO

from agent.display import printable, printable_lines

#: What `logging.Formatter.formatException` receives (typeshed's private `_SysExcInfoType`).
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

_secrets: set[str] = set()
_lock = threading.Lock()
REDACTED = "***"


def register_secret(value: str) -> None:
    # Very short values would redact ordinary words; the secrets we handle are never that short.
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return text


class RedactingFormatter(logging.Formatter):
    """One record, one line: foreign text in a message cannot forge a second log line or send
    escape sequences to a terminal reading the journal; secrets are redacted everywhere."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: ExcInfo) -> str:
        return printable_lines(super().formatException(ei))

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Configure the root logger once: one line per record, secrets redacted."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    # aiocoap logs every retransmission at INFO; that is noise at a host stand.
    logging.getLogger("coap").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("coap-server").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
