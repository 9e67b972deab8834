"""CoAP responses carrying the device's JSON documents, shared by the notifier and the resources.

A refusal is a 4.xx code *and* a JSON error document with the usual metadata, as the device sends
it; both the notifier and the request resources refuse things, so the shape is written here once.
"""

from __future__ import annotations

from typing import Any

import aiocoap
from aiocoap.numbers.contentformat import ContentFormat

from agent.simulator.jsonio import dumps
from agent.simulator.model import Transmitter


def json_message(doc: dict[str, Any], code: aiocoap.Code = aiocoap.CONTENT) -> aiocoap.Message:
    return aiocoap.Message(code=code, payload=dumps(doc), content_format=ContentFormat.JSON)


def error_message(model: Transmitter, code: str, message: str) -> aiocoap.Message:
    """`code` as ``"4.04"``; the body is the model's error document carrying `message`."""
    klass, detail = (int(p) for p in code.split("."))
    return json_message(model.error_document(message), aiocoap.Code((klass << 5) | detail))
