"""Verizon ThingSpace: the client for one SIM, its payloads, its error shapes and its two tokens.

Two tokens go with every call: an OAuth client-credentials bearer token (one hour; the same token
comes back within the hour, so it is cached and renewed a minute early) and an M2M session token
from ``session/login`` (20 minutes idle). The session is reused and renewed only when a call says
it expired. A failed login is never retried automatically — five in a row lock the account until
Verizon support unlocks it — so the first one is remembered and every later call fails at once.

Calls: ``devices/actions/list`` (connected, IP, SIM state), ``devices/usage/actions/list`` (daily
bytes) and the hyper-precise ``report/sessions`` (sessions this cycle; an add-on, so its absence
only costs the session count). The payloads and every layer's error shape (M2M, API gateway,
OAuth) are read here; the request discipline is :mod:`agent.backhaul.http`'s.
"""

from __future__ import annotations

import base64
import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from agent.backhaul.http import (
    OperatorHttp,
    ci,
    expect_object,
    json_or_none,
    looks_html,
    not_json_error,
    parse_bool,
    parse_int,
    parse_ipv4,
    parse_ipv6,
    parse_time,
    reaction_for_status,
    sum_known,
    text,
)
from agent.backhaul.reading import (
    NetworkFailure,
    OperatorError,
    Reaction,
    SessionInfo,
    UsageInfo,
    cycle_bounds,
)
from agent.clock import SYSTEM_CLOCK, Clock, iso_utc
from agent.logs import register_secret

log = logging.getLogger(__name__)

TOKEN_PATH = "api/ts/v1/oauth2/token"
LOGIN_PATH = "api/m2m/v1/session/login"
DEVICES_PATH = "api/m2m/v1/devices/actions/list"
USAGE_PATH = "api/m2m/v1/devices/usage/actions/list"
SESSIONS_PATH = "api/hyper-precise/v1/report/sessions"
TOKEN_EARLY = 60.0  # renew the bearer token this long before it expires


# --- payloads -------------------------------------------------------------------------------------


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
    d = expect_object(doc, "report/sessions")
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
        return sum_known([r.bytes_used for r in rows]), sum_known([r.sms_used for r in rows])


def ts_daily_usage(doc: Any) -> DailyUsage:
    d = expect_object(doc, "devices/usage/actions/list")
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
    d = expect_object(doc, "devices/actions/list")
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
    d = expect_object(doc, "oauth2/token")
    token = text(d.get("access_token"))
    if token is None:
        raise OperatorError(
            "bad_answer", None, "ThingSpace token answer has no access_token.", "retry_later"
        )
    return token, float(parse_int(d.get("expires_in")) or 3600)


def ts_session_token(doc: Any) -> str:
    d = expect_object(doc, "session/login")
    token = text(d.get("sessiontoken"))
    if token is None:
        raise OperatorError(
            "bad_answer", None, "ThingSpace login answer has no sessionToken.", "stop"
        )
    return token


# --- errors ---------------------------------------------------------------------------------------


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
    reaction, ours = _GATEWAY.get(
        code, (reaction_for_status(status), "the API gateway refused the call")
    )
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
    doc = json_or_none(body)
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
                reaction = reaction_for_status(status)
            else:
                reaction = _HYPER.get(status or 0, reaction_for_status(status))
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
            f"http_{status}",
            status,
            f"ThingSpace answered HTTP {status}.",
            reaction_for_status(status),
        )
    if status is not None and status < 400 and doc is not None:
        return None
    if body.lstrip().startswith("<") and not looks_html(body, content_type):
        fault = _xml_fault(body, status)
        if fault is not None:
            return fault
    return not_json_error("ThingSpace", status, body, content_type)


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


def _is_gateway(err: OperatorError) -> bool:
    """API-gateway faults (9008xx/9009xx) are refused before reaching the service behind."""
    return err.code.isdigit() and err.code.startswith("900")


# --- the client -----------------------------------------------------------------------------------


