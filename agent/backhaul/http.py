"""The HTTP discipline both operator clients share.

- One call in flight and a minimum spacing between calls: Control Center's limit (5 calls/s) is
  per *account*, shared with every other tool the operator's customer runs, and ThingSpace asks for
  one request at a time.
- Every call bounded by one overall deadline (httpx's own timeouts are per phase, so a server that
  drips bytes could otherwise hold the poller for ever).
- No answer at all → :class:`NetworkFailure`; an answer that is not the data → :class:`OperatorError`
  decoded by the provider's parser; exception text never carries request headers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from agent.backhaul.reading import NetworkFailure, OperatorError
from agent.clock import SYSTEM_CLOCK, Clock
from agent.config import ConfigError

log = logging.getLogger(__name__)

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
