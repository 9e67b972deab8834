"""From ``[backhaul]`` and the secrets to a client and a poller, with one-line configuration errors.

Secrets come from :func:`agent.config.secret` (environment, else the 0600 secrets file), which
also registers them for log redaction before any request is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from agent.backhaul.control_center import ControlCenterClient
from agent.backhaul.http import require_https
from agent.backhaul.poller import BackhaulPoller, OnReading, OperatorClient
from agent.backhaul.thingspace import ThingSpaceClient
from agent.clock import SYSTEM_CLOCK, Clock
from agent.config import BackhaulConfig, Config, ConfigError, secret

CC_API_KEY = "PAGER_EDGE_CC_API_KEY"
TS_SECRETS = (
    "PAGER_EDGE_TS_CLIENT_ID",
    "PAGER_EDGE_TS_CLIENT_SECRET",
    "PAGER_EDGE_TS_USERNAME",
    "PAGER_EDGE_TS_PASSWORD",
)
# The figures cannot change faster than this (and the operators ask for no more).
MIN_USAGE_INTERVAL = 900.0
MIN_SESSION_INTERVAL = 300.0
# Between two calls of one poll: well under Control Center's 5 calls/s, which is per account and
# shared with the customer's other tools. Overridable with an optional `min_call_interval` key.
MIN_CALL_INTERVAL = 0.5


def check_config(cfg: Config) -> BackhaulConfig:
    """Everything ``[backhaul]`` must say before a request is made (whether or not `enabled`)."""
    b, p = cfg.backhaul, cfg.source

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, path=p, key=f"[backhaul] {key}")

    if not b.base_url:
        raise fail("base_url", "expected the operator's API base URL (no [backhaul] configured?)")
    require_https(b.base_url, path=p)
    needed = {"control_center": ("iccid", "username"), "thingspace": ("account_number", "imei")}
    for key in needed[b.provider]:
        if not getattr(b, key):
            raise fail(key, f"required for provider {b.provider!r}")
    if b.usage_interval < MIN_USAGE_INTERVAL:
        raise fail("usage_interval", f"expected at least {MIN_USAGE_INTERVAL:g} s (15 min)")
    if b.session_interval < MIN_SESSION_INTERVAL:
        raise fail("session_interval", f"expected at least {MIN_SESSION_INTERVAL:g} s (5 min)")
    if b.cap_bytes < 0:
        raise fail("cap_bytes", "expected 0 (no cap) or a positive number of bytes")
    if not 0 < b.warn_percent <= b.critical_percent <= 100:
        raise fail("warn_percent", "expected 0 < warn_percent ≤ critical_percent ≤ 100")
    if b.timeout <= 0:
        raise fail("timeout", "expected a positive number of seconds")
    return b


def _secret(cfg: Config, name: str) -> str:
    value = secret(cfg, name)
    if not value:
        where = f" or in {cfg.secrets.path}" if cfg.secrets.path else " or a [secrets] path file"
        raise ConfigError(f"secret {name} is not set (set it in the environment{where})")
    return value


def make_client(
    cfg: Config,
    *,
    http: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> OperatorClient:
    """The client for the configured provider. Pass `http` or `transport` to redirect the calls."""
    b = check_config(cfg)
    common: dict[str, Any] = {
        "timeout": b.timeout,
        "min_interval": getattr(b, "min_call_interval", MIN_CALL_INTERVAL),
        "client": http,
        "transport": transport,
        "clock": clock,
    }
    if b.provider == "control_center":
        return ControlCenterClient(
            b.base_url,
            iccid=b.iccid,
            username=b.username,
            api_key=_secret(cfg, CC_API_KEY),
            **common,
        )
    client_id, client_secret, username, password = (_secret(cfg, n) for n in TS_SECRETS)
    return ThingSpaceClient(
        b.base_url,
        account_number=b.account_number,
        imei=b.imei,
        iccid=b.iccid,
        client_id=client_id,
        client_secret=client_secret,
        username=username,
        password=password,
        cycle_start_day=b.cycle_start_day,
        **common,
    )


def make_poller(
    cfg: Config,
    on_reading: OnReading | None = None,
    *,
    own_bytes: Callable[[], int] | None = None,
    http: httpx.AsyncClient | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> BackhaulPoller:
    client = make_client(cfg, http=http, transport=transport, clock=clock)
    return BackhaulPoller(cfg.backhaul, client, on_reading, clock=clock, own_bytes=own_bytes)


def daemon_task(
    cfg: Config,
    store: Any,
    *,
    own_bytes: Callable[[], int] | None = None,
) -> Callable[[], Awaitable[None]]:
    """A factory for ``Agent.extra_tasks``: poll for ever, each reading into the store.

    Configuration and secrets are checked now (start-up), so a mistake stops ``pager-edge run``
    with one line. The poller is built once and survives task restarts: a refused ThingSpace login
    stays remembered, and is never tried again by a restarted task.
    """
    poller = make_poller(cfg, lambda r: store.add_backhaul_reading(r.to_row()), own_bytes=own_bytes)

    async def run() -> None:
        try:
            await poller.run()
        except asyncio.CancelledError:
            await poller.client.aclose()
            raise

    return run
