"""The records `pager-edge export` writes: sessions or lifecycle events as JSONL or CSV.

The record shapes are a contract other scripts rely on; keep them stable. JSONL carries exactly
what the transmitter said. CSV is for spreadsheets, which run a cell starting with ``=``, ``+``,
``-``, ``@``, tab or carriage return as a formula — and labels come from anyone on the LAN — so
such cells get a leading ``'`` (OWASP's advice) unless ``--raw`` asks for the text unchanged.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import IO, Any

from agent.display import spreadsheet_safe
from agent.session import EVENT_EXPORT_FIELDS, EXPORT_FIELDS
from agent.store import Store

# The record shapes, from the one session schema (aliases for this command's readers).
SESSION_FIELDS = EXPORT_FIELDS
EVENT_FIELDS = EVENT_EXPORT_FIELDS


def session_records(store: Store) -> Iterable[dict[str, Any]]:
    for row in store.iter_sessions():
        yield {k: row[k] for k in SESSION_FIELDS}


def event_records(store: Store) -> Iterable[dict[str, Any]]:
    for row in store.iter_events():
        yield {k: row[k] for k in EVENT_FIELDS}


def write_records(
    records: Iterable[dict[str, Any]],
    fields: tuple[str, ...],
    fmt: str,
    out: IO[str],
    *,
    raw: bool = False,
) -> int:
    n = 0
    if fmt == "csv":
        cell = (lambda v: v) if raw else spreadsheet_safe
        # RFC 4180 line ends: the writer quotes a cell holding any character of the terminator,
        # so a label with a lone CR cannot split a record in two.
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\r\n")
        writer.writeheader()
        for rec in records:
            writer.writerow({k: "" if v is None else cell(v) for k, v in rec.items()})
            n += 1
    else:
        for rec in records:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n
