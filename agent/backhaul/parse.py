"""Operator payloads → typed records, error bodies → :class:`OperatorError`. Pure, no I/O.

Both APIs are looser than their documentation, and the parser absorbs that here, once:

- keys are read case-insensitively (usageInZone says ``timeStamp``/``smsmtusage`` where its table
  says ``timestamp``/``SMSmtusage``);
- ``"null"`` (the string) is null: sessionInfo's example returns ``"ipAddress": "null"``;
- null counters mean *unknown*, never zero (``ctdSessionCount``);
- dates come as ``2016-07-06 01:31:46.893+0000``, ``2016-11-10T05:31:17.557Z`` or ``2016-11-10Z``;
  anything unparseable (the ThingSpace example literally says ``"string"``) becomes None;
- IPv6 may be a ``/64`` prefix rather than an address: kept as the prefix.
"""

from __future__ import annotations

import ipaddress
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from agent.backhaul.reading import OperatorError, Reaction, SessionInfo, UsageInfo
from agent.clock import parse_iso

# --- scalars ------------------------------------------------------------------------------------

_NULL_WORDS = frozenset({"", "null", "none", "nil", "n/a"})


def ci(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The same mapping with lower-cased keys (the vendors disagree with their own docs on case)."""
    return {str(k).lower(): v for k, v in doc.items()}


def text(value: Any) -> str | None:
    """A string, with JSON null, ``"null"`` and blanks all meaning None."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    s = str(value).strip()
    return None if s.lower() in _NULL_WORDS else s


def parse_int(value: Any) -> int | None:
    """A count: None stays None (unknown is not zero); numeric strings are accepted."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value)
    s = text(value)
    if s is None:
        return None
    try:
        return round(float(s))
    except ValueError:
        return None


def parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    s = text(value)
    if s is None:
        return None
    return {"true": True, "false": False, "1": True, "0": False}.get(s.lower())


_DATE_Z = re.compile(r"^(\d{4}-\d{2}-\d{2})Z$")


def parse_time(value: Any) -> datetime | None:
    """A moment in UTC from any of the operators' spellings; None if absent or unparseable."""
    s = text(value)
    if s is None:
        return None
    m = _DATE_Z.match(s)
    return parse_iso(m.group(1) if m else s)  # zone-less means UTC: both operators document it


def cycle_date(day: date) -> str:
    """Control Center's ``cycleStartDate`` parameter format, ``yyyy-MM-ddZ``."""
    return f"{day.isoformat()}Z"


def parse_ipv4(value: Any) -> str | None:
    s = text(value)
    if s is None:
        return None
    try:
        return str(ipaddress.IPv4Address(s))
    except ValueError:
        return None


def parse_ipv6(value: Any) -> str | None:
    """An IPv6 address, or the prefix the operator reports instead (``2605:9780:309e::/64``)."""
    s = text(value)
    if s is None:
        return None
    try:
        if "/" in s:
            return str(ipaddress.IPv6Network(s, strict=False))
        return str(ipaddress.IPv6Address(s))
    except ValueError:
        return None


def _object(doc: Any, what: str) -> dict[str, Any]:
    if not isinstance(doc, Mapping):
        raise OperatorError(
            "bad_answer",
            None,
            f"{what}: expected a JSON object, got {type(doc).__name__}",
            "retry_later",
        )
    return ci(doc)


# --- Control Center -----------------------------------------------------------------------------


def cc_session_info(doc: Any) -> SessionInfo:
    """``GET devices/{iccid}/sessionInfo``. Online = a session started and has not ended."""
    d = _object(doc, "sessionInfo")
    started = parse_time(d.get("datesessionstarted"))
    ended = parse_time(d.get("datesessionended"))
    return SessionInfo(
        online=started is not None and ended is None,
        ipv4=parse_ipv4(d.get("ipaddress")),
        ipv6=parse_ipv6(d.get("ipv6address")),
        started_at=started,
        ended_at=ended,
    )


def cc_ctd_usages(doc: Any) -> UsageInfo:
    """``GET devices/{iccid}/ctdUsages``: cycle-to-date figures; the allowance is not in it."""
    d = _object(doc, "ctdUsages")
    return UsageInfo(
        cycle_bytes=parse_int(d.get("ctddatausage")),
        sms_count=parse_int(d.get("ctdsmsusage")),
        voice_seconds=parse_int(d.get("ctdvoiceusage")),
        session_count=parse_int(d.get("ctdsessioncount")),
        sim_status=text(d.get("status")),
        rate_plan=text(d.get("rateplan")),
        overage_limit_reached=parse_bool(d.get("overagelimitreached")),
        overage_limit_override=text(d.get("overagelimitoverride")),
    )


@dataclass(frozen=True, slots=True)
class ZoneUsage:
    """``usageInZone``: one billing cycle's usage summed over every rate plan and zone."""

    cycle_start: datetime | None
    cycle_end: datetime | None
    as_of: datetime | None  # the operator's ``timeStamp``
    data_bytes: int | None  # None when no row reports data at all
    voice_seconds: int | None
    sms_count: int | None
    rate_plans: tuple[str, ...]


_UNIT_BYTES = {"bytes": 1, "byte": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def _sum(values: list[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def cc_usage_in_zone(doc: Any) -> ZoneUsage:
    d = _object(doc, "usageInZone")
    plans = d.get("devicecycleusageinzones") or {}
    data: list[int | None] = []
    voice: list[int | None] = []
    sms: list[int | None] = []
    names: list[str] = []
    if isinstance(plans, Mapping):
        for key, rows in plans.items():
            names.append(str(key))
            for row in rows if isinstance(rows, list) else [rows]:
                if not isinstance(row, Mapping):
                    continue
                r = ci(row)
                amount = parse_int(r.get("datausage"))
                unit = (text(r.get("datausageunit")) or "bytes").lower()
                data.append(None if amount is None else amount * _UNIT_BYTES.get(unit, 1))
                voice += [parse_int(r.get("voicemtusage")), parse_int(r.get("voicemousage"))]
                sms += [parse_int(r.get("smsmtusage")), parse_int(r.get("smsmousage"))]
    return ZoneUsage(
        cycle_start=parse_time(d.get("cyclestartdate")),
        cycle_end=parse_time(d.get("cycleenddate")),
        as_of=parse_time(d.get("timestamp")),
        data_bytes=_sum(data),
        voice_seconds=_sum(voice),
        sms_count=_sum(sms),
        rate_plans=tuple(names),
    )


_CC_HINT = "check [backhaul] in config.toml"
CC_ERRORS: dict[str, tuple[Reaction, str]] = {
    "10000001": (
        "stop",
        "Control Center refused the credentials or allowed-IP range: either [backhaul] username / "
        "PAGER_EDGE_CC_API_KEY is wrong, or this site's public IP is outside the account's allowed "
        "range (a cellular carrier can change it). Polling stopped; fix it and restart the agent.",
    ),
    "10000012": ("stop", "Control Center rejected the request: invalid date format."),
    "10000013": ("stop", "Control Center rejected the request: unknown rate plan."),
    "10000024": (
        "stop",
        "Control Center rejected the API version: [backhaul] base_url should end in /rws/api/v1/.",
    ),
    "10000028": ("stop", "Control Center rejected the request: an unrecognised parameter."),
    "10000031": ("stop", "Control Center rejected the request: unknown zone."),
    "10000032": (
        "stop",
        "Control Center only reports the current billing cycle and the two before it.",
    ),
    "20000001": (
        "stop",
        "Control Center does not know this SIM (invalid ICCID): check [backhaul] iccid.",
    ),
    "30000001": (
        "retry_later",
        "Control Center had an unknown server error; will ask again later.",
    ),
    "40000029": (
        "backoff",
        "Control Center rate limit reached (the account's limit is shared with other tools); "
        "polling less often.",
    ),
}


def _by_status(status: int | None) -> Reaction:
    if status in (401, 403):
        return "stop"
    if status == 429:
        return "backoff"
    return "retry_later"


def _json_or_none(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _looks_html(body: str, content_type: str) -> bool:
    head = body.lstrip()[:200].lower()
    return "html" in content_type.lower() or head.startswith(("<!doctype html", "<html"))


def _not_json(provider: str, status: int | None, body: str, content_type: str) -> OperatorError:
    if _looks_html(body, content_type):
        return OperatorError(
            "not_json",
            status,
            f"the server at [backhaul] base_url answered an HTML page (HTTP {status}), not the "
            f"{provider} API: check base_url (or a captive portal is in the way).",
            "retry_later",
        )
    return OperatorError(
        "not_json",
        status,
        f"{provider} answered HTTP {status} with a body that is not JSON.",
        _by_status(status),
    )


def cc_error(status: int | None, body: str, content_type: str = "") -> OperatorError | None:
    """The Control Center error in a response, or None if it is not one.

    Key logic on ``errorCode`` whatever the HTTP status (the rate-limit status is undocumented).
    """
    doc = _json_or_none(body)
    if isinstance(doc, Mapping):
        d = ci(doc)
        code = text(d.get("errorcode"))
        if code is None:
            if status is not None and status < 400:
                return None
            return OperatorError(
                f"http_{status}",
                status,
                f"Control Center answered HTTP {status}.",
                _by_status(status),
            )
        server = text(d.get("errormessage")) or ""
        reaction, message = CC_ERRORS.get(
            code, (_by_status(status), f"Control Center error {code}: {server or 'no message'}.")
        )
        return OperatorError(code, status, f"{message} [error {code}, HTTP {status}]", reaction)
    if status is not None and status < 400 and doc is not None:
        return None
    return _not_json("Control Center", status, body, content_type)


# --- ThingSpace ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TsSession:
    start: datetime | None
    end: datetime | None
    num_bytes: int | None


@dataclass(frozen=True, slots=True)
class SessionReport:
    """``POST /api/hyper-precise/v1/report/sessions``."""

    sessions: tuple[TsSession, ...]
    device_id: str | None
    txid: str | None


def ts_session_report(doc: Any) -> SessionReport:
    d = _object(doc, "report/sessions")
    rows = d.get("sessions") or []
    sessions = tuple(
        TsSession(
            parse_time(r.get("starttime")),
            parse_time(r.get("endtime")),
            parse_int(r.get("numbytes")),
        )
        for r in (ci(x) for x in rows if isinstance(x, Mapping))
    )
    return SessionReport(sessions, text(d.get("id")), text(d.get("txid")))


@dataclass(frozen=True, slots=True)
class UsageDay:
    at: datetime | None
    bytes_used: int | None
    sms_used: int | None


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """``POST /api/m2m/v1/devices/usage/actions/list``: daily rows (at most 500 per answer)."""

    days: tuple[UsageDay, ...]
    has_more: bool

    def total(self, start: datetime, end: datetime) -> tuple[int | None, int | None]:
        """Bytes and SMS of the rows dated in [start, end). No row at all is zero (nothing used
        yet); rows that all say null are unknown (None)."""
        rows = [r for r in self.days if r.at is not None and start <= r.at < end]
        if not rows:
            return 0, 0
        return _sum([r.bytes_used for r in rows]), _sum([r.sms_used for r in rows])


def ts_daily_usage(doc: Any) -> DailyUsage:
    d = _object(doc, "devices/usage/actions/list")
    rows = d.get("usagehistory") or []
    days = tuple(
        UsageDay(
            parse_time(r.get("timestamp")),
            parse_int(r.get("bytesused")),
            parse_int(r.get("smsused")),
        )
        for r in (ci(x) for x in rows if isinstance(x, Mapping))
    )
    return DailyUsage(days, bool(parse_bool(d.get("hasmoredata"))))


def ts_device(doc: Any) -> SessionInfo:
    """``POST /api/m2m/v1/devices/actions/list`` for one device: ``connected``, IP, SIM state."""
    d = _object(doc, "devices/actions/list")
    devices = [ci(x) for x in d.get("devices") or [] if isinstance(x, Mapping)]
    if not devices:
        raise OperatorError(
            "device_not_found",
            None,
            "ThingSpace lists no device with this identifier: check [backhaul] iccid / imei.",
            "stop",
        )
    dev = devices[0]
    ip = text(dev.get("ipaddress"))
    carriers = [ci(x) for x in dev.get("carrierinformations") or [] if isinstance(x, Mapping)]
    return SessionInfo(
        online=parse_bool(dev.get("connected")),
        ipv4=parse_ipv4(ip),
        ipv6=parse_ipv6(ip),
        sim_status=text(carriers[0].get("state")) if carriers else None,
    )


def ts_access_token(doc: Any) -> tuple[str, float]:
    """OAuth token answer → (access token, lifetime in seconds; one hour if unstated)."""
    d = _object(doc, "oauth2/token")
    token = text(d.get("access_token"))
    if token is None:
        raise OperatorError(
            "bad_answer", None, "ThingSpace token answer has no access_token.", "retry_later"
        )
    return token, float(parse_int(d.get("expires_in")) or 3600)


def ts_session_token(doc: Any) -> str:
    d = _object(doc, "session/login")
    token = text(d.get("sessiontoken"))
    if token is None:
        raise OperatorError(
            "bad_answer", None, "ThingSpace login answer has no sessionToken.", "stop"
        )
    return token


# API gateway (WSO2) fault codes: JSON {"fault": {...}} or XML <ams:fault>.
_GATEWAY: dict[str, tuple[Reaction, str]] = {
    "900900": ("stop", "authentication failed at the API gateway"),
    "900901": ("relogin", "the access token was refused (expired or invalid)"),
    "900902": ("relogin", "the access token is missing"),
    "900903": ("relogin", "the access token expired"),
    "900904": ("relogin", "the access token is inactive"),
    "900905": ("stop", "the access token is of the wrong type"),
    "900906": ("stop", "no such API resource: check [backhaul] base_url"),
    "900907": ("retry_later", "the API is temporarily blocked"),
    "900908": ("stop", "this API is not allowed for the application (subscription)"),
    "900909": ("stop", "the application's subscription to this API is inactive"),
    "900910": ("stop", "the access token does not allow this resource"),
    "900800": ("backoff", "rate limit reached"),
    "900802": ("backoff", "rate limit reached"),
    "900803": ("backoff", "rate limit reached"),
}
_OAUTH_RETRY = frozenset({"server_error", "temporarily_unavailable"})
# Hyper-precise errors by HTTP status (seed 002): reactions for the documented cases.
_HYPER: dict[int, Reaction] = {
    400: "retry_later",  # "Device Not Found, Request will be queued"
    401: "stop",  # INVALID_ACCESS
    403: "stop",  # Device Not Certified
    404: "retry_later",  # Device inactive: may be reactivated
    409: "stop",  # Service Not Purchased
    500: "retry_later",  # INTERNAL_ERROR
}


def _gateway(code: str, message: str | None, status: int | None) -> OperatorError:
    reaction, ours = _GATEWAY.get(code, (_by_status(status), "the API gateway refused the call"))
    server = f": {message}" if message else ""
    return OperatorError(
        code, status, f"ThingSpace: {ours}{server} [fault {code}, HTTP {status}]", reaction
    )


def _xml_fault(body: str, status: int | None) -> OperatorError | None:
    try:
        root = ET.fromstring(body.strip())
    except ET.ParseError:
        return None
    # Namespaces vary (ams:fault, plain fault): match on local names.
    fields = {el.tag.rsplit("}", 1)[-1].lower(): (el.text or "").strip() for el in root.iter()}
    code = fields.get("code") or ""
    message = fields.get("message") or fields.get("description")
    if len(code) == 6 and code.isdigit():
        return _gateway(code, message, status)
    word = {403: "forbidden", 404: "not found"}.get(status or 0, "an error")
    return OperatorError(
        f"http_{status}",
        status,
        f"ThingSpace answered {word} (HTTP {status}, XML){': ' + message if message else ''}.",
        "stop" if status in (401, 403, 404) else "retry_later",
    )


def ts_error(status: int | None, body: str, content_type: str = "") -> OperatorError | None:
    """The ThingSpace error in a response, or None if it is not one. Every layer has its shape:

    - M2M / hyper-precise: ``{"errorCode", "errorMessage"}``; ``...SessionToken.Expired`` → relogin
    - API gateway: ``{"fault": {"code": "900901", "message": "Invalid Credentials"}}`` or XML
    - OAuth: ``{"error", "error_description"}``
    """
    doc = _json_or_none(body)
    if isinstance(doc, Mapping):
        d = ci(doc)
        if isinstance(d.get("fault"), Mapping):
            f = ci(d["fault"])
            return _gateway(text(f.get("code")) or "", text(f.get("message")), status)
        if text(d.get("errorcode")):
            code = text(d.get("errorcode")) or ""
            server = text(d.get("errormessage")) or "no message"
            if "sessiontoken.expired" in code.lower():
                reaction: Reaction = "relogin"
            elif code.lower().startswith("unifiedwebservice"):
                reaction = _by_status(status)
            else:
                reaction = _HYPER.get(status or 0, _by_status(status))
            return OperatorError(
                code, status, f"ThingSpace: {server} [{code}, HTTP {status}]", reaction
            )
        if text(d.get("error")):
            code = text(d.get("error")) or ""
            desc = text(d.get("error_description")) or "no description"
            return OperatorError(
                code,
                status,
                f"ThingSpace refused the OAuth token request: {desc} [{code}, HTTP {status}]; "
                "check PAGER_EDGE_TS_CLIENT_ID / PAGER_EDGE_TS_CLIENT_SECRET.",
                "retry_later" if code in _OAUTH_RETRY else "stop",
            )
        if status is not None and status < 400:
            return None
        return OperatorError(
            f"http_{status}", status, f"ThingSpace answered HTTP {status}.", _by_status(status)
        )
    if status is not None and status < 400 and doc is not None:
        return None
    if body.lstrip().startswith("<") and not _looks_html(body, content_type):
        fault = _xml_fault(body, status)
        if fault is not None:
            return fault
    return _not_json("ThingSpace", status, body, content_type)


def login_failure(err: OperatorError) -> OperatorError:
    """Any answer to a login other than a session token. Never retried: five failures in a row
    lock the ThingSpace account until operator support unlocks it."""
    return OperatorError(
        err.code,
        err.http_status,
        f"ThingSpace login failed ({err.message}). Not retried automatically: five failed logins "
        "lock the account. Check PAGER_EDGE_TS_USERNAME / PAGER_EDGE_TS_PASSWORD, then restart.",
        "stop",
    )
