"""What every `pager-edge cloud` command needs first: the [cloud] extra and the database URL.

The server libraries (aiohttp, asyncpg) come with the ``pager-edge[cloud]`` extra, which a site's
Pi never installs; this module imports neither at load time, so the command line lists the cloud
commands without them and a command run without them says what to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from agent.config import Config
from agent.logs import register_secret
from agent.secrets import secret

DSN_ENV = "PAGER_EDGE_CLOUD_DSN"
T = TypeVar("T")


class SetupError(Exception):
    """Something to install or configure first (the command line exits with status 2)."""


def need_extra() -> None:
    """Raise :class:`SetupError` naming the extra when aiohttp or asyncpg is missing."""
    for module in ("aiohttp", "asyncpg"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise SetupError(
                f"pager-edge cloud needs {module}: pip install 'pager-edge[cloud]'"
            ) from None


def database_url(cfg: Config) -> str:
    """The whole DSN, from the environment or the secrets file; registered for log redaction."""
    dsn = secret(cfg, DSN_ENV)
    if not dsn:
        raise SetupError(
            f"no database: set {DSN_ENV} (a postgresql:// URL) in the environment or in the "
            "secrets file ([secrets] path, mode 0600)"
        )
    try:
        password = urlsplit(dsn).password
    except ValueError:
        password = None
    if password:
        register_secret(password)
    return dsn


async def with_database(cfg: Config, dsn: str, work: Callable[[Any], Awaitable[T]]) -> T:
    """Connect, migrate, run `work(conn)`, close: one admin command's database session."""
    import asyncpg

    from cloud.schema import migrate

    conn = await asyncpg.connect(dsn, timeout=cfg.cloud.db_timeout)
    try:
        await migrate(conn)
        return await work(conn)
    finally:
        await conn.close()
