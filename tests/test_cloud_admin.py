"""The cloud side's pure parts, its configuration, migrations, admin commands and label retention."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from click.testing import CliRunner

from agent.config import CloudConfig, ConfigError, load_config, parse_config
from agent.sync.wire import decode_body, encode_batch
from bench.sync import evening
from cloud.body import BadBody, BodyTooLarge, gunzip_bounded
from cloud.ingest import columns, problem
from cloud.report import format_report
from cloud.schema import MIGRATIONS, migrate, schema_version
from cloud.sites import apply_retention
from cloud.tokens import bearer, new_token, token_hash
from pager_edge.cli import cli
from tests.cloud_helpers import DSN_ENV, add_site, query, run, store_shaped

pytest_plugins = ["tests.cloud_fixtures"]

# --- pure ---------------------------------------------------------------------------------------


def test_gunzip_bounded():
    data = b"0123456789" * 1000
    assert gunzip_bounded(gzip.compress(data), len(data)) == data
    assert gunzip_bounded(gzip.compress(data) + gzip.compress(b"!"), 10**6) == data + b"!"
    with pytest.raises(BodyTooLarge):
        gunzip_bounded(gzip.compress(data), len(data) - 1)
    for bad in (b"", b"plain", gzip.compress(data)[:-4], gzip.compress(data)[:20]):
        with pytest.raises(BadBody):
            gunzip_bounded(bad, 10**6)


def test_tokens():
    a, b = new_token(), new_token()
    assert a != b and a.startswith("pe_") and len(a) >= 40
    assert token_hash(a) != token_hash(b) and len(token_hash(a)) == 32
    assert bearer(f"Bearer {a}") == a and bearer(f"bearer  {a} ") == a
    for bad in (None, "", "Basic xyz", "Bearer", "Bearer ", "Bearer " + "x" * 600):
        assert bearer(bad) is None


def test_problem_and_columns():
    rows = store_shaped(evening(2))
    batch = decode_body(encode_batch("s", "t", rows)[1])
    assert problem(batch) is None
    cols = columns(batch["events"])
    assert cols[0] == [r["seq"] for r in rows] and cols[5] == [None] * len(rows)
    assert cols[4][0] == datetime.fromisoformat(rows[0]["at"])
    odd = decode_body(encode_batch("s", "t", [dict(rows[0], at="yesterday-ish")])[1])
    assert columns(odd["events"])[4:6] == [[None], ["yesterday-ish"]]  # kept verbatim
    for change, needle in (
        ({"number": True}, "pager number"),
        ({"number": -1}, "pager number"),
        ({"kind": ""}, "kind must be text"),
        ({"uuid": "x\x00"}, "NUL"),
        ({"source": "s" * 300}, "too long"),
        ({"changes": []}, "changes must be an object"),
    ):
        ev = dict(batch["events"][0], **change)
        assert needle in problem(dict(batch, events=[ev])), change
    assert problem(dict(batch, events=[])) == "empty batch"
    swapped = [batch["events"][1], batch["events"][0]]
    assert "ascending" in problem(dict(batch, events=swapped))


def test_format_report_empty_and_alignment():
    assert format_report([]) == "no parties in that range"
    row = {
        "site": "s\x1b[31m",
        "local_day": "2026-11-21",
        "parties": 3,
        "seated": 2,
        "walk_aways": 1,
        "lost": 0,
        "still_open": 0,
        "paged": 3,
        "quoted": 3,
        "quoted_mean_seconds": 900.0,
        "wait_mean_seconds": 750.0,
        "wait_median_seconds": 600.0,
        "on_time_eligible": 3,
        "on_time": 2,
        "on_time_share": 2 / 3,
    }
    text = format_report([row])
    assert "\x1b" not in text  # foreign text is sanitized
    assert text.splitlines()[1].endswith("15.0      12.5        10.0     67 %")


# --- configuration ------------------------------------------------------------------------------


def test_shipped_config_cloud_section_is_the_defaults():
    from pathlib import Path

    cfg = load_config(Path(__file__).parent.parent / "config.toml")
    assert cfg.cloud == CloudConfig()


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[cloud]\nport = 70000", "[cloud] port: expected a port 0–65535"),
        ("[cloud]\nmax_body_bytes = 0", "[cloud] max_body_bytes: expected a positive number"),
        ("[cloud]\ndsn = 'postgresql://x'", "[cloud] dsn: unknown key"),
        ("[cloud]\nlabel_retention_days = -1", "[cloud] label_retention_days"),
        ("[cloud]\nmax_decoded_bytes = 10", "[cloud] max_decoded_bytes: expected at least"),
    ],
)
def test_cloud_config_mistakes_name_file_and_key(text, needle):
    with pytest.raises(ConfigError) as exc:
        parse_config(text, source="cloud.toml")
    assert str(exc.value).startswith("cloud.toml: ") and needle in str(exc.value)


def test_no_dsn_is_a_setup_error(monkeypatch):
    monkeypatch.delenv(DSN_ENV, raising=False)
    res = CliRunner().invoke(cli, ["cloud", "report"])
    assert res.exit_code == 2 and DSN_ENV in res.output


# --- migrations ---------------------------------------------------------------------------------


def test_migrations_apply_once_when_replicas_start_together(postgres):
    async def scenario() -> list[list[int]]:
        admin = await asyncpg.connect(postgres.dsn())
        await admin.execute("CREATE DATABASE mig_race")
        await admin.close()
        conns = [await asyncpg.connect(postgres.dsn("mig_race")) for _ in range(4)]
        try:
            applied = await asyncio.gather(*(migrate(c) for c in conns))
            assert await schema_version(conns[0]) == MIGRATIONS[-1].version
            assert await migrate(conns[0]) == []
            return applied
        finally:
            for c in conns:
                await c.close()
            admin = await asyncpg.connect(postgres.dsn())
            await admin.execute("DROP DATABASE mig_race WITH (FORCE)")
            await admin.close()

    applied = asyncio.run(scenario())
    assert sorted(applied, key=len) == [[], [], [], [m.version for m in MIGRATIONS]]


# --- admin commands -----------------------------------------------------------------------------


def test_site_commands(cloud_db):
    env = {DSN_ENV: cloud_db}

    def cloud(*args: str):
        return CliRunner().invoke(cli, ["cloud", *args], env=env)

    res = cloud("add-site", "site-1", "--timezone", "Europe/Paris")
    assert res.exit_code == 0, res.output
    token = res.stdout.strip()
    assert token.startswith("pe_") and "\n" not in token  # the token alone on stdout
    stored = run(query(cloud_db, "SELECT token_hash FROM tokens"))
    assert [r["token_hash"] for r in stored] == [token_hash(token)]  # only its hash
    res = cloud("add-site", "site-1", "--timezone", "Europe/Paris")
    assert res.exit_code == 1 and "exists already" in res.output
    res = cloud("add-site", "site-2", "--timezone", "Mars/Olympus")
    assert res.exit_code == 1 and "IANA zone" in res.output
    res = cloud("add-site", "bad site", "--timezone", "UTC")
    assert res.exit_code == 1 and "without spaces" in res.output
    res = cloud("set-site", "site-1", "--label-retention-days", "7", "--timezone", "Asia/Tokyo")
    assert res.exit_code == 0, res.output
    res = cloud("list-sites", "--json")
    (site,) = json.loads(res.stdout)
    assert site["timezone"] == "Asia/Tokyo" and site["label_retention_days"] == 7
    assert site["tokens"] == 1
    assert cloud("revoke-site", "nowhere").exit_code == 1
    assert cloud("forget", "site-1", "--before", "21-11-2026").exit_code == 2


def test_label_retention_erases_old_labels_only(cloud_db):
    """Hourly in the service; here called once. The cutoff is relative to today."""
    run(add_site(cloud_db, "site-keep", "UTC", label_retention_days=0))
    run(add_site(cloud_db, "site-short", "UTC", label_retention_days=30))
    now = datetime.now(UTC).replace(microsecond=0)

    def at(days: int) -> str:
        return (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def scenario() -> int:
        conn = await asyncpg.connect(cloud_db)
        try:
            for site in ("site-keep", "site-short"):
                for seq, (uuid, days) in enumerate((("old", 40), ("new", 2)), 1):
                    await conn.execute(
                        "INSERT INTO events (site, seq, session, number, kind, at, observed_at,"
                        " changes, source, batch_key) VALUES ($1, $2, $3, 1, 'created',"
                        " $4::text::timestamptz, $4::text::timestamptz, $5, 'notify', 'k')",
                        site,
                        seq,
                        uuid,
                        at(days),
                        json.dumps({"label": f"Guest {uuid}", "party_size": 2}),
                    )
            return await apply_retention(conn, default_days=90)
        finally:
            await conn.close()

    assert run(scenario()) == 1
    rows = run(query(cloud_db, "SELECT site, session, changes FROM events ORDER BY site, seq"))
    labels = {(r["site"], r["session"]): json.loads(r["changes"]) for r in rows}
    assert labels[("site-short", "old")] == {"label": None, "party_size": 2}
    assert labels[("site-short", "new")]["label"] == "Guest new"
    assert labels[("site-keep", "old")]["label"] == "Guest old"  # 0: kept
