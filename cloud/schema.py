"""The PostgreSQL schema, as numbered migrations applied on start; and the analytics views.

Every replica runs :func:`migrate` when it starts. Migrations take a transaction-level advisory
lock, so replicas starting together apply each migration once, in order, and a replica never
serves against a half-migrated schema. A migration, once released, is never edited: a change is a
new migration (``CREATE OR REPLACE VIEW`` may add view columns at the end; anything else drops
and recreates).

Tables:

* ``sites`` — one row per restaurant: its time zone (for local days) and label retention.
* ``tokens`` — sha256 of each bearer token (the token itself is shown once and never stored).
* ``batches`` — one row per ``Idempotency-Key`` taken, with the sha256 of its body.
* ``site_heartbeats`` — the last heartbeat of each site (when, agent version, its clock, its
  backlog); the view ``site_last_seen`` says when each site was last heard from at all.
* ``events`` — the lifecycle events, primary key ``(site, seq)``: the cloud id ``<site>:<seq>``.
  ``kind`` is text, so kinds the agent learns later (``lost``) flow through unchanged. ``at`` and
  ``observed_at`` hold the time when the wire carried the store's timestamp form; a time in any
  other form is kept verbatim in ``at_text`` / ``observed_text`` instead (``at`` is then null).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection of its own or one borrowed from a pool: the same to every function here.
Conn = asyncpg.Connection | PoolConnectionProxy
# Any constant that no other application on the database uses as an advisory lock key.
MIGRATION_LOCK = 0x7061_6765_7265_6467  # "pagerdg"
RETENTION_LOCK = MIGRATION_LOCK + 1


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


_TABLES = """
CREATE TABLE sites (
    site text PRIMARY KEY CHECK (length(site) BETWEEN 1 AND 128),
    timezone text NOT NULL,
    -- null: the service's [cloud] label_retention_days; 0: labels are kept
    label_retention_days integer CHECK (label_retention_days >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE tokens (
    token_hash bytea PRIMARY KEY,
    site text NOT NULL REFERENCES sites (site),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,          -- set by rotate-token: valid until then
    revoked_at timestamptz
);
CREATE INDEX tokens_site ON tokens (site);

CREATE TABLE batches (
    site text NOT NULL REFERENCES sites (site),
    key text NOT NULL,
    body_sha256 bytea NOT NULL,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    events integer NOT NULL,
    agent text,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, key)
);

-- No foreign key to sites: every event arrives in a batch whose row references its site, and a
-- per-row check would cost every insert.
CREATE TABLE events (
    site text NOT NULL,
    seq bigint NOT NULL,
    session text NOT NULL,
    number integer NOT NULL,
    kind text NOT NULL,
    at timestamptz,
    at_text text,
    observed_at timestamptz,
    observed_text text,
    changes jsonb NOT NULL DEFAULT '{}',
    source text NOT NULL,
    batch_key text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, seq)
);
CREATE INDEX events_session ON events (site, session, seq);
CREATE INDEX events_created ON events (site, at) WHERE kind = 'created';
-- Events still holding a label: what label retention looks at every hour stays small.
CREATE INDEX events_labelled ON events (site, session)
    WHERE changes ? 'label' AND changes -> 'label' <> 'null'::jsonb;

