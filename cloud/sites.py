"""Sites and their tokens, and erasing guest labels: what the admin commands and the service do.

Plain async functions over an asyncpg connection (or pool); the CLI wraps them, the service calls
:func:`site_for_token` for every request and :func:`apply_retention` hourly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg

from agent.display import printable
from cloud.schema import RETENTION_LOCK, Conn
from cloud.tokens import new_token, token_hash

log = logging.getLogger("cloud.sites")

Executor = Conn | asyncpg.Pool


class SiteError(ValueError):
    """An admin command that cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class Site:
    site: str
    timezone: str
    label_retention_days: int | None
    created_at: datetime
    revoked_at: datetime | None
    tokens: int  # valid now


def check_site_id(site: str) -> str:
    """Site ids prefix every event id: printable, no spaces, at most 128 characters."""
    if not site or len(site) > 128 or printable(site) != site or any(c.isspace() for c in site):
        raise SiteError(
            f"site id {printable(site)!r}: expected 1–128 printable characters without spaces "
            "(the agent's [site] id or [sync] site_id)"
        )
    return site


async def check_timezone(db: Executor, zone: str) -> str:
    """A zone PostgreSQL knows by name (the views compute local days with it)."""
    ok = await db.fetchval("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)", zone)
    if not ok or ("/" not in zone and zone != "UTC"):
        raise SiteError(
            f"time zone {printable(zone)!r}: expected an IANA zone such as 'America/Chicago'"
        )
    return zone


async def add_site(
    conn: Conn, site: str, zone: str, label_retention_days: int | None = None
) -> str:
    """Register a site; its first token (returned once, stored only as a hash)."""
    check_site_id(site)
    await check_timezone(conn, zone)
    token = new_token()
    async with conn.transaction():
        created = await conn.fetchval(
            "INSERT INTO sites (site, timezone, label_retention_days) VALUES ($1, $2, $3) "
            "ON CONFLICT (site) DO NOTHING RETURNING true",
            site,
            zone,
            label_retention_days,
        )
        if not created:
            raise SiteError(
                f"site {site!r} exists already (rotate-token gives it a new token, "
                "set-site changes its settings)"
            )
        await conn.execute(
            "INSERT INTO tokens (token_hash, site) VALUES ($1, $2)", token_hash(token), site
        )
    log.info("site %s added (time zone %s)", site, zone)
    return token


async def rotate_token(conn: Conn, site: str, overlap: timedelta) -> str:
    """A new token; the site's current ones stay valid for `overlap` (zero: revoked now).

    Rotating a revoked site's token brings the site back with only the new token.
    """
    token = new_token()
    async with conn.transaction():
        revoked = await conn.fetchval(
            "SELECT revoked_at IS NOT NULL FROM sites WHERE site = $1 FOR UPDATE", site
        )
        if revoked is None:
            raise SiteError(f"no site {site!r} (add-site registers it)")
        await conn.execute(
            "UPDATE tokens SET expires_at = least(coalesce(expires_at, 'infinity'), now() + $2)"
            " WHERE site = $1 AND revoked_at IS NULL",
            site,
            overlap,
        )
        await conn.execute("UPDATE sites SET revoked_at = NULL WHERE site = $1", site)
        await conn.execute(
            "INSERT INTO tokens (token_hash, site) VALUES ($1, $2)", token_hash(token), site
        )
    log.info("site %s: token rotated (old tokens valid for %s)", site, overlap)
    return token


async def revoke_site(conn: Conn, site: str) -> int:
    """Refuse the site's every token from now on (its events stay); how many were valid."""
    async with conn.transaction():
        found = await conn.fetchval(
            "UPDATE sites SET revoked_at = coalesce(revoked_at, now()) WHERE site = $1 "
            "RETURNING true",
            site,
        )
        if not found:
            raise SiteError(f"no site {site!r}")
        rows = await conn.fetch(
            "UPDATE tokens SET revoked_at = now() WHERE site = $1 AND revoked_at IS NULL"
            " RETURNING expires_at IS NULL OR expires_at > now() AS valid",
            site,
        )
    log.info("site %s revoked", site)
    return sum(1 for r in rows if r["valid"])


async def set_site(
    conn: Conn,
    site: str,
    *,
    zone: str | None = None,
    label_retention_days: int | None = None,
    default_retention: bool = False,
) -> None:
    if zone is not None:
        await check_timezone(conn, zone)
    found = await conn.fetchval(
        "UPDATE sites SET timezone = coalesce($2, timezone),"
        " label_retention_days = CASE WHEN $4 THEN NULL"
        "  ELSE coalesce($3, label_retention_days) END"
        " WHERE site = $1 RETURNING true",
        site,
        zone,
        label_retention_days,
        default_retention,
    )
    if not found:
        raise SiteError(f"no site {site!r}")


async def list_sites(db: Executor) -> list[Site]:
    rows = await db.fetch(
        "SELECT s.*, (SELECT count(*) FROM tokens t WHERE t.site = s.site"
        "  AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()))"
        "  AS tokens FROM sites s ORDER BY site"
    )
    return [Site(**dict(r)) for r in rows]


async def site_for_token(db: Executor, token: str, *, timeout: float) -> str | None:
    """The site a token may write for, or None (unknown, expired or revoked)."""
    site: str | None = await db.fetchval(
        "SELECT t.site FROM tokens t JOIN sites s ON s.site = t.site"
        " WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND s.revoked_at IS NULL"
        " AND (t.expires_at IS NULL OR t.expires_at > now())",
        token_hash(token),
        timeout=timeout,
    )
    return site


# Sessions created before the cutoff (a local date of the site). A session's created time is its
# first `created` event's; events of a session whose `created` never arrived count by their own.
_ERASE = """
UPDATE events e SET changes = jsonb_set(e.changes, '{label}', 'null'::jsonb)
FROM sites s
WHERE s.site = $1 AND e.site = $1
  AND e.changes ? 'label' AND e.changes -> 'label' <> 'null'::jsonb
  AND coalesce(
        (SELECT min(c.at) FROM events c
          WHERE c.site = e.site AND c.session = e.session AND c.kind = 'created'),
        e.at) < ($2::date::timestamp AT TIME ZONE s.timezone)
"""


async def forget(db: Executor, site: str, before: date) -> int:
    """Erase the labels of the site's sessions created before `before` (a local date of the site).

    Only the label values inside ``changes`` go (set to null); every figure stays. Returns how
    many events had a label erased.
    """
    exists = await db.fetchval("SELECT true FROM sites WHERE site = $1", site)
    if not exists:
        raise SiteError(f"no site {site!r}")
    status = await db.execute(_ERASE, site, before)
    n = int(status.split()[-1])
    if n:
        log.info("site %s: labels erased from %d events of sessions before %s", site, n, before)
    return n


async def apply_retention(conn: Conn, default_days: int) -> int:
    """Every site's label retention: its own period, else `default_days` (0 keeps labels).

    The cutoff is the site's local date today minus the period. One replica at a time does it (an
    advisory lock; the others skip), and it is idempotent. Returns the events erased.
    """
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK):
        return 0
    try:
        total = 0
        rows = await conn.fetch(
            "SELECT site, (now() AT TIME ZONE timezone)::date"
            "  - coalesce(label_retention_days, $1) AS cutoff"
            " FROM sites WHERE coalesce(label_retention_days, $1) > 0",
            default_days,
        )
        for row in rows:
            total += await forget(conn, row["site"], row["cutoff"])
        return total
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", RETENTION_LOCK)
