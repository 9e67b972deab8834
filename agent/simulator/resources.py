"""The T7470's request/response resources (everything except ``/v1/notify``).

Each resource turns a CoAP request into one call on the device's
:class:`~agent.simulator.device.Keypad` (which applies it to the model and broadcasts the
notifications) and the result into a compact JSON response. Refusals become 4.xx responses with a JSON error body carrying the usual metadata.

Response bodies: ``GET`` → the document; ``POST``/``PUT`` on sessions → the changed session as a
sessions document (so a staff screen can show the reply at once); ``POST /v1/settings`` → the
settings document; ``DELETE`` and ``POST /v1/page`` → no body (only the code matters, as the
vendor documentation suggests).
"""

from __future__ import annotations

import hashlib
from typing import Any

import aiocoap
from aiocoap import error, resource
from aiocoap.numbers.contentformat import ContentFormat

from agent.simulator.device import Device, Keypad
from agent.simulator.jsonio import dumps, loads_request
from agent.simulator.limits import (
    DEFAULT_PAGE_MODE,
    UNSET,
    SimError,
    check_number,
    check_page_mode,
)
from agent.simulator.replies import error_message, json_message

SESSION_FIELDS = {"number", "goal", "label", "partySize", "action"}
UPDATE_FIELDS = {"goal", "label", "partySize", "action", "pageMode"}
PAGE_FIELDS = {"number", "pageMode", "message", "systemId"}
ACTIONS = {"page", "clear", "remove"}


def parse_query(request: aiocoap.Message, allowed: set[str]) -> dict[str, str]:
    """``?number=N``-style options; unknown keys are refused so ``?num=5`` cannot mean "all"."""
    out: dict[str, str] = {}
    for item in request.opt.uri_query:
        key, _, value = item.partition("=")
        if key not in allowed:
            raise SimError("4.00", f"unknown query parameter: {key}")
        out[key] = value
    return out


def query_number(request: aiocoap.Message, *, required: bool) -> int | None:
    raw = parse_query(request, {"number"}).get("number")
    if raw is None:
        if required:
            raise SimError("4.00", "query parameter number=N is required")
        return None
    if not raw.isdigit():
        raise SimError("4.00", f"number: expected an integer, got {raw[:16]!r}")
    return check_number(int(raw))


def body(request: aiocoap.Message, allowed: set[str]) -> dict[str, Any]:
    fmt = request.opt.content_format
    if fmt is not None and fmt != ContentFormat.JSON:
        raise SimError("4.15", "content format must be application/json (50)")
    doc = loads_request(request.payload)
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise SimError("4.00", f"unknown fields: {', '.join(unknown)}")
    return doc


class SimResource(resource.Resource):
    """Base: waits while the device is silenced; turns refusals into JSON error responses."""

    def __init__(self, device: Keypad):
        super().__init__()
        self.device = device

    def get_link_description(self) -> dict[str, Any]:
        return {**super().get_link_description(), "ct": "50"}

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        await self.device.wait_awake()
        try:
            return await super().render(request)
        except SimError as exc:
            return error_message(self.device.model, exc.code, exc.message)
        except error.UnallowedMethod:
            return error_message(self.device.model, "4.05", f"{request.code} not allowed here")


class SessionsResource(SimResource):
    """``/v1/sessions``: GET (ETag-aware) / POST create / PUT update-or-act / DELETE."""

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        number = query_number(request, required=False)
        doc = self.device.model.sessions_document(number)
        content = {k: doc[k] for k in ("sessions", "statistics") if k in doc}
        etag = hashlib.sha1(dumps(content)).digest()[:8]
        if request.opt.etags and etag in request.opt.etags:
            return aiocoap.Message(code=aiocoap.VALID, etag=etag)
        msg = json_message(doc)
        msg.opt.etag = etag
        return msg

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        doc = body(request, SESSION_FIELDS)
        if "number" not in doc:
            raise SimError("4.00", "number is required")
        action = doc.get("action")
        if action not in (None, "page"):
            raise SimError("4.00", "action on create: only 'page' is allowed")
        self.device.create(
            doc["number"],
            goal=doc.get("goal"),
            label=doc.get("label"),
            party_size=doc.get("partySize", 1),
        )
        if action == "page":
            self.device.page(doc["number"])
        return self._reply(doc["number"], aiocoap.CREATED)

    async def render_put(self, request: aiocoap.Message) -> aiocoap.Message:
        number = query_number(request, required=True)
        assert number is not None
        doc = body(request, UPDATE_FIELDS)
        self.device.model.sessions_document(number)  # 4.04 before anything changes
        action = doc.get("action")
        if action is not None and action not in ACTIONS:
            raise SimError("4.00", f"action: expected one of {', '.join(sorted(ACTIONS))}")
        page_mode = check_page_mode(doc.get("pageMode"))
        if page_mode is not None and action != "page":
            raise SimError("4.00", "pageMode is only valid with action 'page'")
        edits = {k: doc[k] for k in ("goal", "label", "partySize") if k in doc}
        if not edits and action is None:
            raise SimError("4.00", "nothing to do: give goal, label, partySize or action")
        if edits:
            self.device.update(
                number,
                goal=edits.get("goal"),
                label=edits.get("label", UNSET),
                party_size=edits.get("partySize"),
            )
        if action == "page":
            self.device.page(number, page_mode=page_mode or DEFAULT_PAGE_MODE)
        elif action == "clear":
            self.device.clear(number)
        elif action == "remove":
            self.device.remove(number)
        return self._reply(number, aiocoap.CHANGED)

    async def render_delete(self, request: aiocoap.Message) -> aiocoap.Message:
        number = query_number(request, required=False)
        if number is None:
            self.device.clear_all()
        else:
            self.device.remove(number)
        return aiocoap.Message(code=aiocoap.DELETED)

    def _reply(self, number: int, code: aiocoap.Code) -> aiocoap.Message:
        return json_message(self.device.model.reply_document(number), code)


class T7470Site(resource.Site):
    """The site; an unknown path gets a JSON 4.04 like every other refusal."""

    def __init__(self, device: Device):
        super().__init__()
        self.device = device

    async def render_to_pipe(self, pipe: Any) -> None:
        try:
            self._find_child_and_pathstripped_message(pipe.request)
        except KeyError:
            await self.device.wait_awake()
            reply = error_message(self.device.model, "4.04", "no such resource")
            pipe.add_response(reply, is_last=True)
            return
        await super().render_to_pipe(pipe)


class HistoryResource(SimResource):
    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        parse_query(request, set())
        return json_message(self.device.model.history_document())


class StatisticsResource(SimResource):
    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        parse_query(request, set())
        return json_message(self.device.model.statistics_document())

    async def render_delete(self, request: aiocoap.Message) -> aiocoap.Message:
        parse_query(request, set())
        self.device.reset_statistics()
        return aiocoap.Message(code=aiocoap.DELETED)


class SettingsResource(SimResource):
    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        parse_query(request, set())
        return json_message(self.device.model.settings_document())

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        doc = body(request, {"datetime", "systemId", "defaultTargetGoal", "statisticsClearMark"})
        self.device.set_settings(**doc)
        return json_message(self.device.model.settings_document(), aiocoap.CHANGED)


class PageResource(SimResource):
    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        doc = body(request, PAGE_FIELDS)
        if "number" not in doc:
            raise SimError("4.00", "number is required")
        self.device.standalone_page(
            doc["number"],
            page_mode=doc.get("pageMode"),
            message=doc.get("message"),
            system_id=doc.get("systemId"),
        )
        return aiocoap.Message(code=aiocoap.CHANGED)
