"""Cisco IoT Control Center (formerly Jasper): the REST client for one SIM, its payloads and its
error codes.

Three calls, all ``GET`` under ``https://<pod host>/rws/api/v1/`` with HTTP Basic
``username:apiKey``: ``sessionInfo`` (online, addresses), ``ctdUsages`` (cycle-to-date counters,
SIM status, plan) and ``usageInZone`` (the same cycle by plan and zone, with the cycle's exact
window). The payloads and the error codes are read here; the request discipline (spacing,
deadline) is :mod:`agent.backhaul.http`'s.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from agent.backhaul.http import (
    OperatorHttp,
    ci,
    expect_object,
    json_or_none,
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
from agent.backhaul.reading import OperatorError, Reaction, SessionInfo, UsageInfo
from agent.clock import SYSTEM_CLOCK, Clock
from agent.logs import register_secret

API_ROOT = "rws/api/v1/"


def api_base(base_url: str) -> str:
    """Accept either the pod host or the full API root; the docs show both forms."""
    parts = urlsplit(base_url)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    if "/rws/api/" not in path:
        path += API_ROOT
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


# --- payloads -------------------------------------------------------------------------------------


def cycle_date(day: date) -> str:
    """Control Center's ``cycleStartDate`` parameter format, ``yyyy-MM-ddZ``."""
    return f"{day.isoformat()}Z"


def cc_session_info(doc: Any) -> SessionInfo:
    """``GET devices/{iccid}/sessionInfo``. Online = a session started and has not ended."""
    d = expect_object(doc, "sessionInfo")
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
    d = expect_object(doc, "ctdUsages")
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


def cc_usage_in_zone(doc: Any) -> ZoneUsage:
    d = expect_object(doc, "usageInZone")
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
        data_bytes=sum_known(data),
        voice_seconds=sum_known(voice),
        sms_count=sum_known(sms),
        rate_plans=tuple(names),
    )


# --- errors ---------------------------------------------------------------------------------------

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


def cc_error(status: int | None, body: str, content_type: str = "") -> OperatorError | None:
    """The Control Center error in a response, or None if it is not one.

    Key logic on ``errorCode`` whatever the HTTP status (the rate-limit status is undocumented).
    """
    doc = json_or_none(body)
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
                reaction_for_status(status),
            )
        server = text(d.get("errormessage")) or ""
        reaction, message = CC_ERRORS.get(
            code,
            (
                reaction_for_status(status),
                f"Control Center error {code}: {server or 'no message'}.",
            ),
        )
        return OperatorError(code, status, f"{message} [error {code}, HTTP {status}]", reaction)
    if status is not None and status < 400 and doc is not None:
        return None
    return not_json_error("Control Center", status, body, content_type)


# --- the client -----------------------------------------------------------------------------------


class ControlCenterClient:
    provider = "control_center"

    def __init__(
        self,
        base_url: str,
        *,
        iccid: str,
        username: str,
        api_key: str,
        timeout: float = 20.0,
        min_interval: float = 1.0,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ):
        # A server echoing the Authorization header must not leak the key in its encoded form.
        register_secret(base64.b64encode(f"{username}:{api_key}".encode()).decode())
        register_secret(api_key)
        self._iccid = quote(iccid, safe="")
        self._auth = httpx.BasicAuth(username, api_key)
        self.http = OperatorHttp(
            api_base(base_url),
            provider="Control Center",
            decode_error=cc_error,
            timeout=timeout,
            min_interval=min_interval,
            client=client,
            transport=transport,
            clock=clock,
        )

    async def _get(self, what: str, params: dict[str, str] | None = None) -> Any:
        return await self.http.request(
            "GET",
            f"devices/{self._iccid}/{what}",
            params=params,
            auth=self._auth,
            headers={"Accept": "application/json"},
        )

    async def session(self) -> SessionInfo:
        return cc_session_info(await self._get("sessionInfo"))

    async def ctd_usages(self) -> UsageInfo:
        return cc_ctd_usages(await self._get("ctdUsages"))

    async def usage_in_zone(self, cycle_start: date | None = None) -> ZoneUsage:
        """The current cycle, or the one starting on `cycle_start` (one of the last three)."""
        params = {"cycleStartDate": cycle_date(cycle_start)} if cycle_start else None
        return cc_usage_in_zone(await self._get("usageInZone", params))

    async def usage(self) -> UsageInfo:
        """Cycle-to-date counters, with the cycle's window from usageInZone (two calls, spaced)."""
        ctd = await self.ctd_usages()
        zone = await self.usage_in_zone()
        return dataclasses.replace(
            ctd,
            cycle_bytes=ctd.cycle_bytes if ctd.cycle_bytes is not None else zone.data_bytes,
            cycle_start=zone.cycle_start,
            cycle_end=zone.cycle_end,
        )

    async def aclose(self) -> None:
        await self.http.aclose()