class ThingSpaceClient:
    provider = "thingspace"

    def __init__(
        self,
        base_url: str,
        *,
        account_number: str,
        imei: str,
        iccid: str,
        client_id: str,
        client_secret: str,
        username: str,
        password: str,
        cycle_start_day: int = 1,
        timeout: float = 20.0,
        min_interval: float = 1.0,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ):
        for value in (client_secret, password):
            register_secret(value)
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        register_secret(basic)
        self._oauth = httpx.BasicAuth(client_id, client_secret)
        self._login = {"username": username, "password": password}
        self._account = account_number
        self._imei = imei
        self._device = {"id": iccid, "kind": "iccid"} if iccid else {"id": imei, "kind": "imei"}
        self._cycle_start_day = cycle_start_day
        self._clock = clock
        self.http = OperatorHttp(
            base_url,
            provider="ThingSpace",
            decode_error=ts_error,
            timeout=timeout,
            min_interval=min_interval,
            client=client,
            transport=transport,
            clock=clock,
        )
        self._bearer: str | None = None
        self._bearer_renew_at = 0.0
        self._session: str | None = None
        self.login_failed: OperatorError | None = None
        self._report_off: str | None = None  # why report/sessions is not asked any more

    # --- tokens ---------------------------------------------------------------------------------

    async def _bearer_token(self) -> str:
        if self._bearer is None or self._clock.monotonic() >= self._bearer_renew_at:
            doc = await self.http.request(
                "POST", TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=self._oauth
            )
            token, lifetime = ts_access_token(doc)
            register_secret(token)
            self._bearer = token
            self._bearer_renew_at = self._clock.monotonic() + max(lifetime - TOKEN_EARLY, 0.0)
        return self._bearer

    async def _session_token(self) -> str:
        if self.login_failed is not None:
            raise self.login_failed
        if self._session is None:
            try:
                doc = await self._post(LOGIN_PATH, self._login, with_session=False)
                token = ts_session_token(doc)
            except NetworkFailure:
                raise  # no answer: the server did not count a failed login
            except OperatorError as err:
                if _is_gateway(err):
                    raise  # refused by the gateway in front; the login service never saw it
                self.login_failed = login_failure(err)
                raise self.login_failed from None
            register_secret(token)
            self._session = token
        return self._session

    async def _post(self, path: str, body: dict[str, Any], *, with_session: bool = True) -> Any:
        """POST with both tokens; renew the one that expired and repeat the call, once."""
        renewed = False
        while True:
            headers = {"Authorization": f"Bearer {await self._bearer_token()}"}
            if with_session:
                headers["VZ-M2M-Token"] = await self._session_token()
            try:
                return await self.http.request("POST", path, json=body, headers=headers)
            except OperatorError as err:
                if err.reaction != "relogin":
                    raise
                if renewed:
                    raise OperatorError(
                        err.code,
                        err.http_status,
                        f"{err.message} (again after renewal)",
                        "retry_later",
                    ) from None
                renewed = True
                if _is_gateway(err):
                    self._bearer = None
                elif with_session:
                    self._session = None
                else:
                    raise

    # --- calls ----------------------------------------------------------------------------------

    async def session(self) -> SessionInfo:
        return ts_device(await self._post(DEVICES_PATH, {"deviceId": self._device}))

    async def daily_usage(self, earliest: datetime, latest: datetime) -> DailyUsage:
        body = {"deviceId": self._device, "earliest": iso_utc(earliest), "latest": iso_utc(latest)}
        return ts_daily_usage(await self._post(USAGE_PATH, body))

    async def report_sessions(self, start: datetime, end: datetime) -> SessionReport:
        body = {
            "accountNumber": self._account,
            "imei": self._imei,
            "startDate": iso_utc(start),
            "endDate": iso_utc(end),
        }
        return ts_session_report(await self._post(SESSIONS_PATH, body))

    async def usage(self) -> UsageInfo:
        """This cycle's bytes from the daily rows; the session count from the hyper-precise report
        when the account has it (a 403/409 there turns the report off, with one warning)."""
        now = self._clock.now()
        start, end = cycle_bounds(now, self._cycle_start_day)
        daily = await self.daily_usage(start, now)
        if daily.has_more:
            log.warning(
                "ThingSpace has more usage rows than one answer holds; the total is partial"
            )
        cycle_bytes, sms = daily.total(start, end)
        sessions = None
        if self._report_off is None:
            try:
                report = await self.report_sessions(start, now)
                sessions = len(report.sessions)
            except NetworkFailure:
                raise
            except OperatorError as err:
                if err.reaction == "stop":
                    self._report_off = err.message
                    log.warning("ThingSpace session report not used from now on: %s", err.message)
                else:
                    log.info("ThingSpace session report unavailable this time: %s", err.message)
        return UsageInfo(cycle_bytes=cycle_bytes, sms_count=sms, session_count=sessions)

    async def aclose(self) -> None:
        await self.http.aclose()
