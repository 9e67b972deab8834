"""Test doubles for the backhaul monitor: the vendors' example payloads verbatim, a loopback HTTP
server that answers like the operator APIs, and a clock that does not wait.

The ``SEED_*`` strings are the response examples of /work/shared/seeds (copied byte for byte, tabs
and trailing blanks included); other documents follow the vendors' documented shapes
(docs/reference cellular-apis.md) and are marked as such.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# seeds/000_f01a3a16cf6a7d94.txt, response example
SEED_SESSION_INFO = (
    "{\n"
    '\t"iccid": "8988216716970004975",\n'
    '\t"ipAddress": "null",\n'
    '\t"ipv6Address": "2605:9780:309e::/64",\n'
    '\t"dateSessionStarted": "2016-07-06 01:31:46.893+0000",\n'
    '\t"dateSessionEnded": "2016-07-06 01:31:46.893+0000"\n'
    "}"
)

# seeds/001_4129b3005711a18a.txt, response example
SEED_CTD_USAGES = (
    "{\n"
    '\t"iccid": "8988216716970004975",\n'
    '\t"imsi": "901161697004975",\n'
    '\t"msisdn": "882351697004975",\n'
    '\t"imei": "",\n'
    '\t"status": "ACTIVATED",\n'
    '\t"ratePlan": "hphlr rp1",\n'
    '\t"communicationPlan": "CP_Basic_ON",\n'
    '\t"ctdDataUsage": 0,\n'
    '\t"ctdSMSUsage": 0,\n'
    '\t"ctdVoiceUsage": 0,\n'
    '\t"ctdSessionCount": null,\n'
    '\t"overageLimitReached": false,\n'
    '\t"overageLimitOverride": "DEFAULT"\n'
    "}"
)

# seeds/004_0d5b11911200500f.txt, response example
SEED_USAGE_IN_ZONE = (
    "{   \n"
    '  "iccid":"8988217755520000031",\n'
    '  "timeStamp":"2016-11-10T05:31:17.557Z",\n'
    '  "cycleStartDate":"2016-10-31T10:30:00.000Z",\n'
    '  "cycleEndDate":"2016-11-30T10:29:59.000Z",\n'
    '  "deviceCycleUsageInZones":{   \n'
    '\t"Rate Plan A, 1":[   \n'
    "\t\t{   \n"
    '\t\t"ratePlan":"Rate Plan A",\n'
    '\t\t"ratePlanVersion":"1",\n'
    '\t\t"zone":"default zone",\n'
    '\t\t"dataUsage":null,\n'
    '\t\t"dataUsageUnit":null,\n'
    '\t\t"voiceMTUsage":null,\n'
    '\t\t"voiceMTUsageUnit":null,\n'
    '\t\t"voiceMOUsage":600,\n'
    '\t\t"voiceMOUsageUnit":"seconds",\n'
    '\t\t"smsmtusage":null,\n'
    '\t\t"smsmousage":null\n'
    "\t\t}\n"
    "\t    ],\n"
    '\t"Rate Plan B, 2":[   \n'
    "\t\t{   \n"
    '\t\t"ratePlan":"Rate Plan B",\n'
    '\t\t"ratePlanVersion":"2",\n'
    '\t\t"zone":"default zone",\n'
    '\t\t"dataUsage":943718,\n'
    '\t\t"dataUsageUnit":"bytes",\n'
    '\t\t"voiceMTUsage":null,\n'
    '\t\t"voiceMTUsageUnit":null,\n'
    '\t\t"voiceMOUsage":943718,\n'
    '\t\t"voiceMOUsageUnit":"seconds",\n'
    '\t\t"smsmtusage":null,\n'
    '\t\t"smsmousage":null\n'
    "\t\t}\n"
    "\t    ]\n"
    "\t}\n"
    "}"
)

# seeds/002_fab82500c78b61ca.txt, response example
SEED_TS_SESSIONS = (
    "{\n"
    '  "sessions": [\n'
    "    {\n"
    '      "startTime": "string",\n'
    '      "endTime": "string",\n'
    '      "numBytes": 0\n'
    "    }\n"
    "  ],\n"
    '  "id": "{10-digit device ID}",\n'
    '  "txid": "string"\n'
    "}"
)

# seeds/002_fab82500c78b61ca.txt, failure responses by HTTP status
SEED_TS_ERRORS: dict[int, str] = {
    400: (
        "{\n"
        '  "errorCode": "INVALID_PARAMETER",\n'
        '  "errorMessage": "Device Not Found, Request will be queued"\n'
        "}"
    ),
    401: (
        "{\n"
        '  "errorCode": "INVALID_ACCESS",\n'
        '  "errorMessage": "The access policy denied the resource operation for this user"\n'
        "}"
    ),
    403: ('{\n  "errorCode": "INVALID_PARAMETER",\n  "errorMessage": "Device Not Certified"\n}'),
    404: ('{\n  "errorCode": "INVALID_PARAMETER",\n  "errorMessage": "Device inactive"\n}'),
    409: ('{\n  "errorCode": "INVALID_PARAMETER",\n  "errorMessage": "Service Not Purchased"\n}'),
    500: (
        "{\n"
        '  "errorCode": "INTERNAL_ERROR",\n'
        '  "errorMessage": "Device is active in several accounts"\n'
        "}"
    ),
}

# --- documented shapes (not seed examples) -------------------------------------------------------

# Control Center error bodies: {"errorMessage", "errorCode"}, the code a string; status per seed table.
CC_ERROR_TABLE: dict[str, tuple[int, str]] = {
    "10000001": (401, "Invalid credentials."),
    "10000012": (400, "Invalid date format."),
    "10000013": (404, "Invalid ratePlan."),
    "10000024": (400, "Invalid apiVersion."),
    "10000028": (400, "Invalid request."),
    "10000031": (400, "Invalid Zone."),
    "10000032": (400, "Cycle Start Date should be greater than or equal to 2016-09-30."),
    "20000001": (404, "Resource not found - Invalid ICCID."),
    "30000001": (500, "Unknown server error."),
}
CC_RATE_LIMIT = '{"errorMessage": "API rate limit exceeded.", "errorCode": "40000029"}'


def cc_error_body(code: str, message: str) -> str:
    return json.dumps({"errorMessage": message, "errorCode": code})


TS_TOKEN = (
    '{"access_token": "%s", "scope": "ts.mapping", "token_type": "Bearer", "expires_in": 3600}'
)
TS_LOGIN = '{"sessionToken": "%s"}'
TS_SESSION_EXPIRED = (
    '{"errorCode": "UnifiedWebService.REQUEST_FAILED.SessionToken.Expired",'
    ' "errorMessage": "Session Token Expired"}'
)
TS_LOGIN_REFUSED = (
    '{"errorCode": "UnifiedWebService.INPUT_INVALID.Password",'
    ' "errorMessage": "Invalid username or password"}'
)
TS_FAULT_INVALID_CREDENTIALS = '{"fault":{"code":"900901","message":"Invalid Credentials"}}'
TS_OAUTH_INVALID_CLIENT = (
    '{"error": "invalid_client", "error_description": "Client Authentication failed."}'
)
TS_XML_FORBIDDEN = (
    '<ams:fault xmlns:ams="http://wso2.org/apimanager/security">'
    "<ams:code>900908</ams:code><ams:message>Resource forbidden </ams:message>"
    "<ams:description>Access failure for API: /api/m2m/v1</ams:description></ams:fault>"
)
TS_XML_NOT_FOUND = (
    '<?xml version="1.0" encoding="UTF-8"?><am:fault xmlns:am="http://wso2.org/apimanager">'
    "<am:code>404</am:code><am:type>Status report</am:type><am:message>Not Found</am:message>"
    "<am:description>The requested resource is not available.</am:description></am:fault>"
)
# devices/usage/actions/list: the reference's example row, plus the docs' daily rows.
TS_DAILY_USAGE = json.dumps(
    {
        "hasMoreData": False,
        "usageHistory": [
            {"bytesUsed": 105369575, "smsUsed": 0, "timestamp": "2024-05-02T00:00:00Z"},
            {"bytesUsed": 2000000, "smsUsed": 3, "timestamp": "2024-05-10T00:00:00Z"},
            {"bytesUsed": 999, "smsUsed": 0, "timestamp": "2024-04-20T00:00:00Z"},
        ],
    }
)
TS_DEVICE_LIST = json.dumps(
    {
        "hasMoreData": False,
        "devices": [
            {
                "accountName": "0000123456-00001",
                "billingCycleEndDate": "2024-06-01T00:00:00Z",
                "carrierInformations": [
                    {"carrierName": "Verizon Wireless", "servicePlan": "M2M", "state": "active"}
                ],
                "connected": True,
                "deviceIds": [{"id": "89148000000000000001", "kind": "iccid"}],
                "ipAddress": "10.20.30.40",
                "lastConnectionDate": "2024-05-15T11:00:00Z",
            }
        ],
    }
)
HTML_PAGE = "<!DOCTYPE html><html><head><title>Welcome</title></head><body>It works</body></html>"


# --- the server ----------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: str
    content_type: str = "application/json"
    delay: float = 0.0


def answer(body: str, status: int = 200, content_type: str = "application/json") -> Answer:
    return Answer(status, body, content_type)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: str


@dataclass
class FakeOperator:
    """A real HTTP server on 127.0.0.1 with canned answers per (method, path).

    Each route holds a queue of answers; the last one repeats. Unknown routes answer like a web
    server that is not the API (404, HTML). ``echo_auth`` makes error bodies echo the request's
    credentials back, as a careless server might.
    """

    routes: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def on(self, method: str, path: str, *answers: Answer) -> FakeOperator:
        self.routes[(method, path)] = list(answers)
        return self

    def calls(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _next(self, method: str, path: str) -> Answer:
        with self._lock:
            queue = self.routes.get((method, path))
            if not queue:
                return Answer(404, HTML_PAGE, "text/html")
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def start(self) -> FakeOperator:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                with fake._lock:
                    fake.seen.append(
                        Seen(
                            self.command,
                            parts.path,
                            parse_qs(parts.query),
                            dict(self.headers),
                            body,
                        )
                    )
                    fake.active += 1
                    fake.max_active = max(fake.max_active, fake.active)
                try:
                    a = fake._next(self.command, parts.path)
                    if a.delay:
                        time.sleep(a.delay)
                    text = a.body
                    if "{ECHO}" in text:
                        echoed = json.dumps(f"{self.headers.get('Authorization')} {body}")[1:-1]
                        text = text.replace("{ECHO}", echoed)
                    data = text.encode()
                    self.send_response(a.status)
                    self.send_header("Content-Type", a.content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (deadline tests)
                finally:
                    with fake._lock:
                        fake.active -= 1

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


# --- time and configuration -----------------------------------------------------------------------


class ClockStop(Exception):
    """Raised by FakeClock.sleep past its horizon: ends a poller run deterministically."""


class FakeClock:
    """Wall and monotonic time that move only when someone sleeps."""

    def __init__(
        self, start: datetime = datetime(2024, 5, 15, 12, 0, tzinfo=UTC), until: float = 1e12
    ):
        self.start = start
        self.t = 0.0
        self.until = until
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if self.t + seconds > self.until:
            raise ClockStop(self.t)
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


CC_ICCID = "8988216716970004975"
TS_IMEI = "990013907835573"
TS_ICCID = "89148000000000000001"


def write_config(
    tmp_path: Path, base_url: str, provider: str = "control_center", **extra: Any
) -> Path:
    """A config.toml with a [backhaul] section for `provider` at `base_url`."""
    keys: dict[str, Any] = {
        "enabled": True,
        "provider": provider,
        "base_url": base_url,
        "cap_bytes": 5_000_000_000,
        "cycle_start_day": 1,
    }
    if provider == "control_center":
        keys |= {"iccid": CC_ICCID, "username": "site-api-user"}
    else:
        keys |= {"iccid": TS_ICCID, "imei": TS_IMEI, "account_number": "0000123456-00001"}
    keys |= extra
    lines = ["[backhaul]", *(f"{k} = {json.dumps(v)}" for k, v in keys.items())]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
