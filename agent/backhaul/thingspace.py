"""Verizon ThingSpace client for one SIM.

Two tokens go with every call: an OAuth client-credentials bearer token (one hour; the same token
comes back within the hour, so it is cached and renewed a minute early) and an M2M session token
from ``session/login`` (20 minutes idle). The session is reused and renewed only when a call says
it expired. A failed login is never retried automatically — five in a row lock the account until
Verizon support unlocks it — so the first one is remembered and every later call fails at once.

Calls: ``devices/actions/list`` (connected, IP, SIM state), ``devices/usage/actions/list`` (daily
bytes) and the hyper-precise ``report/sessions`` (sessions this cycle; an add-on, so its absence
only costs the session count).
"""

from __future__ import annotations

import base64
import logging
from datetime import datetime
from typing import Any

import httpx

from agent.backhaul import parse
from agent.backhaul.http import OperatorHttp
from agent.backhaul.reading import (
    NetworkFailure,
    OperatorError,
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


def _is_gateway(err: OperatorError) -> bool:
    """API-gateway faults (9008xx/9009xx) are refused before reaching the service behind."""
    return err.code.isdigit() and err.code.startswith("900")


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
            decode_error=parse.ts_error,
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
            token, lifetime = parse.ts_access_token(doc)
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
                token = parse.ts_session_token(doc)
            except NetworkFailure:
                raise  # no answer: the server did not count a failed login
            except OperatorError as err:
                if _is_gateway(err):
                    raise  # refused by the gateway in front; the login service never saw it
                self.login_failed = parse.login_failure(err)
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
        return parse.ts_device(await self._post(DEVICES_PATH, {"deviceId": self._device}))

    async def daily_usage(self, earliest: datetime, latest: datetime) -> parse.DailyUsage:
        body = {"deviceId": self._device, "earliest": iso_utc(earliest), "latest": iso_utc(latest)}
        return parse.ts_daily_usage(await self._post(USAGE_PATH, body))

    async def report_sessions(self, start: datetime, end: datetime) -> parse.SessionReport:
        body = {
            "accountNumber": self._account,
            "imei": self._imei,
            "startDate": iso_utc(start),
            "endDate": iso_utc(end),
        }
        return parse.ts_session_report(await self._post(SESSIONS_PATH, body))

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
