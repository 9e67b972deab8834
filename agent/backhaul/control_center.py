"""Cisco IoT Control Center (formerly Jasper) REST client for one SIM.

Three calls, all ``GET`` under ``https://<pod host>/rws/api/v1/`` with HTTP Basic
``username:apiKey``: ``sessionInfo`` (online, addresses), ``ctdUsages`` (cycle-to-date counters,
SIM status, plan) and ``usageInZone`` (the same cycle by plan and zone, with the cycle's exact
window). Rate limit and error mapping live in :mod:`agent.backhaul.http` and :mod:`.parse`.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import date
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from agent.backhaul import parse
from agent.backhaul.http import OperatorHttp
from agent.backhaul.reading import SessionInfo, UsageInfo
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
            decode_error=parse.cc_error,
            timeout=timeout,
            min_interval=min_interval,
            client=client,
            transport=transport,
            clock=clock,
        )

    async def _get(self, what: str, params: dict[str, str] | None = None):
        return await self.http.request(
            "GET",
            f"devices/{self._iccid}/{what}",
            params=params,
            auth=self._auth,
            headers={"Accept": "application/json"},
        )

    async def session(self) -> SessionInfo:
        return parse.cc_session_info(await self._get("sessionInfo"))

    async def ctd_usages(self) -> UsageInfo:
        return parse.cc_ctd_usages(await self._get("ctdUsages"))

    async def usage_in_zone(self, cycle_start: date | None = None) -> parse.ZoneUsage:
        """The current cycle, or the one starting on `cycle_start` (one of the last three)."""
        params = {"cycleStartDate": parse.cycle_date(cycle_start)} if cycle_start else None
        return parse.cc_usage_in_zone(await self._get("usageInZone", params))

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