-- A JSON number that is a whole number of a sane size, else null: a malformed value in one
-- event must not make a view fail for everybody.
CREATE FUNCTION pe_int(v jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN jsonb_typeof(v) = 'number' AND v::text ~ '^-?[0-9]{1,15}$'
             THEN v::text::bigint END $$;

-- The store's timestamp text, as export and the wire write it.
CREATE FUNCTION pe_iso(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;
"""

# One row per session that has a `created` event with a time. Definitions (cloud/README.md):
# created = the first `created` event's time; party size and quote = the latest value set by a
# `created` or `updated` event; the wait = first `paged` event − created; the end = the first
# `cleared` (seated), `removed` (walked away) or `lost` (the transmitter forgot it) event.
_SESSION_FACTS = """
CREATE VIEW session_facts AS
SELECT f.site, f.session, f.number, f.created_at,
       (f.created_at AT TIME ZONE f.timezone)::date AS local_day,
       extract(hour FROM f.created_at AT TIME ZONE f.timezone)::integer AS local_hour,
       f.party_size, f.quoted_seconds, f.first_paged_at,
       extract(epoch FROM f.first_paged_at - f.created_at)::bigint AS wait_seconds,
       f.end_kind, f.ended_at,
       CASE WHEN f.quoted_seconds IS NOT NULL AND f.first_paged_at IS NOT NULL
            THEN extract(epoch FROM f.first_paged_at - f.created_at) <= f.quoted_seconds
       END AS on_time
FROM (
    SELECT e.site, e.session, s.timezone,
        (array_agg(e.number ORDER BY e.seq) FILTER (WHERE e.kind = 'created'))[1] AS number,
        (array_agg(e.at ORDER BY e.seq) FILTER (WHERE e.kind = 'created'))[1] AS created_at,
        (array_agg(pe_int(e.changes -> 'party_size') ORDER BY e.seq DESC)
            FILTER (WHERE e.kind IN ('created', 'updated') AND e.changes ? 'party_size'))[1]
            AS party_size,
        (array_agg(pe_int(e.changes -> 'goal_seconds') ORDER BY e.seq DESC)
            FILTER (WHERE e.kind IN ('created', 'updated') AND e.changes ? 'goal_seconds'))[1]
            AS quoted_seconds,
        (array_agg(e.at ORDER BY e.seq) FILTER (WHERE e.kind = 'paged'))[1] AS first_paged_at,
        (array_agg(e.kind ORDER BY e.seq)
            FILTER (WHERE e.kind IN ('cleared', 'removed', 'lost')))[1] AS end_kind,
        (array_agg(e.at ORDER BY e.seq)
            FILTER (WHERE e.kind IN ('cleared', 'removed', 'lost')))[1] AS ended_at
    FROM events e
    JOIN sites s ON s.site = e.site
    GROUP BY e.site, e.session, s.timezone
) f
WHERE f.created_at IS NOT NULL;
"""

# The figures of a group of sessions (the same for a day, an hour of the day, a party size).
_FIGURES = """
    count(*) AS parties,
    count(*) FILTER (WHERE end_kind = 'cleared') AS seated,
    count(*) FILTER (WHERE end_kind = 'removed') AS walk_aways,
    count(*) FILTER (WHERE end_kind = 'lost') AS lost,
    count(*) FILTER (WHERE end_kind IS NULL) AS still_open,
    count(first_paged_at) AS paged,
    count(quoted_seconds) AS quoted,
    avg(quoted_seconds) AS quoted_mean_seconds,
    avg(wait_seconds) AS wait_mean_seconds,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_seconds) AS wait_median_seconds,
    count(on_time) AS on_time_eligible,
    count(*) FILTER (WHERE on_time) AS on_time,
    count(*) FILTER (WHERE on_time)::numeric / nullif(count(on_time), 0) AS on_time_share
"""

_VIEWS = (
    _SESSION_FACTS
    + f"""
CREATE VIEW site_day_stats AS
SELECT site, local_day, {_FIGURES}
FROM session_facts GROUP BY site, local_day;

CREATE VIEW site_day_hour_stats AS
SELECT site, local_day, local_hour, {_FIGURES}
FROM session_facts GROUP BY site, local_day, local_hour;

CREATE VIEW site_day_party_size_stats AS
SELECT site, local_day, party_size, {_FIGURES}
FROM session_facts GROUP BY site, local_day, party_size;

-- The events in the store's export shape (what `pager-edge export --events` writes, plus
-- changes and source), for BI tools and for comparing with a site's own export.
CREATE VIEW events_export AS
SELECT site, site || ':' || seq AS id, seq, session AS uuid, number, kind,
       coalesce(at_text, pe_iso(at)) AS at,
       coalesce(observed_text, pe_iso(observed_at)) AS observed_at,
       changes, source
FROM events;
"""
)

# Heartbeats (sync wire format 2): an idle site says it is alive every [sync] heartbeat_minutes;
# when a site was last heard from is the later of its heartbeat and its newest batch.
_HEARTBEATS = """
CREATE TABLE site_heartbeats (
    site text PRIMARY KEY REFERENCES sites (site),
    heard_at timestamptz NOT NULL,
    agent text NOT NULL,        -- the agent version the heartbeat named
    agent_clock timestamptz,    -- the agent's clock when it sent it (skew = agent_clock - heard_at)
    pending integer NOT NULL    -- events the agent held, not yet delivered
);
CREATE INDEX batches_received ON batches (site, received_at);

CREATE VIEW site_last_seen AS
SELECT s.site, h.heard_at AS last_heartbeat, h.agent, h.pending,
       extract(epoch FROM h.agent_clock - h.heard_at)::bigint AS agent_clock_skew_seconds,
       b.last_batch,
       nullif(greatest(coalesce(h.heard_at, '-infinity'), coalesce(b.last_batch, '-infinity')),
              '-infinity') AS last_seen
FROM sites s
LEFT JOIN site_heartbeats h ON h.site = s.site
LEFT JOIN LATERAL (SELECT max(received_at) AS last_batch FROM batches WHERE site = s.site) b ON true;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "sites, tokens, batches, events; analytics views", _TABLES + _VIEWS),
    Migration(2, "site heartbeats; site_last_seen", _HEARTBEATS),
)


async def schema_version(conn: Conn) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def migrate(conn: Conn) -> list[int]:
    """Apply the migrations this database lacks; the versions applied (empty: it was current).

    A database newer than this code (a replica of an older release during a rolling upgrade)
    is left alone: its extra migrations only add.
    """
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = await schema_version(conn)
        for m in MIGRATIONS:
            if m.version <= current:
                continue
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name
            )
            applied.append(m.version)
    return applied
