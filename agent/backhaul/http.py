"""What both operator clients share on the wire: the request discipline, and the lenient reading of
answers that are looser than their documentation.

Requests:

- One call in flight and a minimum spacing between calls: Control Center's limit (5 calls/s) is
  per *account*, shared with every other tool the operator's customer runs, and ThingSpace asks for
  one request at a time.
- Every call bounded by one overall deadline (httpx's own timeouts are per phase, so a server that
  drips bytes could otherwise hold the poller for ever).
- No answer at all → :class:`NetworkFailure`; an answer that is not the data → :class:`OperatorError`
  decoded by the provider's parser; exception text never carries request headers.
- https only (credentials go with every call), except to loopback.

Answers (pure functions, absorbing the vendors' looseness here, once):

- keys are read case-insensitively (usageInZone says ``timeStamp``/``smsmtusage`` where its table
  says ``timestamp``/``SMSmtusage``);
- ``"null"`` (the string) is null: sessionInfo's example returns ``"ipAddress": "null"``;
- null counters mean *unknown*, never zero (``ctdSessionCount``);
- dates come as ``2016-07-06 01:31:46.893+0000``, ``2016-11-10T05:31:17.557Z`` or ``2016-11-10Z``;
  anything unparseable (the ThingSpace example literally says ``"string"``) becomes None;
- IPv6 may be a ``/64`` prefix rather than an address: kept as the prefix;
- an error body may be JSON, XML or a captive portal's HTML page.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from agent.backhaul.reading import NetworkFailure, OperatorError, Reaction
from agent.clock import SYSTEM_CLOCK, Clock, parse_iso
from agent.config import ConfigError

log = logging.getLogger(__name__)

# --- lenient values -------------------------------------------------------------------------------

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
    try:
        return parse_iso(m.group(1) if m else s)  # zone-less means UTC: both operators document it
    except OverflowError:  # year 1 or 9999 with an offset: outside what datetime can hold in UTC
        return None


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


def expect_object(doc: Any, what: str) -> dict[str, Any]:
    """`doc` as a case-insensitive mapping; anything else is an answer we cannot read (retry)."""
    if not isinstance(doc, Mapping):
        raise OperatorError(
            "bad_answer",
            None,
            f"{what}: expected a JSON object, got {type(doc).__name__}",
            "retry_later",
        )
    return ci(doc)


def sum_known(values: list[int | None]) -> int | None:
    """The sum of the reported values; None when none was reported (unknown is not zero)."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


# --- error bodies ---------------------------------------------------------------------------------


def reaction_for_status(status: int | None) -> Reaction:
    """The reaction when the body names no error code: only the HTTP status is left to go by."""
    if status in (401, 403):
        return "stop"
    if status == 429:
        return "backoff"
    return "retry_later"


def json_or_none(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def looks_html(body: str, content_type: str) -> bool:
    head = body.lstrip()[:200].lower()
    return "html" in content_type.lower() or head.startswith(("<!doctype html", "<html"))


def not_json_error(
    provider: str, status: int | None, body: str, content_type: str
) -> OperatorError:
    """A body that is no JSON at all: a captive portal or a wrong base_url is the usual cause."""
    if looks_html(body, content_type):
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
        reaction_for_status(status),
    )


# --- requests -------------------------------------------------------------------------------------

ErrorDecoder = Callable[[int | None, str, str], OperatorError | None]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_https(url: str, *, key: str = "[backhaul] base_url", path: str | None = None) -> None:
    """Credentials go in every request: https only, except to loopback (tests, local proxies)."""
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in ("https", "http"):
        raise ConfigError(f"expected an https:// URL, got {url!r}", path=path, key=key)
    if parts.scheme != "https" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"expected https:// (credentials are sent with every call); http:// is only accepted "
            f"for a loopback address, got {url!r}",
            path=path,
            key=key,
        )


class OperatorHttp:
    """A serialised, spaced, deadline-bound JSON client for one operator API."""

    def __init__(
        self,
        base_url: str,
        *,
        provider: str,
        decode_error: ErrorDecoder,
        timeout: float = 20.0,
        min_interval: float = 1.0,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ):
        require_https(base_url)
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.provider = provider
        self._decode_error = decode_error
        self._timeout = timeout
        self._min_interval = min_interval
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=timeout, transport=transport, follow_redirects=False
        )
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last_start: float | None = None

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request and return its JSON document, or raise what went wrong."""
        url = self.url(path)
        async with self._lock:
            if self._last_start is not None:
                wait = self._last_start + self._min_interval - self._clock.monotonic()
                if wait > 0:
                    await self._clock.sleep(wait)
            self._last_start = self._clock.monotonic()
            try:
                async with asyncio.timeout(self._timeout):
                    response = await self._client.request(method, url, **kwargs)
            except TimeoutError:
                raise NetworkFailure(
                    f"{self.provider} gave no answer within {self._timeout:g} s ({_host(url)})"
                ) from None
            except httpx.TransportError as exc:
                raise NetworkFailure(
                    f"{self.provider} unreachable ({_host(url)}): {type(exc).__name__}"
                ) from None
        body = response.text
        err = self._decode_error(
            response.status_code, body, response.headers.get("content-type", "")
        )
        if err is not None:
            log.debug("%s %s → %s", method, path, err.code)
            raise err
        return response.json()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _host(url: str) -> str:
    return urlsplit(url).netloc
